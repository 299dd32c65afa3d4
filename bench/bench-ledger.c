/* bench-ledger.c - what the ledger costs the collector per request, and
 * what `llmctl usage` costs over a big ledger.
 *
 *   bench-ledger [--rows N] [--timed N] [--rate N] [--direct] [--keep FILE]
 *   bench-ledger --query-only FILE      (time the queries on a kept ledger)
 *
 * Records --timed rows (default 100,000) the way the collector does —
 * lw_spool_append, whose rows a thread applies to SQLite meanwhile — back
 * to back, or --rate per second, timing every call in wall-clock time and
 * in the thread's CPU time (which a busy machine's scheduling does not
 * inflate). --direct times lw_ledger_insert instead (one SQLite commit
 * per row, the collector's way before the spool). Then it reports how long
 * the applier took to catch up, fills the ledger up to --rows (default
 * 1,000,000)
 * and times usage queries the way llmctl runs them (a fresh read-only
 * connection), by model and by day, over everything and over the last 7
 * days (a --since that is not on an hour boundary). Rows look like real
 * traffic: 90 days, 20 models, runs of 50 requests, 7 tag sets, 2% with no
 * price. Prints one line per measurement; numbers go to
 * docs/performance.md.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ledger-query.h"
#include "ledger-spool.h"
#include "ledger.h"

#define DAY_MS G_GINT64_CONSTANT(86400000)
/* 2026-01-01T00:00:00Z minus an odd offset, so "7 days ago" is mid-hour. */
#define END_MS (G_GINT64_CONSTANT(1767225600000) - 1234567)
#define SPAN_MS (90 * DAY_MS)

static const char *const models[][2] = {
    {"openai", "gpt-4o"},           {"openai", "gpt-4o-mini"},      {"openai", "gpt-4.1"},
    {"openai", "o3"},               {"openai", "o4-mini"},          {"anthropic", "claude-sonnet-4"},
    {"anthropic", "claude-opus-4"}, {"anthropic", "claude-haiku-3.5"}, {"gemini", "gemini-2.5-pro"},
    {"gemini", "gemini-2.5-flash"}, {"xai", "grok-3"},              {"xai", "grok-3-mini"},
    {"deepseek", "deepseek-chat"},  {"deepseek", "deepseek-reasoner"}, {"mistral", "mistral-large"},
    {"groq", "llama-3.3-70b"},      {"openrouter", "qwen3-235b"},   {"together", "llama-4-maverick"},
    {"fireworks", "kimi-k2"},       {"perplexity", "sonar-pro"},
};

static int cmp_i64(const void *a, const void *b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
    return x < y ? -1 : x > y;
}

static gint64 clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gint64 now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static void print_percentiles(const char *how, const char *what, gint64 *v, gint64 n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_i64);
#define PCT(p) (v[MIN((gint64)((p) / 100.0 * (double)n), n - 1)] / 1e3)
    printf("%s %-4s p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", how,
           what, PCT(50), PCT(90), PCT(99), PCT(99.9), v[n - 1] / 1e3);
#undef PCT
}


/* Where rows go: the spool (the collector's way), or straight into SQLite. */
typedef struct {
    LwLedger *ledger;
    LwSpool *spool; /* NULL: --direct */
} Sink;

/* Records row `i` of `total`; returns the nanoseconds the sink took (and
 * the thread CPU time in *ret_cpu), not counting making up the row. */
static gint64 insert_row(const Sink *sink, GRand *rng, gint64 i, gint64 total, gint64 *ret_cpu)
{
    char tags[64], raw[200], upstream_id[40];
    gint64 run = i / 50;
    guint m = (guint)g_rand_int_range(rng, 0, G_N_ELEMENTS(models));
    gboolean unpriced = g_rand_int_range(rng, 0, 100) < 2;
    gint64 in = g_rand_int_range(rng, 10, 20000), out = g_rand_int_range(rng, 1, 2000);
    g_snprintf(tags, sizeof tags, "{\"team\":\"t%d\",\"env\":\"prod\"}", (int)(run % 7));
    g_snprintf(raw, sizeof raw,
               "{\"prompt_tokens\":%" G_GINT64_FORMAT ",\"completion_tokens\":%" G_GINT64_FORMAT
               ",\"total_tokens\":%" G_GINT64_FORMAT "}",
               in, out, in + out);
    g_snprintf(upstream_id, sizeof upstream_id, "chatcmpl-%" G_GINT64_FORMAT, i);
    LwLedgerRequest r = {
        .time_ms = END_MS - SPAN_MS + SPAN_MS / total * i,
        .run_id = run % 10 == 9 ? 0 : (guint64)run + 1, /* a tenth outside llmwrap */
        .pid = 4242,
        .exe = "/usr/bin/python3.11",
        .tags_json = run % 10 == 9 ? NULL : tags,
        .provider = models[m][0],
        .host = "api.example.com",
        .endpoint = "chat",
        .model_requested = unpriced ? "mystery-model" : models[m][1],
        .model_served = unpriced ? NULL : models[m][1],
        .stream = (i & 1) != 0,
        .status = 200,
        .input_tokens = in,
        .cached_input_tokens = in / 4,
        .output_tokens = out,
        .reasoning_tokens = out / 3,
        .cost = {.known = !unpriced, .pusd = in * 2500000 + out * 10000000},
        .cost_source = unpriced ? NULL : "price",
        .latency_ms = g_rand_int_range(rng, 100, 30000),
        .ttft_ms = 250,
        .bytes_in = 4000,
        .bytes_out = 9000,
        .upstream_request_id = upstream_id,
        .credential = "0123456789abcdef",
        .raw_usage = raw,
        .warning = unpriced ? "no price for model mystery-model" : NULL,
    };
    g_autoptr(GError) error = NULL;
    gint64 c = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    gint64 s = now_ns();
    if ((sink->spool != NULL ? lw_spool_append(sink->spool, &r, &error)
                             : lw_ledger_insert(sink->ledger, &r, &error)) == 0) {
        fprintf(stderr, "insert %" G_GINT64_FORMAT ": %s\n", i, error->message);
        exit(1);
    }
    gint64 took = now_ns() - s;
    *ret_cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c;
    return took;
}

typedef struct {
    const char *name;
    LwUsageGroup by;
    const char *tag;
    gint64 since;
} UsageCase;

static void time_usage(const char *path, const UsageCase *c)
{
    enum { REPEAT = 5 };
    gint64 t[REPEAT];
    guint rows = 0;
    for (int k = 0; k < REPEAT; k++) {
        gint64 t0 = now_ns();
        g_autoptr(GError) error = NULL;
        /* A fresh connection each time, as one llmctl call would. */
        g_autoptr(LwLedger) ledger = lw_ledger_open(path, TRUE, &error);
        LwUsageQuery q = {.by = c->by, .tag_key = c->tag, .since_ms = c->since,
                          .until_ms = LW_LEDGER_NO_UNTIL};
        g_autoptr(LwUsageReport) rep = ledger != NULL ? lw_ledger_usage(ledger, &q, &error) : NULL;
        if (rep == NULL) {
            fprintf(stderr, "%s: %s\n", c->name, error->message);
            exit(1);
        }
        t[k] = now_ns() - t0;
        rows = rep->rows->len;
    }
    qsort(t, REPEAT, sizeof t[0], cmp_i64);
    printf("usage %-28s %3u groups  min %6.1f ms  median %6.1f ms\n", c->name, rows,
           t[0] / 1e6, t[REPEAT / 2] / 1e6);
}

static void time_plain_group_by(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db,
                       "SELECT COALESCE(model_served, model_requested), COUNT(*), "
                       "SUM(input_tokens), SUM(output_tokens), SUM(cost_pusd) FROM requests "
                       "GROUP BY 1",
                       -1, &st, NULL);
    gint64 t0 = now_ns();
    while (sqlite3_step(st) == SQLITE_ROW) {
    }
    printf("reference: plain GROUP BY model over the rows: %.1f ms\n", (now_ns() - t0) / 1e6);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void time_queries(const char *path);

int main(int argc, char **argv)
{
    gint64 rows = 1000000, timed = 100000, rate = 0;
    gboolean direct = FALSE;
    g_autofree char *keep = NULL, *query_only = NULL;
    GOptionEntry entries[] = {
        {"query-only", 0, 0, G_OPTION_ARG_FILENAME, &query_only,
         "Only time the queries, on this ledger", "FILE"},
        {"rows", 0, 0, G_OPTION_ARG_INT64, &rows, "Rows in the big ledger", "N"},
        {"timed", 0, 0, G_OPTION_ARG_INT64, &timed, "Inserts to time one by one", "N"},
        {"rate", 0, 0, G_OPTION_ARG_INT64, &rate, "Pace the timed inserts at N per second", "N"},
        {"direct", 0, 0, G_OPTION_ARG_NONE, &direct, "Commit each row to SQLite, no spool",
         NULL},
        {"keep", 0, 0, G_OPTION_ARG_FILENAME, &keep, "Write the ledger here and keep it", "FILE"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- ledger insert and query costs");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return 2;
    }
    timed = MIN(timed, rows);
    if (query_only != NULL) {
        time_queries(query_only);
        return 0;
    }

    g_autofree char *dir = NULL;
    g_autofree char *path = keep != NULL ? g_strdup(keep) : NULL;
    if (path == NULL) {
        dir = g_dir_make_tmp("bench-ledger-XXXXXX", &error);
        if (dir == NULL) {
            fprintf(stderr, "%s\n", error->message);
            return 1;
        }
        path = g_build_filename(dir, "ledger.db", NULL);
    }
    g_autofree char *spool_path = g_strconcat(path, ".spool", NULL);
    Sink sink = {lw_ledger_open(path, FALSE, &error), NULL};
    if (sink.ledger != NULL && !direct)
        sink.spool = lw_spool_open(spool_path, path, &error);
    if (sink.ledger == NULL || (!direct && sink.spool == NULL)) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    const char *how = direct ? "insert" : "append";
    GRand *rng = g_rand_new_with_seed(42);

    gint64 *lat = g_new(gint64, MAX(timed, 1));
    gint64 *cpu = g_new(gint64, MAX(timed, 1));
    gint64 t0 = now_ns(), next = t0;
    for (gint64 i = 0; i < timed; i++) {
        if (rate > 0) {
            next += 1000000000 / rate;
            struct timespec ts = {next / 1000000000, next % 1000000000};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
            }
        }
        lat[i] = insert_row(&sink, rng, i, rows, &cpu[i]);
    }
    gint64 elapsed = now_ns() - t0;
    if (timed > 0) {
        printf("%s: %" G_GINT64_FORMAT " rows, %.0f/s\n", how, timed, timed / (elapsed / 1e9));
        print_percentiles(how, "wall", lat, timed);
        print_percentiles(how, "cpu", cpu, timed);
    }
    if (sink.spool != NULL) {
        /* What was still queued: how far the applier was behind. */
        gint64 s = now_ns();
        lw_spool_hold(sink.spool);
        lw_spool_release(sink.spool);
        printf("applier: caught up %.1f ms after the last append\n", (now_ns() - s) / 1e6);
    }
    g_free(lat);
    g_free(cpu);

    t0 = now_ns();
    for (gint64 i = timed, unused; i < rows; i++)
        insert_row(&sink, rng, i, rows, &unused);
    if (rows > timed)
        printf("fill: %" G_GINT64_FORMAT " more rows in %.1f s\n", rows - timed,
               (now_ns() - t0) / 1e9);
    g_rand_free(rng);
    lw_spool_close(sink.spool);
    lw_ledger_close(sink.ledger);

    printf("ledger: %" G_GINT64_FORMAT " rows\n", rows);
    time_queries(path);

    if (dir != NULL) {
        g_autofree char *wal = g_strconcat(path, "-wal", NULL);
        g_autofree char *shm = g_strconcat(path, "-shm", NULL);
        g_unlink(wal);
        g_unlink(shm);
        g_unlink(spool_path);
        g_unlink(path);
        g_rmdir(dir);
    }
    return 0;
}

static void time_queries(const char *path)
{
    gint64 week = END_MS - 7 * DAY_MS;
    const UsageCase cases[] = {
        {"--by model", LW_USAGE_BY_MODEL, NULL, LW_LEDGER_NO_SINCE},
        {"--by day", LW_USAGE_BY_DAY, NULL, LW_LEDGER_NO_SINCE},
        {"--by model --since 7d", LW_USAGE_BY_MODEL, NULL, week},
        {"--by day --since 7d", LW_USAGE_BY_DAY, NULL, week},
        {"--by provider", LW_USAGE_BY_PROVIDER, NULL, LW_LEDGER_NO_SINCE},
        {"--by hour", LW_USAGE_BY_HOUR, NULL, LW_LEDGER_NO_SINCE},
        {"--by tag:team", LW_USAGE_BY_TAG, "team", LW_LEDGER_NO_SINCE},
        {"--by run", LW_USAGE_BY_RUN, NULL, LW_LEDGER_NO_SINCE},
        {"--by run --since 7d", LW_USAGE_BY_RUN, NULL, week},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
        time_usage(path, &cases[i]);
    time_plain_group_by(path);
}
