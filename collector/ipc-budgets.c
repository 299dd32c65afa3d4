/* ipc-budgets.c - IPC requests about budgets and guards. */
#define G_LOG_DOMAIN "budget"

#include "ipc-budgets.h"

#include "budget.h"
#include "clock.h"
#include "guard.h"

static void handle_reload(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                          void *data)
{
    g_autoptr(GError) error = NULL;
    if ((server->budgets != NULL && !lw_budgets_reload(server->budgets, &error)) ||
        (server->guards != NULL && !lw_guards_reload(server->guards, &error))) {
        lw_ipc_response_set_error(resp, error->message);
        return;
    }
    Lw__Empty *ok = g_malloc(sizeof *ok);
    lw__empty__init(ok);
    resp->body_case = LW__RESPONSE__BODY_OK;
    resp->ok = ok;
}

static void add_state(const LwBudgetStatus *st, void *data)
{
    GPtrArray *states = data;
    Lw__BudgetState *s = g_malloc(sizeof *s);
    lw__budget_state__init(s);
    s->name = g_strdup(st->name);
    s->has_limit_pusd = s->has_spent_pusd = s->has_reserved_pusd = TRUE;
    s->limit_pusd = st->limit_pusd;
    s->spent_pusd = st->spent_pusd;
    s->reserved_pusd = st->reserved_pusd;
    s->has_window_start_ms = s->has_window_end_ms = TRUE;
    s->window_start_ms = st->window_start_ms;
    s->window_end_ms = st->window_end_ms;
    s->has_run_id = st->run_id != 0;
    s->run_id = st->run_id;
    s->has_refused = TRUE;
    s->refused = st->refused;
    s->spend_unknown = g_strdup(st->spend_unknown); /* NULL stays unset */
    g_ptr_array_add(states, s);
}

static void handle_status(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                          void *data)
{
    GPtrArray *states = g_ptr_array_new();
    if (server->budgets != NULL)
        lw_budgets_foreach_state(server->budgets, lw_clock_now_ms(), add_state, states);
    Lw__BudgetStatusReply *r = g_malloc(sizeof *r);
    lw__budget_status_reply__init(r);
    r->n_budgets = states->len;
    r->budgets = (Lw__BudgetState **)g_ptr_array_free(states, FALSE);
    resp->body_case = LW__RESPONSE__BODY_BUDGET_STATUS;
    resp->budget_status = r;
}

void lw_ipc_budgets_register(LwIpcServer *ipc)
{
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_RELOAD, handle_reload, NULL);
    lw_ipc_server_set_handler(ipc, LW__REQUEST__BODY_BUDGET_STATUS, handle_status, NULL);
}
