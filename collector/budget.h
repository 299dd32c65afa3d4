/* budget.h - budgets that hold under concurrency: reserve, then settle.
 *
 * Admission computes the request's worst-case cost (worst-case.h) and
 * checks every budget in scope: the run budgets of the request's run and
 * its ancestors (llmwrap --budget), and the budgets defined with `llmctl
 * budget set` (ledger-budgets.h). A budget is over when
 *     spent + reserved + worst case > limit
 * where spent is the settled cost of recorded requests in the budget's
 * window and scope (rebuilt from the ledger at start and at each new
 * window) and reserved is the sum of the worst cases of requests in
 * flight. Admission reserves the worst case in every budget it passed;
 * settlement replaces the reservation with the actual cost (partial usage
 * of a cut request included). Everything runs on the loop thread, so check
 * and reserve are one step and concurrency cannot slip a request past a
 * limit.
 *
 * Over a limit the budget's action applies: block (refuse), warn (forward,
 * with a header), downgrade (rewrite the model, then check again), clamp
 * (lower the max-tokens field to what remains; refuse below the floor).
 * A request whose cost has no bound (no price for its model; unbounded
 * input or output) is refused by a blocking budget, except a stream whose
 * only unbounded part is its output: that one is admitted and metered
 * (lw_budget_meter): its reservation grows with its running cost, and it is
 * ended with the provider's own error event when the spend and the running
 * costs of every request in flight reach the limit.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "inspect.h"
#include "pricing.h"
#include "runs.h"
#include "server.h"

typedef struct _LwBudgets LwBudgets;
typedef struct _LwReservation LwReservation;

typedef struct {
    gboolean refuse;
    char *refused_by;       /* budget name ("run:N" for a run budget) */
    char *message;          /* for the error body: names the budget, spent and limit */
    char *warning;          /* warn budgets over their limit: header value; NULL if none */
    char *downgrade_model;  /* rewrite the request's model to this; NULL if not */
    gint64 clamp_max_output; /* set the max-tokens field to this; -1 if not */
    gboolean metered;       /* stream admitted without an output bound: meter it */
} LwBudgetDecision;

typedef struct {
    const LwProvider *provider;
    const LwRequestInfo *info;
    const char *body;
    gsize body_len;
    const char *path; /* the request target, for messages (its query is never shown) */
    guint64 run_id; /* 0 = not under llmwrap */
    gint64 now_ms;  /* lw_clock_now_ms() */
} LwBudgetRequest;

/* Loads the budget definitions from the server's ledger. */
LwBudgets *lw_budgets_new(LwServer *server);
void lw_budgets_free(LwBudgets *budgets);

/* Re-reads the definitions (llmctl changed them). Windows whose budget is
 * unchanged keep their state, with their spend read again (llmctl reprice
 * changes costs); reservations in flight keep their amounts. A changed
 * budget's spend is read again under its new definition, and the requests
 * it had in flight still count against it until they settle. */
gboolean lw_budgets_reload(LwBudgets *budgets, GError **error);

/* Admission. Fills `ret` (free with lw_budget_decision_clear) and returns
 * the reservation to settle later, or NULL when nothing was reserved
 * (refused, or no budget in scope). */
LwReservation *lw_budgets_admit(LwBudgets *budgets, const LwBudgetRequest *req,
                                LwBudgetDecision *ret);
void lw_budget_decision_clear(LwBudgetDecision *d);

/* A metered stream produced output: `running_pusd` is the most the request
 * can have cost so far. Raises the reservation to it (settlement replaces
 * it with the cost), so other requests count it. Returns NULL while every
 * budget's spend and reservations fit, else the name of the budget they
 * exceed (borrowed until the next budget call): end the stream now. */
const char *lw_budget_meter(LwBudgets *budgets, LwReservation *res, gint64 running_pusd);

/* Cost of what a metered request consumed before any output (its bounded
 * input); the exchange adds output as it streams. */
gint64 lw_reservation_base_pusd(const LwReservation *res);
gint64 lw_reservation_output_rate(const LwReservation *res);

/* Settles: the reservation becomes `cost_pusd` (unknown cost: released, the
 * budget cannot count what it cannot price). Frees `res`; NULL is ignored. */
void lw_budgets_settle(LwBudgets *budgets, LwReservation *res, gboolean cost_known,
                       gint64 cost_pusd);

/* Run `run_id` ended: the states of its run budget and of the per-run
 * budgets it was the outermost run of go, at once or when the last of
 * their requests in flight settles. A late request of the run builds them
 * again from the ledger. NULL budgets: nothing. */
void lw_budgets_forget_run(LwBudgets *budgets, guint64 run_id);

/* The live state of every tracked budget window, for `llmctl budget list`.
 * Calls func once per state. */
typedef struct {
    const char *name;
    gint64 limit_pusd, spent_pusd, reserved_pusd;
    gint64 window_start_ms, window_end_ms; /* 0 for run budgets */
    guint64 run_id;
    guint64 refused;
    const char *spend_unknown; /* why the spend cannot be read; NULL = known */
} LwBudgetStatus;
typedef void (*LwBudgetStateFunc)(const LwBudgetStatus *status, void *data);
void lw_budgets_foreach_state(LwBudgets *budgets, gint64 now_ms, LwBudgetStateFunc func,
                              void *data);
