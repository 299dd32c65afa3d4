/* runs.c - the llmwrap runs the collector knows. */
#define G_LOG_DOMAIN "runs"

#include "runs.h"

#include "ledger-runs.h"

struct _LwRuns {
    LwLedger *ledger;
    LwSpool *spool;
    GHashTable *by_id; /* guint64* -> LwRun* */
    /* Killed runs a request may still come from: none, and no run need be
     * looked up. Counts those an earlier collector's ledger holds too. */
    guint killed;
    guint64 next_memory_id; /* ids when there is no ledger */
    LwRunsClosedFunc closed_func;
    void *closed_data;
};

static void run_free(gpointer p)
{
    LwRun *r = p;
    g_free(r->tags_json);
    g_free(r);
}

LwRuns *lw_runs_new(LwLedger *ledger, LwSpool *spool)
{
    LwRuns *runs = g_new0(LwRuns, 1);
    runs->ledger = ledger;
    runs->spool = spool;
    runs->by_id = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, run_free);
    runs->next_memory_id = 1;
    if (ledger != NULL) {
        /* Runs killed before a restart stay killed: their llmwrap (which
         * restarts the collector) and its program may still be running. */
        g_autoptr(GError) error = NULL;
        gint64 n = lw_ledger_runs_killed_live(ledger, &error);
        if (n < 0)
            g_warning("cannot tell which runs `llmctl kill` stopped before: %s; looking each "
                      "run up",
                      error->message);
        runs->killed = n < 0 ? 1 : (guint)MIN(n, G_MAXUINT);
    }
    return runs;
}

void lw_runs_free(LwRuns *runs)
{
    if (runs == NULL)
        return;
    g_hash_table_unref(runs->by_id);
    g_free(runs);
}

static LwRun *insert(LwRuns *runs, guint64 id, guint64 parent, const char *tags,
                     gint64 budget)
{
    LwRun *r = g_new0(LwRun, 1);
    r->id = id;
    r->parent_id = parent;
    r->tags_json = g_strdup(tags);
    r->budget_pusd = budget;
    r->open = TRUE;
    g_hash_table_replace(runs->by_id, &r->id, r);
    return r;
}

guint64 lw_runs_open(LwRuns *runs, const LwLedgerRun *run, GError **error)
{
    guint64 id;
    if (runs->ledger != NULL) {
        lw_spool_hold(runs->spool);
        id = lw_ledger_run_start(runs->ledger, run, error);
        lw_spool_release(runs->spool);
        if (id == 0)
            return 0;
    } else {
        id = runs->next_memory_id++;
    }
    insert(runs, id, run->parent_id, run->tags_json, run->budget_pusd);
    return id;
}

void lw_runs_set_closed_func(LwRuns *runs, LwRunsClosedFunc func, void *data)
{
    runs->closed_func = func;
    runs->closed_data = data;
}

gboolean lw_runs_close(LwRuns *runs, guint64 run_id, int exit_status, GError **error)
{
    LwRun *r = g_hash_table_lookup(runs->by_id, &run_id);
    if (r != NULL && r->killed)
        r->open = FALSE;
    else if (r != NULL)
        g_hash_table_remove(runs->by_id, &run_id);
    if (runs->closed_func != NULL)
        runs->closed_func(run_id, runs->closed_data);
    if (runs->ledger == NULL)
        return TRUE;
    lw_spool_hold(runs->spool);
    gboolean ok =
        lw_ledger_run_end(runs->ledger, run_id, g_get_real_time() / 1000, exit_status, error);
    lw_spool_release(runs->spool);
    return ok;
}

gboolean lw_runs_set_owner(LwRuns *runs, guint64 run_id, guint64 owner)
{
    lw_runs_get(runs, run_id);
    LwRun *r = g_hash_table_lookup(runs->by_id, &run_id);
    if (r == NULL || !r->open)
        return FALSE;
    r->owner = owner;
    return TRUE;
}

void lw_runs_abandon(LwRuns *runs, guint64 owner)
{
    if (owner == 0)
        return;
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint64));
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, runs->by_id);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const LwRun *r = value;
        if (r->open && r->owner == owner)
            g_array_append_val(ids, r->id);
    }
    for (guint i = 0; i < ids->len; i++) {
        guint64 id = g_array_index(ids, guint64, i);
        g_autoptr(GError) error = NULL;
        if (lw_runs_close(runs, id, -1, &error))
            g_warning("run %" G_GUINT64_FORMAT ": its llmwrap went away without closing it; "
                      "ended with an unknown exit status",
                      id);
        else
            g_warning("run %" G_GUINT64_FORMAT ": its llmwrap went away, and the run cannot be "
                      "ended: %s",
                      id, error->message);
    }
}

const LwRun *lw_runs_get(LwRuns *runs, guint64 run_id)
{
    LwRun *r = g_hash_table_lookup(runs->by_id, &run_id);
    if (r != NULL || runs->ledger == NULL)
        return r;
    /* A run opened before this collector started. */
    LwLedgerRunInfo info;
    g_autoptr(GError) error = NULL;
    if (!lw_ledger_run_get(runs->ledger, run_id, &info, &error))
        return NULL;
    r = insert(runs, run_id, info.parent_id, info.tags_json, info.budget_pusd);
    r->open = !info.ended;
    r->killed = info.killed;
    lw_ledger_run_info_clear(&info);
    return r;
}

gboolean lw_runs_killed(LwRuns *runs, guint64 run_id)
{
    /* Asked for every event of every stream: nearly always nothing to find. */
    if (runs == NULL || runs->killed == 0)
        return FALSE;
    const LwRun *r = run_id != 0 ? lw_runs_get(runs, run_id) : NULL;
    for (int depth = 0; r != NULL && depth < 32; depth++) {
        if (r->killed)
            return TRUE;
        r = r->parent_id != 0 ? lw_runs_get(runs, r->parent_id) : NULL;
    }
    return FALSE;
}

guint64 lw_runs_root(LwRuns *runs, guint64 run_id)
{
    if (runs == NULL || run_id == 0)
        return run_id;
    guint64 root = run_id;
    const LwRun *r = lw_runs_get(runs, run_id);
    /* As deep as lw_runs_killed looks. */
    for (int depth = 0; r != NULL && r->parent_id != 0 && depth < 32; depth++) {
        root = r->parent_id;
        r = lw_runs_get(runs, root);
    }
    return root;
}

gboolean lw_runs_kill(LwRuns *runs, guint64 run_id)
{
    lw_runs_get(runs, run_id);
    LwRun *r = g_hash_table_lookup(runs->by_id, &run_id);
    if (r == NULL)
        return FALSE;
    if (!r->killed)
        runs->killed++;
    r->killed = TRUE;
    if (runs->ledger != NULL) {
        /* Kept, so that a collector that restarts refuses the run too; in
         * memory, this one refuses it anyway. */
        g_autoptr(GError) error = NULL;
        lw_spool_hold(runs->spool);
        gboolean ok = lw_ledger_run_kill(runs->ledger, run_id, g_get_real_time() / 1000, &error);
        lw_spool_release(runs->spool);
        if (!ok)
            g_warning("run %" G_GUINT64_FORMAT ": the kill is not recorded in the ledger, so a "
                      "restarted collector would serve the run again: %s",
                      run_id, error->message);
    }
    return TRUE;
}
