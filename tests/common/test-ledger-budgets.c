/* test-ledger-budgets.c - budgets and guards in the ledger: the v1 -> v2
 * migration of an existing file, definitions stored and read back, spend
 * per scope kind against sums computed here from the rows, and alerts
 * that fire once. */
#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "budget-def.h"
#include "ledger-budgets.h"
#include "ledger-fixture.h"
#include "ledger.h"

#define PUSD    G_GINT64_CONSTANT(1000000000000)
#define HOUR_MS G_GINT64_CONSTANT(3600000)
/* 2026-11-21T00:00:00Z */
#define BASE_MS G_GINT64_CONSTANT(1795219200000)

/* budget-def.h declares no autoptr cleanup; a name of our own cannot
 * clash with one it may gain. */
typedef LwBudgetDef Budget;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Budget, lw_budget_def_free)

static void sql_exec(LwLedger *l, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(lw_ledger_db(l), sql, NULL, NULL, &msg) != SQLITE_OK)
        g_error("%s: %s", sql, msg);
}

static gint64 sql_int(LwLedger *l, const char *sql)
{
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(lw_ledger_db(l), sql, -1, &st, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    gint64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static gboolean has_table(LwLedger *l, const char *name)
{
    g_autofree char *sql = g_strdup_printf(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
    return sql_int(l, sql) == 1;
}

static LwBudgetDef *budget(const char *name, gint64 limit, LwPeriod period, const char *scope,
                           const char *action)
{
    LwBudgetDef *d = g_new0(LwBudgetDef, 1);
    d->name = g_strdup(name);
    d->limit_pusd = limit;
    d->period = period;
    g_assert_true(lw_scope_parse(scope, &d->scope, &d->scope_key, &d->scope_value));
    g_assert_true(lw_action_parse(action, &d->action, &d->action_model));
    return d;
}

static const LwBudgetDef *find(GPtrArray *defs, const char *name)
{
    for (guint i = 0; i < defs->len; i++) {
        const LwBudgetDef *d = g_ptr_array_index(defs, i);
        if (strcmp(d->name, name) == 0)
            return d;
    }
    return NULL;
}

/* ---- migration ---- */

/* A version-1 file, as the first release wrote it: the v1 tables with a
 * request and a run in them. Schema steps never change once released, so
 * today's v1 part is exactly that file once the later steps' tables,
 * indexes and columns are gone. */
static void make_v1(const Fixture *f)
{
    g_autoptr(LwLedger) l = open_rw(f);
    char *argv[] = {"agent", NULL};
    LwLedgerRun run = {.started_ms = BASE_MS, .argv = argv, .budget_pusd = -1};
    g_assert_cmpuint(lw_ledger_run_start(l, &run, NULL), ==, 1);
    LwLedgerRequest r = {.time_ms = BASE_MS,
                         .run_id = 1,
                         .provider = "openai",
                         .model_requested = "gpt-4o",
                         .status = 200,
                         .input_tokens = 10,
                         .cost = {TRUE, 42}};
    g_assert_cmpint(lw_ledger_insert(l, &r, NULL), >, 0);
    sql_exec(l, "DROP TABLE budgets; DROP TABLE guards; DROP TABLE budget_alerts;"
                "DROP INDEX requests_refused;"
                "DROP INDEX requests_unpriced_calls;"
                "ALTER TABLE requests DROP COLUMN unpriced_path;"
                "ALTER TABLE requests DROP COLUMN model_sent;"
                "ALTER TABLE runs DROP COLUMN killed_ms;"
                "PRAGMA user_version = 1");
}

static void test_migrate_v1(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(lw_ledger_schema_version(), >=, 2);
    make_v1(f);
    g_autoptr(LwLedger) l = open_rw(f);
    g_assert_cmpint(sql_int(l, "PRAGMA user_version"), ==, lw_ledger_schema_version());
    g_assert_true(has_table(l, "budgets"));
    g_assert_true(has_table(l, "guards"));
    g_assert_true(has_table(l, "budget_alerts"));
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                               "name = 'requests_refused'"),
                    ==, 1);
    /* The v1 data is still there. */
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM requests"), ==, 1);
    g_assert_cmpint(sql_int(l, "SELECT cost_pusd FROM requests"), ==, 42);
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM runs"), ==, 1);
    g_assert_cmpint(sql_int(l, "SELECT SUM(cost_pusd) FROM usage_hourly WHERE dim = 0"), ==, 42);
    /* And usable: a budget goes in and counts the old row. */
    g_autoptr(Budget) d = budget("all", PUSD, LW_PERIOD_DAY, "global", "block");
    g_assert_true(lw_ledger_budget_put(l, d, NULL));
    g_assert_cmpint(lw_ledger_budget_spent(l, d, BASE_MS, BASE_MS + 24 * HOUR_MS, 0, NULL), ==, 42);
}

/* Tables missing (a ledger that predates them) mean no definitions. */
static void test_missing_tables(Fixture *f, gconstpointer data)
{
    g_autoptr(LwLedger) l = open_rw(f);
    sql_exec(l, "DROP TABLE budgets; DROP TABLE guards");
    GError *error = NULL;
    g_autoptr(GPtrArray) b = lw_ledger_budget_list(l, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(b->len, ==, 0);
    g_autoptr(GPtrArray) g = lw_ledger_guard_list(l, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g->len, ==, 0);
}

/* ---- definitions ---- */

static void test_budget_put_list(Fixture *f, gconstpointer data)
{
    g_autoptr(LwLedger) l = open_rw(f);
    GError *error = NULL;
    g_autoptr(Budget) a =
        budget("team-a", 5 * PUSD, LW_PERIOD_DAY, "tag:team=a b=c", "downgrade:gpt-4o-mini");
    g_assert_true(lw_alerts_parse("50,80,95", a->alerts, &a->n_alerts));
    a->alert_command = g_strdup("echo \"$LLMWRAP_BUDGET\" >> /tmp/x");
    a->created_ms = BASE_MS;
    g_autoptr(Budget) b = budget("b", 1, LW_PERIOD_REQUEST, "model:gpt-4o", "clamp");
    b->created_ms = BASE_MS + 1;
    g_assert_true(lw_ledger_budget_put(l, a, &error));
    g_assert_no_error(error);
    g_assert_true(lw_ledger_budget_put(l, b, &error));
    g_assert_no_error(error);

    g_autoptr(GPtrArray) list = lw_ledger_budget_list(l, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 2);
    /* By name. */
    const LwBudgetDef *got = g_ptr_array_index(list, 1);
    g_assert_cmpstr(((const LwBudgetDef *)g_ptr_array_index(list, 0))->name, ==, "b");
    g_assert_cmpstr(got->name, ==, "team-a");
    g_assert_cmpint(got->limit_pusd, ==, 5 * PUSD);
    g_assert_cmpint(got->period, ==, LW_PERIOD_DAY);
    g_assert_cmpint(got->scope, ==, LW_SCOPE_TAG);
    g_assert_cmpstr(got->scope_key, ==, "team");
    g_assert_cmpstr(got->scope_value, ==, "a b=c");
    g_assert_cmpint(got->action, ==, LW_ACTION_DOWNGRADE);
    g_assert_cmpstr(got->action_model, ==, "gpt-4o-mini");
    g_assert_cmpuint(got->n_alerts, ==, 3);
    g_assert_cmpuint(got->alerts[0], ==, 50);
    g_assert_cmpuint(got->alerts[2], ==, 95);
    g_assert_cmpstr(got->alert_command, ==, a->alert_command);
    g_assert_cmpint(got->created_ms, ==, BASE_MS);
    g_assert_cmpint(got->reset_ms, ==, 0);
    const LwBudgetDef *gb = find(list, "b");
    g_assert_cmpint(gb->period, ==, LW_PERIOD_REQUEST);
    g_assert_cmpint(gb->action, ==, LW_ACTION_CLAMP);
    g_assert_null(gb->action_model);
    g_assert_null(gb->scope_value);
    g_assert_cmpuint(gb->n_alerts, ==, 0);
    g_assert_null(gb->alert_command);

    /* Replace: new values, but created and reset stay. */
    g_assert_true(lw_ledger_budget_reset(l, "team-a", BASE_MS + 5, &error));
    g_assert_no_error(error);
    g_autoptr(Budget) a2 = budget("team-a", 7 * PUSD, LW_PERIOD_MONTH, "provider:openai", "warn");
    a2->created_ms = BASE_MS + 999;
    g_assert_true(lw_ledger_budget_put(l, a2, &error));
    g_autoptr(GPtrArray) list2 = lw_ledger_budget_list(l, &error);
    g_assert_cmpuint(list2->len, ==, 2);
    got = find(list2, "team-a");
    g_assert_cmpint(got->limit_pusd, ==, 7 * PUSD);
    g_assert_cmpint(got->period, ==, LW_PERIOD_MONTH);
    g_assert_cmpint(got->scope, ==, LW_SCOPE_PROVIDER);
    g_assert_cmpstr(got->scope_key, ==, "openai");
    g_assert_null(got->scope_value);
    g_assert_cmpint(got->action, ==, LW_ACTION_WARN);
    g_assert_null(got->action_model);
    g_assert_cmpuint(got->n_alerts, ==, 0);
    g_assert_null(got->alert_command);
    g_assert_cmpint(got->created_ms, ==, BASE_MS);
    g_assert_cmpint(got->reset_ms, ==, BASE_MS + 5);

    /* Remove, and the unknown names. */
    g_assert_true(lw_ledger_budget_remove(l, "b", &error));
    g_assert_no_error(error);
    g_assert_false(lw_ledger_budget_remove(l, "b", &error));
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "'b'"));
    g_clear_error(&error);
    g_assert_false(lw_ledger_budget_reset(l, "nope", BASE_MS, &error));
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_autoptr(GPtrArray) list3 = lw_ledger_budget_list(l, &error);
    g_assert_cmpuint(list3->len, ==, 1);
    g_assert_null(find(list3, "b"));
}

static void test_unknown_stored_value(Fixture *f, gconstpointer data)
{
    g_autoptr(LwLedger) l = open_rw(f);
    sql_exec(l, "INSERT INTO budgets (name, limit_pusd, period, scope, action, created_ms) "
                "VALUES ('odd', 1, 'fortnight', 'global', 'block', 0)");
    GError *error = NULL;
    g_assert_null(lw_ledger_budget_list(l, &error));
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE);
    g_assert_nonnull(strstr(error->message, "odd"));
    g_clear_error(&error);
}

static void test_guards(Fixture *f, gconstpointer data)
{
    g_autoptr(LwLedger) l = open_rw(f);
    GError *error = NULL;
    LwGuardDef loop = {
        .name = "loops", .kind = LW_GUARD_LOOP, .threshold = 5, .window_ms = 60000, .block = TRUE};
    LwGuardDef growth = {.name = "grow", .kind = LW_GUARD_GROWTH, .threshold = 2500};
    g_assert_true(lw_ledger_guard_put(l, &loop, &error));
    g_assert_true(lw_ledger_guard_put(l, &growth, &error));
    g_assert_no_error(error);
    g_autoptr(GPtrArray) list = lw_ledger_guard_list(l, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 2);
    const LwGuardDef *g0 = g_ptr_array_index(list, 0), *g1 = g_ptr_array_index(list, 1);
    g_assert_cmpstr(g0->name, ==, "grow");
    g_assert_cmpint(g0->kind, ==, LW_GUARD_GROWTH);
    g_assert_cmpint(g0->threshold, ==, 2500);
    g_assert_cmpuint(g0->window_ms, ==, 0);
    g_assert_false(g0->block);
    g_assert_false(g0->from_config);
    g_assert_cmpstr(g1->name, ==, "loops");
    g_assert_cmpint(g1->kind, ==, LW_GUARD_LOOP);
    g_assert_cmpint(g1->threshold, ==, 5);
    g_assert_cmpuint(g1->window_ms, ==, 60000);
    g_assert_true(g1->block);

    /* Replace. */
    loop.threshold = 9;
    loop.block = FALSE;
    g_assert_true(lw_ledger_guard_put(l, &loop, &error));
    g_autoptr(GPtrArray) list2 = lw_ledger_guard_list(l, &error);
    g_assert_cmpuint(list2->len, ==, 2);
    g1 = g_ptr_array_index(list2, 1);
    g_assert_cmpint(g1->threshold, ==, 9);
    g_assert_false(g1->block);

    g_assert_true(lw_ledger_guard_remove(l, "grow", &error));
    g_assert_false(lw_ledger_guard_remove(l, "grow", &error));
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_autoptr(GPtrArray) list3 = lw_ledger_guard_list(l, &error);
    g_assert_cmpuint(list3->len, ==, 1);
}

/* ---- spend ---- */

typedef struct {
    gint64 t;    /* ms after BASE_MS */
    guint64 run; /* 0 = none */
    const char *provider;
    const char *requested, *served;
    const char *tags;
    gint64 cost; /* -1 unknown */
    const char *refused_by;
} Row;

/* Runs: 1 (top), 2 under 1, 3 under 2, 4 elsewhere. */
static const Row rows[] = {
    {0, 1, "openai", "gpt-4o", "gpt-4o-2024-08-06", "{\"team\":\"a\"}", 100, NULL},
    {HOUR_MS - 1, 2, "openai", "gpt-4o-mini", "gpt-4o-mini", "{\"team\":\"a\",\"job\":\"x\"}", 200,
     NULL},
    {HOUR_MS, 3, "anthropic", "claude-x", NULL, "{\"team\":\"b\"}", 400, NULL},
    {HOUR_MS + 1, 4, "anthropic", NULL, "claude-y", "{\"team\":\"a\"}", 800, NULL},
    {2 * HOUR_MS, 0, "openai", "gpt-4o", "gpt-4o", NULL, 1600, NULL},
    /* Unknown cost: counts nothing. */
    {2 * HOUR_MS + 5, 1, "openai", "mystery", NULL, "{\"team\":\"a\"}", -1, NULL},
    /* A stream a budget ended: charged for what it used, so it counts. */
    {2 * HOUR_MS + 6, 1, "openai", "gpt-4o", NULL, "{\"team\":\"a\"}", 3200, "budget:x"},
    /* A tag value that looks like another, and tags that are not JSON. */
    {3 * HOUR_MS, 4, "openai", "gpt-4o", NULL, "{\"team\":\"a \"}", 6400, NULL},
    {3 * HOUR_MS + 1, 4, "openai", "gpt-4o", NULL, "not json", 12800, NULL},
    /* A key with a dot is one key, not a path. */
    {3 * HOUR_MS + 2, 0, "gemini", "gemini-pro", NULL, "{\"a.b\":\"1\",\"a\":{\"b\":\"1\"}}", 25600,
     NULL},
};

static gboolean in_tree(guint64 run, guint64 root)
{
    /* parent of 2 is 1, of 3 is 2 */
    while (run != 0) {
        if (run == root)
            return TRUE;
        run = run == 3 ? 2 : run == 2 ? 1 : 0;
    }
    return FALSE;
}

/* The tags a row has, read independently of SQLite's JSON. */
static gboolean has_tag(const Row *r, const char *key, const char *value)
{
    if (r->tags == NULL)
        return FALSE;
    g_autofree char *needle = g_strdup_printf("\"%s\":\"%s\"", key, value);
    return strstr(r->tags, needle) != NULL && r->tags[0] == '{';
}

static gint64 expected(const LwBudgetDef *d, gint64 since, gint64 until, guint64 run)
{
    gint64 sum = 0;
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        const Row *r = &rows[i];
        gint64 t = BASE_MS + r->t;
        if (t < since || t >= until || t < d->reset_ms || r->cost < 0)
            continue;
        if (run != 0 && !in_tree(r->run, run))
            continue;
        if (run == 0 && d->period == LW_PERIOD_RUN && r->run == 0)
            continue;
        const char *model = r->requested != NULL ? r->requested : r->served;
        if ((d->scope == LW_SCOPE_PROVIDER && g_strcmp0(r->provider, d->scope_key) != 0) ||
            (d->scope == LW_SCOPE_MODEL && g_strcmp0(model, d->scope_key) != 0) ||
            (d->scope == LW_SCOPE_TAG && !has_tag(r, d->scope_key, d->scope_value)))
            continue;
        sum += r->cost;
    }
    return sum;
}

static void fill(LwLedger *l)
{
    char *argv[] = {"x", NULL};
    const guint64 parents[] = {0, 1, 2, 0};
    for (guint i = 0; i < G_N_ELEMENTS(parents); i++) {
        LwLedgerRun run = {
            .parent_id = parents[i], .started_ms = BASE_MS, .argv = argv, .budget_pusd = -1};
        g_assert_cmpuint(lw_ledger_run_start(l, &run, NULL), ==, i + 1);
    }
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        const Row *r = &rows[i];
        LwLedgerRequest q = {
            .time_ms = BASE_MS + r->t,
            .run_id = r->run,
            .provider = r->provider,
            .model_requested = r->requested,
            .model_served = r->served,
            .tags_json = r->tags,
            .status = r->refused_by != NULL ? 429 : 200,
            .cost = {r->cost >= 0, MAX(r->cost, 0)},
            .refused_by = r->refused_by,
        };
        g_assert_cmpint(lw_ledger_insert(l, &q, NULL), >, 0);
    }
}

static void test_spent_scopes(Fixture *f, gconstpointer data)
{
    g_autoptr(LwLedger) l = open_rw(f);
    fill(l);
    const char *scopes[] = {
        "global",         "provider:openai", "provider:anthropic",
        "provider:none",  "model:gpt-4o",    "model:gpt-4o-mini",
        "model:claude-x", "model:claude-y",  "model:gpt-4o-2024-08-06",
        "tag:team=a",     "tag:team=b",      "tag:job=x",
        "tag:team=a ",    "tag:a.b=1",       "tag:nope=a",
    };
    /* Windows: everything, each hour, edges one ms either side. */
    const gint64 windows[][2] = {
        {G_MININT64, G_MAXINT64},
        {BASE_MS, BASE_MS + HOUR_MS},
        {BASE_MS + HOUR_MS, BASE_MS + 2 * HOUR_MS},
        {BASE_MS + 1, BASE_MS + HOUR_MS - 1},
        {BASE_MS + HOUR_MS - 1, BASE_MS + HOUR_MS + 1},
        {BASE_MS + 2 * HOUR_MS, BASE_MS + 24 * HOUR_MS},
        {BASE_MS + 5, BASE_MS + 5},
    };
    const guint64 runs[] = {0, 1, 2, 3, 4, 99};
    guint checked = 0, nonzero = 0;
    for (guint p = 0; p < 2; p++) {
        for (guint s = 0; s < G_N_ELEMENTS(scopes); s++) {
            for (guint reset = 0; reset < 2; reset++) {
                g_autoptr(Budget) d =
                    budget("b", PUSD, p == 0 ? LW_PERIOD_DAY : LW_PERIOD_RUN, scopes[s], "block");
                d->reset_ms = reset ? BASE_MS + HOUR_MS + 1 : 0;
                for (guint w = 0; w < G_N_ELEMENTS(windows); w++) {
                    for (guint r = 0; r < G_N_ELEMENTS(runs); r++) {
                        GError *error = NULL;
                        gint64 got = lw_ledger_budget_spent(l, d, windows[w][0], windows[w][1],
                                                            runs[r], &error);
                        g_assert_no_error(error);
                        gint64 want = expected(d, windows[w][0], windows[w][1], runs[r]);
                        if (got != want)
                            g_error("%s scope %s reset %u window %u run %" G_GUINT64_FORMAT
                                    ": got %" G_GINT64_FORMAT ", want %" G_GINT64_FORMAT,
                                    lw_period_to_string(d->period), scopes[s], reset, w, runs[r],
                                    got, want);
                        checked++;
                        nonzero += want != 0;
                    }
                }
            }
        }
    }
    /* The table exercises real sums, not only zeros. */
    g_assert_cmpuint(nonzero, >, checked / 10);

    /* Spot checks with the numbers written out. */
    g_autoptr(Budget) all = budget("all", PUSD, LW_PERIOD_DAY, "global", "block");
    g_assert_cmpint(lw_ledger_budget_spent(l, all, BASE_MS, BASE_MS + HOUR_MS, 0, NULL), ==, 300);
    g_assert_cmpint(
        lw_ledger_budget_spent(l, all, BASE_MS + HOUR_MS, BASE_MS + 2 * HOUR_MS, 0, NULL), ==,
        1200);
    /* The run tree of 1: runs 1, 2, 3, and the stream the budget ended. */
    g_autoptr(Budget) per_run = budget("r", PUSD, LW_PERIOD_RUN, "global", "block");
    g_assert_cmpint(lw_ledger_budget_spent(l, per_run, 0, G_MAXINT64, 1, NULL), ==, 3900);
    g_assert_cmpint(lw_ledger_budget_spent(l, per_run, 0, G_MAXINT64, 2, NULL), ==, 600);
    /* Model scope is what the program asked for. */
    g_autoptr(Budget) served = budget("m", PUSD, LW_PERIOD_DAY, "model:gpt-4o-2024-08-06", "block");
    g_assert_cmpint(lw_ledger_budget_spent(l, served, G_MININT64, G_MAXINT64, 0, NULL), ==, 0);
}

/* A tag key that cannot be quoted in a JSON path is an error, not a
 * different query. */
static void test_spent_bad_tag(Fixture *f, gconstpointer data)
{
    g_autoptr(LwLedger) l = open_rw(f);
    g_autoptr(Budget) d = budget("t", PUSD, LW_PERIOD_DAY, "global", "block");
    d->scope = LW_SCOPE_TAG;
    d->scope_key = g_strdup("a\"b");
    d->scope_value = g_strdup("v");
    GError *error = NULL;
    g_assert_cmpint(lw_ledger_budget_spent(l, d, 0, G_MAXINT64, 0, &error), ==, -1);
    g_assert_nonnull(error);
    g_clear_error(&error);
}

/* The spend query rides an index: the time index for windows, the run
 * index for run trees (never a scan of every request). The statement
 * lw_ledger_budget_spent runs is caught with a trace hook and planned. */
static int catch_sql(unsigned type, void *data, void *p, void *x)
{
    const char *sql = sqlite3_sql(p);
    if (sql != NULL && strstr(sql, "SUM(cost_pusd)") != NULL) {
        g_free(*(char **)data);
        *(char **)data = g_strdup(sql);
    }
    return 0;
}

static char *plan_of(sqlite3 *db, const char *sql)
{
    g_autofree char *explain = g_strconcat("EXPLAIN QUERY PLAN ", sql, NULL);
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, explain, -1, &st, NULL), ==, SQLITE_OK);
    GString *plan = g_string_new(NULL);
    while (sqlite3_step(st) == SQLITE_ROW)
        g_string_append_printf(plan, "%s\n", sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    return g_string_free(plan, FALSE);
}

static void test_spent_plan(Fixture *f, gconstpointer data)
{
    g_autoptr(LwLedger) l = open_rw(f);
    fill(l);
    sqlite3 *db = lw_ledger_db(l);
    g_autofree char *sql = NULL;
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, catch_sql, &sql);
    const char *scopes[] = {"global", "provider:openai", "model:gpt-4o", "tag:team=a"};
    for (guint i = 0; i < G_N_ELEMENTS(scopes); i++) {
        for (guint run = 0; run < 2; run++) {
            g_autoptr(Budget) d =
                budget("b", PUSD, run ? LW_PERIOD_RUN : LW_PERIOD_DAY, scopes[i], "block");
            g_clear_pointer(&sql, g_free);
            gint64 since = run ? 0 : BASE_MS, until = run ? G_MAXINT64 : BASE_MS + HOUR_MS;
            g_assert_cmpint(lw_ledger_budget_spent(l, d, since, until, run, NULL), >=, 0);
            g_assert_nonnull(sql);
            g_autofree char *plan = plan_of(db, sql);
            /* Whole hours from the rollups, except where they lack the key. */
            gboolean rollups = !run && i != 2;
            const char *want[] = {run ? "requests_run" : "requests_time",
                                  rollups ? "usage_hourly" : NULL};
            for (guint w = 0; w < G_N_ELEMENTS(want); w++)
                if (want[w] != NULL && strstr(plan, want[w]) == NULL)
                    g_error("scope %s run %u: plan without %s:\n%s", scopes[i], run, want[w], plan);
            if (strstr(plan, "SCAN requests") != NULL || (!rollups && strstr(plan, "usage_hourly")))
                g_error("scope %s run %u: plan scans:\n%s", scopes[i], run, plan);
            if (g_test_verbose())
                g_test_message("%s run %u:\n%s", scopes[i], run, plan);
        }
    }
    sqlite3_trace_v2(db, 0, NULL, NULL);
}

/* ---- alerts ---- */

static void test_alert_once(Fixture *f, gconstpointer data)
{
    g_autoptr(LwLedger) l = open_rw(f);
    GError *error = NULL;
    g_assert_true(lw_ledger_alert_once(l, "daily", BASE_MS, 50, &error));
    g_assert_no_error(error);
    g_assert_false(lw_ledger_alert_once(l, "daily", BASE_MS, 50, &error));
    g_assert_no_error(error);
    /* Another threshold, window or budget is another alert. */
    g_assert_true(lw_ledger_alert_once(l, "daily", BASE_MS, 80, NULL));
    g_assert_true(lw_ledger_alert_once(l, "daily", BASE_MS + 24 * HOUR_MS, 50, NULL));
    g_assert_true(lw_ledger_alert_once(l, "other", BASE_MS, 50, NULL));
    g_assert_false(lw_ledger_alert_once(l, "daily", BASE_MS + 24 * HOUR_MS, 50, NULL));
    /* It survives reopening (a collector restart). */
    lw_ledger_close(g_steal_pointer(&l));
    g_autoptr(LwLedger) l2 = open_rw(f);
    g_assert_false(lw_ledger_alert_once(l2, "daily", BASE_MS, 80, NULL));
    /* Removing the budget forgets its alerts. */
    g_autoptr(Budget) d = budget("daily", PUSD, LW_PERIOD_DAY, "global", "block");
    g_assert_true(lw_ledger_budget_put(l2, d, NULL));
    g_assert_true(lw_ledger_budget_remove(l2, "daily", NULL));
    g_assert_true(lw_ledger_alert_once(l2, "daily", BASE_MS, 80, NULL));
    g_assert_false(lw_ledger_alert_once(l2, "other", BASE_MS, 50, NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/ledger-budgets/migrate-v1", test_migrate_v1);
    ADD("/ledger-budgets/missing-tables", test_missing_tables);
    ADD("/ledger-budgets/budget-put-list", test_budget_put_list);
    ADD("/ledger-budgets/unknown-stored-value", test_unknown_stored_value);
    ADD("/ledger-budgets/guards", test_guards);
    ADD("/ledger-budgets/spent-scopes", test_spent_scopes);
    ADD("/ledger-budgets/spent-bad-tag", test_spent_bad_tag);
    ADD("/ledger-budgets/spent-plan", test_spent_plan);
    ADD("/ledger-budgets/alert-once", test_alert_once);
#undef ADD
    return g_test_run();
}
