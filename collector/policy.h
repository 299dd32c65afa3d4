/* policy.h - admission: may this request go to the provider, and as what?
 *
 * In order: a run stopped with `llmctl kill` is refused; guards may warn or
 * refuse; budgets reserve the request's worst case or refuse, warn,
 * downgrade or clamp it (budget.h). The decision says what the exchange
 * must do; the reservation is handed to the account, which settles it with
 * the actual cost.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "account.h"
#include "server.h"

typedef struct {
    gboolean refuse;
    char *refused_by; /* "budget NAME", "guard NAME", "kill" */
    char *message;    /* for the error body */
    char *warning;    /* value of the x-llmwrap-warning response header; NULL if none */
    GBytes *body;     /* a rewritten body to send instead (downgrade, clamp); NULL if none */
    char *path;       /* a rewritten path to send to instead (a Gemini downgrade); NULL if none */
} LwPolicyDecision;

/* Decides for the request of `account` (already begun). `body` is what
 * would be sent (may be NULL). */
void lw_policy_admit(LwServer *server, LwAccount *account, const char *path, GBytes *body,
                     LwPolicyDecision *ret);
void lw_policy_decision_clear(LwPolicyDecision *d);
