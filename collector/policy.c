/* policy.c - admission: kill, guards, budgets. See policy.h. */
#define G_LOG_DOMAIN "policy"

#include "policy.h"

#include <string.h>

#include "budget.h"
#include "clock.h"
#include "guard.h"
#include "inspect.h"
#include "runs.h"

void lw_policy_decision_clear(LwPolicyDecision *d)
{
    g_clear_pointer(&d->refused_by, g_free);
    g_clear_pointer(&d->message, g_free);
    g_clear_pointer(&d->warning, g_free);
    g_clear_pointer(&d->body, g_bytes_unref);
    g_clear_pointer(&d->path, g_free);
}

static void add_warning(LwPolicyDecision *d, const char *text)
{
    char *w = d->warning == NULL ? g_strdup(text) : g_strdup_printf("%s; %s", d->warning, text);
    g_free(d->warning);
    d->warning = w;
}

/* Gemini names the model in the path (/v1beta/models/MODEL:ACTION), not in
 * the body. NULL when the path has no such model or `model` is not a
 * plain name that can go into a URL as it is. */
static char *rewrite_path_model(const char *path, const char *model)
{
    static const char marker[] = "/models/";
    const char *m = strstr(path, marker);
    if (m == NULL || model[0] == '\0' ||
        strspn(model, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            strlen(model))
        return NULL;
    m += sizeof marker - 1;
    const char *colon = strchr(m, ':');
    const char *query = strchr(path, '?');
    if (colon == NULL || colon == m || (query != NULL && query < colon))
        return NULL;
    return g_strdup_printf("%.*s%s%s", (int)(m - path), path, model, colon);
}

void lw_policy_admit(LwServer *server, LwAccount *account, const char *path, GBytes *body,
                     LwPolicyDecision *d)
{
    memset(d, 0, sizeof *d);
    const LwRequestInfo *info = lw_account_info(account);
    const LwProvider *provider = lw_account_provider(account);
    guint64 run_id = lw_account_run_id(account);
    gsize body_len = 0;
    const char *body_data = body != NULL ? g_bytes_get_data(body, &body_len) : NULL;
    gint64 now_ms = lw_clock_now_ms();

    if (lw_runs_killed(server->runs, run_id)) {
        d->refuse = TRUE;
        d->refused_by = g_strdup("kill");
        d->message = g_strdup_printf("llmwrap run %" G_GUINT64_FORMAT
                                     " was stopped with `llmctl kill`: every further request "
                                     "is refused",
                                     run_id);
        return;
    }

    if (server->guards != NULL) {
        /* A harness that runs each step under an llmwrap of its own makes
         * each step a nested run: its loop is the outer run's to catch. */
        guint64 guard_run = lw_runs_root(server->runs, run_id);
        LwGuardVerdict v;
        if (lw_guards_check(server->guards, guard_run, provider->name, path, body_data,
                            body_len, info, now_ms, &v)) {
            if (v.block) {
                d->refuse = TRUE;
                d->refused_by = g_strdup_printf("guard %s", v.guard);
                d->message = g_steal_pointer(&v.message);
                g_warning("%s: refused", d->message);
                lw_guard_verdict_clear(&v);
                return;
            }
            g_warning("%s: forwarding (action warn)", v.message);
            add_warning(d, v.message);
            lw_guard_verdict_clear(&v);
        }
    }

    if (server->budgets == NULL || info->endpoint == LW_ENDPOINT_OTHER ||
        info->endpoint == LW_ENDPOINT_COUNT_TOKENS)
        return;
    LwBudgetRequest breq = {
        .provider = provider,
        .info = info,
        .body = body_data,
        .body_len = body_len,
        .path = path,
        .run_id = run_id,
        .now_ms = now_ms,
    };
    LwBudgetDecision bd;
    LwReservation *res = lw_budgets_admit(server->budgets, &breq, &bd);
    if (bd.refuse) {
        d->refuse = TRUE;
        d->refused_by = g_strdup_printf("budget %s", bd.refused_by);
        d->message = g_steal_pointer(&bd.message);
        g_warning("%s: refused", d->message);
        lw_budget_decision_clear(&bd);
        return;
    }
    if (bd.warning != NULL)
        add_warning(d, bd.warning);

    /* Edits the budgets asked for, on top of the body as it would be sent. */
    GBytes *current = body != NULL ? g_bytes_ref(body) : NULL;
    if (bd.downgrade_model != NULL) {
        gsize len = 0;
        const char *data = current != NULL ? g_bytes_get_data(current, &len) : NULL;
        GBytes *b = data != NULL ? lw_rewrite_model(data, len, bd.downgrade_model) : NULL;
        if (b != NULL) {
            g_bytes_unref(current);
            current = b;
        } else {
            d->path = rewrite_path_model(path, bd.downgrade_model);
        }
        if (b == NULL && d->path == NULL) {
            /* Admitted at the cheaper model's price: sent as it is, the
             * request could cost more than the budget has left. */
            lw_budgets_settle(server->budgets, res, FALSE, 0);
            d->refuse = TRUE;
            d->refused_by = g_strdup("budget downgrade");
            d->message = g_strdup_printf("an llmwrap budget would downgrade %s to %s, but this "
                                         "request's model cannot be changed",
                                         info->model != NULL ? info->model : "the model",
                                         bd.downgrade_model);
            g_warning("%s: refused", d->message);
            if (current != NULL)
                g_bytes_unref(current);
            lw_budget_decision_clear(&bd);
            return;
        }
        g_info("downgraded %s to %s for a budget", info->model, bd.downgrade_model);
    }
    if (bd.clamp_max_output >= 0 && current != NULL) {
        gsize len;
        const char *data = g_bytes_get_data(current, &len);
        GBytes *b = lw_rewrite_max_output(data, len, provider->format, info, bd.clamp_max_output);
        if (b != NULL) {
            g_bytes_unref(current);
            current = b;
            g_info("clamped the max tokens of a %s request to %" G_GINT64_FORMAT " for a budget",
                   info->model != NULL ? info->model : "?", bd.clamp_max_output);
        }
    }
    if (current != body)
        d->body = current;
    else if (current != NULL)
        g_bytes_unref(current);
    lw_account_set_reservation(account, res, bd.metered, bd.downgrade_model);
    lw_budget_decision_clear(&bd);
}
