/* ipc-runs.c - IPC requests about runs. */
#define G_LOG_DOMAIN "runs"

#include "ipc-runs.h"

#include "json.h"

static char *tags_to_json(Lw__Tag **tags, size_t n)
{
    if (n == 0)
        return NULL;
    GString *s = g_string_new("{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            g_string_append_c(s, ',');
        lw_json_append_string(s, tags[i]->key != NULL ? tags[i]->key : "", -1);
        g_string_append_c(s, ':');
        lw_json_append_string(s, tags[i]->value != NULL ? tags[i]->value : "", -1);
    }
    g_string_append_c(s, '}');
    return g_string_free(s, FALSE);
}

static void handle_open(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                        void *data)
{
    LwRuns *runs = data;
    const Lw__OpenRunRequest *o = req->open_run;
    g_autofree char *tags = tags_to_json(o->tags, o->n_tags);
    g_autofree char **argv = g_new0(char *, o->n_argv + 1);
    for (size_t i = 0; i < o->n_argv; i++)
        argv[i] = o->argv[i];
    LwLedgerRun run = {
        .parent_id = o->has_parent_run_id ? o->parent_run_id : 0,
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

void lw_ipc_runs_register(LwIpcServer *ipc, LwRuns *runs)
{
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_OPEN_RUN, handle_open, runs);
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_CLOSE_RUN, handle_close, runs);
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_KILL_RUN, handle_kill, runs);
}
