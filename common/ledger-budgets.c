/* ledger-budgets.c - budget and guard definitions in the ledger, and the
 * spend a budget is rebuilt from. See ledger-budgets.h; the tables are
 * schema step 2 in ledger.c.
 *
 * Storage: the syntax strings of budget-def.h (period "day", scope kind
 * "provider", action "downgrade", alerts "50,80,95"), so the tables read
 * plainly in the sqlite3 shell and a value this build does not know is
 * reported rather than misread.
 *
 * Scope of the spend query:
 *   provider:P   provider = P
 *   model:M      the model the program asked for, else the one served:
 *                a budget is about what a program chose to call, and a
 *                served name is often a dated snapshot ("gpt-4o-2024-08-06")
 *                the user never wrote; a downgrade budget's rewritten
 *                requests then still count against the model asked for
 *   tag:K=V      the request's tags (a JSON object of strings) have K = V
 *   run budgets  the run tree of the given run (nested llmwraps included)
 * Refused requests never count (they are recorded at cost 0 anyway, but
 * the rule does not depend on that), nor do unknown costs (NULL).
 *
 * Speed: see lw_ledger_budget_spent below; every part of the query rides
 * an index, so its cost does not grow with the ledger.
 */
#include "ledger-budgets.h"

#include <string.h>

#include "clock.h"
#include "ledger-private.h"

static const char *const scope_names[] = {
    [LW_SCOPE_GLOBAL] = "global",
    [LW_SCOPE_PROVIDER] = "provider",
    [LW_SCOPE_MODEL] = "model",
    [LW_SCOPE_TAG] = "tag",
};

static const char *const action_names[] = {
    [LW_ACTION_BLOCK] = "block",
    [LW_ACTION_WARN] = "warn",
    [LW_ACTION_DOWNGRADE] = "downgrade",
    [LW_ACTION_CLAMP] = "clamp",
};

/* Looks `s` up in `names`; -1 if absent. */
static int name_index(const char *const *names, guint n, const char *s)
{
    for (guint i = 0; s != NULL && i < n; i++)
        if (names[i] != NULL && strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Whether the ledger has `table`: a ledger opened readonly is not
 * migrated, so an older one may lack the budget tables. */
static gboolean has_table(LwLedger *ledger, const char *table, gboolean *ret, GError **error)
{
    sqlite3_stmt *st = lw_ledger_prepare(
        ledger, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "ledger schema");
    *ret = rc == SQLITE_ROW;
    return TRUE;
}

/* Runs a statement that returns no rows; finalizes it. */
static gboolean run_done(LwLedger *ledger, sqlite3_stmt *st, const char *what, GError **error)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return lw_ledger_sqlite_error(error, lw_ledger_db(ledger), what);
    return TRUE;
}

static gboolean not_found(GError **error, const char *what, const char *name)
{
    g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND, "no %s named '%s'", what, name);
    return FALSE;
}

/* ---- budgets ---- */

static char *alerts_to_string(const LwBudgetDef *def)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < def->n_alerts && i < LW_BUDGET_MAX_ALERTS; i++)
        g_string_append_printf(s, "%s%u", i > 0 ? "," : "", def->alerts[i]);
    return g_string_free(s, FALSE);
}

static gboolean budget_is_valid(const LwBudgetDef *def)
{
    if (!lw_budget_name_is_valid(def->name) || def->limit_pusd <= 0 ||
        (guint)def->period > LW_PERIOD_REQUEST || (guint)def->scope >= G_N_ELEMENTS(scope_names) ||
        (guint)def->action >= G_N_ELEMENTS(action_names) || def->n_alerts > LW_BUDGET_MAX_ALERTS)
        return FALSE;
    if ((def->scope != LW_SCOPE_GLOBAL) != (def->scope_key != NULL) ||
        (def->scope == LW_SCOPE_TAG) != (def->scope_value != NULL))
        return FALSE;
    if ((def->action == LW_ACTION_DOWNGRADE) != (def->action_model != NULL))
        return FALSE;
    return TRUE;
}

gboolean lw_ledger_budget_put(LwLedger *ledger, const LwBudgetDef *def, GError **error)
{
    g_return_val_if_fail(ledger != NULL && def != NULL, FALSE);
    g_return_val_if_fail(budget_is_valid(def), FALSE);
    /* ON CONFLICT keeps created_ms and reset_ms: replacing a definition
     * (a new limit, say) is not a reset of what was spent. */
    sqlite3_stmt *st = lw_ledger_prepare(
        ledger,
        "INSERT INTO budgets (name, limit_pusd, period, scope, scope_key, scope_value, action, "
        "action_model, alerts, alert_command, created_ms, reset_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
        "ON CONFLICT (name) DO UPDATE SET limit_pusd = excluded.limit_pusd, "
        "period = excluded.period, scope = excluded.scope, scope_key = excluded.scope_key, "
        "scope_value = excluded.scope_value, action = excluded.action, "
        "action_model = excluded.action_model, alerts = excluded.alerts, "
        "alert_command = excluded.alert_command",
        error);
    if (st == NULL)
        return FALSE;
    g_autofree char *alerts = alerts_to_string(def);
    sqlite3_bind_text(st, 1, def->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, def->limit_pusd);
    sqlite3_bind_text(st, 3, lw_period_to_string(def->period), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, scope_names[def->scope], -1, SQLITE_STATIC);
    bind_text_or_null(st, 5, def->scope_key);
    bind_text_or_null(st, 6, def->scope_value);
    sqlite3_bind_text(st, 7, action_names[def->action], -1, SQLITE_STATIC);
    bind_text_or_null(st, 8, def->action_model);
    sqlite3_bind_text(st, 9, alerts, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 10, def->alert_command);
    sqlite3_bind_int64(st, 11, def->created_ms);
    sqlite3_bind_int64(st, 12, def->reset_ms);
    return run_done(ledger, st, "storing a budget", error);
}

gboolean lw_ledger_budget_remove(LwLedger *ledger, const char *name, GError **error)
{
    g_return_val_if_fail(ledger != NULL && name != NULL, FALSE);
    if (!lw_ledger_begin(ledger, error))
        return FALSE;
    /* The alert marks go with the budget: a new budget of the same name
     * starts with none fired. */
    sqlite3_stmt *st = lw_ledger_prepare(ledger, "DELETE FROM budgets WHERE name = ?1", error);
    if (st == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (!run_done(ledger, st, "removing a budget", error))
        goto fail;
    if (sqlite3_changes(lw_ledger_db(ledger)) == 0) {
        not_found(error, "budget", name);
        goto fail;
    }
    st = lw_ledger_prepare(ledger, "DELETE FROM budget_alerts WHERE budget = ?1", error);
    if (st == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (!run_done(ledger, st, "removing a budget's alerts", error) ||
        !lw_ledger_commit(ledger, error))
        goto fail;
    return TRUE;
fail:
    lw_ledger_rollback(ledger);
    return FALSE;
}

gboolean lw_ledger_budget_reset(LwLedger *ledger, const char *name, gint64 now_ms, GError **error)
{
    g_return_val_if_fail(ledger != NULL && name != NULL, FALSE);
    sqlite3_stmt *st =
        lw_ledger_prepare(ledger, "UPDATE budgets SET reset_ms = ?2 WHERE name = ?1", error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now_ms);
    if (!run_done(ledger, st, "resetting a budget", error))
        return FALSE;
    if (sqlite3_changes(lw_ledger_db(ledger)) == 0)
        return not_found(error, "budget", name);
    return TRUE;
}

/* One stored row back into a definition; FALSE (with error) for values
 * this build cannot read. */
static gboolean budget_from_row(sqlite3_stmt *st, LwBudgetDef *def, GError **error)
{
    memset(def, 0, sizeof *def);
    def->name = lw_ledger_column_dup(st, 0);
    def->limit_pusd = sqlite3_column_int64(st, 1);
    const char *period = (const char *)sqlite3_column_text(st, 2);
    int scope = name_index(scope_names, G_N_ELEMENTS(scope_names),
                           (const char *)sqlite3_column_text(st, 3));
    def->scope_key = lw_ledger_column_dup(st, 4);
    def->scope_value = lw_ledger_column_dup(st, 5);
    int action = name_index(action_names, G_N_ELEMENTS(action_names),
                            (const char *)sqlite3_column_text(st, 6));
    def->action_model = lw_ledger_column_dup(st, 7);
    const char *alerts = (const char *)sqlite3_column_text(st, 8);
    def->alert_command = lw_ledger_column_dup(st, 9);
    def->created_ms = sqlite3_column_int64(st, 10);
    def->reset_ms = sqlite3_column_int64(st, 11);
    if (!lw_period_parse(period, &def->period) || scope < 0 || action < 0 ||
        !lw_alerts_parse(alerts != NULL ? alerts : "", def->alerts, &def->n_alerts)) {
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE,
                    "budget '%s' in the ledger has a value this llmwrap does not know",
                    def->name != NULL ? def->name : "?");
        return FALSE;
    }
    def->scope = (LwScopeKind)scope;
    def->action = (LwActionKind)action;
    if (!budget_is_valid(def)) {
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE,
                    "budget '%s' in the ledger is inconsistent",
                    def->name != NULL ? def->name : "?");
        return FALSE;
    }
    return TRUE;
}

GPtrArray *lw_ledger_budget_list(LwLedger *ledger, GError **error)
{
    g_return_val_if_fail(ledger != NULL, NULL);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)lw_budget_def_free);
    gboolean present = FALSE;
    if (!has_table(ledger, "budgets", &present, error)) {
        g_ptr_array_unref(out);
        return NULL;
    }
    if (!present)
        return out;
    sqlite3_stmt *st = lw_ledger_prepare(
        ledger,
        "SELECT name, limit_pusd, period, scope, scope_key, scope_value, action, action_model, "
        "alerts, alert_command, created_ms, reset_ms FROM budgets ORDER BY name",
        error);
    if (st == NULL) {
        g_ptr_array_unref(out);
        return NULL;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        LwBudgetDef *def = g_new0(LwBudgetDef, 1);
        if (!budget_from_row(st, def, error)) {
            lw_budget_def_free(def);
            sqlite3_finalize(st);
            g_ptr_array_unref(out);
            return NULL;
        }
        g_ptr_array_add(out, def);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "listing budgets");
        g_ptr_array_unref(out);
        return NULL;
    }
    return out;
}

/* ---- spend ---- */


/* Hour arithmetic stays far from overflow: times are clamped to ±2^50 ms
 * (35,000 years) when hours are computed; the raw ranges keep the exact
 * bounds. */
#define TIME_LIMIT (G_GINT64_CONSTANT(1) << 50)

/* The condition of a scope on request rows, with :key, :path, :value. */
static const char *row_scope_sql(LwScopeKind scope)
{
    switch (scope) {
    case LW_SCOPE_GLOBAL:
        return "";
    case LW_SCOPE_PROVIDER:
        return " AND provider = :key";
    case LW_SCOPE_MODEL:
        return " AND COALESCE(model_requested, model_served) = :key";
    case LW_SCOPE_TAG:
        return " AND CASE WHEN json_valid(tags) THEN json_extract(tags, :path) END = :value";
    }
    return NULL;
}

/* The same condition on usage_hourly rows, or NULL when the rollups do
 * not have the key (model scope: the rollups key on the model served). */
static const char *rollup_scope_sql(LwScopeKind scope)
{
    switch (scope) {
    case LW_SCOPE_GLOBAL:
        return "dim = " LW_LEDGER_DIM_MODEL;
    case LW_SCOPE_PROVIDER:
        return "dim = " LW_LEDGER_DIM_MODEL " AND k1 = :key";
    case LW_SCOPE_TAG:
        return "dim = " LW_LEDGER_DIM_TAGS
               " AND CASE WHEN json_valid(k1) THEN json_extract(k1, :path) END = :value";
    case LW_SCOPE_MODEL:
        break;
    }
    return NULL;
}

static void bind_named(sqlite3_stmt *st, const char *name, gint64 v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_int64(st, i, v);
}

static void bind_named_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Calendar windows sum three parts, each riding an index:
 *   rows     the partial hours at either edge of the range, from the
 *            requests (requests_time)
 *   rollups  the whole hours inside it, from usage_hourly (keyed hour
 *            first), which the insert keeps in step with the rows
 * so a month window costs about an hour's rows plus the month's rollup
 * keys, not a scan of the month. Model scopes (the rollups key on the model
 * served) and run trees read rows only. Measured on 1M rows over 90 days
 * (bench-ledger's ledger, ~340k rows in the month): global, provider or
 * tag scope 0.1 ms for an hour, 0.2-0.3 ms for a day, 5-6 ms for the
 * month; model scope 5 ms for a day and 100-150 ms for the month (a row
 * scan of the window); a run tree 0.2-0.4 ms. */
gint64 lw_ledger_budget_spent(LwLedger *ledger, const LwBudgetDef *def, gint64 since_ms,
                              gint64 until_ms, guint64 run_id, GError **error)
{
    g_return_val_if_fail(ledger != NULL && def != NULL, -1);
    gint64 since = MAX(since_ms, def->reset_ms);
    if (since >= until_ms)
        return 0;
    const char *row_scope = row_scope_sql(def->scope);
    g_return_val_if_fail(row_scope != NULL, -1);
    g_autofree char *path = NULL;
    if (def->scope == LW_SCOPE_TAG) {
        /* The key is quoted in the path; a '"' in it could not be. Keys
         * from lw_scope_parse never hold one. */
        if (def->scope_key == NULL || def->scope_key[0] == '\0' ||
            strchr(def->scope_key, '"') != NULL || def->scope_value == NULL) {
            g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE,
                        "budget '%s': bad tag scope", def->name);
            return -1;
        }
        path = g_strdup_printf("$.\"%s\"", def->scope_key);
    }

    /* Whole hours from the rollups where they have the scope's key (not
     * for run trees, nor "every run", which the rollups cannot tell). */
    const char *rollup_scope =
        run_id == 0 && def->period != LW_PERIOD_RUN ? rollup_scope_sql(def->scope) : NULL;
    const gint64 H = LW_LEDGER_HOUR_MS;
    gint64 hlo = -lw_ledger_floor_div(-CLAMP(since, -TIME_LIMIT, TIME_LIMIT), H); /* ceil */
    gint64 hhi = lw_ledger_floor_div(CLAMP(until_ms, -TIME_LIMIT, TIME_LIMIT), H);
    if (rollup_scope == NULL || hlo >= hhi)
        hlo = hhi = 0;

    g_autoptr(GString) sql = g_string_new(NULL);
    if (run_id != 0) {
        /* The run index: a run's rows are few, and its window is usually
         * everything (`+time_ms` keeps the planner off the time index). */
        g_string_append_printf(sql,
                               LW_LEDGER_RUN_TREE_CTE
                               "SELECT COALESCE(SUM(cost_pusd), 0) FROM requests WHERE "
                               "+time_ms >= :a0 AND +time_ms < :b0 "
                               "AND run_id IS NOT NULL AND run_id IN (SELECT id FROM tree)%s",
                               row_scope);
    } else {
        const char *runs_only = def->period == LW_PERIOD_RUN ? " AND run_id IS NOT NULL" : "";
        static const char rows[] =
            "(SELECT COALESCE(SUM(cost_pusd), 0) FROM requests WHERE time_ms >= :a%d AND "
            "time_ms < :b%d%s%s)";
        g_string_append(sql, "SELECT ");
        g_string_append_printf(sql, rows, 0, 0, runs_only, row_scope);
        if (hlo < hhi) {
            g_string_append(sql, " + ");
            g_string_append_printf(sql, rows, 1, 1, runs_only, row_scope);
            g_string_append_printf(sql,
                                   " + (SELECT COALESCE(SUM(cost_pusd), 0) FROM usage_hourly "
                                   "WHERE hour >= :hlo AND hour < :hhi AND %s)",
                                   rollup_scope);
        }
    }

    sqlite3_stmt *st = lw_ledger_prepare(ledger, sql->str, error);
    if (st == NULL)
        return -1;
    if (hlo < hhi) {
        bind_named(st, ":a0", since);
        bind_named(st, ":b0", hlo * H);
        bind_named(st, ":a1", hhi * H);
        bind_named(st, ":b1", until_ms);
        bind_named(st, ":hlo", hlo);
        bind_named(st, ":hhi", hhi);
    } else {
        bind_named(st, ":a0", since);
        bind_named(st, ":b0", until_ms);
    }
    if (run_id != 0)
        bind_named(st, ":run", (gint64)run_id);
    bind_named_text(st, ":key", def->scope_key);
    bind_named_text(st, ":path", path);
    bind_named_text(st, ":value", def->scope_value);
    gint64 spent = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        spent = sqlite3_column_int64(st, 0);
    else
        lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "budget spend");
    sqlite3_finalize(st);
    return spent;
}

gboolean lw_ledger_alert_once(LwLedger *ledger, const char *budget, gint64 window_start_ms,
                              guint threshold, GError **error)
{
    g_return_val_if_fail(ledger != NULL && budget != NULL, FALSE);
    sqlite3_stmt *st = lw_ledger_prepare(
        ledger,
        "INSERT OR IGNORE INTO budget_alerts (budget, window_start_ms, threshold, fired_ms) "
        "VALUES (?1, ?2, ?3, ?4)",
        error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_text(st, 1, budget, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, window_start_ms);
    sqlite3_bind_int64(st, 3, threshold);
    sqlite3_bind_int64(st, 4, lw_clock_now_ms());
    if (!run_done(ledger, st, "recording a budget alert", error))
        return FALSE;
    return sqlite3_changes(lw_ledger_db(ledger)) > 0;
}

/* ---- guards ---- */

gboolean lw_ledger_guard_put(LwLedger *ledger, const LwGuardDef *def, GError **error)
{
    g_return_val_if_fail(ledger != NULL && def != NULL, FALSE);
    g_return_val_if_fail(lw_budget_name_is_valid(def->name) && def->threshold > 0, FALSE);
    sqlite3_stmt *st =
        lw_ledger_prepare(ledger,
                          "INSERT OR REPLACE INTO guards (name, kind, threshold, window_ms, block) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)",
                          error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_text(st, 1, def->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, lw_guard_kind_to_string(def->kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, def->threshold);
    sqlite3_bind_int64(st, 4, def->window_ms);
    sqlite3_bind_int(st, 5, def->block ? 1 : 0);
    return run_done(ledger, st, "storing a guard", error);
}

gboolean lw_ledger_guard_remove(LwLedger *ledger, const char *name, GError **error)
{
    g_return_val_if_fail(ledger != NULL && name != NULL, FALSE);
    sqlite3_stmt *st = lw_ledger_prepare(ledger, "DELETE FROM guards WHERE name = ?1", error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (!run_done(ledger, st, "removing a guard", error))
        return FALSE;
    if (sqlite3_changes(lw_ledger_db(ledger)) == 0)
        return not_found(error, "guard", name);
    return TRUE;
}

GPtrArray *lw_ledger_guard_list(LwLedger *ledger, GError **error)
{
    g_return_val_if_fail(ledger != NULL, NULL);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)lw_guard_def_free);
    gboolean present = FALSE;
    if (!has_table(ledger, "guards", &present, error)) {
        g_ptr_array_unref(out);
        return NULL;
    }
    if (!present)
        return out;
    sqlite3_stmt *st = lw_ledger_prepare(
        ledger, "SELECT name, kind, threshold, window_ms, block FROM guards ORDER BY name", error);
    if (st == NULL) {
        g_ptr_array_unref(out);
        return NULL;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        LwGuardDef *def = g_new0(LwGuardDef, 1);
        def->name = lw_ledger_column_dup(st, 0);
        gint64 window = sqlite3_column_int64(st, 3);
        if (!lw_guard_kind_parse((const char *)sqlite3_column_text(st, 1), &def->kind) ||
            window < 0 || window > G_MAXUINT) {
            g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE,
                        "guard '%s' in the ledger has a value this llmwrap does not know",
                        def->name != NULL ? def->name : "?");
            lw_guard_def_free(def);
            sqlite3_finalize(st);
            g_ptr_array_unref(out);
            return NULL;
        }
        def->threshold = sqlite3_column_int64(st, 2);
        def->window_ms = (guint)window;
        def->block = sqlite3_column_int(st, 4) != 0;
        def->from_config = FALSE;
        g_ptr_array_add(out, def);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "listing guards");
        g_ptr_array_unref(out);
        return NULL;
    }
    return out;
}
