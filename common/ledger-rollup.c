/* ledger-rollup.c - per-transaction rollup sums (see ledger-rollup.h). */
#include "ledger-rollup.h"

#include <string.h>

#include "ledger-private.h"

struct _LwRollupBatch {
    GHashTable *entries; /* LwRollupEntry -> itself */
};

static guint entry_hash(gconstpointer p)
{
    const LwRollupEntry *e = p;
    guint h = g_str_hash(e->provider);
    h = h * 31 + g_str_hash(e->model);
    h = h * 31 + g_str_hash(e->tags);
    h = h * 31 + (guint)e->hour;
    return h * 31 + (guint)e->run_id;
}

static gboolean entry_equal(gconstpointer a, gconstpointer b)
{
    const LwRollupEntry *x = a, *y = b;
    return x->hour == y->hour && x->run_id == y->run_id && strcmp(x->provider, y->provider) == 0 &&
           strcmp(x->model, y->model) == 0 && strcmp(x->tags, y->tags) == 0;
}

static void entry_free(gpointer p)
{
    LwRollupEntry *e = p;
    g_free(e->provider);
    g_free(e->model);
    g_free(e->tags);
    g_free(e);
}

LwRollupBatch *lw_rollup_batch_new(void)
{
    LwRollupBatch *batch = g_new0(LwRollupBatch, 1);
    batch->entries = g_hash_table_new_full(entry_hash, entry_equal, entry_free, NULL);
    return batch;
}

void lw_rollup_batch_free(LwRollupBatch *batch)
{
    if (batch == NULL)
        return;
    g_hash_table_unref(batch->entries);
    g_free(batch);
}

/* The entry of `r`'s keys, created with zero sums if new. */
static LwRollupEntry *entry_of(LwRollupBatch *batch, const LwLedgerRequest *r)
{
    /* Must match LW_LEDGER_MODEL_SQL. */
    const char *model = r->model_served != NULL      ? r->model_served
                        : r->model_sent != NULL      ? r->model_sent
                        : r->model_requested != NULL ? r->model_requested
                                                     : "";
    LwRollupEntry key = {
        .hour = lw_ledger_floor_div(r->time_ms, LW_LEDGER_HOUR_MS),
        .provider = (char *)(r->provider != NULL ? r->provider : ""),
        .model = (char *)model,
        .tags = (char *)(r->tags_json != NULL ? r->tags_json : ""),
        .run_id = r->run_id,
    };
    LwRollupEntry *e = g_hash_table_lookup(batch->entries, &key);
    if (e == NULL) {
        e = g_new(LwRollupEntry, 1);
        *e = key;
        e->provider = g_strdup(key.provider);
        e->model = g_strdup(key.model);
        e->tags = g_strdup(key.tags);
        g_hash_table_add(batch->entries, e);
    }
    return e;
}

void lw_rollup_batch_add(LwRollupBatch *batch, const LwLedgerRequest *r)
{
    LwUsageRow *sum = &entry_of(batch, r)->sums;
    sum->requests++;
    sum->input_tokens += r->input_tokens;
    sum->output_tokens += r->output_tokens;
    sum->cached_input_tokens += r->cached_input_tokens;
    sum->cache_write_tokens += r->cache_write_tokens;
    sum->cache_write_1h_tokens += r->cache_write_1h_tokens;
    sum->reasoning_tokens += r->reasoning_tokens;
    if (r->cost.known)
        sum->cost_pusd += r->cost.pusd;
    else
        sum->unpriced++;
    if (r->partial)
        sum->partial++;
}

void lw_rollup_batch_recost(LwRollupBatch *batch, const LwLedgerRequest *r, LwCost old)
{
    LwUsageRow *sum = &entry_of(batch, r)->sums;
    sum->cost_pusd += (r->cost.known ? r->cost.pusd : 0) - (old.known ? old.pusd : 0);
    sum->unpriced += (r->cost.known ? 0 : 1) - (old.known ? 0 : 1);
}

gboolean lw_rollup_batch_is_empty(const LwRollupBatch *batch)
{
    return g_hash_table_size(batch->entries) == 0;
}

gboolean lw_rollup_batch_foreach(LwRollupBatch *batch,
                                 gboolean (*fn)(const LwRollupEntry *entry, void *data),
                                 void *data)
{
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, batch->entries);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!fn(key, data))
            return FALSE;
    }
    return TRUE;
}

void lw_rollup_batch_clear(LwRollupBatch *batch)
{
    g_hash_table_remove_all(batch->entries);
}
