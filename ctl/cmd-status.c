/* cmd-status.c - `llmctl status`: is the collector running, and how is it
 * doing. Exit 3 when it is not running (scripts test for that). */
#include <string.h>

#include "ctl.h"
#include "ipc.h"
#include "json.h"
#include "output.h"

#define NAME "status"
#define STATUS_TIMEOUT_MS 5000

static void json_counter(GString *out, const char *name, gboolean has, guint64 v, gboolean *first)
{
    if (!has)
        return;
    g_string_append(out, *first ? "" : ", ");
    *first = FALSE;
    lw_json_append_string(out, name, -1);
    g_string_append_printf(out, ": %" G_GUINT64_FORMAT, v);
}

static void print_json(const Lw__StatusReply *s, const char *state_dir, const char *ledger)
{
    g_autoptr(GString) out = g_string_new("{\"running\": true");
    g_string_append_printf(out, ", \"pid\": %u, \"version\": ", s->pid);
    lw_json_append_string(out, s->version != NULL ? s->version : "", -1);
    g_string_append_printf(out, ", \"uptime_s\": %" G_GUINT64_FORMAT, s->uptime_ms / 1000);
    g_string_append(out, ", \"ports\": {\"synthetic\": ");
    if (s->has_synthetic_port)
        g_string_append_printf(out, "%u", s->synthetic_port);
    else
        g_string_append(out, "null");
    g_string_append(out, ", \"listen\": [");
    gboolean first = TRUE;
    for (size_t i = 0; i < s->n_listeners; i++) {
        const Lw__Listener *l = s->listeners[i];
        if (l->provider != NULL && l->provider[0] != '\0')
            continue;
        g_string_append_printf(out, "%s%u", first ? "" : ", ", l->port);
        first = FALSE;
    }
    g_string_append(out, "]}, \"listeners\": [");
    for (size_t i = 0; i < s->n_listeners; i++) {
        const Lw__Listener *l = s->listeners[i];
        g_string_append(out, i > 0 ? ", {\"provider\": " : "{\"provider\": ");
        if (l->provider != NULL && l->provider[0] != '\0')
            lw_json_append_string(out, l->provider, -1);
        else
            g_string_append(out, "null");
        g_string_append(out, ", \"address\": ");
        lw_json_append_string(out, l->address, -1);
        g_string_append_printf(out, ", \"port\": %u}", l->port);
    }
    g_string_append(out, "], \"counters\": {");
    const Lw__Counters *c = s->counters;
    if (c != NULL) {
        first = TRUE;
#define COUNTER(f) json_counter(out, #f, c->has_##f, c->f, &first)
        COUNTER(connections_accepted);
        COUNTER(connections_active);
        COUNTER(connections_rejected);
        COUNTER(requests_total);
        COUNTER(requests_active);
        COUNTER(requests_bad);
        COUNTER(upstream_errors);
        COUNTER(bytes_in);
        COUNTER(bytes_out);
        COUNTER(ipc_bad_frames);
        COUNTER(refused);
#undef COUNTER
    }
    g_string_append(out, "}, \"synthetic_net\": ");
    if (s->has_synthetic_net)
        g_string_append_printf(out, "%u", s->synthetic_net);
    else
        g_string_append(out, "null");
    g_string_append(out, ", \"ca_file\": ");
    lw_json_append_string(out, s->ca_file, -1);
    g_string_append(out, ", \"state_dir\": ");
    lw_json_append_string(out, state_dir, -1);
    g_string_append(out, ", \"ledger\": ");
    lw_json_append_string(out, ledger, -1);
    g_string_append(out, "}\n");
    fputs(out->str, stdout);
}

static char *counter(gboolean has, guint64 v)
{
    return has ? lw_output_count((gint64)v) : g_strdup("?");
}

static void print_human(const Lw__StatusReply *s, const char *state_dir, const char *ledger)
{
    g_autofree char *up = lw_output_duration((gint64)s->uptime_ms);
    printf("llm-collector is running (pid %u, version %s, up %s)\n", s->pid,
           s->version != NULL ? s->version : "?", up);
    printf("  state:     %s\n  ledger:    %s\n", state_dir, ledger);
    if (s->ca_file != NULL)
        printf("  CA:        %s\n", s->ca_file);
    guint synthetic = 0;
    for (size_t i = 0; i < s->n_listeners; i++)
        if (s->listeners[i]->provider != NULL && s->listeners[i]->provider[0] != '\0')
            synthetic++;
    if (s->has_synthetic_port)
        printf("  providers: %u on 127.%u.0.i port %u\n", synthetic, s->synthetic_net,
               s->synthetic_port);
    for (size_t i = 0; i < s->n_listeners; i++) {
        const Lw__Listener *l = s->listeners[i];
        if (l->provider == NULL || l->provider[0] == '\0')
            printf("  listen:    %s port %u\n", l->address, l->port);
    }
    Lw__Counters none = LW__COUNTERS__INIT;
    const Lw__Counters *c = s->counters != NULL ? s->counters : &none;
    g_autofree char *total = counter(c->has_requests_total, c->requests_total);
    g_autofree char *active = counter(c->has_requests_active, c->requests_active);
    g_autofree char *bad = counter(c->has_requests_bad, c->requests_bad);
    g_autofree char *up_err = counter(c->has_upstream_errors, c->upstream_errors);
    g_autofree char *refused = counter(c->has_refused, c->refused);
    g_autofree char *acc = counter(c->has_connections_accepted, c->connections_accepted);
    g_autofree char *cact = counter(c->has_connections_active, c->connections_active);
    g_autofree char *rej = counter(c->has_connections_rejected, c->connections_rejected);
    printf("  requests:  %s total, %s active, %s refused, %s bad, %s upstream errors\n", total,
           active, refused, bad, up_err);
    printf("  clients:   %s connections accepted, %s active, %s rejected\n", acc, cact, rej);
}

int lw_cmd_status(LwCtl *ctl, int argc, char **argv)
{
    gboolean json = FALSE;
    const GOptionEntry entries[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx =
        lw_ctl_options_new(NULL, entries, "Exit status 3 when the collector is not running.");
    if (!lw_ctl_options_parse(ctx, NAME, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(NAME, "unexpected argument '%s'", argv[1]);

    g_autofree char *state_dir = lw_ctl_state_dir(ctl);
    g_autoptr(GError) error = NULL;
    g_autoptr(LwIpcClient) client = lw_ipc_client_connect(ctl->paths->ipc_socket, &error);
    if (client == NULL && !g_error_matches(error, LW_IPC_ERROR, LW_IPC_ERROR_UNREACHABLE))
        return lw_ctl_error(NAME, "%s", error->message);
    if (client == NULL) {
        if (json) {
            g_autoptr(GString) out = g_string_new("{\"running\": false, \"state_dir\": ");
            lw_json_append_string(out, state_dir, -1);
            g_string_append(out, ", \"ledger\": ");
            lw_json_append_string(out, ctl->paths->ledger_file, -1);
            g_string_append(out, "}\n");
            fputs(out->str, stdout);
        } else {
            printf("llm-collector is not running (no collector listens on %s).\n"
                   "It starts with the first `llmwrap -- COMMAND`.\n",
                   ctl->paths->ipc_socket);
        }
        return lw_ctl_flush(NAME) ? LW_CTL_EXIT_NOT_RUNNING : LW_CTL_EXIT_ERROR;
    }

    Lw__Response *resp = lw_ipc_client_status(client, STATUS_TIMEOUT_MS, &error);
    if (resp == NULL)
        return lw_ctl_error(NAME, "the collector at %s did not answer: %s",
                            ctl->paths->ipc_socket, error->message);
    if (json)
        print_json(resp->status, state_dir, ctl->paths->ledger_file);
    else
        print_human(resp->status, state_dir, ctl->paths->ledger_file);
    lw__response__free_unpacked(resp, NULL);
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}
