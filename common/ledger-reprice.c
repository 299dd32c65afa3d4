/* ledger-reprice.c - stored costs recomputed in chunks (see
 * ledger-reprice.h). */
#include "ledger-reprice.h"

#include <string.h>

#include "ledger-private.h"

/* Rows per transaction: ~25 ms of work on the benchmark machine
 * (docs/performance.md), which is how long a collector waits for it. */
#define CHUNK_ROWS 2000
/* The gap between chunks. Another writer polls for the lock every
 * millisecond (ledger.c), so a few ms let every waiting one in. */
#define GAP_US 3000

/* One row whose cost changes: its keys for the rollups, in `row`. */
typedef struct {
    gint64 id;
    LwLedgerRequest row; /* time, run, tags, provider, models, new cost */
    LwCost old;
} Change;

static void change_clear(gpointer p)
{
    Change *c = p;
    g_free((char *)c->row.tags_json);
    g_free((char *)c->row.provider);
    g_free((char *)c->row.model_served);
    g_free((char *)c->row.model_sent);
    g_free((char *)c->row.model_requested);
    g_free((char *)c->row.warning);
}

enum {
    COL_ID,
    COL_TIME,
    COL_RUN,
    COL_TAGS,
    COL_PROVIDER,
    COL_ENDPOINT,
    COL_SERVED,
    COL_SENT,
    COL_REQUESTED,
    COL_INPUT,
    COL_CACHED,
    COL_CACHE_WRITE,
    COL_CACHE_WRITE_1H,
    COL_OUTPUT,
    COL_REASONING,
    COL_COST,
    COL_SOURCE,
    COL_CACHE_HIT,
    COL_UNBILLED,
    COL_WARNING,
};

/* The row's warning with its price note (first, when there is one) made to
 * match the new price: dropped once the model is priced, added when it no
 * longer is. The rest of the warning stays. */
static char *warning_repriced(const char *old, char *note)
{
    const char *rest = old;
    if (rest != NULL && g_str_has_prefix(rest, LW_PRICING_NOTE_PREFIX)) {
        const char *sep = strstr(rest, "; ");
        rest = sep != NULL ? sep + 2 : NULL;
    }
    if (note == NULL)
        return g_strdup(rest);
    if (rest == NULL)
        return note;
    char *both = g_strconcat(note, "; ", rest, NULL);
    g_free(note);
    return both;
}

/* Reads the rows after *last_id (up to CHUNK_ROWS of them, whether they
 * are repriced or not, so a chunk's length is bounded however few rows
 * qualify) and collects the changes. *ret_rows is how many were read. */
static gboolean collect(LwLedger *ledger, const LwPricing *pricing, gint64 since, gint64 *last_id,
                        GArray *changes, guint *ret_rows, LwRepriceResult *res, GError **error)
{
    sqlite3_stmt *st = lw_ledger_prepare(
        ledger,
        "SELECT id, time_ms, run_id, tags, provider, endpoint, model_served, model_sent, "
        "model_requested, "
        "input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, "
        "output_tokens, reasoning_tokens, cost_pusd, cost_source, cache_hit, "
        "cost_source IS NULL AND cost_pusd IS NOT NULL, warning FROM requests WHERE id > ?1 "
        "ORDER BY id LIMIT ?2",
        error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_int64(st, 1, *last_id);
    sqlite3_bind_int(st, 2, CHUNK_ROWS);
    guint rows = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        *last_id = sqlite3_column_int64(st, COL_ID);
        const char *source = (const char *)sqlite3_column_text(st, COL_SOURCE);
        if (sqlite3_column_int64(st, COL_TIME) < since || g_strcmp0(source, "provider") == 0 ||
            sqlite3_column_int(st, COL_CACHE_HIT) != 0 || sqlite3_column_int(st, COL_UNBILLED) != 0)
            continue;
        LwCost old = {.known = sqlite3_column_type(st, COL_COST) != SQLITE_NULL,
                      .pusd = sqlite3_column_int64(st, COL_COST)};
        /* The collector leaves these unknown on purpose (ledger.h); a
         * price an older llmctl gave one is taken back. */
        gboolean unpriced_call = g_strcmp0((const char *)sqlite3_column_text(st, COL_ENDPOINT),
                                           LW_LEDGER_ENDPOINT_UNPRICED) == 0;
        if (unpriced_call && !old.known)
            continue;
        res->examined++;
        const char *served = (const char *)sqlite3_column_text(st, COL_SERVED);
        const char *sent = (const char *)sqlite3_column_text(st, COL_SENT);
        const char *requested = (const char *)sqlite3_column_text(st, COL_REQUESTED);
        /* As the collector priced it: the model the answer names, else the
         * one sent (a downgrade's, not the one the program asked for). */
        const char *provider = (const char *)sqlite3_column_text(st, COL_PROVIDER);
        const char *model = NULL;
        const LwPrice *price =
            unpriced_call ? NULL
                          : lw_pricing_lookup_answer(pricing, provider, served,
                                                     sent != NULL ? sent : requested, &model);
        LwCost cost = {.known = price != NULL};
        if (price != NULL) {
            LwTokens tokens = {
                .input_tokens = sqlite3_column_int64(st, COL_INPUT),
                .cached_input_tokens = sqlite3_column_int64(st, COL_CACHED),
                .cache_write_tokens = sqlite3_column_int64(st, COL_CACHE_WRITE),
                .cache_write_1h_tokens = sqlite3_column_int64(st, COL_CACHE_WRITE_1H),
                .output_tokens = sqlite3_column_int64(st, COL_OUTPUT),
                .reasoning_tokens = sqlite3_column_int64(st, COL_REASONING),
            };
            cost.pusd = lw_pricing_cost(price, &tokens);
        } else if (!unpriced_call) {
            res->now_unpriced++;
        }
        if (cost.known == old.known && (!cost.known || cost.pusd == old.pusd) &&
            g_strcmp0(source, cost.known ? "price" : NULL) == 0)
            continue;
        res->delta_pusd += (cost.known ? cost.pusd : 0) - (old.known ? old.pusd : 0);
        Change c = {
            .id = *last_id,
            .row = {.time_ms = sqlite3_column_int64(st, COL_TIME),
                    .run_id = (guint64)sqlite3_column_int64(st, COL_RUN),
                    .tags_json = lw_ledger_column_dup(st, COL_TAGS),
                    .provider = lw_ledger_column_dup(st, COL_PROVIDER),
                    .model_served = g_strdup(served),
                    .model_sent = g_strdup(sent),
                    .model_requested = g_strdup(requested),
                    .cost = cost,
                    .warning = warning_repriced(
                        (const char *)sqlite3_column_text(st, COL_WARNING),
                        unpriced_call ? NULL : lw_pricing_note(price, provider, served, model))},
            .old = old,
        };
        g_array_append_val(changes, c);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "reading rows to reprice");
    *ret_rows = rows;
    return TRUE;
}

/* One chunk in one transaction. The rows are read first and written
 * after, so no write happens under a running scan. */
static gboolean reprice_chunk(LwLedger *ledger, const LwPricing *pricing, gint64 since,
                              gint64 *last_id, guint *ret_rows, LwRepriceResult *res,
                              GError **error)
{
    g_autoptr(GArray) changes = g_array_new(FALSE, FALSE, sizeof(Change));
    g_array_set_clear_func(changes, change_clear);
    LwRepriceResult chunk = {0};
    gint64 last = *last_id;
    if (!lw_ledger_begin(ledger, error))
        return FALSE;
    if (!collect(ledger, pricing, since, &last, changes, ret_rows, &chunk, error))
        goto fail;
    for (guint i = 0; i < changes->len; i++) {
        const Change *c = &g_array_index(changes, Change, i);
        if (!lw_ledger_recost_row(ledger, c->id, &c->row, c->old, error))
            goto fail;
    }
    if (!lw_ledger_commit(ledger, error))
        goto fail;
    *last_id = last;
    res->examined += chunk.examined;
    res->changed += changes->len;
    res->now_unpriced += chunk.now_unpriced;
    res->delta_pusd += chunk.delta_pusd;
    return TRUE;
fail:
    lw_ledger_rollback(ledger);
    return FALSE;
}

gboolean lw_ledger_reprice(LwLedger *ledger, const LwPricing *pricing, gint64 since_ms,
                           LwRepriceProgress progress, void *data, LwRepriceResult *ret_result,
                           GError **error)
{
    g_return_val_if_fail(ledger != NULL && pricing != NULL && ret_result != NULL, FALSE);
    memset(ret_result, 0, sizeof *ret_result);
    /* The first row from since_ms on, by the time index; rows before it
     * that are older (ids follow the end of a request, times its start)
     * are skipped by the chunks. */
    gint64 last_id = 0;
    if (since_ms != LW_LEDGER_NO_SINCE) {
        sqlite3_stmt *st = lw_ledger_prepare(
            ledger, "SELECT COALESCE(MIN(id), -1) FROM requests WHERE time_ms >= ?1", error);
        if (st == NULL)
            return FALSE;
        sqlite3_bind_int64(st, 1, since_ms);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            last_id = sqlite3_column_int64(st, 0) - 1;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW)
            return lw_ledger_sqlite_error(error, lw_ledger_db(ledger), "finding rows to reprice");
        if (last_id < 0)
            return TRUE; /* none */
    }
    for (;;) {
        guint rows = 0;
        if (!reprice_chunk(ledger, pricing, since_ms, &last_id, &rows, ret_result, error))
            return FALSE;
        if (progress != NULL)
            progress(ret_result, data);
        if (rows < CHUNK_ROWS)
            return TRUE;
        g_usleep(GAP_US);
    }
}
