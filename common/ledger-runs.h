/* ledger-runs.h - run bookkeeping queries on the ledger: a run's facts
 * (for a collector that restarted while runs were open) and its spend (for
 * llmwrap's exit summary and run budgets).
 *
 * A run's spend includes its descendants: the runs of nested llmwraps.
 *
 * Thread-safety: as for LwLedger.
 */
#pragma once

#include <glib.h>

#include "ledger.h"
#include "run-summary.h"

typedef struct {
    guint64 id;
    guint64 parent_id; /* 0 = top level */
    char *tags_json;   /* NULL = none */
    gint64 budget_pusd; /* -1 = none */
    gint64 started_ms;
    gboolean ended;
    gboolean killed; /* by `llmctl kill` */
} LwLedgerRunInfo;

/* Looks a run up. LW_LEDGER_ERROR_NOT_FOUND when there is no such run. */
gboolean lw_ledger_run_get(LwLedger *ledger, guint64 run_id, LwLedgerRunInfo *ret,
                           GError **error);
void lw_ledger_run_info_clear(LwLedgerRunInfo *info);

/* Records that `llmctl kill` stopped the run at `killed_ms` (a second kill
 * keeps the first time). LW_LEDGER_ERROR_NOT_FOUND when there is no such
 * run. */
gboolean lw_ledger_run_kill(LwLedger *ledger, guint64 run_id, gint64 killed_ms, GError **error);

/* How many killed runs a request could still come from: those open, and
 * those older than a run still open, which may be nested in them (run ids
 * only grow, so a parent is older than its child). -1 on error. */
gint64 lw_ledger_runs_killed_live(LwLedger *ledger, GError **error);

/* Spend of a run and its descendants, grouped by provider and model.
 * Free with lw_run_summary_clear(). */
gboolean lw_ledger_run_summary(LwLedger *ledger, guint64 run_id, LwRunSummary *ret,
                               GError **error);

/* Known spend (pico-USD) of a run and its descendants. -1 on error. */
gint64 lw_ledger_run_spent(LwLedger *ledger, guint64 run_id, GError **error);
