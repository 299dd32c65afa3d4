/* ledger-spool.h - takes the SQLite commit off the collector's request path.
 *
 * When a request settles, the collector appends its row to the spool, a
 * file next to the ledger (ledger.spool), with one write(2), and answers
 * on. From then on the row is as durable as a committed SQLite row in WAL
 * mode with synchronous=NORMAL: it is in the kernel's page cache and
 * survives the process being killed at any instant. A thread of the spool
 * applies the rows to the ledger in batches, in order, one transaction
 * each; the loop empties the file once it has grown past 1 MiB and
 * everything in it is applied, and closing empties it too.
 *
 * Whoever opens a ledger later applies what a killed writer left in the
 * spool first: the collector when it starts, llmctl when no collector
 * holds the spool. Applying is idempotent (rows carry their ids), so a
 * writer killed between a commit and emptying the file costs nothing.
 *
 * One writer at a time: the open spool holds an exclusive flock(2) on its
 * file.
 *
 * Reads of request rows from another connection of the writer's process
 * (budgets, run summaries) must see every appended row, and writes from
 * there must not wait on the spool thread's transaction (SQLite would
 * make them sleep): lw_spool_hold first applies what is queued, on the
 * caller's thread, and keeps the spool thread out until lw_spool_release.
 *
 * Thread-safety: lw_spool_append, hold/release and close are called from
 * one thread (the collector's loop); the spool's own thread is internal.
 */
#pragma once

#include <glib.h>

#include "ledger.h"

typedef struct _LwSpool LwSpool;

/* Opens the spool at `path` for the ledger at `ledger_path` (which must
 * exist and be migrated): takes the lock (LW_LEDGER_ERROR_BUSY if another
 * process holds it past a short wait), applies and empties what it holds,
 * and starts the applying thread. Transfer full. */
LwSpool *lw_spool_open(const char *path, const char *ledger_path, GError **error);

/* Stops the thread, applies the rest and empties the file. A row that
 * cannot be applied (SQLite failing) stays in the file for the next open. */
void lw_spool_close(LwSpool *spool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwSpool, lw_spool_close)

/* Records `row`: durable against a process crash when this returns.
 * Returns the row's id, or 0 with error set (the row is then lost: the
 * spool could not be written, neither could the ledger, and the row could
 * not be kept for later). When neither the file nor the ledger takes it (a
 * full disk), the row is kept in memory and applied, in order, once the
 * ledger can be written again: it survives the disk filling up, not the
 * process dying meanwhile. */
gint64 lw_spool_append(LwSpool *spool, const LwLedgerRequest *row, GError **error);

/* See the top of this file. NULL-safe; hold/release pair up, not nested.
 * Returns FALSE when rows are still queued because they could not be
 * applied (another process held the ledger's write lock for more than
 * 100 ms): the hold is taken all the same, and the caller reads without
 * them. */
gboolean lw_spool_hold(LwSpool *spool);
void lw_spool_release(LwSpool *spool);

/* For a process that is not the writer (llmctl): if no one holds the
 * spool at `path`, applies what it holds to the ledger at `ledger_path`
 * and empties it. Returns TRUE when done (a missing spool counts);
 * FALSE with LW_LEDGER_ERROR_BUSY when a writer holds it (ask the writer
 * instead), or with another error. */
gboolean lw_spool_drain(const char *path, const char *ledger_path, GError **error);
