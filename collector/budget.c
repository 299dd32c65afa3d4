/* budget.c - reserve, then settle. See budget.h. */
#define G_LOG_DOMAIN "budget"

#include "budget.h"

#include <signal.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "budget-def.h"
#include "clock.h"
#include "ledger-budgets.h"
#include "ledger-runs.h"
#include "ledger-spool.h"
#include "worst-case.h"

/* Nested llmwraps deeper than this are not followed for run budgets. */
#define MAX_RUN_DEPTH 32

/* One budget's account for one window (hour/day/month), one run (run
 * budgets and per-run budgets), or nothing (per-request budgets, which
 * need no state: they never get here). */
typedef struct {
    char *key;
    char *name;          /* budget name, or "run:N" */
    LwBudgetDef *def;    /* NULL for an llmwrap --budget run budget */
    gint64 limit_pusd;
    gint64 window_start_ms, window_end_ms; /* 0 for run budgets */
    guint64 run_id;      /* run budgets and per-run budgets */
    gint64 spent_pusd;
    gint64 reserved_pusd;
    guint64 refused;
    guint fired;         /* bit i: def->alerts[i] fired in this window */
    guint refs;          /* reservations that still point here */
    gboolean stale;      /* its definition changed or went away: in retired */
    gboolean run_ended;  /* a run state whose run ended: goes once refs is 0 */
    char *unread;        /* why its spend is unknown; NULL = read (read_spent) */
    guint64 reread_ms;   /* loop time of the next read while unread */
    guint reread_gap_ms; /* doubles while reads keep failing */
} State;

typedef struct {
    State *state;
    gint64 amount;
} Entry;

struct _LwReservation {
    GArray *entries; /* Entry */
    gboolean metered;
    gint64 base_pusd;
    gint64 output_rate;
    /* The lowest blocking per-request budget of a metered stream (which
     * has no state to hold it): its name, NULL if none, and limit. */
    char *request_budget;
    gint64 request_limit_pusd;
};

/* A state whose definition changed (or went away) while requests it had
 * admitted were in flight is retired: it leaves `states`, so the next
 * request builds a fresh state whose spend is read from the ledger under
 * the new definition. Those in-flight requests are not in the ledger yet,
 * so until they settle:
 *   - their reservations (raised by the meter, for a metered stream) count
 *     against every live state of the same name (retired_reserved()). This
 *     may count a request the new scope would not count, for as long as
 *     it is in flight, but never leaves out one it would;
 *   - a metered one is checked against those live states (lw_budget_meter);
 *   - when one settles its row is already in the ledger (the spool is
 *     written first), so each live state of that name reads its spend again,
 *     exact under the new scope and window.
 * The retired state is freed when its last reservation settles. */
struct _LwBudgets {
    LwServer *server;
    GPtrArray *defs;    /* LwBudgetDef* */
    GHashTable *states; /* key -> State* */
    GPtrArray *retired; /* State*, stale, refs > 0 */
};

static void state_free(gpointer p)
{
    State *s = p;
    g_free(s->key);
    g_free(s->name);
    lw_budget_def_free(s->def);
    g_free(s->unread);
    g_free(s);
}

LwBudgets *lw_budgets_new(LwServer *server)
{
    LwBudgets *b = g_new0(LwBudgets, 1);
    b->server = server;
    b->defs = g_ptr_array_new_with_free_func((GDestroyNotify)lw_budget_def_free);
    b->states = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, state_free);
    b->retired = g_ptr_array_new_with_free_func(state_free);
    g_autoptr(GError) error = NULL;
    if (!lw_budgets_reload(b, &error))
        g_warning("budgets not loaded: %s", error->message);
    return b;
}

void lw_budgets_free(LwBudgets *b)
{
    if (b == NULL)
        return;
    g_ptr_array_unref(b->defs);
    g_hash_table_unref(b->states);
    g_ptr_array_unref(b->retired); /* empty: every connection settled before */
    g_free(b);
}

static gboolean def_equal(const LwBudgetDef *a, const LwBudgetDef *b)
{
    return a->limit_pusd == b->limit_pusd && a->period == b->period && a->scope == b->scope &&
           g_strcmp0(a->scope_key, b->scope_key) == 0 &&
           g_strcmp0(a->scope_value, b->scope_value) == 0 && a->action == b->action &&
           g_strcmp0(a->action_model, b->action_model) == 0 && a->reset_ms == b->reset_ms &&
           a->n_alerts == b->n_alerts &&
           memcmp(a->alerts, b->alerts, sizeof a->alerts[0] * a->n_alerts) == 0 &&
           g_strcmp0(a->alert_command, b->alert_command) == 0;
}

static const LwBudgetDef *find_def(GPtrArray *defs, const char *name)
{
    for (guint i = 0; i < defs->len; i++) {
        const LwBudgetDef *d = g_ptr_array_index(defs, i);
        if (strcmp(d->name, name) == 0)
            return d;
    }
    return NULL;
}

static void recount(LwBudgets *b);
static void check_alerts(LwBudgets *b, State *s);
static void ensure_live(LwBudgets *b, const State *retired);

gboolean lw_budgets_reload(LwBudgets *b, GError **error)
{
    if (b->server->ledger == NULL)
        return TRUE;
    GPtrArray *defs = lw_ledger_budget_list(b->server->ledger, error);
    if (defs == NULL)
        return FALSE;
    /* A state whose definition changed is not reused: its spend must be
     * recounted under the new scope, window or reset time. One that still
     * has requests in flight is retired (see struct _LwBudgets). */
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, b->states);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        State *s = value;
        if (s->def == NULL)
            continue;
        const LwBudgetDef *now = find_def(defs, s->def->name);
        if (now == NULL || !def_equal(now, s->def)) {
            s->stale = TRUE;
            if (s->refs == 0)
                g_hash_table_iter_remove(&it);
            else {
                g_hash_table_iter_steal(&it);
                g_ptr_array_add(b->retired, s);
            }
        }
    }
    g_ptr_array_unref(b->defs);
    b->defs = defs;
    g_info("%u budget%s loaded", defs->len, defs->len == 1 ? "" : "s");
    recount(b);
    for (guint i = 0; i < b->retired->len; i++)
        ensure_live(b, g_ptr_array_index(b->retired, i));
    return TRUE;
}

void lw_budget_decision_clear(LwBudgetDecision *d)
{
    g_clear_pointer(&d->refused_by, g_free);
    g_clear_pointer(&d->message, g_free);
    g_clear_pointer(&d->warning, g_free);
    g_clear_pointer(&d->downgrade_model, g_free);
}

/* ---- scope ---- */

static gboolean run_has_tag(const LwRun *run, const char *key, const char *value)
{
    if (run == NULL || run->tags_json == NULL)
        return FALSE;
    yajl_val tree = yajl_tree_parse(run->tags_json, NULL, 0);
    if (tree == NULL)
        return FALSE;
    const char *path[] = {key, NULL};
    yajl_val v = yajl_tree_get(tree, path, yajl_t_string);
    gboolean match = v != NULL && g_strcmp0(YAJL_GET_STRING(v), value) == 0;
    yajl_tree_free(tree);
    return match;
}

static gboolean in_scope(const LwBudgetDef *def, const LwBudgetRequest *req, const LwRun *run)
{
    switch (def->scope) {
    case LW_SCOPE_GLOBAL:
        return TRUE;
    case LW_SCOPE_PROVIDER:
        return g_strcmp0(req->provider->name, def->scope_key) == 0;
    case LW_SCOPE_MODEL:
        return g_strcmp0(req->info->model, def->scope_key) == 0;
    case LW_SCOPE_TAG:
        return run_has_tag(run, def->scope_key, def->scope_value);
    }
    return FALSE;
}

/* ---- states ---- */

static State *state_new(LwBudgets *b, char *key, const char *name, const LwBudgetDef *def,
                        gint64 limit)
{
    State *s = g_new0(State, 1);
    s->key = key;
    s->name = g_strdup(name);
    s->def = def != NULL ? lw_budget_def_copy(def) : NULL;
    s->limit_pusd = limit;
    g_hash_table_insert(b->states, s->key, s);
    return s;
}

/* While a state's spend is unknown, admission reads it again after 1 s,
 * then 2, 4, ... up to a minute: a read can wait out the ledger's busy
 * timeout on the loop when another process holds the ledger. */
#define REREAD_FIRST_MS 1000
#define REREAD_MAX_MS 60000

/* Sets what the state's rows in the ledger add up to, after applying what
 * the spool holds. When that cannot be known (the ledger cannot be read,
 * or recorded rows cannot be applied to it, as when another process holds
 * it past the busy timeout) the spend is unknown: admission refuses in the
 * state's name (warns, for a warn budget) until a later read succeeds. A
 * spend taken as $0 would let a hard budget be exceeded. */
/* What the state's rows add up to, or -1 with *why set. */
static gint64 query_spent(LwBudgets *b, const State *s, char **why)
{
    g_autoptr(GError) error = NULL;
    LwLedger *ledger = b->server->ledger;
    gboolean applied = lw_spool_hold(b->server->spool);
    gint64 spent = 0;
    if (ledger != NULL && s->def == NULL)
        spent = lw_ledger_run_spent(ledger, s->run_id, &error);
    else if (ledger != NULL && s->window_end_ms > 0)
        spent = lw_ledger_budget_spent(ledger, s->def, s->window_start_ms, s->window_end_ms, 0,
                                       &error);
    else if (ledger != NULL)
        spent = lw_ledger_budget_spent(ledger, s->def, 0, G_MAXINT64, s->run_id, &error);
    lw_spool_release(b->server->spool);

    if (spent < 0) {
        *why = g_strdup(error != NULL ? error->message : "the ledger cannot be read");
        return -1;
    }
    if (!applied) {
        *why = g_strdup("recorded requests cannot be applied to the ledger yet");
        return -1;
    }
    return spent;
}

static void read_spent(LwBudgets *b, State *s)
{
    gboolean was_unread = s->unread != NULL;
    g_clear_pointer(&s->unread, g_free);
    gint64 spent = query_spent(b, s, &s->unread);
    if (s->unread != NULL) {
        if (!was_unread)
            g_warning("budget %s: its spend is unknown until the ledger can be read: %s",
                      s->name, s->unread);
        s->reread_gap_ms =
            was_unread ? MIN(s->reread_gap_ms * 2, REREAD_MAX_MS) : REREAD_FIRST_MS;
        s->reread_ms = lw_loop_now_ms(b->server->loop) + s->reread_gap_ms;
        g_debug("budget %s: spend unknown; read again in %u ms", s->name, s->reread_gap_ms);
        return;
    }
    if (was_unread)
        g_message("budget %s: its spend was read", s->name);
    s->spent_pusd = spent;
    /* A state is (re)built from the ledger when its definition changed: a
     * limit lowered under the spend passed thresholds with no request
     * settling (and a blocking budget admits none that could). */
    check_alerts(b, s);
}

/* The ledger's costs may have changed under the kept states (llmctl
 * reprice): their spend is read again. Reservations in flight are not in
 * the ledger and keep their amounts. A state whose read fails keeps the
 * spend it had, which was right before the change, rather than refusing
 * from now on for a ledger that is only busy. */
static void recount(LwBudgets *b)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, b->states);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        State *s = value;
        if (s->unread != NULL) {
            read_spent(b, s);
            continue;
        }
        g_autofree char *why = NULL;
        gint64 spent = query_spent(b, s, &why);
        if (spent < 0) {
            g_autofree char *kept = lw_usd_format(s->spent_pusd);
            g_warning("budget %s: its spend was not read again, keeping %s: %s", s->name, kept,
                      why);
            continue;
        }
        if (spent != s->spent_pusd) {
            g_autofree char *was = lw_usd_format(s->spent_pusd);
            g_autofree char *now = lw_usd_format(spent);
            g_info("budget %s: spend read again: %s, was %s", s->name, now, was);
        }
        s->spent_pusd = spent;
        check_alerts(b, s); /* a reprice may have raised it past a threshold */
    }
}

/* Drops the states of `name` for windows before `window_start` that no
 * request still holds. */
static void prune_windows(LwBudgets *b, const char *name, gint64 window_start)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, b->states);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        State *s = value;
        if (s->def != NULL && s->window_end_ms > 0 && s->window_start_ms < window_start &&
            s->refs == 0 && strcmp(s->name, name) == 0)
            g_hash_table_iter_remove(&it);
    }
}

static State *windowed_state(LwBudgets *b, const LwBudgetDef *def, gint64 now_ms)
{
    gint64 start, end;
    if (!lw_period_window(def->period, now_ms, &start, &end))
        return NULL;
    g_autofree char *key = g_strdup_printf("%s\x1f%" G_GINT64_FORMAT, def->name, start);
    State *s = g_hash_table_lookup(b->states, key);
    if (s != NULL)
        return s;
    prune_windows(b, def->name, start);
    s = state_new(b, g_steal_pointer(&key), def->name, def, def->limit_pusd);
    s->window_start_ms = start;
    s->window_end_ms = end;
    read_spent(b, s);
    return s;
}

static State *per_run_state(LwBudgets *b, const LwBudgetDef *def, guint64 root_run)
{
    g_autofree char *key = g_strdup_printf("%s\x1frun%" G_GUINT64_FORMAT, def->name, root_run);
    State *s = g_hash_table_lookup(b->states, key);
    if (s != NULL)
        return s;
    s = state_new(b, g_steal_pointer(&key), def->name, def, def->limit_pusd);
    s->run_id = root_run;
    read_spent(b, s);
    return s;
}

static State *run_budget_state(LwBudgets *b, const LwRun *run)
{
    g_autofree char *key = g_strdup_printf("run:%" G_GUINT64_FORMAT, run->id);
    State *s = g_hash_table_lookup(b->states, key);
    if (s != NULL)
        return s;
    s = state_new(b, g_strdup(key), key, NULL, run->budget_pusd);
    s->run_id = run->id;
    read_spent(b, s);
    return s;
}

/* Whether the reservations of the retired state `t` count against the live
 * state `s`: same budget name, and not two different runs of a per-run
 * budget (the only case where the request is known not to belong). */
static gboolean counts_against(const State *t, const State *s)
{
    return strcmp(t->name, s->name) == 0 &&
           (t->run_id == 0 || s->run_id == 0 || t->run_id == s->run_id);
}

/* What the in-flight requests of retired states reserve against `s`. */
static gint64 retired_reserved(const LwBudgets *b, const State *s)
{
    gint64 sum = 0;
    for (guint i = 0; i < b->retired->len; i++) {
        const State *t = g_ptr_array_index(b->retired, i);
        if (counts_against(t, s))
            sum += t->reserved_pusd;
    }
    return sum;
}

/* A metered stream of a retired state is checked against the live states
 * of its name, so the one its request falls in must exist even if no
 * request comes to create it: the current window, or the run's. */
static void ensure_live(LwBudgets *b, const State *t)
{
    const LwBudgetDef *def = find_def(b->defs, t->name);
    if (def == NULL || def->period == LW_PERIOD_REQUEST)
        return;
    if (def->period != LW_PERIOD_RUN)
        windowed_state(b, def, lw_clock_now_ms());
    else if (t->run_id != 0)
        per_run_state(b, def, t->run_id);
}

/* The states that apply to a request: its run budgets (innermost first),
 * then defined budgets by name; per-request budgets, which need no state,
 * go to `request_defs`. */
static void applicable(LwBudgets *b, const LwBudgetRequest *req, GPtrArray *states,
                       GPtrArray *request_defs)
{
    LwRuns *runs = b->server->runs;
    const LwRun *run = req->run_id != 0 && runs != NULL ? lw_runs_get(runs, req->run_id) : NULL;
    /* Run budgets of the run and of every llmwrap it is nested in. */
    guint64 root = 0;
    const LwRun *r = run;
    for (int depth = 0; r != NULL && depth < MAX_RUN_DEPTH; depth++) {
        if (r->budget_pusd >= 0)
            g_ptr_array_add(states, run_budget_state(b, r));
        root = r->id;
        r = r->parent_id != 0 ? lw_runs_get(runs, r->parent_id) : NULL;
    }
    for (guint i = 0; i < b->defs->len; i++) {
        const LwBudgetDef *def = g_ptr_array_index(b->defs, i);
        if (!in_scope(def, req, run))
            continue;
        switch (def->period) {
        case LW_PERIOD_REQUEST:
            g_ptr_array_add(request_defs, (gpointer)def);
            break;
        case LW_PERIOD_RUN:
            if (root != 0)
                g_ptr_array_add(states, per_run_state(b, def, root));
            break;
        default: {
            State *s = windowed_state(b, def, req->now_ms);
            if (s != NULL)
                g_ptr_array_add(states, s);
            break;
        }
        }
    }
}

/* ---- admission ---- */

static LwActionKind action_of(const State *s)
{
    return s->def != NULL ? s->def->action : LW_ACTION_BLOCK;
}

static char *describe(const char *name, gint64 spent, gint64 reserved, gint64 limit)
{
    g_autofree char *s = lw_usd_format(spent);
    g_autofree char *l = lw_usd_format(limit);
    if (reserved > 0) {
        g_autofree char *r = lw_usd_format(reserved);
        return g_strdup_printf("llmwrap budget '%s': $%s spent and $%s reserved by requests in "
                               "flight, of a $%s limit",
                               name, s, r, l);
    }
    return g_strdup_printf("llmwrap budget '%s': $%s spent of a $%s limit", name, s, l);
}

static void refuse(LwBudgetDecision *d, const char *name, char *message)
{
    d->refuse = TRUE;
    g_free(d->refused_by);
    d->refused_by = g_strdup(name);
    g_free(d->message);
    d->message = message;
}

static void add_warning(LwBudgetDecision *d, const char *text)
{
    if (d->warning == NULL) {
        d->warning = g_strdup(text);
    } else {
        char *w = g_strdup_printf("%s; %s", d->warning, text);
        g_free(d->warning);
        d->warning = w;
    }
}

typedef struct {
    const LwPrice *price;
    LwWorstCase w;
    gint64 max_output; /* clamp in force, -1 none */
} Bound;

static void bound(Bound *bd, const LwBudgetRequest *req)
{
    if (bd->price != NULL)
        lw_worst_case(bd->price, req->info, req->body, req->body_len, bd->max_output, &bd->w);
}

typedef enum {
    CHECK_PASS,
    CHECK_RETRY, /* the bound changed (downgrade, clamp): check this budget again */
    CHECK_REFUSE,
} CheckResult;

static CheckResult try_clamp(LwBudgets *b, const LwBudgetRequest *req, Bound *bd,
                             LwBudgetDecision *d, const char *name, gint64 limit, gint64 spent,
                             gint64 reserved)
{
    gint64 m = lw_worst_case_max_output(&bd->w, req->info, limit - spent - reserved);
    guint floor = b->server->config->clamp_floor;
    if (m < (gint64)floor) {
        g_autofree char *why = describe(name, spent, reserved, limit);
        refuse(d, name,
               g_strdup_printf("%s; the %" G_GINT64_FORMAT
                               " output tokens left are below the clamp floor of %u",
                               why, MAX(m, 0), floor));
        return CHECK_REFUSE;
    }
    bd->max_output = m;
    d->clamp_max_output = d->clamp_max_output < 0 ? m : MIN(d->clamp_max_output, m);
    bound(bd, req);
    return CHECK_RETRY;
}

static CheckResult try_downgrade(LwBudgets *b, const LwBudgetRequest *req, Bound *bd,
                                 LwBudgetDecision *d, const char *name, const char *target)
{
    const LwPrice *p = NULL;
    if (d->downgrade_model == NULL && target != NULL && b->server->pricing != NULL)
        p = lw_pricing_lookup(b->server->pricing, req->provider->name, target);
    if (p == NULL) {
        refuse(d, name,
               g_strdup_printf("llmwrap budget '%s': over its limit, and the downgrade model "
                               "%s has no price",
                               name, target != NULL ? target : "(none)"));
        return CHECK_REFUSE;
    }
    d->downgrade_model = g_strdup(target);
    bd->price = p;
    bound(bd, req);
    return CHECK_RETRY;
}

static CheckResult check_step(LwBudgets *b, const LwBudgetRequest *req, Bound *bd,
                              LwBudgetDecision *d, const char *name, LwActionKind action,
                              const char *downgrade_to, gint64 limit, gint64 spent,
                              gint64 reserved)
{
    const char *model = req->info->model != NULL ? req->info->model : "(none)";
    gint64 remaining = limit - spent - reserved;

    if (req->info->endpoint == LW_ENDPOINT_UNPRICED) {
        g_autofree char *target = lw_path_for_display(req->path != NULL ? req->path : "?");
        if (action == LW_ACTION_WARN) {
            g_autofree char *w = g_strdup_printf("%s: cost of POST %s unknown", name, target);
            add_warning(d, w);
            return CHECK_PASS;
        }
        refuse(d, name,
               g_strdup_printf("llmwrap budget '%s' cannot be enforced for POST %s: llmwrap "
                               "cannot price it",
                               name, target));
        return CHECK_REFUSE;
    }
    if (bd->price == NULL) {
        if (action == LW_ACTION_WARN) {
            g_autofree char *w = g_strdup_printf("%s: cost of %s unknown", name, model);
            add_warning(d, w);
            return CHECK_PASS;
        }
        if (action == LW_ACTION_DOWNGRADE && d->downgrade_model == NULL)
            return try_downgrade(b, req, bd, d, name, downgrade_to);
        refuse(d, name,
               g_strdup_printf("llmwrap budget '%s' cannot be enforced for model %s: it has no "
                               "price (add [price.%s] to config.ini)",
                               name, model, model));
        return CHECK_REFUSE;
    }
    if (!lw_worst_case_bounded(&bd->w)) {
        if (action == LW_ACTION_WARN)
            return CHECK_PASS;
        if (action == LW_ACTION_CLAMP && bd->w.input_bounded)
            return try_clamp(b, req, bd, d, name, limit, spent, reserved);
        /* Only the output is open: admit a stream and meter it. */
        if (req->info->stream && req->info->sse && bd->w.input_bounded && bd->w.pusd <= remaining) {
            d->metered = TRUE;
            return CHECK_PASS;
        }
        g_autofree char *why = describe(name, spent, reserved, limit);
        /* Say which side is open: a max-tokens field does not bound input
         * the body only references. */
        const char *fix = bd->w.input_bounded ? "give it a max-tokens field"
                                              : "it references input (by URL, id or an earlier "
                                                "turn) and the model has no context window "
                                                "that bounds it";
        refuse(d, name,
               g_strdup_printf("%s; the cost of this request has no upper bound (%s)", why, fix));
        return CHECK_REFUSE;
    }
    if (bd->w.pusd <= remaining)
        return CHECK_PASS;
    switch (action) {
    case LW_ACTION_WARN: {
        g_autofree char *w = describe(name, spent, reserved, limit);
        add_warning(d, w);
        g_warning("%s; forwarding anyway (action warn)", w);
        return CHECK_PASS;
    }
    case LW_ACTION_DOWNGRADE:
        if (d->downgrade_model == NULL)
            return try_downgrade(b, req, bd, d, name, downgrade_to);
        break;
    case LW_ACTION_CLAMP:
        return try_clamp(b, req, bd, d, name, limit, spent, reserved);
    case LW_ACTION_BLOCK:
        break;
    }
    g_autofree char *why = describe(name, spent, reserved, limit);
    g_autofree char *cost = lw_usd_format(bd->w.pusd);
    refuse(d, name, g_strdup_printf("%s; this request could cost up to $%s", why, cost));
    return CHECK_REFUSE;
}

/* Checks one budget; a downgrade or clamp changes the bound and the budget
 * is checked again (bounded: each can happen once). FALSE = refused. */
static gboolean check_one(LwBudgets *b, const LwBudgetRequest *req, Bound *bd,
                          LwBudgetDecision *d, const char *name, LwActionKind action,
                          const char *downgrade_to, gint64 limit, gint64 spent,
                          gint64 reserved)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        switch (check_step(b, req, bd, d, name, action, downgrade_to, limit, spent, reserved)) {
        case CHECK_PASS:
            return TRUE;
        case CHECK_REFUSE:
            return FALSE;
        case CHECK_RETRY:
            break;
        }
    }
    refuse(d, name, g_strdup_printf("llmwrap budget '%s': over its limit", name));
    return FALSE;
}

LwReservation *lw_budgets_admit(LwBudgets *b, const LwBudgetRequest *req, LwBudgetDecision *d)
{
    memset(d, 0, sizeof *d);
    d->clamp_max_output = -1;
    g_autoptr(GPtrArray) states = g_ptr_array_new();
    g_autoptr(GPtrArray) request_defs = g_ptr_array_new();
    applicable(b, req, states, request_defs);
    if (states->len == 0 && request_defs->len == 0)
        return NULL;

    Bound bd = {.max_output = -1};
    if (req->info->model != NULL && b->server->pricing != NULL &&
        req->info->endpoint != LW_ENDPOINT_UNPRICED)
        bd.price = lw_pricing_lookup(b->server->pricing, req->provider->name, req->info->model);
    bound(&bd, req);

    for (guint i = 0; i < request_defs->len; i++) {
        const LwBudgetDef *def = g_ptr_array_index(request_defs, i);
        if (!check_one(b, req, &bd, d, def->name, def->action, def->action_model,
                       def->limit_pusd, 0, 0))
            return NULL;
    }
    for (guint i = 0; i < states->len; i++) {
        State *s = g_ptr_array_index(states, i);
        if (s->unread != NULL && lw_loop_now_ms(b->server->loop) >= s->reread_ms)
            read_spent(b, s);
        if (s->unread != NULL) {
            g_autofree char *w =
                g_strdup_printf("llmwrap budget '%s' cannot be enforced: its spend cannot be "
                                "read from the ledger (%s)",
                                s->name, s->unread);
            if (action_of(s) == LW_ACTION_WARN) {
                add_warning(d, w);
                continue;
            }
            refuse(d, s->name, g_steal_pointer(&w));
            s->refused++;
            return NULL;
        }
        if (!check_one(b, req, &bd, d, s->name, action_of(s),
                       s->def != NULL ? s->def->action_model : NULL, s->limit_pusd,
                       s->spent_pusd, s->reserved_pusd + retired_reserved(b, s))) {
            s->refused++;
            return NULL;
        }
    }
    /* A metered stream must also stay under the per-request budgets it
     * passed on its input alone: the meter holds it to the lowest. */
    const LwBudgetDef *request_cap = NULL;
    for (guint i = 0; d->metered && i < request_defs->len; i++) {
        const LwBudgetDef *def = g_ptr_array_index(request_defs, i);
        if (def->action != LW_ACTION_WARN &&
            (request_cap == NULL || def->limit_pusd < request_cap->limit_pusd))
            request_cap = def;
    }
    if (states->len == 0 && request_cap == NULL)
        return NULL;

    /* Passed every budget: reserve the bound (for a metered stream, what is
     * bounded now; the meter checks the rest as it streams). */
    LwReservation *res = g_new0(LwReservation, 1);
    res->entries = g_array_new(FALSE, FALSE, sizeof(Entry));
    res->metered = d->metered;
    res->request_budget = request_cap != NULL ? g_strdup(request_cap->name) : NULL;
    res->request_limit_pusd = request_cap != NULL ? request_cap->limit_pusd : 0;
    res->base_pusd = bd.price != NULL ? bd.w.pusd : 0;
    res->output_rate = bd.price != NULL ? bd.w.output_rate : 0;
    for (guint i = 0; i < states->len; i++) {
        State *s = g_ptr_array_index(states, i);
        Entry e = {s, res->base_pusd};
        s->reserved_pusd += e.amount;
        s->refs++;
        g_array_append_val(res->entries, e);
    }
    return res;
}

gint64 lw_reservation_base_pusd(const LwReservation *res)
{
    return res->base_pusd;
}

gint64 lw_reservation_output_rate(const LwReservation *res)
{
    return res->output_rate;
}

/* A metered stream reserved only its input at admission. Each meter call
 * raises its entry (and the state's reserved_pusd) to what the stream may
 * have cost so far, so concurrent streams and admissions see each other's
 * output, and the sum of everyone's running costs is held to the limit, not
 * each stream's alone. Settlement replaces the raised amount with the cost.
 * The amount stops one pico-USD over `limit`, which is enough to be over it
 * and keeps sums of reservations from overflowing. */
static void meter_hold(State *s, Entry *e, gint64 running, gint64 limit)
{
    gint64 want = MIN(running, lw_pusd_add(MAX(limit, 0), 1));
    if (want <= e->amount)
        return;
    s->reserved_pusd += want - e->amount;
    e->amount = want;
}

/* Whether the live state `s` is over its limit, with every running cost in
 * its reservations. */
static gboolean meter_over(const LwBudgets *b, const State *s)
{
    return action_of(s) != LW_ACTION_WARN &&
           s->spent_pusd + s->reserved_pusd + retired_reserved(b, s) > s->limit_pusd;
}

const char *lw_budget_meter(LwBudgets *b, LwReservation *res, gint64 running_pusd)
{
    if (res->request_budget != NULL && running_pusd > res->request_limit_pusd)
        return res->request_budget;
    for (guint i = 0; i < res->entries->len; i++) {
        Entry *e = &g_array_index(res->entries, Entry, i);
        State *s = e->state;
        if (!s->stale) {
            meter_hold(s, e, running_pusd, s->limit_pusd);
            if (meter_over(b, s))
                return s->name;
            continue;
        }
        /* Retired: its own limit no longer applies; the live states of its
         * name count this entry in their retired_reserved(). The amount is
         * raised to the cap of each before it is checked. */
        GHashTableIter it;
        gpointer value;
        g_hash_table_iter_init(&it, b->states);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
            const State *live = value;
            if (!counts_against(s, live))
                continue;
            meter_hold(s, e, running_pusd, live->limit_pusd);
            if (meter_over(b, live))
                return live->name;
        }
    }
    return NULL;
}

/* ---- settlement and alerts ---- */

/* The collector blocks its signals (they are read from a signalfd); an
 * alert command must start with them unblocked and SIGPIPE at default. */
static void child_setup(gpointer data)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
}

static void run_alert_command(const State *s, guint threshold)
{
    const char *cmd = s->def->alert_command;
    g_autofree char *limit = lw_usd_format(s->limit_pusd);
    g_autofree char *spent = lw_usd_format(s->spent_pusd);
    g_autofree char *scope = lw_scope_to_string(s->def->scope, s->def->scope_key,
                                                s->def->scope_value);
    g_autofree char *pct = g_strdup_printf("%u", threshold);
    g_autofree char *window = g_strdup_printf("%" G_GINT64_FORMAT, s->window_start_ms / 1000);
    g_autofree char *run = g_strdup_printf("%" G_GUINT64_FORMAT, s->run_id);
    char **envp = g_get_environ();
    envp = g_environ_setenv(envp, "LLMWRAP_BUDGET", s->name, TRUE);
    envp = g_environ_setenv(envp, "LLMWRAP_BUDGET_LIMIT_USD", limit, TRUE);
    envp = g_environ_setenv(envp, "LLMWRAP_BUDGET_SPENT_USD", spent, TRUE);
    envp = g_environ_setenv(envp, "LLMWRAP_BUDGET_THRESHOLD", pct, TRUE);
    envp = g_environ_setenv(envp, "LLMWRAP_BUDGET_PERIOD", lw_period_to_string(s->def->period),
                            TRUE);
    envp = g_environ_setenv(envp, "LLMWRAP_BUDGET_SCOPE", scope, TRUE);
    envp = g_environ_setenv(envp, "LLMWRAP_BUDGET_WINDOW_START", window, TRUE);
    envp = g_environ_setenv(envp, "LLMWRAP_BUDGET_RUN_ID", run, TRUE);
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    g_autoptr(GError) error = NULL;
    if (!g_spawn_async(NULL, argv, envp, G_SPAWN_STDIN_FROM_DEV_NULL, child_setup,
                       NULL, NULL, &error))
        g_warning("budget %s: alert command failed to start: %s", s->name, error->message);
    g_strfreev(envp);
}

static void check_alerts(LwBudgets *b, State *s)
{
    if (s->def == NULL || s->def->n_alerts == 0 || s->limit_pusd <= 0)
        return;
    for (guint i = 0; i < s->def->n_alerts; i++) {
        guint t = s->def->alerts[i];
        if ((s->fired & (1u << i)) != 0)
            continue;
        /* spent / limit >= t / 100, in integers */
        if ((__int128)s->spent_pusd * 100 < (__int128)s->limit_pusd * t)
            break;
        s->fired |= 1u << i;
        gint64 window = s->window_end_ms > 0 ? s->window_start_ms : (gint64)s->run_id;
        g_autoptr(GError) error = NULL;
        lw_spool_hold(b->server->spool);
        gboolean first = b->server->ledger == NULL ||
                         lw_ledger_alert_once(b->server->ledger, s->name, window, t, &error);
        lw_spool_release(b->server->spool);
        if (!first) {
            if (error != NULL)
                g_warning("budget %s: alert state: %s", s->name, error->message);
            continue; /* already fired in this window (before a restart) */
        }
        g_autofree char *spent = lw_usd_format(s->spent_pusd);
        g_autofree char *limit = lw_usd_format(s->limit_pusd);
        g_warning("budget alert: '%s' reached %u%% ($%s of $%s)", s->name, t, spent, limit);
        if (s->def->alert_command != NULL)
            run_alert_command(s, t);
    }
}

/* A request of the retired state `t` settled and its row is in the ledger:
 * the live states of its name read their spend again, so they count it if
 * their definition does. A read that fails adds the cost: a spend too high
 * until the next read rather than one too low. */
static void settle_retired(LwBudgets *b, const State *t, gint64 cost_pusd)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, b->states);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        State *s = value;
        if (!counts_against(t, s) || s->unread != NULL)
            continue;
        g_autofree char *why = NULL;
        gint64 spent = query_spent(b, s, &why);
        if (spent < 0) {
            g_warning("budget %s: its spend was not read again, adding the cost: %s", s->name, why);
            spent = lw_pusd_add(s->spent_pusd, cost_pusd);
        }
        s->spent_pusd = spent;
        check_alerts(b, s);
    }
}

void lw_budgets_settle(LwBudgets *b, LwReservation *res, gboolean cost_known, gint64 cost_pusd)
{
    if (res == NULL)
        return;
    for (guint i = 0; i < res->entries->len; i++) {
        Entry *e = &g_array_index(res->entries, Entry, i);
        State *s = e->state;
        s->reserved_pusd -= e->amount;
        if (cost_known) {
            s->spent_pusd += cost_pusd;
            if (!res->metered && cost_pusd > e->amount)
                g_warning("budget %s: a request cost more than its worst case (%" G_GINT64_FORMAT
                          " > %" G_GINT64_FORMAT " pico-USD)",
                          s->name, cost_pusd, e->amount);
        }
        s->refs--;
        if (s->stale) {
            if (cost_known)
                settle_retired(b, s, cost_pusd);
            if (s->refs == 0)
                g_ptr_array_remove_fast(b->retired, s); /* frees it */
            continue;
        }
        check_alerts(b, s);
        if (s->run_ended && s->refs == 0)
            g_hash_table_remove(b->states, s->key); /* frees it */
    }
    g_array_unref(res->entries);
    g_free(res->request_budget);
    g_free(res);
}

void lw_budgets_forget_run(LwBudgets *b, guint64 run_id)
{
    if (b == NULL || run_id == 0)
        return;
    /* Kept, they would pile up for as long as the collector serves, each
     * listed by `llmctl budget list` as if its run still went on. */
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, b->states);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        State *s = value;
        if (s->run_id != run_id)
            continue;
        if (s->refs == 0)
            g_hash_table_iter_remove(&it);
        else
            s->run_ended = TRUE;
    }
}

void lw_budgets_foreach_state(LwBudgets *b, gint64 now_ms, LwBudgetStateFunc func, void *data)
{
    /* Make sure the current windows exist, so a budget with no traffic yet
     * in this window still shows its (rebuilt) spend. */
    for (guint i = 0; i < b->defs->len; i++) {
        const LwBudgetDef *def = g_ptr_array_index(b->defs, i);
        if (def->period == LW_PERIOD_HOUR || def->period == LW_PERIOD_DAY ||
            def->period == LW_PERIOD_MONTH)
            windowed_state(b, def, now_ms);
    }
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, b->states);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const State *s = value;
        if (s->window_end_ms > 0 && s->window_end_ms <= now_ms)
            continue; /* a past window */
        /* Reserved: all that counts against the limit, the requests in
         * flight of its retired states included. */
        gint64 reserved = s->reserved_pusd + retired_reserved(b, s);
        LwBudgetStatus status = {s->name,   s->limit_pusd,      s->spent_pusd,
                                 reserved,  s->window_start_ms, s->window_end_ms,
                                 s->run_id, s->refused,         s->unread};
        func(&status, data);
    }
}
