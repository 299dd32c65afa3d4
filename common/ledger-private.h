/* ledger-private.h - what ledger.c shares with the query helpers next to it
 * (ledger-query.c, ledger-runs.c). Not for other modules: all SQL stays in
 * common/ledger*.c.
 */
#pragma once

#include <glib.h>
#include <sqlite3.h>

#include "ledger.h"

/* Rollups are kept per UTC hour. */
#define LW_LEDGER_HOUR_MS G_GINT64_CONSTANT(3600000)

/* Dimensions of the usage_hourly rollup (SQL literals). */
#define LW_LEDGER_DIM_MODEL "0" /* k1 provider, k2 model */
#define LW_LEDGER_DIM_TAGS "1"  /* k1 the tags text */
#define LW_LEDGER_DIM_RUN "2"   /* k1 the run id */

/* A run (bound as :run, the statement's first parameter) and every run
 * nested under it. UNION, not UNION ALL: should the ledger hold a loop of
 * parents, the recursion ends instead of running for ever. */
#define LW_LEDGER_RUN_TREE_CTE                                                                    \
    "WITH RECURSIVE tree(id) AS (SELECT :run UNION "                                               \
    "SELECT r.id FROM runs r JOIN tree t ON r.parent_id = t.id) "

/* The model a row is counted (and priced) under: the one the provider
 * served, else the one sent, else the one the client asked for. The
 * rollups store exactly this value. */
#define LW_LEDGER_MODEL_SQL "COALESCE(model_served, model_sent, model_requested, '')"

/* The one translation of SQLite result codes into GErrors:
 * LW_LEDGER_ERROR_SQLITE with "what: SQLite's message". Returns FALSE so
 * callers can `return lw_ledger_sqlite_error(...)`. */
gboolean lw_ledger_sqlite_error(GError **error, sqlite3 *db, const char *what);

/* Prepares `sql` on the ledger's connection; NULL with error set. */
sqlite3_stmt *lw_ledger_prepare(LwLedger *ledger, const char *sql, GError **error);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK with the cached statements. Commit
 * first writes the rollups of the rows inserted since begin; after a
 * failed commit, roll back. Rollback never fails in a way a caller could
 * act on, so it reports nothing. */
gboolean lw_ledger_begin(LwLedger *ledger, GError **error);
gboolean lw_ledger_commit(LwLedger *ledger, GError **error);
void lw_ledger_rollback(LwLedger *ledger);

/* Inserts one request row with the given id (> 0) inside the caller's
 * transaction; lw_ledger_commit() writes the rollups of the transaction's
 * rows, summed per key (ledger-rollup.h). A row with that id already there
 * is left alone and not counted again: replaying a spool that was applied
 * but not yet emptied changes nothing. */
gboolean lw_ledger_insert_row(LwLedger *ledger, gint64 id, const LwLedgerRequest *row,
                              GError **error);

/* The largest request row id, 0 when there is none. */
gboolean lw_ledger_max_request_id(LwLedger *ledger, gint64 *ret_id, GError **error);

/* Sets request `id`'s cost to row->cost (cost_source "price" when known,
 * else NULL) and its warning to row->warning, inside the caller's
 * transaction; lw_ledger_commit() moves the
 * rollups with it. `row` gives the keys the request is counted under (time,
 * provider, models, tags, run) and `old` the cost it had. */
gboolean lw_ledger_recost_row(LwLedger *ledger, gint64 id, const LwLedgerRequest *row, LwCost old,
                              GError **error);

/* How long this connection waits for another's lock before SQLITE_BUSY
 * (0: the default, 5 s). */
void lw_ledger_set_busy_timeout(LwLedger *ledger, gint64 limit_us);

/* A text column as a new string (NULL for NULL). */
static inline char *lw_ledger_column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? g_strdup((const char *)t) : NULL;
}

/* Floor division for times before 1970 as well. */
static inline gint64 lw_ledger_floor_div(gint64 a, gint64 b)
{
    gint64 q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
