/* ledger-budgets.h - budgets and guards kept in the ledger, and the spend
 * queries budgets are rebuilt from.
 *
 * llmctl writes definitions here and then tells a running collector to
 * reload (IPC ReloadRequest); the collector reads them at start and on
 * reload. Spend is never stored separately: it is the sum of recorded costs
 * in the budget's scope and window, so a restarted collector rebuilds it
 * exactly (reservations of requests that died with the old process are
 * simply gone).
 *
 * Thread-safety: as for LwLedger.
 */
#pragma once

#include <glib.h>

#include "budget-def.h"
#include "ledger.h"

/* Inserts or replaces the budget with def->name (created_ms kept on
 * replace; reset_ms kept). */
gboolean lw_ledger_budget_put(LwLedger *ledger, const LwBudgetDef *def, GError **error);

/* LW_LEDGER_ERROR_NOT_FOUND when there is no such budget. */
gboolean lw_ledger_budget_remove(LwLedger *ledger, const char *name, GError **error);

/* Spend before `now_ms` no longer counts for this budget. */
gboolean lw_ledger_budget_reset(LwLedger *ledger, const char *name, gint64 now_ms,
                                GError **error);

/* Every budget, by name. Element type LwBudgetDef* (lw_budget_def_free). A
 * ledger without the table (older schema opened readonly) gives an empty
 * array. */
GPtrArray *lw_ledger_budget_list(LwLedger *ledger, GError **error);

/* Known spend (pico-USD) in the budget's scope with time_ms in
 * [since_ms, until_ms), counting only rows at or after def->reset_ms, and
 * for run budgets only the run tree of `run_id` (0 = all runs). Every row's
 * cost counts: a refused request's is 0, and a stream a budget ended was
 * charged for what it used. -1 on error. */
gint64 lw_ledger_budget_spent(LwLedger *ledger, const LwBudgetDef *def, gint64 since_ms,
                              gint64 until_ms, guint64 run_id, GError **error);

/* Records that `threshold` fired for the window starting at window_start_ms
 * (window_start_ms = the run id for run budgets). Returns TRUE if this is
 * the first time (the caller fires the alert), FALSE if it already fired. */
gboolean lw_ledger_alert_once(LwLedger *ledger, const char *budget, gint64 window_start_ms,
                              guint threshold, GError **error);

/* Guards kept in the ledger (config.ini guards are not stored). */
gboolean lw_ledger_guard_put(LwLedger *ledger, const LwGuardDef *def, GError **error);
gboolean lw_ledger_guard_remove(LwLedger *ledger, const char *name, GError **error);
GPtrArray *lw_ledger_guard_list(LwLedger *ledger, GError **error); /* LwGuardDef* */
