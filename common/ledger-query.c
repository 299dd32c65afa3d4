/* ledger-query.c - usage sums and listings over the ledger. */
#include "ledger-query.h"

#include <string.h>

#include "ledger-private.h"

/* Times outside ±2^50 ms (35,000 years) are clamped, so hour arithmetic
 * never overflows. */
#define TIME_LIMIT (G_GINT64_CONSTANT(1) << 50)

static const char *column_str(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static gboolean column_is_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL;
}

static gint64 clamp_time(gint64 t)
{
    return CLAMP(t, -TIME_LIMIT, TIME_LIMIT);
}

/* "$."KEY"" for json_extract; NULL (with error) for a key a path cannot
 * quote. */
static char *tag_path(const char *key, GError **error)
{
    if (key == NULL || key[0] == '\0' || strchr(key, '"') != NULL) {
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_INVALID,
                    "bad tag name '%s' (it must be non-empty, without '\"')",
                    key != NULL ? key : "");
        return NULL;
    }
    return g_strdup_printf("$.\"%s\"", key);
}

#define TAG_VALUE_SQL(column) "CASE WHEN json_valid(" column ") THEN json_extract(" column ", :tag) END"

/* ---- usage ---- */

gboolean lw_usage_group_parse(const char *s, LwUsageGroup *ret_by, const char **ret_tag_key)
{
    static const struct {
        const char *name;
        LwUsageGroup by;
    } names[] = {
        {"model", LW_USAGE_BY_MODEL}, {"provider", LW_USAGE_BY_PROVIDER},
        {"run", LW_USAGE_BY_RUN},     {"day", LW_USAGE_BY_DAY},
        {"hour", LW_USAGE_BY_HOUR},
    };
    if (s == NULL)
        return FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *ret_by = names[i].by;
            *ret_tag_key = NULL;
            return TRUE;
        }
    }
    if (g_str_has_prefix(s, "tag:") && s[4] != '\0' && strchr(s + 4, '"') == NULL) {
        *ret_by = LW_USAGE_BY_TAG;
        *ret_tag_key = s + 4;
        return TRUE;
    }
    return FALSE;
}

static void usage_row_free(gpointer p)
{
    LwUsageRow *r = p;
    g_free(r->key);
    g_free(r);
}

void lw_usage_report_free(LwUsageReport *report)
{
    if (report == NULL)
        return;
    g_clear_pointer(&report->rows, g_ptr_array_unref);
    g_clear_pointer(&report->unpriced_models, g_ptr_array_unref);
    g_clear_pointer(&report->unpriced_paths, g_ptr_array_unref);
    g_free(report);
}

/* Which hours come from the rollups and which rows from the table: the
 * whole hours inside [since, until) from the rollups, the partial hours at
 * either edge from the rows. */
typedef struct {
    gint64 hour_lo, hour_hi; /* rollup hours [lo, hi) */
    gint64 raw[2][2];        /* row time ranges [a, b) */
} UsagePlan;

static void plan_usage(gint64 since, gint64 until, UsagePlan *p)
{
    const gint64 H = LW_LEDGER_HOUR_MS;
    gboolean open_lo = since == LW_LEDGER_NO_SINCE, open_hi = until == LW_LEDGER_NO_UNTIL;
    since = open_lo ? -TIME_LIMIT : clamp_time(since);
    until = open_hi ? TIME_LIMIT : clamp_time(until);
    gint64 lo = -lw_ledger_floor_div(-since, H); /* ceil */
    gint64 hi = lw_ledger_floor_div(until, H);
    memset(p, 0, sizeof *p);
    if (lo < hi) {
        p->hour_lo = open_lo ? G_MININT64 : lo;
        p->hour_hi = open_hi ? G_MAXINT64 : hi;
        if (!open_lo) {
            p->raw[0][0] = since;
            p->raw[0][1] = lo * H;
        }
        if (!open_hi) {
            p->raw[1][0] = hi * H;
            p->raw[1][1] = until;
        }
    } else {
        p->raw[0][0] = open_lo ? G_MININT64 : since;
        p->raw[0][1] = open_hi ? G_MAXINT64 : until;
    }
}

static void bind_plan(sqlite3_stmt *st, const UsagePlan *p)
{
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":hlo"), p->hour_lo);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":hhi"), p->hour_hi);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":a0"), p->raw[0][0]);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":b0"), p->raw[0][1]);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":a1"), p->raw[1][0]);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":b1"), p->raw[1][1]);
}

typedef struct {
    const char *dim;        /* the rollup dimension that has this key */
    const char *rollup_key; /* over the rollup's columns */
    const char *row_key;    /* over a request row's columns */
    gboolean numeric;       /* the key is an integer, formatted in C */
} GroupSql;

static const GroupSql group_sql[] = {
    [LW_USAGE_BY_MODEL] = {LW_LEDGER_DIM_MODEL, "NULLIF(k2, '')",
                           "NULLIF(" LW_LEDGER_MODEL_SQL ", '')", FALSE},
    [LW_USAGE_BY_PROVIDER] = {LW_LEDGER_DIM_MODEL, "NULLIF(k1, '')", "NULLIF(provider, '')",
                              FALSE},
    [LW_USAGE_BY_RUN] = {LW_LEDGER_DIM_RUN, "NULLIF(k1, 0)", "run_id", TRUE},
    [LW_USAGE_BY_DAY] = {LW_LEDGER_DIM_MODEL, "(hour / 24 - (hour % 24 < 0))",
                         "(time_ms / 86400000 - (time_ms % 86400000 < 0))", TRUE},
    [LW_USAGE_BY_HOUR] = {LW_LEDGER_DIM_MODEL, "hour",
                          "(time_ms / 3600000 - (time_ms % 3600000 < 0))", TRUE},
    [LW_USAGE_BY_TAG] = {LW_LEDGER_DIM_TAGS, TAG_VALUE_SQL("k1"), TAG_VALUE_SQL("tags"), FALSE},
};

#define ROLLUP_SUMS                                                                               \
    "requests, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, "            \
    "cache_write_1h_tokens, reasoning_tokens, cost_pusd, unpriced, partial"
#define ROW_SUMS                                                                                  \
    "1, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, "                   \
    "cache_write_1h_tokens, reasoning_tokens, COALESCE(cost_pusd, 0), cost_pusd IS NULL, partial"

typedef struct {
    LwUsageRow row;
    gboolean has_num;
    gint64 num;
} SortableRow;

static char *format_group_key(LwUsageGroup by, gint64 v)
{
    if (by == LW_USAGE_BY_RUN)
        return g_strdup_printf("%" G_GINT64_FORMAT, v);
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(
        by == LW_USAGE_BY_DAY ? v * 86400 : v * 3600);
    if (t == NULL)
        return g_strdup_printf("%" G_GINT64_FORMAT, v);
    return g_date_time_format(t, by == LW_USAGE_BY_DAY ? "%Y-%m-%d" : "%Y-%m-%dT%H:00Z");
}

static gint compare_usage(gconstpointer a, gconstpointer b, gpointer by_p)
{
    const SortableRow *x = *(SortableRow *const *)a, *y = *(SortableRow *const *)b;
    LwUsageGroup by = (LwUsageGroup)GPOINTER_TO_INT(by_p);
    if (group_sql[by].numeric) {
        /* Rows without a key (no run) go last. */
        if (x->has_num != y->has_num)
            return x->has_num ? -1 : 1;
        return x->num < y->num ? -1 : x->num > y->num;
    }
    if (x->row.cost_pusd != y->row.cost_pusd)
        return x->row.cost_pusd > y->row.cost_pusd ? -1 : 1;
    if (x->row.requests != y->row.requests)
        return x->row.requests > y->row.requests ? -1 : 1;
    if ((x->row.key == NULL) != (y->row.key == NULL))
        return x->row.key == NULL ? 1 : -1;
    return g_strcmp0(x->row.key, y->row.key);
}

static gint compare_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The calls llmwrap cannot price in [since, until), read from their rows
 * (the rollups do not tell them apart): counted by model into `models`
 * (negated: they are taken off the unpriced rows of their model), their
 * paths into `paths`. Few rows, by their own index. */
static gboolean collect_unpriced_calls(LwLedger *ledger, gint64 since, gint64 until,
                                       GHashTable *models, GHashTable *paths,
                                       gint64 *ret_calls, GError **error)
{
    static const char sql[] =
        "SELECT " LW_LEDGER_MODEL_SQL ", unpriced_path, COUNT(*) FROM requests "
        "INDEXED BY requests_unpriced_calls "
        "WHERE endpoint = '" LW_LEDGER_ENDPOINT_UNPRICED "' AND cost_pusd IS NULL "
        "AND time_ms >= ?1 AND time_ms < ?2 GROUP BY 1, 2";
    sqlite3_stmt *st = lw_ledger_prepare(ledger, sql, error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, until);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *model = column_str(st, 0), *path = column_str(st, 1);
        gint64 n = sqlite3_column_int64(st, 2);
        gint64 *count = g_hash_table_lookup(models, model);
        if (count == NULL) {
            count = g_new0(gint64, 1);
            g_hash_table_insert(models, g_strdup(model), count);
        }
        *count -= n;
        *ret_calls += n;
        if (path != NULL)
            g_hash_table_add(paths, g_strdup(path));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "listing unpriced calls");
    return TRUE;
}

/* Copies of a string-keyed table's keys into `out`, sorted. */
static void add_sorted_keys(GHashTable *table, GPtrArray *out)
{
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, table);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_ptr_array_add(out, g_strdup(key));
    g_ptr_array_sort(out, compare_str);
}

/* Why the unpriced rows in the range have no cost: the models without a
 * price, and the calls llmwrap cannot price (report->unpriced_*). */
static gboolean collect_unpriced(LwLedger *ledger, const LwUsageQuery *q,
                                 const UsagePlan *plan, LwUsageReport *report, GError **error)
{
    static const char sql[] =
        "SELECT k2, unpriced FROM usage_hourly WHERE hour >= :hlo AND hour < :hhi "
        "AND dim = " LW_LEDGER_DIM_MODEL " AND unpriced > 0 "
        "UNION ALL SELECT " LW_LEDGER_MODEL_SQL ", 1 FROM requests WHERE cost_pusd IS NULL "
        "AND time_ms >= :a0 AND time_ms < :b0 "
        "UNION ALL SELECT " LW_LEDGER_MODEL_SQL ", 1 FROM requests WHERE cost_pusd IS NULL "
        "AND time_ms >= :a1 AND time_ms < :b1";
    /* model -> its unpriced rows that are not calls */
    g_autoptr(GHashTable) models = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GHashTable) paths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (!collect_unpriced_calls(ledger, q->since_ms, q->until_ms, models, paths,
                                &report->unpriced_calls, error))
        return FALSE;
    sqlite3_stmt *st = lw_ledger_prepare(ledger, sql, error);
    if (st == NULL)
        return FALSE;
    bind_plan(st, plan);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = column_str(st, 0);
        m = m != NULL ? m : "";
        gint64 *count = g_hash_table_lookup(models, m);
        if (count == NULL) {
            count = g_new0(gint64, 1);
            g_hash_table_insert(models, g_strdup(m), count);
        }
        *count += sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "listing unpriced models");
    GHashTableIter it;
    gpointer count;
    g_hash_table_iter_init(&it, models);
    while (g_hash_table_iter_next(&it, NULL, &count)) {
        if (*(gint64 *)count <= 0)
            g_hash_table_iter_remove(&it);
    }
    add_sorted_keys(models, report->unpriced_models);
    add_sorted_keys(paths, report->unpriced_paths);
    return TRUE;
}

LwUsageReport *lw_ledger_usage(LwLedger *ledger, const LwUsageQuery *q, GError **error)
{
    g_return_val_if_fail(ledger != NULL && q != NULL, NULL);
    g_return_val_if_fail((guint)q->by < G_N_ELEMENTS(group_sql), NULL);
    g_autofree char *path = NULL;
    if (q->by == LW_USAGE_BY_TAG && (path = tag_path(q->tag_key, error)) == NULL)
        return NULL;

    /* Rows go to C to be summed: SQLite would sort them by key first
     * (GROUP BY), which costs more than the whole scan. */
    const GroupSql *g = &group_sql[q->by];
    g_autofree char *sql = g_strdup_printf(
        "SELECT %s, " ROLLUP_SUMS " FROM usage_hourly "
        "WHERE hour >= :hlo AND hour < :hhi AND dim = %s "
        "UNION ALL SELECT %s, " ROW_SUMS " FROM requests WHERE time_ms >= :a0 AND time_ms < :b0 "
        "UNION ALL SELECT %s, " ROW_SUMS " FROM requests WHERE time_ms >= :a1 AND time_ms < :b1",
        g->rollup_key, g->dim, g->row_key, g->row_key);
    sqlite3_stmt *st = lw_ledger_prepare(ledger, sql, error);
    if (st == NULL)
        return NULL;
    UsagePlan plan;
    plan_usage(q->since_ms, q->until_ms, &plan);
    bind_plan(st, &plan);
    if (path != NULL)
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":tag"), path, -1, SQLITE_STATIC);

    g_autoptr(LwUsageReport) report = g_new0(LwUsageReport, 1);
    /* SortableRow starts with its LwUsageRow, so usage_row_free frees it. */
    report->rows = g_ptr_array_new_with_free_func(usage_row_free);
    report->unpriced_models = g_ptr_array_new_with_free_func(g_free);
    report->unpriced_paths = g_ptr_array_new_with_free_func(g_free);
    /* Keys point into the rows: &row->num, or row->row.key. */
    g_autoptr(GHashTable) groups = g->numeric ? g_hash_table_new(g_int64_hash, g_int64_equal)
                                              : g_hash_table_new(g_str_hash, g_str_equal);
    SortableRow *keyless = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        SortableRow *s;
        if (column_is_null(st, 0)) {
            if (keyless == NULL) {
                keyless = g_new0(SortableRow, 1);
                g_ptr_array_add(report->rows, keyless);
            }
            s = keyless;
        } else if (g->numeric) {
            gint64 v = sqlite3_column_int64(st, 0);
            s = g_hash_table_lookup(groups, &v);
            if (s == NULL) {
                s = g_new0(SortableRow, 1);
                s->has_num = TRUE;
                s->num = v;
                s->row.key = format_group_key(q->by, v);
                g_hash_table_insert(groups, &s->num, s);
                g_ptr_array_add(report->rows, s);
            }
        } else {
            const char *k = column_str(st, 0);
            s = g_hash_table_lookup(groups, k);
            if (s == NULL) {
                s = g_new0(SortableRow, 1);
                s->row.key = g_strdup(k);
                g_hash_table_insert(groups, s->row.key, s);
                g_ptr_array_add(report->rows, s);
            }
        }
        LwUsageRow *rows[] = {&s->row, &report->total};
        for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
            LwUsageRow *r = rows[i];
            r->requests += sqlite3_column_int64(st, 1);
            r->input_tokens += sqlite3_column_int64(st, 2);
            r->output_tokens += sqlite3_column_int64(st, 3);
            r->cached_input_tokens += sqlite3_column_int64(st, 4);
            r->cache_write_tokens += sqlite3_column_int64(st, 5);
            r->cache_write_1h_tokens += sqlite3_column_int64(st, 6);
            r->reasoning_tokens += sqlite3_column_int64(st, 7);
            r->cost_pusd += sqlite3_column_int64(st, 8);
            r->unpriced += sqlite3_column_int64(st, 9);
            r->partial += sqlite3_column_int64(st, 10);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "usage query");
        return NULL;
    }
    g_ptr_array_sort_with_data(report->rows, compare_usage, GINT_TO_POINTER(q->by));
    if (report->total.unpriced > 0 && !collect_unpriced(ledger, q, &plan, report, error))
        return NULL;
    return g_steal_pointer(&report);
}

/* ---- requests ---- */

void lw_request_filter_init(LwRequestFilter *f)
{
    memset(f, 0, sizeof *f);
    f->since_ms = LW_LEDGER_NO_SINCE;
    f->until_ms = LW_LEDGER_NO_UNTIL;
    f->run_id = -1;
    f->partial = -1;
    f->limit = -1;
}

static const char request_columns[] =
    "id, time_ms, run_id, pid, exe, CASE WHEN json_valid(tags) THEN json(tags) END, provider, "
    "host, endpoint, model_requested, model_served, stream, status, input_tokens, "
    "cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, "
    "reasoning_tokens, cost_pusd, cost_source, latency_ms, ttft_ms, bytes_in, bytes_out, "
    "cache_hit, partial, upstream_request_id, credential, "
    "CASE WHEN json_valid(raw_usage) THEN json(raw_usage) END, refused_by, warning, "
    "unpriced_path, model_sent";

static void read_request(sqlite3_stmt *st, LwRequestRecord *rec)
{
    LwLedgerRequest *r = &rec->row;
    memset(rec, 0, sizeof *rec);
    rec->id = sqlite3_column_int64(st, 0);
    r->time_ms = sqlite3_column_int64(st, 1);
    r->run_id = (guint64)sqlite3_column_int64(st, 2);
    r->pid = (guint32)sqlite3_column_int64(st, 3);
    r->exe = column_str(st, 4);
    r->tags_json = column_str(st, 5);
    r->provider = column_str(st, 6);
    r->host = column_str(st, 7);
    r->endpoint = column_str(st, 8);
    r->model_requested = column_str(st, 9);
    r->model_served = column_str(st, 10);
    r->stream = sqlite3_column_int(st, 11) != 0;
    r->status = sqlite3_column_int(st, 12);
    r->input_tokens = sqlite3_column_int64(st, 13);
    r->cached_input_tokens = sqlite3_column_int64(st, 14);
    r->cache_write_tokens = sqlite3_column_int64(st, 15);
    r->cache_write_1h_tokens = sqlite3_column_int64(st, 16);
    r->output_tokens = sqlite3_column_int64(st, 17);
    r->reasoning_tokens = sqlite3_column_int64(st, 18);
    r->cost.known = !column_is_null(st, 19);
    r->cost.pusd = r->cost.known ? sqlite3_column_int64(st, 19) : 0;
    r->cost_source = column_str(st, 20);
    r->latency_ms = sqlite3_column_int64(st, 21);
    r->ttft_ms = column_is_null(st, 22) ? -1 : sqlite3_column_int64(st, 22);
    r->bytes_in = sqlite3_column_int64(st, 23);
    r->bytes_out = sqlite3_column_int64(st, 24);
    r->cache_hit = sqlite3_column_int(st, 25) != 0;
    r->partial = sqlite3_column_int(st, 26) != 0;
    r->upstream_request_id = column_str(st, 27);
    r->credential = column_str(st, 28);
    r->raw_usage = column_str(st, 29);
    r->refused_by = column_str(st, 30);
    r->warning = column_str(st, 31);
    r->unpriced_path = column_str(st, 32);
    r->model_sent = column_str(st, 33);
}

gboolean lw_ledger_foreach_request(LwLedger *ledger, const LwRequestFilter *f,
                                   LwRequestFunc func, gpointer user_data, GError **error)
{
    g_return_val_if_fail(ledger != NULL && f != NULL && func != NULL, FALSE);
    g_autofree char *path = NULL;
    if (f->tag_key != NULL && (path = tag_path(f->tag_key, error)) == NULL)
        return FALSE;

    g_autoptr(GString) sql = g_string_new("SELECT ");
    g_string_append(sql, request_columns);
    g_string_append(sql, " FROM requests WHERE 1");
    if (f->since_ms != LW_LEDGER_NO_SINCE)
        g_string_append(sql, " AND time_ms >= :since");
    if (f->until_ms != LW_LEDGER_NO_UNTIL)
        g_string_append(sql, " AND time_ms < :until");
    if (f->run_id == 0)
        g_string_append(sql, " AND run_id IS NULL");
    else if (f->run_id > 0)
        g_string_append(sql, " AND run_id = :run");
    if (f->provider != NULL)
        g_string_append(sql, " AND provider = :provider");
    if (f->model != NULL)
        g_string_append(sql, " AND (model_served = :model OR model_sent = :model OR "
                             "model_requested = :model)");
    if (path != NULL)
        g_string_append(sql, f->tag_value != NULL
                                 ? " AND CAST(" TAG_VALUE_SQL("tags") " AS TEXT) = :tagvalue"
                                 : " AND " TAG_VALUE_SQL("tags") " IS NOT NULL");
    if (f->status_min != 0 || f->status_max != 0)
        g_string_append(sql, " AND status BETWEEN :smin AND :smax");
    if (f->partial >= 0)
        g_string_append(sql, " AND partial = :partial");
    g_string_append(sql, " ORDER BY time_ms DESC, id DESC");
    if (f->limit >= 0)
        g_string_append(sql, " LIMIT :limit");

    sqlite3_stmt *st = lw_ledger_prepare(ledger, sql->str, error);
    if (st == NULL)
        return FALSE;
#define BIND_INT(name, v)                                                                         \
    do {                                                                                          \
        int i_ = sqlite3_bind_parameter_index(st, name);                                          \
        if (i_ > 0)                                                                               \
            sqlite3_bind_int64(st, i_, (v));                                                      \
    } while (0)
#define BIND_TEXT(name, v)                                                                        \
    do {                                                                                          \
        int i_ = sqlite3_bind_parameter_index(st, name);                                          \
        if (i_ > 0)                                                                               \
            sqlite3_bind_text(st, i_, (v), -1, SQLITE_STATIC);                                    \
    } while (0)
    BIND_INT(":since", f->since_ms);
    BIND_INT(":until", f->until_ms);
    BIND_INT(":run", f->run_id);
    BIND_TEXT(":provider", f->provider);
    BIND_TEXT(":model", f->model);
    BIND_TEXT(":tag", path);
    BIND_TEXT(":tagvalue", f->tag_value);
    BIND_INT(":smin", f->status_min);
    BIND_INT(":smax", f->status_max);
    BIND_INT(":partial", f->partial);
    BIND_INT(":limit", f->limit);
#undef BIND_INT
#undef BIND_TEXT

    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        LwRequestRecord rec;
        read_request(st, &rec);
        if (!func(&rec, user_data)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "listing requests");
    return TRUE;
}

/* ---- runs ---- */

static void run_record_free(gpointer p)
{
    LwRunRecord *r = p;
    g_strfreev(r->argv);
    g_free(r->cwd);
    g_free(r->tags_json);
    g_free(r);
}

static gboolean read_argv(LwLedger *ledger, sqlite3_stmt *each, const char *json,
                          LwRunRecord *r, GError **error)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    if (json != NULL) {
        sqlite3_bind_text(each, 1, json, -1, SQLITE_TRANSIENT);
        int rc;
        while ((rc = sqlite3_step(each)) == SQLITE_ROW) {
            const char *v = column_str(each, 0);
            g_strv_builder_add(b, v != NULL ? v : "");
        }
        sqlite3_reset(each);
        if (rc != SQLITE_DONE)
            return lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "reading a run's argv");
    }
    r->argv = g_strv_builder_end(b);
    return TRUE;
}

GPtrArray *lw_ledger_list_runs(LwLedger *ledger, gint64 limit, GError **error)
{
    g_return_val_if_fail(ledger != NULL, NULL);
    sqlite3_stmt *st = lw_ledger_prepare(
        ledger,
        "SELECT id, parent_id, started_ms, ended_ms, exit_status, "
        "CASE WHEN json_valid(argv) THEN argv END, cwd, pid, "
        "CASE WHEN json_valid(tags) THEN json(tags) END, budget_pusd "
        "FROM runs ORDER BY id DESC LIMIT :limit",
        error);
    if (st == NULL)
        return NULL;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_stmt *each = lw_ledger_prepare(
        ledger, "SELECT CAST(value AS TEXT) FROM json_each(?1) ORDER BY key", error);
    sqlite3_stmt *spend =
        each == NULL ? NULL
                     : lw_ledger_prepare(ledger,
                                         "SELECT COUNT(*), COALESCE(SUM(cost_pusd), 0), "
                                         "COUNT(*) - COUNT(cost_pusd) FROM requests "
                                         "WHERE run_id = ?1",
                                         error);
    if (spend == NULL) {
        sqlite3_finalize(st);
        sqlite3_finalize(each);
        return NULL;
    }

    g_autoptr(GPtrArray) runs = g_ptr_array_new_with_free_func(run_record_free);
    gboolean ok = TRUE;
    int rc;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        LwRunRecord *r = g_new0(LwRunRecord, 1);
        g_ptr_array_add(runs, r);
        r->id = (guint64)sqlite3_column_int64(st, 0);
        r->parent_id = (guint64)sqlite3_column_int64(st, 1);
        r->started_ms = sqlite3_column_int64(st, 2);
        r->ended_ms = column_is_null(st, 3) ? -1 : sqlite3_column_int64(st, 3);
        r->has_exit_status = !column_is_null(st, 4);
        r->exit_status = sqlite3_column_int(st, 4);
        r->cwd = lw_ledger_column_dup(st, 6);
        r->pid = (guint32)sqlite3_column_int64(st, 7);
        r->tags_json = lw_ledger_column_dup(st, 8);
        r->budget_pusd = column_is_null(st, 9) ? -1 : sqlite3_column_int64(st, 9);
        ok = read_argv(ledger, each, column_str(st, 5), r, error);
        if (!ok)
            break;
        sqlite3_bind_int64(spend, 1, (sqlite3_int64)r->id);
        if (sqlite3_step(spend) == SQLITE_ROW) {
            r->requests = sqlite3_column_int64(spend, 0);
            r->cost_pusd = sqlite3_column_int64(spend, 1);
            r->unpriced = sqlite3_column_int64(spend, 2);
        } else {
            ok = lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "summing a run");
        }
        sqlite3_reset(spend);
    }
    if (ok && rc != SQLITE_DONE)
        ok = lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "listing runs");
    sqlite3_finalize(st);
    sqlite3_finalize(each);
    sqlite3_finalize(spend);
    return ok ? g_steal_pointer(&runs) : NULL;
}
