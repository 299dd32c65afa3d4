/* cmd-requests.c - `llmctl requests`: the recorded requests, newest first.
 *
 * --json prints an array of every matching row (no default limit) with
 * the pinned fields; --csv the same rows as RFC 4180 records. People get
 * the newest 50 unless they ask for more. Machine output is streamed as
 * rows are read, so a million rows do not sit in memory. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "json.h"
#include "ledger-query.h"
#include "output.h"

#define NAME "requests"
#define DEFAULT_TABLE_LIMIT 50
/* Machine output is written out in chunks of about this size. */
#define FLUSH_BYTES 65536

static const char *const csv_header[] = {
    "id",           "time",          "provider",           "model",
    "model_requested", "model_served", "endpoint",         "status",
    "stream",       "input_tokens",  "output_tokens",      "cached_input_tokens",
    "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens", "cost_usd",
    "cost_source",  "cache_hit",     "partial",            "run_id",
    "pid",          "latency_ms",    "ttft_ms",            "upstream_request_id",
    "refused_by",   "warning",       "unpriced_path",      "model_sent",
};

typedef struct {
    LwOutputFormat format;
    GString *out;
    guint64 rows;
    LwOutputTable *table;
    gint64 unpriced;             /* for want of a price for the model */
    GHashTable *unpriced_models; /* char* set */
    gint64 unpriced_calls;       /* calls llmwrap cannot price */
    GHashTable *unpriced_paths;  /* char* set */
    gint64 shown;                /* rows shown; one more is read to tell if there were more */
    gboolean more;               /* there were */
} Listing;

static const char *model_of(const LwLedgerRequest *r)
{
    return r->model_served != NULL ? r->model_served
           : r->model_sent != NULL ? r->model_sent
                                   : r->model_requested;
}

static void json_str_field(GString *out, const char *name, const char *v)
{
    g_string_append_printf(out, ", \"%s\": ", name);
    lw_json_append_string(out, v, -1); /* NULL -> null */
}

static void json_int_field(GString *out, const char *name, gint64 v)
{
    g_string_append_printf(out, ", \"%s\": %" G_GINT64_FORMAT, name, v);
}

static void json_bool_field(GString *out, const char *name, gboolean v)
{
    g_string_append_printf(out, ", \"%s\": %s", name, v ? "true" : "false");
}

static void append_json(GString *out, const LwRequestRecord *rec)
{
    const LwLedgerRequest *r = &rec->row;
    g_autofree char *time = lw_output_time_iso(r->time_ms);
    g_string_append_printf(out, "{\"id\": %" G_GINT64_FORMAT, rec->id);
    json_str_field(out, "time", time);
    json_int_field(out, "time_ms", r->time_ms);
    json_str_field(out, "provider", r->provider);
    json_str_field(out, "model", model_of(r));
    json_str_field(out, "model_requested", r->model_requested);
    json_str_field(out, "model_sent", r->model_sent);
    json_str_field(out, "model_served", r->model_served);
    json_str_field(out, "endpoint", r->endpoint);
    json_str_field(out, "unpriced_path", r->unpriced_path);
    json_str_field(out, "host", r->host);
    json_int_field(out, "status", r->status);
    json_bool_field(out, "stream", r->stream);
    json_int_field(out, "input_tokens", r->input_tokens);
    json_int_field(out, "output_tokens", r->output_tokens);
    json_int_field(out, "cached_input_tokens", r->cached_input_tokens);
    json_int_field(out, "cache_write_tokens", r->cache_write_tokens);
    json_int_field(out, "cache_write_1h_tokens", r->cache_write_1h_tokens);
    json_int_field(out, "reasoning_tokens", r->reasoning_tokens);
    g_string_append(out, ", \"cost_usd\": ");
    if (r->cost.known)
        lw_output_json_usd(out, r->cost.pusd);
    else
        g_string_append(out, "null");
    json_str_field(out, "cost_source", r->cost_source);
    json_bool_field(out, "cache_hit", r->cache_hit);
    json_bool_field(out, "partial", r->partial);
    if (r->run_id != 0)
        json_int_field(out, "run_id", (gint64)r->run_id);
    else
        g_string_append(out, ", \"run_id\": null");
    json_int_field(out, "pid", r->pid);
    json_str_field(out, "exe", r->exe);
    /* Both are valid JSON (the ledger normalised them) or NULL. */
    g_string_append_printf(out, ", \"tags\": %s", r->tags_json != NULL ? r->tags_json : "null");
    json_int_field(out, "latency_ms", r->latency_ms);
    if (r->ttft_ms >= 0)
        json_int_field(out, "ttft_ms", r->ttft_ms);
    else
        g_string_append(out, ", \"ttft_ms\": null");
    json_int_field(out, "bytes_in", r->bytes_in);
    json_int_field(out, "bytes_out", r->bytes_out);
    json_str_field(out, "upstream_request_id", r->upstream_request_id);
    json_str_field(out, "credential", r->credential);
    json_str_field(out, "refused_by", r->refused_by);
    json_str_field(out, "warning", r->warning);
    g_string_append_printf(out, ", \"usage\": %s}", r->raw_usage != NULL ? r->raw_usage : "null");
}

static void append_csv(GString *out, const LwRequestRecord *rec)
{
    const LwLedgerRequest *r = &rec->row;
    char id[24], status[16], in[24], outt[24], cached[24], cw[24], cw1h[24], reas[24], run[24],
        pid[16], lat[24], ttft[24];
    g_snprintf(id, sizeof id, "%" G_GINT64_FORMAT, rec->id);
    g_snprintf(status, sizeof status, "%d", r->status);
    g_snprintf(in, sizeof in, "%" G_GINT64_FORMAT, r->input_tokens);
    g_snprintf(outt, sizeof outt, "%" G_GINT64_FORMAT, r->output_tokens);
    g_snprintf(cached, sizeof cached, "%" G_GINT64_FORMAT, r->cached_input_tokens);
    g_snprintf(cw, sizeof cw, "%" G_GINT64_FORMAT, r->cache_write_tokens);
    g_snprintf(cw1h, sizeof cw1h, "%" G_GINT64_FORMAT, r->cache_write_1h_tokens);
    g_snprintf(reas, sizeof reas, "%" G_GINT64_FORMAT, r->reasoning_tokens);
    g_snprintf(run, sizeof run, "%" G_GUINT64_FORMAT, r->run_id);
    g_snprintf(pid, sizeof pid, "%u", r->pid);
    g_snprintf(lat, sizeof lat, "%" G_GINT64_FORMAT, r->latency_ms);
    g_snprintf(ttft, sizeof ttft, "%" G_GINT64_FORMAT, r->ttft_ms);
    g_autofree char *time = lw_output_time_iso(r->time_ms);
    g_autofree char *cost = r->cost.known ? lw_output_usd_exact(r->cost.pusd) : NULL;
    const char *fields[] = {
        id,
        time,
        r->provider,
        model_of(r),
        r->model_requested,
        r->model_served,
        r->endpoint,
        status,
        r->stream ? "true" : "false",
        in,
        outt,
        cached,
        cw,
        cw1h,
        reas,
        cost,
        r->cost_source,
        r->cache_hit ? "true" : "false",
        r->partial ? "true" : "false",
        r->run_id != 0 ? run : NULL,
        pid,
        lat,
        r->ttft_ms >= 0 ? ttft : NULL,
        r->upstream_request_id,
        r->refused_by,
        r->warning,
        r->unpriced_path,
        r->model_sent,
    };
    G_STATIC_ASSERT(G_N_ELEMENTS(fields) == G_N_ELEMENTS(csv_header));
    lw_output_csv_row(out, G_N_ELEMENTS(fields), fields);
}

static void add_table_row(Listing *l, const LwRequestRecord *rec)
{
    const LwLedgerRequest *r = &rec->row;
    g_autofree char *time = lw_output_time_human(r->time_ms);
    g_autofree char *run = r->run_id != 0 ? g_strdup_printf("%" G_GUINT64_FORMAT, r->run_id)
                                          : g_strdup("-");
    g_autofree char *status = g_strdup_printf("%d", r->status);
    g_autofree char *in = lw_output_count(r->input_tokens);
    g_autofree char *cached = lw_output_count(r->cached_input_tokens);
    g_autofree char *out = lw_output_count(r->output_tokens);
    g_autofree char *cost = r->cost.known ? lw_output_usd_human(r->cost.pusd) : g_strdup("?");
    g_autofree char *latency = lw_output_duration(r->latency_ms);
    g_autoptr(GString) note = g_string_new(NULL);
    if (r->stream)
        g_string_append(note, "stream ");
    if (r->partial)
        g_string_append(note, "partial ");
    if (r->cache_hit)
        g_string_append(note, "cached ");
    if (r->model_sent != NULL)
        g_string_append_printf(note, "downgraded from %s ",
                               r->model_requested != NULL ? r->model_requested : "?");
    if (r->refused_by != NULL)
        g_string_append_printf(note, "refused by %s ", r->refused_by);
    if (r->warning != NULL)
        g_string_append_printf(note, "(%s)", r->warning);
    const char *cells[] = {time,   run,    r->provider != NULL ? r->provider : "",
                           model_of(r), status, in, cached, out, cost, latency, g_strstrip(note->str)};
    lw_output_table_add(l->table, cells);
    if (!r->cost.known && g_strcmp0(r->endpoint, LW_LEDGER_ENDPOINT_UNPRICED) == 0) {
        l->unpriced_calls++;
        if (r->unpriced_path != NULL)
            g_hash_table_add(l->unpriced_paths, g_strdup(r->unpriced_path));
    } else if (!r->cost.known) {
        l->unpriced++;
        const char *m = model_of(r);
        g_hash_table_add(l->unpriced_models, g_strdup(m != NULL ? m : ""));
    }
}

static gboolean on_request(const LwRequestRecord *rec, gpointer data)
{
    Listing *l = data;
    if (l->shown >= 0 && (gint64)l->rows == l->shown) {
        l->more = TRUE;
        return FALSE;
    }
    switch (l->format) {
    case LW_OUTPUT_JSON:
        g_string_append(l->out, l->rows == 0 ? "[\n " : ",\n ");
        append_json(l->out, rec);
        break;
    case LW_OUTPUT_CSV:
        append_csv(l->out, rec);
        break;
    case LW_OUTPUT_TABLE:
        add_table_row(l, rec);
        break;
    }
    l->rows++;
    if (l->out->len >= FLUSH_BYTES) {
        fwrite(l->out->str, 1, l->out->len, stdout);
        g_string_truncate(l->out, 0);
    }
    return TRUE;
}

/* "200", "4xx", "400-499". */
static gboolean parse_status(const char *s, int *ret_min, int *ret_max)
{
    guint64 a = 0, b = 0;
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && strcmp(s + 1, "xx") == 0) {
        *ret_min = (s[0] - '0') * 100;
        *ret_max = *ret_min + 99;
        return TRUE;
    }
    const char *dash = strchr(s, '-');
    if (dash == NULL) {
        if (!g_ascii_string_to_unsigned(s, 10, 100, 599, &a, NULL))
            return FALSE;
        *ret_min = *ret_max = (int)a;
        return TRUE;
    }
    g_autofree char *lo = g_strndup(s, dash - s);
    if (!g_ascii_string_to_unsigned(lo, 10, 100, 599, &a, NULL) ||
        !g_ascii_string_to_unsigned(dash + 1, 10, 100, 599, &b, NULL) || a > b)
        return FALSE;
    *ret_min = (int)a;
    *ret_max = (int)b;
    return TRUE;
}

static gint compare_str(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

/* A set's strings, sorted (borrowed from the set). */
static GPtrArray *sorted_keys(GHashTable *set)
{
    GPtrArray *keys = g_ptr_array_new();
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_ptr_array_add(keys, key);
    g_ptr_array_sort(keys, compare_str);
    return keys;
}

int lw_cmd_requests(LwCtl *ctl, int argc, char **argv)
{
    g_autofree char *since = NULL, *until = NULL, *run = NULL, *provider = NULL,
                    *model = NULL, *tag = NULL, *status = NULL;
    gboolean partial = FALSE, json = FALSE, csv = FALSE;
    gint64 limit = G_MININT64; /* not given */
    const GOptionEntry entries[] = {
        {"since", 0, 0, G_OPTION_ARG_STRING, &since, "Only requests from T on", "T"},
        {"until", 0, 0, G_OPTION_ARG_STRING, &until, "Only requests before T", "T"},
        {"run", 0, 0, G_OPTION_ARG_STRING, &run,
         "Only this llmwrap run's requests ('none': outside llmwrap)", "ID"},
        {"provider", 0, 0, G_OPTION_ARG_STRING, &provider, "Only this provider", "NAME"},
        {"model", 0, 0, G_OPTION_ARG_STRING, &model, "Only this model (served, sent or requested)",
         "MODEL"},
        {"tag", 0, 0, G_OPTION_ARG_STRING, &tag, "Only runs tagged KEY=VALUE (or having KEY)",
         "KEY=VALUE"},
        {"status", 0, 0, G_OPTION_ARG_STRING, &status, "Only this HTTP status (200, 4xx, 400-499)",
         "S"},
        {"partial", 0, 0, G_OPTION_ARG_NONE, &partial, "Only requests cut short", NULL},
        {"limit", 0, 0, G_OPTION_ARG_INT64, &limit,
         "At most N rows (default: 50 in tables, all with --json/--csv)", "N"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {"csv", 0, 0, G_OPTION_ARG_NONE, &csv, "Print CSV", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        NULL, entries,
        "T is a duration back from now (30m, 2h, 7d, 4w) or a date (2026-11-21,\n"
        "2026-11-21T13:00, 2026-11-21T13:00:00+01:00), UTC unless an offset is given.");
    if (!lw_ctl_options_parse(ctx, NAME, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(NAME, "unexpected argument '%s'", argv[1]);
    LwOutputFormat format;
    if (!lw_output_format_pick(json, csv, &format))
        return lw_ctl_usage_error(NAME, "--json and --csv exclude each other");

    LwRequestFilter f;
    lw_request_filter_init(&f);
    if (!lw_ctl_parse_range(NAME, since, until, &f.since_ms, &f.until_ms))
        return LW_CTL_EXIT_USAGE;
    if (run != NULL) {
        guint64 id = 0;
        if (g_strcmp0(run, "none") == 0)
            f.run_id = 0;
        else if (g_ascii_string_to_unsigned(run, 10, 1, G_MAXINT64, &id, NULL))
            f.run_id = (gint64)id;
        else
            return lw_ctl_usage_error(NAME, "bad --run '%s': expected a run id or 'none'", run);
    }
    f.provider = provider;
    f.model = model;
    if (tag != NULL) {
        char *eq = strchr(tag, '=');
        if (eq != NULL) {
            *eq = '\0';
            f.tag_value = eq + 1;
        }
        f.tag_key = tag;
        if (tag[0] == '\0' || strchr(tag, '"') != NULL) {
            if (eq != NULL)
                *eq = '=';
            return lw_ctl_usage_error(NAME, "bad --tag '%s': expected KEY=VALUE", tag);
        }
    }
    if (status != NULL && !parse_status(status, &f.status_min, &f.status_max))
        return lw_ctl_usage_error(NAME, "bad --status '%s': expected 200, 4xx or 400-499",
                                  status);
    if (partial)
        f.partial = 1;
    if (limit != G_MININT64 && limit < 0)
        return lw_ctl_usage_error(NAME, "bad --limit '%" G_GINT64_FORMAT "': must be 0 or more",
                                  limit);
    f.limit = limit >= 0 ? limit : format == LW_OUTPUT_TABLE ? DEFAULT_TABLE_LIMIT : -1;
    gint64 shown = f.limit;
    /* The default limit reads one row more, to say whether it hid any. */
    if (limit == G_MININT64 && f.limit >= 0)
        f.limit++;

    g_autoptr(GError) error = NULL;
    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger(ctl, TRUE, &error);
    if (ledger == NULL && error != NULL)
        return lw_ctl_error(NAME, "%s", error->message);

    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GHashTable) models = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GHashTable) paths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    Listing l = {.format = format, .out = out, .unpriced_models = models,
                 .unpriced_paths = paths, .shown = shown};
    if (format == LW_OUTPUT_CSV)
        lw_output_csv_row(out, G_N_ELEMENTS(csv_header), csv_header);
    if (format == LW_OUTPUT_TABLE) {
        const char *headers[] = {"TIME (UTC)", "RUN", "PROVIDER", "MODEL", "STATUS", "INPUT",
                                 "CACHED", "OUTPUT", "COST", "LATENCY", "NOTE"};
        const LwOutputAlign align[] = {LW_OUTPUT_LEFT,  LW_OUTPUT_RIGHT, LW_OUTPUT_LEFT,
                                       LW_OUTPUT_LEFT,  LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT,
                                       LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT,
                                       LW_OUTPUT_RIGHT, LW_OUTPUT_LEFT};
        l.table = lw_output_table_new(G_N_ELEMENTS(headers), headers, align);
    }
    gboolean ok = ledger == NULL || lw_ledger_foreach_request(ledger, &f, on_request, &l, &error);

    switch (format) {
    case LW_OUTPUT_JSON:
        g_string_append(out, l.rows > 0 ? "\n]\n" : "[]\n");
        break;
    case LW_OUTPUT_CSV:
        break;
    case LW_OUTPUT_TABLE:
        if (l.rows == 0) {
            printf("No requests match.\n");
        } else {
            lw_output_table_print(l.table, stdout);
            if (l.more)
                printf("\n(the newest %" G_GINT64_FORMAT "; --limit N shows more)\n", shown);
            g_autoptr(GPtrArray) names = sorted_keys(models);
            g_autoptr(GPtrArray) called = sorted_keys(paths);
            lw_ctl_print_unpriced(l.unpriced, names, l.unpriced_calls, called);
        }
        lw_output_table_free(l.table);
        break;
    }
    if (!ok) {
        /* Whatever was streamed stays incomplete: the exit status says so. */
        fwrite(out->str, 1, out->len, stdout);
        return lw_ctl_error(NAME, "%s", error->message);
    }
    fwrite(out->str, 1, out->len, stdout);
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}
