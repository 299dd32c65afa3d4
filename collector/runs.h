/* runs.h - the llmwrap runs the collector knows: tags, budget, spend.
 *
 * llmwrap opens a run over IPC before it starts the program and closes it
 * when the program exits; requests carry the run id in their attribution.
 * The registry caches what requests need on every call (tags for the
 * ledger row, the run's budget, its nesting). It holds the open runs, the
 * killed ones, and ended runs a late request named: a run leaves it when
 * it closes. A run opened before a collector restart is loaded from the
 * ledger the first time a request names it.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "ledger.h"
#include "ledger-spool.h"

typedef struct {
    guint64 id;
    guint64 parent_id;
    char *tags_json;    /* NULL = none */
    gint64 budget_pusd; /* -1 = none */
    gboolean killed;    /* llmctl kill: refuse every further request */
    gboolean open;
    guint64 owner;      /* the IPC client of the llmwrap that opened it; 0 = none */
} LwRun;

typedef struct _LwRuns LwRuns;

/* `ledger` and `spool` are borrowed (NULL: runs then live in memory only;
 * a NULL spool alone: nothing else writes the ledger). */
LwRuns *lw_runs_new(LwLedger *ledger, LwSpool *spool);
void lw_runs_free(LwRuns *runs);

/* Records a new run in the ledger and the registry. Returns its id, 0 on
 * error. */
guint64 lw_runs_open(LwRuns *runs, const LwLedgerRun *run, GError **error);

/* Called with each run that ends (closed, or abandoned by its llmwrap), on
 * the loop thread, so that what other modules keep per run goes with it. */
typedef void (*LwRunsClosedFunc)(guint64 run_id, void *data);
void lw_runs_set_closed_func(LwRuns *runs, LwRunsClosedFunc func, void *data);

/* Marks a run ended in the ledger and drops it from the registry (a killed
 * run stays: its children must still see the kill); a negative
 * exit_status is recorded as unknown. The closed func is told, also when
 * the ledger could not be written. */
gboolean lw_runs_close(LwRuns *runs, guint64 run_id, int exit_status, GError **error);

/* Ties an open run to the IPC client that opened it, or that reattached
 * to it after a collector restart (the run is then loaded from the
 * ledger). FALSE when the run is unknown or already ended. */
gboolean lw_runs_set_owner(LwRuns *runs, guint64 run_id, guint64 owner);

/* Ends, with an unknown exit status, the runs still open that `owner`
 * opened: its llmwrap went away without closing them (killed with -9). */
void lw_runs_abandon(LwRuns *runs, guint64 owner);

/* The run, from the cache or the ledger; NULL when unknown. Borrowed until
 * the next call that changes the registry. */
const LwRun *lw_runs_get(LwRuns *runs, guint64 run_id);

/* Refuses every further request of the run, also after a collector
 * restart (the kill is recorded in the ledger). FALSE when unknown. */
gboolean lw_runs_kill(LwRuns *runs, guint64 run_id);

/* Is the run, or a run it is nested in, stopped by `llmctl kill`? NULL
 * runs and run 0 are not. */
gboolean lw_runs_killed(LwRuns *runs, guint64 run_id);

/* The outermost run `run_id` is nested in: itself when it is not nested,
 * is unknown, or `runs` is NULL; 0 for 0. */
guint64 lw_runs_root(LwRuns *runs, guint64 run_id);
