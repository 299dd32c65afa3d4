/* guard.c - guards against runaway programs. See guard.h. */
#define G_LOG_DOMAIN "guard"

#include "guard.h"

#include <string.h>

#include "budget-def.h"
#include "ledger-budgets.h"
#include "pricing.h"

typedef struct {
    gint64 time_ms;
    guint64 hash;   /* provider + path + body */
} Event;

/* A rate or spend-rate guard counts in LW_GUARD_SLOTS slots of its window,
 * not event by event: a run may send any number of requests (or spend in
 * any number of small amounts) within a window, and each must count. */
typedef struct {
    gint64 index;       /* time_ms / the slot's width; -1 unused */
    guint64 requests;
    gint64 spent_pusd;
} Slot;

/* One windowed guard's counts in one run. */
typedef struct {
    LwGuardKind kind;
    guint window_ms;
    Slot slots[LW_GUARD_SLOTS];
} Track;

/* One run's recent history: a ring of requests for the loop guard, and the
 * counts of its rate and spend-rate guards. */
typedef struct {
    Event requests[LW_GUARD_HISTORY];
    guint n_requests, next_request;
    /* guard name -> Track*, for ledger guards and config.ini guards apart:
     * a name may be in both. */
    GHashTable *tracks[2];
    gint64 first_input; /* estimated input tokens of the run's first request, -1 none */
} Bucket;

struct _LwGuards {
    LwServer *server;
    GPtrArray *defs;     /* LwGuardDef* (config first, then ledger) */
    GHashTable *buckets; /* run id -> Bucket* */
};

static guint64 fnv1a(guint64 h, const void *data, gsize len)
{
    const guchar *p = data;
    for (gsize i = 0; i < len; i++) {
        h ^= p[i];
        h *= G_GUINT64_CONSTANT(0x100000001b3);
    }
    return h;
}

static LwGuardDef *copy_def(const LwGuardDef *d)
{
    LwGuardDef *c = g_new(LwGuardDef, 1);
    *c = *d;
    c->name = g_strdup(d->name);
    return c;
}

gboolean lw_guards_reload(LwGuards *g, GError **error)
{
    GPtrArray *defs = g_ptr_array_new_with_free_func((GDestroyNotify)lw_guard_def_free);
    GPtrArray *config_guards = g->server->config->guards;
    for (guint i = 0; config_guards != NULL && i < config_guards->len; i++)
        g_ptr_array_add(defs, copy_def(g_ptr_array_index(config_guards, i)));
    if (g->server->ledger != NULL) {
        GPtrArray *stored = lw_ledger_guard_list(g->server->ledger, error);
        if (stored == NULL) {
            g_ptr_array_unref(defs);
            return FALSE;
        }
        for (guint i = 0; i < stored->len; i++)
            g_ptr_array_add(defs, copy_def(g_ptr_array_index(stored, i)));
        g_ptr_array_unref(stored);
    }
    if (g->defs != NULL)
        g_ptr_array_unref(g->defs);
    g->defs = defs;
    return TRUE;
}

static void bucket_free(gpointer p)
{
    Bucket *b = p;
    g_hash_table_unref(b->tracks[0]);
    g_hash_table_unref(b->tracks[1]);
    g_free(b);
}

LwGuards *lw_guards_new(LwServer *server)
{
    LwGuards *g = g_new0(LwGuards, 1);
    g->server = server;
    g->buckets = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, bucket_free);
    g_autoptr(GError) error = NULL;
    if (!lw_guards_reload(g, &error))
        g_warning("guards not loaded: %s", error->message);
    return g;
}

void lw_guards_free(LwGuards *g)
{
    if (g == NULL)
        return;
    if (g->defs != NULL)
        g_ptr_array_unref(g->defs);
    g_hash_table_unref(g->buckets);
    g_free(g);
}

static Bucket *bucket_for(LwGuards *g, guint64 run_id)
{
    Bucket *b = g_hash_table_lookup(g->buckets, &run_id);
    if (b == NULL) {
        b = g_new0(Bucket, 1);
        b->first_input = -1;
        for (guint i = 0; i < G_N_ELEMENTS(b->tracks); i++)
            b->tracks[i] = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        guint64 *key = g_new(guint64, 1);
        *key = run_id;
        g_hash_table_insert(g->buckets, key, b);
    }
    return b;
}

void lw_guards_forget(LwGuards *g, guint64 run_id)
{
    if (g != NULL && run_id != 0)
        g_hash_table_remove(g->buckets, &run_id);
}

void lw_guard_verdict_clear(LwGuardVerdict *v)
{
    g_clear_pointer(&v->guard, g_free);
    g_clear_pointer(&v->message, g_free);
}

/* Requests in the ring since `since_ms`, and how many of them had `hash`. */
static void count_since(const Bucket *b, gint64 since_ms, guint64 hash, guint *ret_all,
                        guint *ret_same)
{
    guint all = 0, same = 0;
    for (guint i = 0; i < b->n_requests; i++) {
        const Event *e = &b->requests[i];
        if (e->time_ms < since_ms)
            continue;
        all++;
        if (e->hash == hash)
            same++;
    }
    *ret_all = all;
    *ret_same = same;
}

/* Slots are a window's LW_GUARD_SLOTS-1'th, so that the slots that
 * overlap a window, the current one included, all fit in the ring. */
static gint64 slot_width(const Track *t)
{
    return MAX(1, ((gint64)t->window_ms + LW_GUARD_SLOTS - 2) / (LW_GUARD_SLOTS - 1));
}

/* The track of windowed guard `d` in `b`, a new one when the guard is new
 * to the run or its type or window changed (counts in other slots cannot
 * be carried over). */
static Track *track_for(Bucket *b, const LwGuardDef *d)
{
    GHashTable *tracks = b->tracks[d->from_config ? 1 : 0];
    Track *t = g_hash_table_lookup(tracks, d->name);
    if (t != NULL && t->kind == d->kind && t->window_ms == d->window_ms)
        return t;
    t = g_new0(Track, 1);
    t->kind = d->kind;
    t->window_ms = d->window_ms;
    for (guint i = 0; i < LW_GUARD_SLOTS; i++)
        t->slots[i].index = -1;
    g_hash_table_replace(tracks, g_strdup(d->name), t);
    return t;
}

/* The slot of `now_ms`, emptied first if it last held an older one. */
static Slot *slot_at(Track *t, gint64 now_ms)
{
    gint64 index = MAX(now_ms, 0) / slot_width(t);
    Slot *s = &t->slots[index % LW_GUARD_SLOTS];
    if (s->index != index)
        *s = (Slot){index, 0, 0};
    return s;
}

/* Requests and spend within the window that ends at `now_ms`. A slot that
 * overlaps the window counts whole: a guard may count up to a slot's width
 * (a 255th of the window) more than the window, never less. */
static void track_sum(const Track *t, gint64 now_ms, guint64 *ret_requests, gint64 *ret_spent)
{
    gint64 width = slot_width(t);
    gint64 first = (now_ms - (gint64)t->window_ms) / width;
    gint64 last = MAX(now_ms, 0) / width;
    guint64 requests = 0;
    gint64 spent = 0;
    for (guint i = 0; i < LW_GUARD_SLOTS; i++) {
        const Slot *s = &t->slots[i];
        if (s->index >= 0 && s->index >= first && s->index <= last) {
            requests += s->requests;
            spent = lw_pusd_add(spent, s->spent_pusd);
        }
    }
    *ret_requests = requests;
    *ret_spent = spent;
}

static void trip(LwGuardVerdict *v, const LwGuardDef *d, char *message)
{
    /* Keep the first blocking guard; a warning does not hide a block. */
    if (v->guard != NULL && (v->block || !d->block)) {
        g_free(message);
        return;
    }
    lw_guard_verdict_clear(v);
    v->block = d->block;
    v->guard = g_strdup(d->name);
    v->message = message;
}

gboolean lw_guards_check(LwGuards *g, guint64 run_id, const char *provider, const char *path,
                         const char *body, gsize body_len, const LwRequestInfo *info,
                         gint64 now_ms, LwGuardVerdict *v)
{
    memset(v, 0, sizeof *v);
    if (g->defs == NULL || g->defs->len == 0)
        return FALSE;
    Bucket *b = bucket_for(g, run_id);
    guint64 hash = G_GUINT64_CONSTANT(0xcbf29ce484222325);
    hash = fnv1a(hash, provider, strlen(provider) + 1);
    hash = fnv1a(hash, path, strlen(path) + 1);
    if (body != NULL)
        hash = fnv1a(hash, body, body_len);
    /* A body that streamed past unread cannot be compared: such a request
     * is like no other, never a loop's repeat. */
    static guint64 unread_seq;
    if (info->body_unread) {
        unread_seq++;
        hash = fnv1a(hash, &unread_seq, sizeof unread_seq);
    }
    /* Input a model reads: a body that streamed past unread is a file or
     * audio being uploaded, which size and growth are not about. */
    gint64 input = info->body_unread ? 0 : (info->body_bytes + 3) / 4;
    /* A free request sent again and again is polling (a batch's or a
     * file's status, as SDK helpers do), not a runaway: the loop guard
     * neither counts nor keeps it. */
    gboolean free_call =
        info->endpoint == LW_ENDPOINT_OTHER || info->endpoint == LW_ENDPOINT_COUNT_TOKENS;

    for (guint i = 0; g->defs != NULL && i < g->defs->len; i++) {
        const LwGuardDef *d = g_ptr_array_index(g->defs, i);
        guint all = 0, same = 0;
        switch (d->kind) {
        case LW_GUARD_LOOP:
            if (free_call)
                break;
            count_since(b, now_ms - d->window_ms, hash, &all, &same);
            if ((gint64)same + 1 >= d->threshold)
                trip(v, d,
                     g_strdup_printf("llmwrap guard '%s': the same request %u time%s within "
                                     "%u ms (limit %" G_GINT64_FORMAT ")",
                                     d->name, same + 1, same == 0 ? "" : "s", d->window_ms,
                                     d->threshold));
            break;
        case LW_GUARD_RATE: {
            guint64 requests;
            gint64 spent;
            track_sum(track_for(b, d), now_ms, &requests, &spent);
            if (requests + 1 > (guint64)d->threshold)
                trip(v, d,
                     g_strdup_printf("llmwrap guard '%s': %" G_GUINT64_FORMAT
                                     " requests within %u ms (limit %" G_GINT64_FORMAT ")",
                                     d->name, requests + 1, d->window_ms, d->threshold));
            break;
        }
        case LW_GUARD_SPEND_RATE: {
            guint64 requests;
            gint64 spent;
            track_sum(track_for(b, d), now_ms, &requests, &spent);
            if (spent >= d->threshold) {
                g_autofree char *s = lw_usd_format(spent);
                g_autofree char *t = lw_usd_format(d->threshold);
                trip(v, d,
                     g_strdup_printf("llmwrap guard '%s': $%s spent within %u ms (limit $%s)",
                                     d->name, s, d->window_ms, t));
            }
            break;
        }
        case LW_GUARD_SIZE:
            if (input > d->threshold)
                trip(v, d,
                     g_strdup_printf("llmwrap guard '%s': about %" G_GINT64_FORMAT
                                     " input tokens (limit %" G_GINT64_FORMAT ")",
                                     d->name, input, d->threshold));
            break;
        case LW_GUARD_GROWTH:
            /* input >= factor x first, with the factor kept x1000 */
            if (b->first_input > 0 && input * 1000 >= b->first_input * d->threshold)
                trip(v, d,
                     g_strdup_printf("llmwrap guard '%s': input grew from about %" G_GINT64_FORMAT
                                     " to %" G_GINT64_FORMAT " tokens within the run",
                                     d->name, b->first_input, input));
            break;
        }
    }

    if (b->first_input < 0 && input > 0)
        b->first_input = input;
    if (!v->block) {
        if (!free_call) {
            b->requests[b->next_request] = (Event){now_ms, hash};
            b->next_request = (b->next_request + 1) % LW_GUARD_HISTORY;
            b->n_requests = MIN(b->n_requests + 1, LW_GUARD_HISTORY);
        }
        for (guint i = 0; i < g->defs->len; i++) {
            const LwGuardDef *d = g_ptr_array_index(g->defs, i);
            if (d->kind == LW_GUARD_RATE)
                slot_at(track_for(b, d), now_ms)->requests++;
        }
    }
    return v->guard != NULL;
}

void lw_guards_spent(LwGuards *g, guint64 run_id, gint64 now_ms, gint64 cost_pusd)
{
    if (cost_pusd <= 0 || g->defs == NULL || g->defs->len == 0)
        return;
    Bucket *b = bucket_for(g, run_id);
    for (guint i = 0; i < g->defs->len; i++) {
        const LwGuardDef *d = g_ptr_array_index(g->defs, i);
        if (d->kind == LW_GUARD_SPEND_RATE) {
            Slot *s = slot_at(track_for(b, d), now_ms);
            s->spent_pusd = lw_pusd_add(s->spent_pusd, cost_pusd);
        }
    }
}
