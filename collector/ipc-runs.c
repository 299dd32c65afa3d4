/* ipc-runs.c - IPC requests about runs. */
#define G_LOG_DOMAIN "runs"

#include "ipc-runs.h"

#include <yajl/yajl_tree.h>

#include "json.h"
#include "ledger-runs.h"
#include "ledger-spool.h"

static gboolean has_tag(Lw__Tag **tags, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (g_strcmp0(tags[i]->key != NULL ? tags[i]->key : "", key) == 0)
            return TRUE;
    }
    return FALSE;
}

static void append_tag(GString *s, const char *key, const char *value)
{
    g_string_append_c(s, s->len == 0 ? '{' : ',');
    lw_json_append_string(s, key, -1);
    g_string_append_c(s, ':');
    lw_json_append_string(s, value, -1);
}

/* The run's tags as a JSON object: those of its parent (`parent_json`, the
 * parent's own merged tags, or NULL), then its own, whose values win. A
 * run started inside another inherits the outer run's tags, so its
 * requests count for the outer run's tag budgets and `usage --by tag`: a
 * tagged harness (`llmwrap --tag team=a -- make test`) whose steps run
 * llmwrap themselves is still team a's spend. NULL when there are none. */
static char *run_tags_json(const char *parent_json, Lw__Tag **tags, size_t n)
{
    GString *s = g_string_new(NULL);
    yajl_val parent = parent_json != NULL ? yajl_tree_parse(parent_json, NULL, 0) : NULL;
    if (YAJL_IS_OBJECT(parent)) {
        for (size_t i = 0; i < parent->u.object.len; i++) {
            const char *key = parent->u.object.keys[i];
            const char *value = YAJL_GET_STRING(parent->u.object.values[i]);
            if (value != NULL && !has_tag(tags, n, key))
                append_tag(s, key, value);
        }
    }
    yajl_tree_free(parent);
    for (size_t i = 0; i < n; i++)
        append_tag(s, tags[i]->key != NULL ? tags[i]->key : "",
                   tags[i]->value != NULL ? tags[i]->value : "");
    if (s->len == 0) {
        g_string_free(s, TRUE);
        return NULL;
    }
    g_string_append_c(s, '}');
    return g_string_free(s, FALSE);
}

static void handle_open(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                        void *data)
{
    LwRuns *runs = data;
    const Lw__OpenRunRequest *o = req->open_run;
    if (server->draining) {
        /* The listeners are closed: the run could make no request. llmwrap
         * waits for this collector to stop, then starts the next one. */
        guint64 now = lw_loop_now_us();
        Lw__OpenRunReply *r = g_malloc(sizeof *r);
        lw__open_run_reply__init(r);
        r->has_stopping_within_ms = TRUE;
        r->stopping_within_ms = (uint32_t)MIN(
            (server->drain_ends_us > now ? server->drain_ends_us - now : 0) / 1000, G_MAXUINT32);
        resp->body_case = LW__RESPONSE__BODY_OPEN_RUN;
        resp->open_run = r;
        return;
    }
    g_autofree char **argv = g_new0(char *, o->n_argv + 1);
    for (size_t i = 0; i < o->n_argv; i++)
        argv[i] = o->argv[i];
    guint64 parent = o->has_parent_run_id ? o->parent_run_id : 0;
    const LwRun *parent_run = parent != 0 ? lw_runs_get(runs, parent) : NULL;
    if (parent != 0 && parent_run == NULL) {
        /* Only a run that exists can be a parent: run ids only grow, so a
         * parent is then older than its child and runs cannot form a loop
         * (which a run-tree query would follow for ever). An outer llmwrap
         * with another state directory names a run of another ledger. */
        g_warning("a run names run %" G_GUINT64_FORMAT " as its parent, which this ledger does "
                  "not hold: opened as a top-level run",
                  parent);
        parent = 0;
    }
    g_autofree char *tags =
        run_tags_json(parent_run != NULL ? parent_run->tags_json : NULL, o->tags, o->n_tags);
    LwLedgerRun run = {
        .parent_id = parent,
        .started_ms = g_get_real_time() / 1000,
        .argv = argv,
        .cwd = o->cwd,
        .pid = o->has_pid ? o->pid : 0,
        .tags_json = tags,
        .budget_pusd = o->has_budget_pusd ? o->budget_pusd : -1,
    };
    g_autoptr(GError) error = NULL;
    guint64 id = lw_runs_open(runs, &run, &error);
    if (id == 0) {
        lw_ipc_response_set_error(resp, error->message);
        return;
    }
    lw_runs_set_owner(runs, id, lw_ipc_server_current_client(server->ipc));
    g_info("run %" G_GUINT64_FORMAT " opened: %s%s", id, o->n_argv > 0 ? o->argv[0] : "?",
           run.budget_pusd >= 0 ? " (with a budget)" : "");
    Lw__OpenRunReply *r = g_malloc(sizeof *r);
    lw__open_run_reply__init(r);
    r->has_run_id = TRUE;
    r->run_id = id;
    r->status = g_malloc(sizeof *r->status);
    lw__status_reply__init(r->status);
    lw_ipc_fill_status(server, r->status);
    resp->body_case = LW__RESPONSE__BODY_OPEN_RUN;
    resp->open_run = r;
}

static void reply_ok(Lw__Response *resp)
{
    Lw__Empty *ok = g_malloc(sizeof *ok);
    lw__empty__init(ok);
    resp->body_case = LW__RESPONSE__BODY_OK;
    resp->ok = ok;
}

static void handle_close(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                         void *data)
{
    const Lw__CloseRunRequest *c = req->close_run;
    g_autoptr(GError) error = NULL;
    if (!c->has_run_id ||
        !lw_runs_close(data, c->run_id, c->has_exit_status ? c->exit_status : -1, &error)) {
        lw_ipc_response_set_error(resp, error != NULL ? error->message : "run_id missing");
        return;
    }
    g_info("run %" G_GUINT64_FORMAT " closed with status %d", c->run_id,
           c->has_exit_status ? c->exit_status : -1);
    reply_ok(resp);
}

static void handle_kill(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                        void *data)
{
    const Lw__KillRunRequest *k = req->kill_run;
    if (!k->has_run_id || !lw_runs_kill(data, k->run_id)) {
        lw_ipc_response_set_error(resp, "no such run");
        return;
    }
    g_warning("run %" G_GUINT64_FORMAT " killed: every further request is refused", k->run_id);
    reply_ok(resp);
}

static char **strv_from(GPtrArray *a, size_t *ret_n)
{
    *ret_n = a->len;
    char **v = g_new0(char *, a->len + 1);
    for (guint i = 0; i < a->len; i++)
        v[i] = g_strdup(g_ptr_array_index(a, i));
    return v;
}

static void handle_summary(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                           void *data)
{
    const Lw__RunSummaryRequest *q = req->run_summary;
    LwRunSummary s;
    g_autoptr(GError) error = NULL;
    lw_spool_hold(server->spool);
    gboolean ok = server->ledger != NULL && q->has_run_id &&
                  lw_ledger_run_summary(server->ledger, q->run_id, &s, &error);
    lw_spool_release(server->spool);
    if (!ok) {
        lw_ipc_response_set_error(resp, error != NULL ? error->message : "no ledger or run id");
        return;
    }
    Lw__RunSummary *r = g_malloc(sizeof *r);
    lw__run_summary__init(r);
    r->has_run_id = TRUE;
    r->run_id = q->run_id;
    r->has_requests = r->has_refused = r->has_cost_pusd = r->has_unpriced = r->has_partial = TRUE;
    r->requests = (uint64_t)s.requests;
    r->refused = (uint64_t)s.refused;
    r->cost_pusd = s.cost_pusd;
    r->unpriced = (uint64_t)s.unpriced;
    r->partial = (uint64_t)s.partial;
    r->n_models = s.models->len;
    r->models = g_new0(Lw__ModelSpend *, MAX(s.models->len, 1));
    for (guint i = 0; i < s.models->len; i++) {
        const LwRunModelSpend *m = g_ptr_array_index(s.models, i);
        Lw__ModelSpend *ms = g_malloc(sizeof *ms);
        lw__model_spend__init(ms);
        ms->provider = g_strdup(m->provider);
        ms->model = g_strdup(m->model);
        ms->has_requests = ms->has_input_tokens = ms->has_output_tokens = TRUE;
        ms->has_cached_input_tokens = ms->has_reasoning_tokens = ms->has_cost_pusd = TRUE;
        ms->has_unpriced_requests = TRUE;
        ms->requests = (uint64_t)m->requests;
        ms->input_tokens = (uint64_t)m->input_tokens;
        ms->output_tokens = (uint64_t)m->output_tokens;
        ms->cached_input_tokens = (uint64_t)m->cached_input_tokens;
        ms->reasoning_tokens = (uint64_t)m->reasoning_tokens;
        ms->cost_pusd = m->cost_pusd;
        ms->unpriced_requests = (uint64_t)m->unpriced;
        r->models[i] = ms;
    }
    r->refused_by = strv_from(s.refused_by, &r->n_refused_by);
    r->warnings = strv_from(s.warnings, &r->n_warnings);
    lw_run_summary_clear(&s);
    resp->body_case = LW__RESPONSE__BODY_RUN_SUMMARY;
    resp->run_summary = r;
}

/* An llmwrap that reconnected to this collector after a restart. */
static void handle_attach(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                          void *data)
{
    const Lw__AttachRunRequest *a = req->attach_run;
    if (!a->has_run_id ||
        !lw_runs_set_owner(data, a->run_id, lw_ipc_server_current_client(server->ipc))) {
        lw_ipc_response_set_error(resp, "no such open run");
        return;
    }
    g_info("run %" G_GUINT64_FORMAT ": its llmwrap reattached", a->run_id);
    reply_ok(resp);
}

/* An llmwrap killed with -9 never closes its run: its connection closing
 * is the last word. */
static void on_client_closed(guint64 client, void *data)
{
    lw_runs_abandon(data, client);
}

void lw_ipc_runs_register(LwIpcServer *ipc, LwRuns *runs)
{
    lw_ipc_server_set_close_handler(ipc, on_client_closed, runs);
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_RUN_SUMMARY, handle_summary, runs);
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_OPEN_RUN, handle_open, runs);
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_CLOSE_RUN, handle_close, runs);
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_KILL_RUN, handle_kill, runs);
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_ATTACH_RUN, handle_attach, runs);
}
