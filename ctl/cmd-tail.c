/* cmd-tail.c - `llmctl tail`: one line per request as the collector
 * finishes it, until SIGINT/SIGTERM (exit 0) or the collector goes away
 * (exit 1). Lines are flushed one by one, for pipes. */
#include <signal.h>
#include <string.h>

#include "ctl.h"
#include "ipc.h"
#include "json.h"
#include "output.h"

#define NAME "tail"
#define SUBSCRIBE_TIMEOUT_MS 5000
/* How often a wait for the next event checks for SIGINT/SIGTERM: the
 * IPC client retries interrupted polls, so the flag is looked at here. */
#define SIGNAL_CHECK_MS 200
/* How long a collector that dropped the tail has to answer a status. */
#define PROBE_TIMEOUT_MS 1000

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    stop_requested = 1;
}

static void print_event(const Lw__RequestEvent *e, gboolean json)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autofree char *time = lw_output_time_iso(e->time_ms);
    if (json) {
        g_string_append(out, "{\"time\": ");
        lw_json_append_string(out, time, -1);
        g_string_append(out, ", \"run_id\": ");
        if (e->has_run_id && e->run_id != 0)
            g_string_append_printf(out, "%" G_GUINT64_FORMAT, e->run_id);
        else
            g_string_append(out, "null");
        g_string_append(out, ", \"provider\": ");
        lw_json_append_string(out, e->provider, -1);
        g_string_append(out, ", \"model\": ");
        lw_json_append_string(out, e->model, -1);
        g_string_append(out, ", \"endpoint\": ");
        lw_json_append_string(out, e->endpoint, -1);
        g_string_append_printf(out,
                               ", \"status\": %u, \"stream\": %s, \"input_tokens\": %" G_GUINT64_FORMAT
                               ", \"output_tokens\": %" G_GUINT64_FORMAT ", \"cost_usd\": ",
                               e->status, e->stream ? "true" : "false", e->input_tokens,
                               e->output_tokens);
        if (e->has_cost_known && e->cost_known)
            lw_output_json_usd(out, e->cost_pusd);
        else
            g_string_append(out, "null");
        g_string_append_printf(out, ", \"latency_ms\": %u, \"pid\": %u}\n", e->latency_ms, e->pid);
    } else {
        g_autofree char *when = lw_output_time_human(e->time_ms);
        g_autofree char *cost = e->has_cost_known && e->cost_known
                                    ? lw_output_usd_human(e->cost_pusd)
                                    : g_strdup("?");
        g_autofree char *in = lw_output_count((gint64)e->input_tokens);
        g_autofree char *outt = lw_output_count((gint64)e->output_tokens);
        g_autofree char *latency = lw_output_duration(e->latency_ms);
        g_autofree char *provider = lw_output_printable(e->provider);
        g_autofree char *model = lw_output_printable(e->model);
        g_autofree char *endpoint = lw_output_printable(e->endpoint);
        g_string_append_printf(out, "%s  %s %s %s  %u%s  in %s out %s  %s  %s", when, provider,
                               model, endpoint, e->status, e->stream ? " stream" : "", in, outt,
                               cost, latency);
        if (e->has_run_id && e->run_id != 0)
            g_string_append_printf(out, "  run %" G_GUINT64_FORMAT, e->run_id);
        g_string_append_printf(out, "  pid %u\n", e->pid);
    }
    fputs(out->str, stdout);
    fflush(stdout);
}

/* The collector also drops a tail that falls 1 MiB behind, rather than
 * buffer for it without bound. Told apart from a collector that stopped
 * by asking it something: one that is exiting may still accept a
 * connection for a moment, but does not answer. */
static gboolean collector_answers(LwCtl *ctl)
{
    g_autoptr(LwIpcClient) probe = lw_ipc_client_connect(ctl->paths->ipc_socket, NULL);
    if (probe == NULL)
        return FALSE;
    Lw__Response *resp = lw_ipc_client_status(probe, PROBE_TIMEOUT_MS, NULL);
    if (resp == NULL)
        return FALSE;
    lw__response__free_unpacked(resp, NULL);
    return TRUE;
}

int lw_cmd_tail(LwCtl *ctl, int argc, char **argv)
{
    gboolean json = FALSE;
    const GOptionEntry entries[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object per line", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx =
        lw_ctl_options_new(NULL, entries, "Runs until interrupted or until the collector stops.");
    if (!lw_ctl_options_parse(ctx, NAME, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(NAME, "unexpected argument '%s'", argv[1]);

    g_autoptr(GError) error = NULL;
    g_autoptr(LwIpcClient) client = lw_ipc_client_connect(ctl->paths->ipc_socket, &error);
    if (client == NULL)
        return lw_ctl_error(NAME, "llm-collector is not running (%s)", error->message);

    /* No SA_RESTART: a signal interrupts the wait; the loop checks the flag. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    Lw__TailRequest tail_req = LW__TAIL_REQUEST__INIT;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_TAIL;
    req.tail = &tail_req;
    Lw__Response *resp = lw_ipc_client_call(client, &req, SUBSCRIBE_TIMEOUT_MS, &error);
    if (resp == NULL)
        return lw_ctl_error(NAME, "cannot subscribe: %s", error->message);
    lw__response__free_unpacked(resp, NULL);

    while (!stop_requested) {
        g_clear_error(&error);
        resp = lw_ipc_client_next(client, SIGNAL_CHECK_MS, &error);
        if (resp == NULL) {
            if (g_error_matches(error, LW_IPC_ERROR, LW_IPC_ERROR_TIMEOUT))
                continue;
            if (g_error_matches(error, LW_IPC_ERROR, LW_IPC_ERROR_IO)) {
                fflush(stdout);
                fprintf(stderr, "llmctl %s: %s\n", NAME,
                        collector_answers(ctl)
                            ? "the collector dropped this tail: it fell too far behind "
                              "(requests came faster than they were printed)"
                            : "the collector went away");
                return LW_CTL_EXIT_ERROR;
            }
            return lw_ctl_error(NAME, "%s", error->message);
        }
        if (resp->body_case == LW__RESPONSE__BODY_EVENT && resp->event != NULL)
            print_event(resp->event, json);
        lw__response__free_unpacked(resp, NULL);
        if (ferror(stdout))
            return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
    }
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}
