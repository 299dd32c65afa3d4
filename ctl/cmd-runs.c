/* cmd-runs.c - `llmctl runs`: llmwrap runs, newest first, with what each
 * run's own requests cost. */
#include <string.h>

#include "ctl.h"
#include "json.h"
#include "ledger-query.h"
#include "output.h"

#define NAME "runs"
#define DEFAULT_TABLE_LIMIT 20

static const char *const csv_header[] = {
    "id",       "parent_id", "started", "ended", "duration_ms", "exit_status", "requests",
    "cost_usd", "unpriced_requests", "pid", "cwd",   "argv",
};

static void append_json(GString *out, const LwRunRecord *r)
{
    g_autofree char *started = lw_output_time_iso(r->started_ms);
    g_string_append_printf(out, "{\"id\": %" G_GUINT64_FORMAT ", \"parent_id\": ", r->id);
    if (r->parent_id != 0)
        g_string_append_printf(out, "%" G_GUINT64_FORMAT, r->parent_id);
    else
        g_string_append(out, "null");
    g_string_append(out, ", \"started\": ");
    lw_json_append_string(out, started, -1);
    g_string_append(out, ", \"ended\": ");
    if (r->ended_ms >= 0) {
        g_autofree char *ended = lw_output_time_iso(r->ended_ms);
        lw_json_append_string(out, ended, -1);
        g_string_append_printf(out, ", \"duration_ms\": %" G_GINT64_FORMAT,
                               r->ended_ms - r->started_ms);
    } else {
        g_string_append(out, "null, \"duration_ms\": null");
    }
    g_string_append(out, ", \"exit_status\": ");
    if (r->has_exit_status)
        g_string_append_printf(out, "%d", r->exit_status);
    else
        g_string_append(out, "null");
    g_string_append(out, ", \"argv\": [");
    for (guint i = 0; r->argv[i] != NULL; i++) {
        if (i > 0)
            g_string_append(out, ", ");
        lw_json_append_string(out, r->argv[i], -1);
    }
    g_string_append(out, "], \"cwd\": ");
    lw_json_append_string(out, r->cwd, -1);
    g_string_append_printf(out, ", \"pid\": %u, \"tags\": %s, \"budget_usd\": ", r->pid,
                           r->tags_json != NULL ? r->tags_json : "null");
    if (r->budget_pusd >= 0)
        lw_output_json_usd(out, r->budget_pusd);
    else
        g_string_append(out, "null");
    g_string_append_printf(out, ", \"requests\": %" G_GINT64_FORMAT ", \"cost_usd\": ",
                           r->requests);
    lw_output_json_usd(out, r->cost_pusd);
    g_string_append_printf(out, ", \"unpriced_requests\": %" G_GINT64_FORMAT "}", r->unpriced);
}

static char *command_line(char **argv)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; argv[i] != NULL; i++) {
        g_autofree char *q = g_shell_quote(argv[i]);
        if (i > 0)
            g_string_append_c(s, ' ');
        /* Plain words read better unquoted. */
        gboolean plain = argv[i][0] != '\0' && strpbrk(argv[i], " \t\n'\"\\$`*?[]{}();&|<>~#!") == NULL;
        g_string_append(s, plain ? argv[i] : q);
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static void append_csv(GString *out, const LwRunRecord *r)
{
    char id[24], parent[24], duration[24], exit_status[16], requests[24], unpriced[24], pid[16];
    g_snprintf(id, sizeof id, "%" G_GUINT64_FORMAT, r->id);
    g_snprintf(parent, sizeof parent, "%" G_GUINT64_FORMAT, r->parent_id);
    g_snprintf(duration, sizeof duration, "%" G_GINT64_FORMAT, r->ended_ms - r->started_ms);
    g_snprintf(exit_status, sizeof exit_status, "%d", r->exit_status);
    g_snprintf(requests, sizeof requests, "%" G_GINT64_FORMAT, r->requests);
    g_snprintf(unpriced, sizeof unpriced, "%" G_GINT64_FORMAT, r->unpriced);
    g_snprintf(pid, sizeof pid, "%u", r->pid);
    g_autofree char *started = lw_output_time_iso(r->started_ms);
    g_autofree char *ended = r->ended_ms >= 0 ? lw_output_time_iso(r->ended_ms) : NULL;
    g_autofree char *cost = lw_output_usd_exact(r->cost_pusd);
    g_autofree char *cmd = command_line(r->argv);
    const char *fields[] = {
        id,   r->parent_id != 0 ? parent : NULL, started, ended,
        r->ended_ms >= 0 ? duration : NULL, r->has_exit_status ? exit_status : NULL,
        requests, cost, unpriced, pid, r->cwd, cmd,
    };
    G_STATIC_ASSERT(G_N_ELEMENTS(fields) == G_N_ELEMENTS(csv_header));
    lw_output_csv_row(out, G_N_ELEMENTS(fields), fields);
}

/* shown: how many rows the limit lets through (-1: all); a default-limited
 * listing read one row more, to say whether the limit hid any. */
static void print_table(GPtrArray *runs, gint64 shown)
{
    if (shown == 0) {
        printf("No runs shown (--limit 0).\n");
        return;
    }
    if (runs == NULL || runs->len == 0) {
        printf("No runs recorded yet.\n");
        return;
    }
    gboolean more = shown > 0 && runs->len > (guint64)shown;
    if (more)
        g_ptr_array_set_size(runs, (gint)shown);
    const char *headers[] = {"RUN", "PARENT", "STARTED (UTC)", "DURATION", "EXIT",
                             "REQUESTS", "COST", "COMMAND"};
    const LwOutputAlign align[] = {LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT, LW_OUTPUT_LEFT,
                                   LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT,
                                   LW_OUTPUT_RIGHT, LW_OUTPUT_LEFT};
    g_autoptr(LwOutputTable) t = lw_output_table_new(G_N_ELEMENTS(headers), headers, align);
    gint64 unpriced = 0;
    for (guint i = 0; i < runs->len; i++) {
        const LwRunRecord *r = g_ptr_array_index(runs, i);
        g_autofree char *id = g_strdup_printf("%" G_GUINT64_FORMAT, r->id);
        g_autofree char *parent = r->parent_id != 0
                                      ? g_strdup_printf("%" G_GUINT64_FORMAT, r->parent_id)
                                      : g_strdup("-");
        g_autofree char *started = lw_output_time_human(r->started_ms);
        g_autofree char *duration =
            r->ended_ms >= 0 ? lw_output_duration(r->ended_ms - r->started_ms) : g_strdup("running");
        g_autofree char *exit_status =
            r->has_exit_status ? g_strdup_printf("%d", r->exit_status) : g_strdup("-");
        g_autofree char *requests = lw_output_count(r->requests);
        g_autofree char *usd = lw_output_usd_human(r->cost_pusd);
        g_autofree char *cost = r->unpriced == 0              ? g_strdup(usd)
                                : r->unpriced == r->requests ? g_strdup("?")
                                                             : g_strconcat(usd, "+?", NULL);
        g_autofree char *cmd = command_line(r->argv);
        const char *cells[] = {id, parent, started, duration, exit_status, requests, cost, cmd};
        lw_output_table_add(t, cells);
        unpriced += r->unpriced;
    }
    lw_output_table_print(t, stdout);
    if (more)
        printf("\n(the newest %" G_GINT64_FORMAT "; --limit N shows more)\n", shown);
    if (unpriced > 0)
        printf("\n%" G_GINT64_FORMAT " of these requests have no price — see llmctl requests "
               "and llmctl pricing\n",
               unpriced);
}

int lw_cmd_runs(LwCtl *ctl, int argc, char **argv)
{
    gboolean json = FALSE, csv = FALSE;
    gint64 limit = G_MININT64; /* not given */
    const GOptionEntry entries[] = {
        {"limit", 0, 0, G_OPTION_ARG_INT64, &limit,
         "At most N runs (default: 20 in tables, all with --json/--csv)", "N"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {"csv", 0, 0, G_OPTION_ARG_NONE, &csv, "Print CSV", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        NULL, entries, "Costs are of each run's own requests, not its nested runs'.");
    if (!lw_ctl_options_parse(ctx, NAME, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(NAME, "unexpected argument '%s'", argv[1]);
    LwOutputFormat format;
    if (!lw_output_format_pick(json, csv, &format))
        return lw_ctl_usage_error(NAME, "--json and --csv exclude each other");
    if (limit != G_MININT64 && limit < 0)
        return lw_ctl_usage_error(NAME, "bad --limit '%" G_GINT64_FORMAT "': must be 0 or more",
                                  limit);
    gint64 shown = limit;
    if (limit == G_MININT64) {
        shown = format == LW_OUTPUT_TABLE ? DEFAULT_TABLE_LIMIT : -1;
        /* The default limit reads one row more, to say whether it hid any. */
        limit = shown >= 0 ? shown + 1 : -1;
    }

    g_autoptr(GError) error = NULL;
    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger(ctl, TRUE, &error);
    if (ledger == NULL && error != NULL)
        return lw_ctl_error(NAME, "%s", error->message);
    g_autoptr(GPtrArray) runs = NULL;
    if (ledger != NULL && (runs = lw_ledger_list_runs(ledger, limit, &error)) == NULL)
        return lw_ctl_error(NAME, "%s", error->message);

    g_autoptr(GString) out = g_string_new(NULL);
    switch (format) {
    case LW_OUTPUT_JSON:
        g_string_append_c(out, '[');
        for (guint i = 0; runs != NULL && i < runs->len; i++) {
            g_string_append(out, i > 0 ? ",\n " : "\n ");
            append_json(out, g_ptr_array_index(runs, i));
        }
        g_string_append(out, runs != NULL && runs->len > 0 ? "\n]\n" : "]\n");
        break;
    case LW_OUTPUT_CSV:
        lw_output_csv_row(out, G_N_ELEMENTS(csv_header), csv_header);
        for (guint i = 0; runs != NULL && i < runs->len; i++)
            append_csv(out, g_ptr_array_index(runs, i));
        break;
    case LW_OUTPUT_TABLE:
        print_table(runs, shown);
        break;
    }
    fwrite(out->str, 1, out->len, stdout);
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}
