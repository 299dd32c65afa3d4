/* ledger-reprice.h - recomputes stored costs with a price table (`llmctl
 * reprice`, after a price change or a new [price.MODEL] override).
 *
 * It runs beside a collector writing the same ledger, so it never holds
 * SQLite's write lock for long: it works in chunks of rows, one
 * transaction each, and leaves a gap between them for other writers. A
 * collector that needs the ledger (to apply its spool, to start a run)
 * waits for one chunk, not for the whole reprice, which over a million
 * rows takes seconds.
 *
 * Thread-safety: as for LwLedger (one thread at a time per ledger).
 */
#pragma once

#include <glib.h>

#include "ledger-query.h"
#include "pricing.h"

typedef struct {
    gint64 examined;     /* rows looked at */
    gint64 changed;      /* rows whose cost (or known-ness) changed */
    gint64 now_unpriced; /* examined rows left without a price (no price for the model) */
    gint64 delta_pusd;   /* new minus old, over known costs */
} LwRepriceResult;

/* Called after each committed chunk with the totals so far. */
typedef void (*LwRepriceProgress)(const LwRepriceResult *so_far, void *data);

/* Recomputes cost_pusd and cost_source ("price", or NULL when there is no
 * price) with `pricing` for every row from since_ms on (or
 * LW_LEDGER_NO_SINCE), and moves the
 * hourly rollups with them: rows priced before ("price") and rows whose
 * price was unknown (cost NULL). Left alone: provider-reported costs
 * (cost_source "provider"), cache hits, requests nobody bills (cost 0
 * and no source: refused, failed, free endpoints), and calls llmwrap
 * cannot price (LW_LEDGER_ENDPOINT_UNPRICED: their cost stays unknown;
 * one an older llmctl priced is set back to unknown, and counts as
 * examined and changed). A stream a budget ended is priced like any
 * other. The ledger must be open read-write; `progress` may be NULL.
 *
 * Each chunk commits on its own, rows and rollups together, so the ledger
 * stays consistent at every point. On failure *ret_result holds what the
 * committed chunks did; running it again finishes the job (repricing a
 * row twice changes nothing). */
gboolean lw_ledger_reprice(LwLedger *ledger, const LwPricing *pricing, gint64 since_ms,
                           LwRepriceProgress progress, void *data, LwRepriceResult *ret_result,
                           GError **error);
