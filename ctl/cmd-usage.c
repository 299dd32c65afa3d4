/* cmd-usage.c - `llmctl usage`: tokens and cost summed by one key.
 *
 * --json prints an array of {key, requests, input_tokens, output_tokens,
 * cost_usd, ...} (pinned: scripts read it), one object per key and no
 * total; cost_usd is the exact sum of the known costs. */
#include "ctl.h"
#include "json.h"
#include "ledger-query.h"
#include "output.h"

#define NAME "usage"

static const char *const csv_header[] = {
    "key",           "requests",         "input_tokens",   "output_tokens",
    "cached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens",
    "cost_usd",      "unpriced_requests", "partial_requests",
};

static void print_json(const LwUsageReport *rep)
{
    g_autoptr(GString) out = g_string_new("[");
    for (guint i = 0; i < rep->rows->len; i++) {
        const LwUsageRow *r = g_ptr_array_index(rep->rows, i);
        g_string_append(out, i > 0 ? ",\n {\"key\": " : "\n {\"key\": ");
        lw_json_append_string(out, r->key, -1); /* NULL -> null */
        g_string_append_printf(
            out,
            ", \"requests\": %" G_GINT64_FORMAT ", \"input_tokens\": %" G_GINT64_FORMAT
            ", \"output_tokens\": %" G_GINT64_FORMAT ", \"cached_input_tokens\": %" G_GINT64_FORMAT
            ", \"cache_write_tokens\": %" G_GINT64_FORMAT
            ", \"cache_write_1h_tokens\": %" G_GINT64_FORMAT
            ", \"reasoning_tokens\": %" G_GINT64_FORMAT ", \"cost_usd\": ",
            r->requests, r->input_tokens, r->output_tokens, r->cached_input_tokens,
            r->cache_write_tokens, r->cache_write_1h_tokens, r->reasoning_tokens);
        lw_output_json_usd(out, r->cost_pusd);
        g_string_append_printf(out,
                               ", \"unpriced_requests\": %" G_GINT64_FORMAT
                               ", \"partial_requests\": %" G_GINT64_FORMAT "}",
                               r->unpriced, r->partial);
    }
    g_string_append(out, rep->rows->len > 0 ? "\n]\n" : "]\n");
    fputs(out->str, stdout);
}

static void print_csv(const LwUsageReport *rep)
{
    g_autoptr(GString) out = g_string_new(NULL);
    lw_output_csv_row(out, G_N_ELEMENTS(csv_header), csv_header);
    for (guint i = 0; i < (rep != NULL ? rep->rows->len : 0); i++) {
        const LwUsageRow *r = g_ptr_array_index(rep->rows, i);
        g_autofree char *cost = lw_output_usd_exact(r->cost_pusd);
        char n[8][24];
        const gint64 v[] = {r->requests,          r->input_tokens,       r->output_tokens,
                            r->cached_input_tokens, r->cache_write_tokens,
                            r->cache_write_1h_tokens, r->reasoning_tokens, 0};
        for (guint k = 0; k < 7; k++)
            g_snprintf(n[k], sizeof n[k], "%" G_GINT64_FORMAT, v[k]);
        char unpriced[24], partial[24];
        g_snprintf(unpriced, sizeof unpriced, "%" G_GINT64_FORMAT, r->unpriced);
        g_snprintf(partial, sizeof partial, "%" G_GINT64_FORMAT, r->partial);
        const char *fields[] = {r->key, n[0], n[1], n[2], n[3], n[4], n[5], n[6],
                                cost,   unpriced, partial};
        lw_output_csv_row(out, G_N_ELEMENTS(fields), fields);
    }
    fputs(out->str, stdout);
}

/* "$1.23", "?" when nothing is priced, "$1.23+?" when part is. */
static char *cost_cell(const LwUsageRow *r)
{
    if (r->unpriced > 0 && r->unpriced == r->requests)
        return g_strdup("?");
    g_autofree char *usd = lw_output_usd_human(r->cost_pusd);
    return r->unpriced > 0 ? g_strconcat(usd, "+?", NULL) : g_steal_pointer(&usd);
}

static void add_row(LwOutputTable *t, const char *key, const LwUsageRow *r)
{
    g_autofree char *req = lw_output_count(r->requests);
    g_autofree char *in = lw_output_count(r->input_tokens);
    g_autofree char *cached = lw_output_count(r->cached_input_tokens);
    g_autofree char *out = lw_output_count(r->output_tokens);
    g_autofree char *reasoning = lw_output_count(r->reasoning_tokens);
    g_autofree char *cost = cost_cell(r);
    const char *cells[] = {key, req, in, cached, out, reasoning, cost};
    lw_output_table_add(t, cells);
}

static void print_table(const LwUsageReport *rep, const char *by_name, LwUsageGroup by)
{
    if (rep == NULL || rep->rows->len == 0) {
        printf("No requests recorded in this period.\n");
        return;
    }
    static const char *const none[] = {
        [LW_USAGE_BY_MODEL] = "(no model)", [LW_USAGE_BY_PROVIDER] = "(no provider)",
        [LW_USAGE_BY_RUN] = "(no run)",     [LW_USAGE_BY_DAY] = "?",
        [LW_USAGE_BY_HOUR] = "?",           [LW_USAGE_BY_TAG] = "(no tag)",
    };
    g_autofree char *header = g_ascii_strup(by_name, -1);
    const char *headers[] = {header, "REQUESTS", "INPUT", "CACHED", "OUTPUT", "REASONING",
                             "COST"};
    const LwOutputAlign align[] = {LW_OUTPUT_LEFT,  LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT,
                                   LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT,
                                   LW_OUTPUT_RIGHT};
    g_autoptr(LwOutputTable) t = lw_output_table_new(G_N_ELEMENTS(headers), headers, align);
    for (guint i = 0; i < rep->rows->len; i++) {
        const LwUsageRow *r = g_ptr_array_index(rep->rows, i);
        add_row(t, r->key != NULL ? r->key : none[by], r);
    }
    if (rep->rows->len > 1) {
        lw_output_table_add_rule(t);
        add_row(t, "TOTAL", &rep->total);
    }
    lw_output_table_print(t, stdout);
    lw_ctl_print_unpriced(rep->total.unpriced - rep->unpriced_calls, rep->unpriced_models,
                          rep->unpriced_calls, rep->unpriced_paths);
}

int lw_cmd_usage(LwCtl *ctl, int argc, char **argv)
{
    g_autofree char *since = NULL, *until = NULL, *by_name = NULL;
    gboolean json = FALSE, csv = FALSE;
    const GOptionEntry entries[] = {
        {"since", 0, 0, G_OPTION_ARG_STRING, &since, "Only requests from T on", "T"},
        {"until", 0, 0, G_OPTION_ARG_STRING, &until, "Only requests before T", "T"},
        {"by", 0, 0, G_OPTION_ARG_STRING, &by_name,
         "Group by model (default), provider, run, day, hour or tag:KEY", "KEY"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {"csv", 0, 0, G_OPTION_ARG_NONE, &csv, "Print CSV", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        NULL, entries,
        "T is a duration back from now (30m, 2h, 7d, 4w) or a date (2026-11-21,\n"
        "2026-11-21T13:00, 2026-11-21T13:00:00+01:00), UTC unless an offset is given.\n"
        "Days and hours are UTC. Costs sum the requests with a known price.");
    if (!lw_ctl_options_parse(ctx, NAME, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(NAME, "unexpected argument '%s'", argv[1]);
    LwOutputFormat format;
    if (!lw_output_format_pick(json, csv, &format))
        return lw_ctl_usage_error(NAME, "--json and --csv exclude each other");
    LwUsageQuery q = {.by = LW_USAGE_BY_MODEL};
    if (by_name != NULL && !lw_usage_group_parse(by_name, &q.by, &q.tag_key))
        return lw_ctl_usage_error(
            NAME, "bad --by '%s': expected model, provider, run, day, hour or tag:KEY", by_name);
    if (!lw_ctl_parse_range(NAME, since, until, &q.since_ms, &q.until_ms))
        return LW_CTL_EXIT_USAGE;

    g_autoptr(GError) error = NULL;
    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger(ctl, TRUE, &error);
    if (ledger == NULL && error != NULL)
        return lw_ctl_error(NAME, "%s", error->message);
    g_autoptr(LwUsageReport) rep = NULL;
    if (ledger != NULL && (rep = lw_ledger_usage(ledger, &q, &error)) == NULL)
        return lw_ctl_error(NAME, "%s", error->message);

    switch (format) {
    case LW_OUTPUT_JSON:
        if (rep != NULL)
            print_json(rep);
        else
            fputs("[]\n", stdout);
        break;
    case LW_OUTPUT_CSV:
        print_csv(rep);
        break;
    case LW_OUTPUT_TABLE:
        print_table(rep, by_name != NULL ? by_name : "model", q.by);
        break;
    }
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}
