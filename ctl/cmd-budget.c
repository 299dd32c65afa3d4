/* cmd-budget.c - `llmctl budget set|list|rm|reset`: budgets kept in the
 * ledger, enforced by the collector.
 *
 * Definitions are written to the ledger whether or not a collector runs
 * (it reads them when it starts); a running one is then told to reload.
 * `list` shows the collector's live view when one runs (spend settled in
 * the window plus the worst cases of requests in flight); otherwise it
 * sums the window's spend from the ledger, which is exactly what a
 * starting collector would rebuild.
 *
 * --json of `list` (pinned: scripts read it) is an array of
 *   {name, limit_usd, period, scope, action, alerts, alert_command,
 *    spent_usd, reserved_usd, remaining_usd, window_start, next_reset,
 *    refused, run_id, runs, live}
 * with exact USD numbers; spent/reserved/remaining are null where a budget
 * has no single account (per-run and per-request budgets: per-run ones
 * list the runs going on under "runs" when live), window_start/next_reset
 * are null outside calendar periods. `llmwrap --budget` run budgets appear
 * as "run:N" entries when live, while their run goes on.
 */
#include <string.h>

#include "budget-def.h"
#include "config.h"
#include "ctl.h"
#include "ipc.h"
#include "json.h"
#include "ledger-budgets.h"
#include "output.h"
#include "pricing.h"
#include "timespec.h"

#define NAME              "budget"
#define STATUS_TIMEOUT_MS 5000

#define SCOPE_FORMS  "global, provider:NAME, model:NAME or tag:KEY=VALUE"
#define ACTION_FORMS "block, warn, clamp or downgrade:MODEL"

/* budget-def.h declares no autoptr cleanup; a name of our own cannot
 * clash with one it may gain. */
typedef LwBudgetDef Budget;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Budget, lw_budget_def_free)

/* ---- set ---- */

static char *provider_names(const LwProviderTable *table)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; i < lw_provider_table_count(table); i++)
        g_string_append_printf(s, "%s%s", i > 0 ? ", " : "", lw_provider_table_nth(table, i)->name);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* Whether any configured provider has a price for `model`, asked through
 * the collector's own lookup (snapshots fall back to their family). */
static gboolean model_has_price(const LwPricing *pricing, const LwProviderTable *table,
                                const char *model)
{
    for (guint i = 0; i < lw_provider_table_count(table); i++)
        if (lw_pricing_lookup(pricing, lw_provider_table_nth(table, i)->name, model) != NULL)
            return TRUE;
    return FALSE;
}

static char *alerts_text(const LwBudgetDef *d, const char *suffix)
{
    if (d->n_alerts == 0)
        return g_strdup("-");
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; i < d->n_alerts; i++)
        g_string_append_printf(s, "%s%u%s", i > 0 ? "," : "", d->alerts[i], suffix);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static char *describe(const LwBudgetDef *d)
{
    g_autofree char *limit = lw_output_usd_human(d->limit_pusd);
    g_autofree char *scope = lw_scope_to_string(d->scope, d->scope_key, d->scope_value);
    g_autofree char *action = lw_action_to_string(d->action, d->action_model);
    g_autofree char *alerts = alerts_text(d, "%");
    g_autofree char *shown_scope = lw_output_printable(scope);
    g_autofree char *shown_action = lw_output_printable(action);
    return g_strdup_printf("%s per %s, scope %s, action %s%s%s", limit,
                           lw_period_to_string(d->period), shown_scope, shown_action,
                           d->n_alerts > 0 ? ", alerts at " : "", d->n_alerts > 0 ? alerts : "");
}

static int budget_set(LwCtl *ctl, int argc, char **argv)
{
    const char *cmd = NAME " set";
    g_autofree char *limit = NULL, *per = NULL, *scope = NULL, *action = NULL, *alert = NULL,
                    *alert_command = NULL;
    const GOptionEntry entries[] = {
        {"limit", 0, 0, G_OPTION_ARG_STRING, &limit, "The limit in USD (e.g. 5, 0.25)", "USD"},
        {"per", 0, 0, G_OPTION_ARG_STRING, &per,
         "The period: hour, day, month (calendar, UTC), run (each llmwrap run with its "
         "nested runs) or request",
         "PERIOD"},
        {"scope", 0, 0, G_OPTION_ARG_STRING, &scope,
         "What counts: global (default), provider:NAME, model:NAME (the model the program "
         "asked for) or tag:KEY=VALUE",
         "SCOPE"},
        {"action", 0, 0, G_OPTION_ARG_STRING, &action,
         "Over the limit: block (default), warn, clamp (lower max tokens) or downgrade:MODEL",
         "ACTION"},
        {"alert", 0, 0, G_OPTION_ARG_STRING, &alert,
         "Alert at these percents of the limit, once per window or run (e.g. 50,80,95; "
         "not with --per request)",
         "PERCENTS"},
        {"alert-command", 0, 0, G_OPTION_ARG_STRING, &alert_command,
         "Run this with /bin/sh -c when an alert fires (details in LLMWRAP_BUDGET_* variables)",
         "CMD"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        "NAME", entries,
        "Creates budget NAME, or replaces its definition (spend so far still counts;\n"
        "see `llmctl budget reset`). A running collector applies it at once.");
    if (!lw_ctl_options_parse(ctx, cmd, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc < 2)
        return lw_ctl_usage_error(cmd, "which budget? (llmctl budget set NAME --limit USD "
                                       "--per PERIOD)");
    if (argc > 2)
        return lw_ctl_usage_error(cmd, "unexpected argument '%s'", argv[2]);

    g_autoptr(Budget) def = g_new0(Budget, 1);
    if (!lw_budget_name_is_valid(argv[1]))
        return lw_ctl_usage_error(cmd,
                                  "bad budget name '%s': use 1 to %d letters, digits, '_', "
                                  "'.' or '-'",
                                  argv[1], LW_BUDGET_NAME_MAX);
    def->name = g_strdup(argv[1]);
    if (limit == NULL)
        return lw_ctl_usage_error(cmd, "missing --limit USD");
    if (!lw_usd_parse(limit, &def->limit_pusd))
        return lw_ctl_usage_error(cmd,
                                  "bad --limit '%s': expected an amount of USD like 5 or 0.25 "
                                  "(at most 12 decimals)",
                                  limit);
    if (def->limit_pusd <= 0)
        return lw_ctl_usage_error(cmd, "bad --limit '%s': must be more than 0", limit);
    if (per == NULL)
        return lw_ctl_usage_error(cmd, "missing --per hour|day|month|run|request");
    if (!lw_period_parse(per, &def->period))
        return lw_ctl_usage_error(cmd, "bad --per '%s': expected hour, day, month, run or request",
                                  per);
    if (!lw_scope_parse(scope != NULL ? scope : "global", &def->scope, &def->scope_key,
                        &def->scope_value))
        return lw_ctl_usage_error(cmd, "bad --scope '%s': expected " SCOPE_FORMS, scope);
    if (!lw_action_parse(action != NULL ? action : "block", &def->action, &def->action_model))
        return lw_ctl_usage_error(cmd, "bad --action '%s': expected " ACTION_FORMS, action);
    if (alert != NULL && (alert[0] == '\0' || !lw_alerts_parse(alert, def->alerts, &def->n_alerts)))
        return lw_ctl_usage_error(cmd,
                                  "bad --alert '%s': expected distinct percents 1..100 "
                                  "separated by commas, like 50,80,95 (at most %d)",
                                  alert, LW_BUDGET_MAX_ALERTS);
    /* A per-request budget keeps no spend (each request is checked on its
     * own), so there is nothing an alert could watch cross a threshold. */
    if (alert != NULL && def->period == LW_PERIOD_REQUEST)
        return lw_ctl_usage_error(cmd, "--alert: a budget --per request has no spend to alert "
                                       "on (each request is held to the limit on its own); "
                                       "use --per hour, day, month or run");
    if (alert_command != NULL && alert_command[0] == '\0')
        return lw_ctl_usage_error(cmd, "--alert-command is empty");
    if (alert_command != NULL && alert == NULL)
        return lw_ctl_usage_error(cmd, "--alert-command needs --alert PERCENTS: it runs when "
                                       "an alert fires");
    def->alert_command = g_steal_pointer(&alert_command);

    /* Names are checked against the configuration the collector runs
     * with: a budget for a provider it does not know would never apply. */
    g_autoptr(GError) error = NULL;
    g_autoptr(LwConfig) config = lw_config_load(ctl->paths->config_file, &error);
    if (config == NULL) {
        fprintf(stderr, "llmctl %s: %s\n", cmd, error->message);
        return LW_CTL_EXIT_USAGE;
    }
    if (def->scope == LW_SCOPE_PROVIDER &&
        lw_provider_table_by_name(config->providers, def->scope_key) == NULL) {
        g_autofree char *known = provider_names(config->providers);
        return lw_ctl_usage_error(cmd, "unknown provider '%s' in --scope '%s' (configured: %s)",
                                  def->scope_key, scope, known);
    }
    if (def->action == LW_ACTION_DOWNGRADE) {
        g_autoptr(LwPricing) pricing = lw_pricing_load(NULL, config, &error);
        g_autofree char *shown = lw_output_printable(def->action_model);
        if (pricing == NULL) {
            fprintf(stderr, "llmctl %s: warning: cannot check the price of '%s': %s\n", cmd, shown,
                    error->message);
            g_clear_error(&error);
        } else if (!model_has_price(pricing, config->providers, def->action_model)) {
            fprintf(stderr,
                    "llmctl %s: warning: no price for '%s': requests downgraded to it have an "
                    "unknown cost that budgets cannot count. Add [price.%s] to %s\n",
                    cmd, shown, shown, ctl->paths->config_file);
        }
    }

    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger_for_definitions(ctl, &error);
    if (ledger == NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    g_autoptr(GPtrArray) existing = lw_ledger_budget_list(ledger, &error);
    if (existing == NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    gboolean replaced = FALSE;
    for (guint i = 0; i < existing->len && !replaced; i++)
        replaced =
            strcmp(((const LwBudgetDef *)g_ptr_array_index(existing, i))->name, def->name) == 0;
    if (!lw_timespec_now_ms(&def->created_ms, &error))
        return lw_ctl_usage_error(cmd, "%s", error->message);
    if (!lw_ledger_budget_put(ledger, def, &error))
        return lw_ctl_error(cmd, "%s", error->message);
    g_clear_pointer(&ledger, lw_ledger_close);

    g_autofree char *what = describe(def);
    printf("Budget '%s' %s: %s.\n", def->name, replaced ? "updated" : "created", what);
    gboolean reloaded = lw_ctl_reload_collector(ctl, cmd);
    if (!lw_ctl_flush(NAME))
        return LW_CTL_EXIT_ERROR;
    return reloaded ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

/* ---- rm, reset ---- */

static int budget_change(LwCtl *ctl, int argc, char **argv, gboolean reset)
{
    const char *cmd = reset ? NAME " reset" : NAME " rm";
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        "NAME", NULL,
        reset ? "Spend before now stops counting for budget NAME (in every window);\n"
                "alerts already fired in the current window stay fired."
              : "Removes budget NAME. A running collector stops enforcing it at once.");
    if (!lw_ctl_options_parse(ctx, cmd, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc < 2)
        return lw_ctl_usage_error(cmd, "which budget?");
    if (argc > 2)
        return lw_ctl_usage_error(cmd, "unexpected argument '%s'", argv[2]);
    const char *name = argv[1];
    if (!lw_budget_name_is_valid(name))
        return lw_ctl_usage_error(cmd, "bad budget name '%s'", name);

    g_autoptr(GError) error = NULL;
    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger(ctl, FALSE, &error);
    if (ledger == NULL && error != NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    if (ledger == NULL)
        return lw_ctl_error(cmd, "no budget named '%s' (there is no ledger yet)", name);
    gint64 now = 0;
    if (reset && !lw_timespec_now_ms(&now, &error))
        return lw_ctl_usage_error(cmd, "%s", error->message);
    gboolean ok = reset ? lw_ledger_budget_reset(ledger, name, now, &error)
                        : lw_ledger_budget_remove(ledger, name, &error);
    if (!ok) {
        if (g_error_matches(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND))
            return lw_ctl_error(cmd, "no budget named '%s' (see llmctl budget list)", name);
        return lw_ctl_error(cmd, "%s", error->message);
    }
    g_clear_pointer(&ledger, lw_ledger_close);
    if (reset) {
        g_autofree char *when = lw_output_time_human(now);
        printf("Budget '%s' reset: spend before %s UTC no longer counts.\n", name, when);
    } else {
        printf("Budget '%s' removed.\n", name);
    }
    gboolean reloaded = lw_ctl_reload_collector(ctl, cmd);
    if (!lw_ctl_flush(NAME))
        return LW_CTL_EXIT_ERROR;
    return reloaded ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

/* ---- list ---- */

/* One account of a budget: a window, a run, or nothing known. */
typedef struct {
    gboolean known;
    const char *unknown; /* why the collector cannot read the spend (then !known) */
    gint64 spent, reserved;
    guint64 refused;
    gboolean has_refused;
    gint64 window_start, window_end; /* 0 when none */
    guint64 run_id;
} Account;

/* One line of the listing: a defined budget, or an llmwrap --budget run
 * budget ("run:N") the collector reports. */
typedef struct {
    const LwBudgetDef *def; /* NULL for run:N */
    const char *name;
    gint64 limit;
    Account account;
    GArray *runs; /* Account, per-run budgets when live */
    gboolean live;
} Entry;

static void entry_clear(gpointer p)
{
    Entry *e = p;
    g_clear_pointer(&e->runs, g_array_unref);
}

/* Asks a running collector for its live budget state. NULL when none
 * runs (or it cannot say); a collector that runs but fails is reported on
 * stderr and the ledger's view is shown instead. *ret_running says
 * whether a collector answered at all. */
static Lw__Response *live_state(LwCtl *ctl, const char *cmd, gboolean *ret_running)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(LwIpcClient) client = lw_ipc_client_connect(ctl->paths->ipc_socket, &error);
    *ret_running = client != NULL;
    if (client == NULL)
        return NULL;
    Lw__BudgetStatusRequest status = LW__BUDGET_STATUS_REQUEST__INIT;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_BUDGET_STATUS;
    req.budget_status = &status;
    Lw__Response *resp = lw_ipc_client_call(client, &req, STATUS_TIMEOUT_MS, &error);
    if (resp == NULL) {
        fprintf(stderr,
                "llmctl %s: the collector gave no live budget state (%s); spend below "
                "is from the ledger\n",
                cmd, error->message);
        return NULL;
    }
    if (resp->body_case != LW__RESPONSE__BODY_BUDGET_STATUS || resp->budget_status == NULL) {
        fprintf(stderr,
                "llmctl %s: the collector sent no budget state; spend below is from "
                "the ledger\n",
                cmd);
        lw__response__free_unpacked(resp, NULL);
        return NULL;
    }
    return resp;
}

static Account account_of(const Lw__BudgetState *s)
{
    return (Account){
        .known = s->spend_unknown == NULL,
        .unknown = s->spend_unknown,
        .spent = s->has_spent_pusd ? s->spent_pusd : 0,
        .reserved = s->has_reserved_pusd ? s->reserved_pusd : 0,
        .refused = s->refused,
        .has_refused = s->has_refused,
        .window_start = s->has_window_start_ms ? s->window_start_ms : 0,
        .window_end = s->has_window_end_ms ? s->window_end_ms : 0,
        .run_id = s->has_run_id ? s->run_id : 0,
    };
}

static gint compare_run(gconstpointer a, gconstpointer b)
{
    const Account *x = a, *y = b;
    return x->run_id < y->run_id ? -1 : x->run_id > y->run_id;
}

static gint compare_entry_run(gconstpointer a, gconstpointer b)
{
    return compare_run(&((const Entry *)a)->account, &((const Entry *)b)->account);
}

static gboolean is_run_budget_name(const char *name, guint64 *ret_run)
{
    return name != NULL && g_str_has_prefix(name, "run:") &&
           g_ascii_string_to_unsigned(name + 4, 10, 1, G_MAXUINT64, ret_run, NULL);
}

/* Builds the entries from the definitions and, when live, the collector's
 * states; without a live state a calendar budget's spend comes from the
 * ledger. FALSE (message printed) on a ledger failure. */
static gboolean build_entries(const char *cmd, LwLedger *ledger, GPtrArray *defs,
                              const Lw__BudgetStatusReply *live, gint64 now, GArray *out)
{
    for (guint i = 0; defs != NULL && i < defs->len; i++) {
        const LwBudgetDef *d = g_ptr_array_index(defs, i);
        Entry e = {.def = d, .name = d->name, .limit = d->limit_pusd, .live = live != NULL};
        if (d->period == LW_PERIOD_RUN)
            e.runs = g_array_new(FALSE, TRUE, sizeof(Account));
        for (size_t k = 0; live != NULL && k < live->n_budgets; k++) {
            const Lw__BudgetState *s = live->budgets[k];
            if (g_strcmp0(s->name, d->name) != 0)
                continue;
            Account a = account_of(s);
            if (d->period == LW_PERIOD_RUN) {
                if (a.run_id != 0)
                    g_array_append_val(e.runs, a);
            } else if (a.window_end > 0 && a.window_start <= now && now < a.window_end &&
                       (!e.account.known || a.window_start > e.account.window_start)) {
                e.account = a;
            }
        }
        if (e.runs != NULL)
            g_array_sort(e.runs, compare_run);
        gint64 start, end;
        if (!e.account.known && e.account.unknown == NULL &&
            lw_period_window(d->period, now, &start, &end)) {
            /* Not (yet) in the live view: what the collector would rebuild. */
            g_autoptr(GError) error = NULL;
            gint64 spent =
                ledger != NULL ? lw_ledger_budget_spent(ledger, d, start, end, 0, &error) : 0;
            if (spent < 0) {
                lw_ctl_error(cmd, "budget '%s': %s", d->name, error->message);
                entry_clear(&e);
                return FALSE;
            }
            e.account =
                (Account){.known = TRUE, .spent = spent, .window_start = start, .window_end = end};
            e.live = FALSE;
        }
        g_array_append_val(out, e);
    }
    /* llmwrap --budget run budgets, by run. */
    g_autoptr(GArray) runs = g_array_new(FALSE, TRUE, sizeof(Entry));
    for (size_t k = 0; live != NULL && k < live->n_budgets; k++) {
        const Lw__BudgetState *s = live->budgets[k];
        guint64 run = 0;
        if (!is_run_budget_name(s->name, &run))
            continue;
        Entry e = {.name = s->name,
                   .limit = s->has_limit_pusd ? s->limit_pusd : 0,
                   .account = account_of(s),
                   .live = TRUE};
        e.account.run_id = run;
        g_array_append_val(runs, e);
    }
    g_array_sort(runs, compare_entry_run);
    g_array_append_vals(out, runs->data, runs->len);
    return TRUE;
}

static void json_usd_or_null(GString *out, gboolean known, gint64 pusd)
{
    if (known)
        lw_output_json_usd(out, pusd);
    else
        g_string_append(out, "null");
}

static void json_time_or_null(GString *out, gint64 ms)
{
    if (ms == 0) {
        g_string_append(out, "null");
        return;
    }
    g_autofree char *t = lw_output_time_iso(ms);
    lw_json_append_string(out, t, -1);
}

static void json_account(GString *out, const Account *a, gint64 limit)
{
    g_string_append(out, "\"spent_usd\": ");
    json_usd_or_null(out, a->known, a->spent);
    g_string_append(out, ", \"reserved_usd\": ");
    json_usd_or_null(out, a->known, a->reserved);
    g_string_append(out, ", \"remaining_usd\": ");
    json_usd_or_null(out, a->known, limit - a->spent - a->reserved);
    g_string_append(out, ", \"refused\": ");
    if (a->has_refused)
        g_string_append_printf(out, "%" G_GUINT64_FORMAT, a->refused);
    else
        g_string_append(out, "null");
    g_string_append(out, ", \"spend_unknown\": ");
    if (a->unknown != NULL)
        lw_json_append_string(out, a->unknown, -1);
    else
        g_string_append(out, "null");
}

/* Says why, under the table, when an account's spend is unknown. */
static void print_unknown(const char *name, const Account *a, gboolean per_run)
{
    if (a->unknown == NULL)
        return;
    g_autofree char *shown_name = lw_output_printable(name);
    g_autofree char *why = lw_output_printable(a->unknown);
    g_autofree char *run =
        per_run ? g_strdup_printf(", run %" G_GUINT64_FORMAT, a->run_id) : g_strdup("");
    printf("\nBudget '%s'%s: the collector cannot read its spend (%s), and refuses in the "
           "budget's name until it can.\n",
           shown_name, run, why);
}

static void print_json(GArray *entries)
{
    g_autoptr(GString) out = g_string_new("[");
    for (guint i = 0; i < entries->len; i++) {
        const Entry *e = &g_array_index(entries, Entry, i);
        const LwBudgetDef *d = e->def;
        g_string_append(out, i > 0 ? ",\n {\"name\": " : "\n {\"name\": ");
        lw_json_append_string(out, e->name, -1);
        g_string_append(out, ", \"limit_usd\": ");
        lw_output_json_usd(out, e->limit);
        g_string_append(out, ", \"period\": ");
        lw_json_append_string(out, d != NULL ? lw_period_to_string(d->period) : "run", -1);
        g_autofree char *scope = d != NULL
                                     ? lw_scope_to_string(d->scope, d->scope_key, d->scope_value)
                                     : g_strdup(e->name);
        g_autofree char *action =
            d != NULL ? lw_action_to_string(d->action, d->action_model) : g_strdup("block");
        g_string_append(out, ", \"scope\": ");
        lw_json_append_string(out, scope, -1);
        g_string_append(out, ", \"action\": ");
        lw_json_append_string(out, action, -1);
        g_string_append(out, ", \"alerts\": [");
        for (guint k = 0; d != NULL && k < d->n_alerts; k++)
            g_string_append_printf(out, "%s%u", k > 0 ? ", " : "", d->alerts[k]);
        g_string_append(out, "], \"alert_command\": ");
        if (d != NULL && d->alert_command != NULL)
            lw_json_append_string(out, d->alert_command, -1);
        else
            g_string_append(out, "null");
        g_string_append(out, ", ");
        json_account(out, &e->account, e->limit);
        g_string_append(out, ", \"window_start\": ");
        json_time_or_null(out, e->account.window_end > 0 ? e->account.window_start : 0);
        g_string_append(out, ", \"next_reset\": ");
        json_time_or_null(out, e->account.window_end);
        g_string_append(out, ", \"run_id\": ");
        if (d == NULL)
            g_string_append_printf(out, "%" G_GUINT64_FORMAT, e->account.run_id);
        else
            g_string_append(out, "null");
        g_string_append(out, ", \"runs\": [");
        for (guint k = 0; e->runs != NULL && k < e->runs->len; k++) {
            const Account *a = &g_array_index(e->runs, Account, k);
            g_string_append_printf(out, "%s{\"run_id\": %" G_GUINT64_FORMAT ", ", k > 0 ? ", " : "",
                                   a->run_id);
            json_account(out, a, e->limit);
            g_string_append_c(out, '}');
        }
        g_string_append_printf(out, "], \"live\": %s}", e->live ? "true" : "false");
    }
    g_string_append(out, entries->len > 0 ? "\n]\n" : "]\n");
    fputs(out->str, stdout);
}

static void add_account_cells(const Account *a, gint64 limit, char **spent, char **reserved,
                              char **remaining)
{
    *spent = a->known ? lw_output_usd_human(a->spent) : g_strdup("-");
    *reserved = a->known ? lw_output_usd_human(a->reserved) : g_strdup("-");
    *remaining =
        a->known ? lw_output_usd_human_down(limit - a->spent - a->reserved) : g_strdup("-");
}

static void print_table(GArray *entries, gboolean live, gboolean running)
{
    if (entries->len == 0) {
        printf("No budgets. Set one with: llmctl budget set NAME --limit USD --per day\n");
        return;
    }
    const char *headers[] = {"NAME",   "LIMIT", "PER",      "SCOPE",     "ACTION",
                             "ALERTS", "SPENT", "RESERVED", "REMAINING", "NEXT RESET (UTC)"};
    const LwOutputAlign align[] = {
        LW_OUTPUT_LEFT, LW_OUTPUT_RIGHT, LW_OUTPUT_LEFT,  LW_OUTPUT_LEFT,  LW_OUTPUT_LEFT,
        LW_OUTPUT_LEFT, LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT, LW_OUTPUT_LEFT};
    g_autoptr(LwOutputTable) t = lw_output_table_new(G_N_ELEMENTS(headers), headers, align);
    for (guint i = 0; i < entries->len; i++) {
        const Entry *e = &g_array_index(entries, Entry, i);
        const LwBudgetDef *d = e->def;
        g_autofree char *name = lw_output_printable(e->name);
        g_autofree char *limit = lw_output_usd_human(e->limit);
        g_autofree char *scope_raw =
            d != NULL ? lw_scope_to_string(d->scope, d->scope_key, d->scope_value)
                      : g_strdup("run tree");
        g_autofree char *action_raw =
            d != NULL ? lw_action_to_string(d->action, d->action_model) : g_strdup("block");
        g_autofree char *scope = lw_output_printable(scope_raw);
        g_autofree char *action = lw_output_printable(action_raw);
        g_autofree char *alerts = d != NULL ? alerts_text(d, "") : g_strdup("-");
        g_autofree char *spent = NULL, *reserved = NULL, *remaining = NULL;
        add_account_cells(&e->account, e->limit, &spent, &reserved, &remaining);
        g_autofree char *reset =
            e->account.window_end > 0
                ? lw_output_time_human(e->account.window_end)
                : g_strdup(d != NULL && d->period == LW_PERIOD_REQUEST ? "each request"
                                                                       : "each run");
        const char *period = d != NULL ? lw_period_to_string(d->period) : "run";
        const char *cells[] = {name,   limit, period,   scope,     action,
                               alerts, spent, reserved, remaining, reset};
        lw_output_table_add(t, cells);
        for (guint k = 0; e->runs != NULL && k < e->runs->len; k++) {
            const Account *a = &g_array_index(e->runs, Account, k);
            g_autofree char *run = g_strdup_printf("  run %" G_GUINT64_FORMAT, a->run_id);
            g_autofree char *s = NULL, *r = NULL, *m = NULL;
            add_account_cells(a, e->limit, &s, &r, &m);
            const char *sub[] = {run, "", "", "", "", "", s, r, m, ""};
            lw_output_table_add(t, sub);
        }
    }
    lw_output_table_print(t, stdout);
    for (guint i = 0; i < entries->len; i++) {
        const Entry *e = &g_array_index(entries, Entry, i);
        print_unknown(e->name, &e->account, FALSE);
        for (guint k = 0; e->runs != NULL && k < e->runs->len; k++)
            print_unknown(e->name, &g_array_index(e->runs, Account, k), TRUE);
    }
    if (live)
        printf("\nLive view of the running collector: RESERVED is the worst case of requests "
               "in flight.\n");
    else if (running)
        printf("\nSpend computed from the ledger for the current windows: the running "
               "collector gave no live view.\n");
    else
        printf("\nCollector not running: spend computed from the ledger for the current "
               "windows (nothing reserved).\n");
}

static int budget_list(LwCtl *ctl, int argc, char **argv)
{
    const char *cmd = NAME " list";
    gboolean json = FALSE;
    const GOptionEntry entries[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        NULL, entries,
        "SPENT is the settled cost in the current window (hour, day and month windows are\n"
        "calendar-aligned in UTC); RESERVED the worst case of requests in flight (only a\n"
        "running collector knows it); REMAINING = LIMIT - SPENT - RESERVED. SPENT is '-'\n"
        "when the collector cannot read a budget's spend from the ledger (it then refuses\n"
        "in that budget's name); the reason is printed under the table.");
    if (!lw_ctl_options_parse(ctx, cmd, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(cmd, "unexpected argument '%s'", argv[1]);
    g_autoptr(GError) error = NULL;
    gint64 now = 0;
    if (!lw_timespec_now_ms(&now, &error))
        return lw_ctl_usage_error(cmd, "%s", error->message);

    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger_any(ctl, &error);
    if (ledger == NULL && error != NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    g_autoptr(GPtrArray) defs = NULL;
    if (ledger != NULL && (defs = lw_ledger_budget_list(ledger, &error)) == NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    gboolean running = FALSE;
    Lw__Response *resp = live_state(ctl, cmd, &running);
    const Lw__BudgetStatusReply *live = resp != NULL ? resp->budget_status : NULL;

    g_autoptr(GArray) list = g_array_new(FALSE, TRUE, sizeof(Entry));
    g_array_set_clear_func(list, entry_clear);
    gboolean ok = build_entries(cmd, ledger, defs, live, now, list);
    if (ok) {
        if (json)
            print_json(list);
        else
            print_table(list, live != NULL, running);
    }
    if (resp != NULL)
        lw__response__free_unpacked(resp, NULL);
    if (!ok)
        return LW_CTL_EXIT_ERROR;
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

/* ---- dispatch ---- */

int lw_cmd_budget(LwCtl *ctl, int argc, char **argv)
{
    static const char usage[] =
        "Usage:\n"
        "  llmctl budget set NAME --limit USD --per hour|day|month|run|request\n"
        "        [--scope global|provider:P|model:M|tag:K=V]\n"
        "        [--action block|warn|clamp|downgrade:MODEL]\n"
        "        [--alert 50,80,95] [--alert-command CMD]\n"
        "  llmctl budget list [--json]\n"
        "  llmctl budget rm NAME\n"
        "  llmctl budget reset NAME\n\n"
        "Budgets cap what programs spend. The collector reserves each request's worst\n"
        "case before forwarding it, so concurrent requests cannot overrun a blocking\n"
        "budget. Definitions live in the ledger; a running collector applies changes\n"
        "at once. `llmctl budget COMMAND --help` shows each command's options.\n";
    if (argc >= 2) {
        if (strcmp(argv[1], "set") == 0)
            return budget_set(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "list") == 0)
            return budget_list(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "rm") == 0)
            return budget_change(ctl, argc - 1, argv + 1, FALSE);
        if (strcmp(argv[1], "reset") == 0)
            return budget_change(ctl, argc - 1, argv + 1, TRUE);
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            fputs(usage, stdout);
            return LW_CTL_EXIT_OK;
        }
        return lw_ctl_usage_error(NAME, "unknown subcommand '%s': expected set, list, rm or reset",
                                  argv[1]);
    }
    return lw_ctl_usage_error(NAME, "expected set, list, rm or reset");
}
