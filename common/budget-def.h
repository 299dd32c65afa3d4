/* budget-def.h - what a budget and a guard are: their definitions, the
 * command-line syntax for them, and calendar windows.
 *
 * Budgets cap spend. A budget has a limit in pico-USD, a period, a scope
 * and an action:
 *   period  hour | day | month   calendar-aligned windows in UTC
 *           run                  each llmwrap run (with its nested runs) separately
 *           request              each single request
 *   scope   global | provider:P | model:M | tag:K=V
 *   action  block                refuse over the limit (the provider's own error shape)
 *           warn                 forward, with a response header and a log line
 *           downgrade:MODEL      rewrite the request to MODEL (recorded as requested vs served)
 *           clamp                lower the max-tokens field to what the remaining budget pays for
 * Alerts fire once per window when settled spend reaches each threshold
 * (percent of the limit), as a request settles or when a change (a lower
 * limit, a reprice) puts it there: a log line, and the alert command if one
 * is set.
 *
 * Guards stop runaway programs, per run:
 *   loop        the same request N times within WINDOW
 *   rate        more than N requests within WINDOW
 *   spend-rate  more than N USD within WINDOW
 *   size        a single request's input above N tokens (bounded from the body)
 *   growth      a request's input N times the run's first request's
 * with action warn or block.
 *
 * Definitions live in the ledger (llmctl budget/guard ...) and, for guards,
 * also in config.ini [guard.NAME] groups. `llmwrap --budget USD` is a run
 * budget with action block, kept with the run itself.
 *
 * Thread-safety: plain data and pure functions.
 */
#pragma once

#include <glib.h>

typedef enum {
    LW_PERIOD_HOUR = 0,
    LW_PERIOD_DAY,
    LW_PERIOD_MONTH,
    LW_PERIOD_RUN,
    LW_PERIOD_REQUEST,
} LwPeriod;

typedef enum {
    LW_SCOPE_GLOBAL = 0,
    LW_SCOPE_PROVIDER,
    LW_SCOPE_MODEL,
    LW_SCOPE_TAG,
} LwScopeKind;

typedef enum {
    LW_ACTION_BLOCK = 0,
    LW_ACTION_WARN,
    LW_ACTION_DOWNGRADE,
    LW_ACTION_CLAMP,
} LwActionKind;

#define LW_BUDGET_MAX_ALERTS 8
#define LW_BUDGET_NAME_MAX 64

typedef struct {
    char *name;         /* [A-Za-z0-9_.-]{1,64} */
    gint64 limit_pusd;  /* > 0 */
    LwPeriod period;
    LwScopeKind scope;
    char *scope_key;    /* provider, model or tag key; NULL for global */
    char *scope_value;  /* tag value; NULL otherwise */
    LwActionKind action;
    char *action_model; /* downgrade target; NULL otherwise */
    guint alerts[LW_BUDGET_MAX_ALERTS]; /* percents, ascending, 1..100 */
    guint n_alerts;
    char *alert_command; /* run with /bin/sh -c and the details in its environment; NULL */
    gint64 created_ms;
    gint64 reset_ms;     /* `budget reset`: spend before this does not count; 0 = never */
} LwBudgetDef;

typedef enum {
    LW_GUARD_LOOP = 0,
    LW_GUARD_RATE,
    LW_GUARD_SPEND_RATE,
    LW_GUARD_SIZE,
    LW_GUARD_GROWTH,
} LwGuardKind;

typedef struct {
    char *name;
    LwGuardKind kind;
    gint64 threshold;     /* count (loop, rate), pico-USD (spend-rate), tokens (size),
                           * or a factor x1000 (growth: 10x = 10000) */
    guint window_ms;      /* loop, rate, spend-rate; 0 otherwise */
    gboolean block;       /* FALSE = warn */
    gboolean from_config; /* defined in config.ini (read-only for llmctl) */
} LwGuardDef;

/* ---- syntax (llmctl arguments, config.ini values) ---- */

/* "hour", "day", "month", "run", "request". */
gboolean lw_period_parse(const char *s, LwPeriod *ret);
const char *lw_period_to_string(LwPeriod p);

/* "global", "provider:openai", "model:gpt-4o", "tag:team=search". Transfer
 * full into ret_key/ret_value (NULL when unused). */
gboolean lw_scope_parse(const char *s, LwScopeKind *ret_kind, char **ret_key, char **ret_value);
/* The same syntax back. Transfer full. */
char *lw_scope_to_string(LwScopeKind kind, const char *key, const char *value);

/* "block", "warn", "clamp", "downgrade:MODEL". */
gboolean lw_action_parse(const char *s, LwActionKind *ret_kind, char **ret_model);
char *lw_action_to_string(LwActionKind kind, const char *model);

/* "50,80,95" → ascending, distinct percents 1..100, at most LW_BUDGET_MAX_ALERTS. */
gboolean lw_alerts_parse(const char *s, guint *ret_alerts, guint *ret_n);

/* "loop", "rate", "spend-rate", "size", "growth". */
gboolean lw_guard_kind_parse(const char *s, LwGuardKind *ret);
const char *lw_guard_kind_to_string(LwGuardKind k);

/* Parses a USD amount ("2", "0.50", "12.345678901234") exactly into pico-USD.
 * At most 12 fractional digits; never via a float. */
gboolean lw_usd_parse(const char *s, gint64 *ret_pusd);

/* Formats pico-USD as a plain decimal USD string with all significant
 * digits ("0.000123", "2", "-1.5"), exact. Transfer full. */
char *lw_usd_format(gint64 pusd);

gboolean lw_budget_name_is_valid(const char *name);

/* ---- windows ---- */

/* The calendar window (UTC) of `period` that contains `now_ms`: [start, end).
 * Only for hour, day and month; returns FALSE for run and request. */
gboolean lw_period_window(LwPeriod period, gint64 now_ms, gint64 *ret_start_ms,
                          gint64 *ret_end_ms);

/* ---- lifetime ---- */

void lw_budget_def_clear(LwBudgetDef *def);
void lw_budget_def_free(LwBudgetDef *def);
LwBudgetDef *lw_budget_def_copy(const LwBudgetDef *def);
void lw_guard_def_clear(LwGuardDef *def);
void lw_guard_def_free(LwGuardDef *def);
