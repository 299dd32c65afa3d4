/* ledger-rollup.h - the hourly rollups of the request rows inserted (or
 * repriced) in one transaction, summed in memory and written once per key
 * at commit.
 *
 * Why: the spool applies rows in batches (tens at a time under load, all
 * usually from one program and model). Updating usage_hourly per row cost
 * three upserts each, more than the row's own insert; per batch it costs
 * three per distinct key. Private to common/ledger*.c.
 *
 * Not thread-safe: it belongs to one ledger connection.
 */
#pragma once

#include <glib.h>

#include "ledger-query.h"
#include "ledger.h"

/* The keys of one rollup entry (see usage_hourly in ledger.c) and its sums. */
typedef struct {
    gint64 hour;    /* UTC hours since the epoch */
    char *provider; /* '' = none */
    char *model;    /* served, else sent, else requested; '' = none */
    char *tags;     /* '' = none */
    guint64 run_id; /* 0 = none */
    LwUsageRow sums; /* of its rows, as usage queries report them; `key` unused */
} LwRollupEntry;

typedef struct _LwRollupBatch LwRollupBatch;

LwRollupBatch *lw_rollup_batch_new(void);
void lw_rollup_batch_free(LwRollupBatch *batch);

/* Adds one row to the entry of its keys. */
void lw_rollup_batch_add(LwRollupBatch *batch, const LwLedgerRequest *row);

/* Moves `r`, already counted in the rollups, from cost `old` to r->cost.
 * Only r's keys and cost are read. The entry's other sums stay zero, so
 * writing it changes nothing else. */
void lw_rollup_batch_recost(LwRollupBatch *batch, const LwLedgerRequest *r, LwCost old);

gboolean lw_rollup_batch_is_empty(const LwRollupBatch *batch);

/* Calls `fn` for each entry, in no particular order, until it returns
 * FALSE; returns FALSE then. */
gboolean lw_rollup_batch_foreach(LwRollupBatch *batch,
                                 gboolean (*fn)(const LwRollupEntry *entry, void *data),
                                 void *data);

/* Forgets every entry (after they were written, or with a rollback). */
void lw_rollup_batch_clear(LwRollupBatch *batch);
