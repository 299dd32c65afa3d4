/* ledger-runs.c - run bookkeeping queries on the ledger. */
#include "ledger-runs.h"

#include <sqlite3.h>
#include <string.h>

#include "ledger-private.h"

static gboolean sqlite_error(GError **error, sqlite3 *db, const char *what)
{
    g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE, "%s: %s", what,
                sqlite3_errmsg(db));
    return FALSE;
}

static char *column_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? g_strdup((const char *)t) : NULL;
}

gboolean lw_ledger_run_get(LwLedger *ledger, guint64 run_id, LwLedgerRunInfo *ret,
                           GError **error)
{
    sqlite3 *db = lw_ledger_db(ledger);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT parent_id, tags, budget_pusd, started_ms, ended_ms, "
                           "killed_ms FROM runs WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sqlite_error(error, db, "run lookup");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)run_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE) {
            g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND,
                        "no run %" G_GUINT64_FORMAT, run_id);
            return FALSE;
        }
        return sqlite_error(error, db, "run lookup");
    }
    memset(ret, 0, sizeof *ret);
    ret->id = run_id;
    ret->parent_id = (guint64)sqlite3_column_int64(st, 0);
    ret->tags_json = column_text(st, 1);
    ret->budget_pusd =
        sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
    ret->started_ms = sqlite3_column_int64(st, 3);
    ret->ended = sqlite3_column_type(st, 4) != SQLITE_NULL;
    ret->killed = sqlite3_column_type(st, 5) != SQLITE_NULL;
    sqlite3_finalize(st);
    return TRUE;
}

void lw_ledger_run_info_clear(LwLedgerRunInfo *info)
{
    g_clear_pointer(&info->tags_json, g_free);
}

gboolean lw_ledger_run_kill(LwLedger *ledger, guint64 run_id, gint64 killed_ms, GError **error)
{
    g_return_val_if_fail(ledger != NULL, FALSE);
    sqlite3 *db = lw_ledger_db(ledger);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "UPDATE runs SET killed_ms = COALESCE(killed_ms, ?2) WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sqlite_error(error, db, "killing a run");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)run_id);
    sqlite3_bind_int64(st, 2, killed_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sqlite_error(error, db, "killing a run");
    if (sqlite3_changes(db) == 0) {
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND, "no run %" G_GUINT64_FORMAT,
                    run_id);
        return FALSE;
    }
    return TRUE;
}

gint64 lw_ledger_runs_killed_live(LwLedger *ledger, GError **error)
{
    g_return_val_if_fail(ledger != NULL, -1);
    sqlite3 *db = lw_ledger_db(ledger);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT COUNT(*) FROM runs AS k WHERE k.killed_ms IS NOT NULL AND "
                           "EXISTS (SELECT 1 FROM runs AS o WHERE o.id >= k.id AND "
                           "o.ended_ms IS NULL)",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite_error(error, db, "killed runs");
        return -1;
    }
    gint64 n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        sqlite_error(error, db, "killed runs");
    sqlite3_finalize(st);
    return n;
}

/* Collects the distinct non-NULL values of `column` over the run's rows. */
static gboolean distinct_values(sqlite3 *db, guint64 run_id, const char *column,
                                GPtrArray *out, GError **error)
{
    g_autofree char *sql = g_strdup_printf(
        LW_LEDGER_RUN_TREE_CTE "SELECT DISTINCT %s FROM requests WHERE run_id IN (SELECT id FROM tree) "
                     "AND %s IS NOT NULL ORDER BY 1 LIMIT 50",
        column, column);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sqlite_error(error, db, "run summary");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)run_id);
    while (sqlite3_step(st) == SQLITE_ROW)
        g_ptr_array_add(out, column_text(st, 0));
    sqlite3_finalize(st);
    return TRUE;
}

gboolean lw_ledger_run_summary(LwLedger *ledger, guint64 run_id, LwRunSummary *ret,
                               GError **error)
{
    sqlite3 *db = lw_ledger_db(ledger);
    LwRunSummary s = {
        .models = g_ptr_array_new_with_free_func(lw_run_model_spend_free),
        .refused_by = g_ptr_array_new_with_free_func(g_free),
        .warnings = g_ptr_array_new_with_free_func(g_free),
    };
    sqlite3_stmt *st = NULL;
    const char *sql =
        LW_LEDGER_RUN_TREE_CTE
        "SELECT provider, " LW_LEDGER_MODEL_SQL " AS m, COUNT(*), "
        "SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens), "
        "SUM(reasoning_tokens), SUM(COALESCE(cost_pusd, 0)), "
        "SUM(cost_pusd IS NULL), SUM(partial), SUM(refused_by IS NOT NULL) "
        "FROM requests WHERE run_id IN (SELECT id FROM tree) "
        "GROUP BY provider, m ORDER BY 8 DESC, 3 DESC";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        lw_run_summary_clear(&s);
        return sqlite_error(error, db, "run summary");
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)run_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        LwRunModelSpend *m = g_new0(LwRunModelSpend, 1);
        m->provider = column_text(st, 0);
        m->model = column_text(st, 1);
        m->requests = sqlite3_column_int64(st, 2);
        m->input_tokens = sqlite3_column_int64(st, 3);
        m->cached_input_tokens = sqlite3_column_int64(st, 4);
        m->output_tokens = sqlite3_column_int64(st, 5);
        m->reasoning_tokens = sqlite3_column_int64(st, 6);
        m->cost_pusd = sqlite3_column_int64(st, 7);
        m->unpriced = sqlite3_column_int64(st, 8);
        s.requests += m->requests;
        s.cost_pusd += m->cost_pusd;
        s.unpriced += m->unpriced;
        s.partial += sqlite3_column_int64(st, 9);
        s.refused += sqlite3_column_int64(st, 10);
        g_ptr_array_add(s.models, m);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || !distinct_values(db, run_id, "refused_by", s.refused_by, error) ||
        !distinct_values(db, run_id, "warning", s.warnings, error)) {
        lw_run_summary_clear(&s);
        if (rc != SQLITE_DONE)
            return sqlite_error(error, db, "run summary");
        return FALSE;
    }
    *ret = s;
    return TRUE;
}

gint64 lw_ledger_run_spent(LwLedger *ledger, guint64 run_id, GError **error)
{
    sqlite3 *db = lw_ledger_db(ledger);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           LW_LEDGER_RUN_TREE_CTE "SELECT COALESCE(SUM(cost_pusd), 0) FROM requests "
                                        "WHERE run_id IN (SELECT id FROM tree)",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite_error(error, db, "run spend");
        return -1;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)run_id);
    gint64 spent = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        spent = sqlite3_column_int64(st, 0);
    else
        sqlite_error(error, db, "run spend");
    sqlite3_finalize(st);
    return spent;
}
