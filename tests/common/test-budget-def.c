/* test-budget-def.c - budget and guard syntax (round trips, rejections),
 * exact USD amounts, and calendar windows checked against GLib's calendar
 * at the boundaries and over every month from 1600 to 2400. */
#include <glib.h>
#include <string.h>

#include "budget-def.h"

#define PUSD G_GINT64_CONSTANT(1000000000000)

/* Unix ms of a UTC time, computed by GLib: an independent calendar. */
static gint64 utc_ms(int y, int mo, int d, int h, int mi, int s, int ms)
{
    g_autoptr(GDateTime) t = g_date_time_new_utc(y, mo, d, h, mi, s);
    g_assert_nonnull(t);
    return g_date_time_to_unix(t) * 1000 + ms;
}

/* ---- periods ---- */

static void test_period(void)
{
    const char *good[] = {"hour", "day", "month", "run", "request"};
    for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
        LwPeriod p;
        g_assert_true(lw_period_parse(good[i], &p));
        g_assert_cmpstr(lw_period_to_string(p), ==, good[i]);
    }
    const char *bad[] = {"", "Hour", "hours", " day", "day ", "week", "year", "monthly"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        LwPeriod p = LW_PERIOD_RUN;
        g_assert_false(lw_period_parse(bad[i], &p));
        g_assert_cmpint(p, ==, LW_PERIOD_RUN); /* untouched */
    }
    LwPeriod p;
    g_assert_false(lw_period_parse(NULL, &p));
}

/* ---- scopes ---- */

typedef struct {
    const char *text;
    LwScopeKind kind;
    const char *key, *value;
} ScopeCase;

static const ScopeCase scope_good[] = {
    {"global", LW_SCOPE_GLOBAL, NULL, NULL},
    {"provider:openai", LW_SCOPE_PROVIDER, "openai", NULL},
    {"provider:my-proxy_2", LW_SCOPE_PROVIDER, "my-proxy_2", NULL},
    {"model:gpt-4o", LW_SCOPE_MODEL, "gpt-4o", NULL},
    /* Everything after the first ':' is the model: names hold ':' and '/'. */
    {"model:meta/llama:3.1-70b", LW_SCOPE_MODEL, "meta/llama:3.1-70b", NULL},
    {"tag:team=search", LW_SCOPE_TAG, "team", "search"},
    /* The key ends at the first '=': values may hold '=' and blanks. */
    {"tag:job=a=b c", LW_SCOPE_TAG, "job", "a=b c"},
    {"tag:env.name=prod", LW_SCOPE_TAG, "env.name", "prod"},
    {"tag:team=équipe", LW_SCOPE_TAG, "team", "équipe"},
};

static void test_scope_good(gconstpointer data)
{
    const ScopeCase *c = data;
    LwScopeKind kind;
    g_autofree char *key = NULL, *value = NULL;
    g_assert_true(lw_scope_parse(c->text, &kind, &key, &value));
    g_assert_cmpint(kind, ==, c->kind);
    g_assert_cmpstr(key, ==, c->key);
    g_assert_cmpstr(value, ==, c->value);
    g_autofree char *back = lw_scope_to_string(kind, key, value);
    g_assert_cmpstr(back, ==, c->text);
}

static const char *const scope_bad[] = {
    "", "Global", "global ", "everything", "provider", "provider:", "provider:open ai",
    "provider:a:b", "provider:\"x\"", "model:", "model: gpt-4o", "model:gpt-4o ",
    "model:a\nb", "model:\x7f", "tag:", "tag:team", "tag:=x", "tag:team=", "tag:-x=1",
    "tag:te am=x", "tag:te\"am=x", "tag:team=a\tb", "region:eu", "model:\xff\xfe",
};

static void test_scope_bad(void)
{
    for (guint i = 0; i < G_N_ELEMENTS(scope_bad); i++) {
        LwScopeKind kind = LW_SCOPE_MODEL;
        char *key = (char *)"untouched", *value = (char *)"untouched";
        if (lw_scope_parse(scope_bad[i], &kind, &key, &value))
            g_error("accepted scope '%s'", scope_bad[i]);
        g_assert_cmpint(kind, ==, LW_SCOPE_MODEL);
        g_assert_cmpstr(key, ==, "untouched");
        g_assert_cmpstr(value, ==, "untouched");
    }
}

/* ---- actions ---- */

static void test_action(void)
{
    static const struct {
        const char *text;
        LwActionKind kind;
        const char *model;
    } good[] = {
        {"block", LW_ACTION_BLOCK, NULL},
        {"warn", LW_ACTION_WARN, NULL},
        {"clamp", LW_ACTION_CLAMP, NULL},
        {"downgrade:gpt-4o-mini", LW_ACTION_DOWNGRADE, "gpt-4o-mini"},
        {"downgrade:org/model:v2", LW_ACTION_DOWNGRADE, "org/model:v2"},
    };
    for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
        LwActionKind kind;
        g_autofree char *model = NULL;
        g_assert_true(lw_action_parse(good[i].text, &kind, &model));
        g_assert_cmpint(kind, ==, good[i].kind);
        g_assert_cmpstr(model, ==, good[i].model);
        g_autofree char *back = lw_action_to_string(kind, model);
        g_assert_cmpstr(back, ==, good[i].text);
    }
    const char *bad[] = {"", "Block", "stop", "block ", "downgrade", "downgrade:",
                         "downgrade: x", "downgrade:a\nb", "clamp:100", "alert"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        LwActionKind kind = LW_ACTION_WARN;
        char *model = (char *)"untouched";
        if (lw_action_parse(bad[i], &kind, &model))
            g_error("accepted action '%s'", bad[i]);
        g_assert_cmpint(kind, ==, LW_ACTION_WARN);
        g_assert_cmpstr(model, ==, "untouched");
    }
}

/* ---- alerts ---- */

static void test_alerts(void)
{
    static const struct {
        const char *text;
        guint n;
        guint v[LW_BUDGET_MAX_ALERTS];
    } good[] = {
        {"", 0, {0}},
        {"50,80,95", 3, {50, 80, 95}},
        {"95,50", 2, {50, 95}}, /* any order in, ascending out */
        {"1", 1, {1}},
        {"100", 1, {100}},
        {"007", 1, {7}},
        {"10,20,30,40,50,60,70,80", 8, {10, 20, 30, 40, 50, 60, 70, 80}},
    };
    for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
        guint v[LW_BUDGET_MAX_ALERTS] = {0};
        guint n = 99;
        g_assert_true(lw_alerts_parse(good[i].text, v, &n));
        g_assert_cmpuint(n, ==, good[i].n);
        for (guint j = 0; j < n; j++)
            g_assert_cmpuint(v[j], ==, good[i].v[j]);
    }
    const char *bad[] = {"0",   "101",   "50,,80", "50,", ",50",   "50,50", "a",
                         "50 ,80", " 50", "-5",   "1e2", "50.5", "10,20,30,40,50,60,70,80,90",
                         "4294967346", "50;80"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        guint v[LW_BUDGET_MAX_ALERTS] = {0};
        guint n = 99;
        if (lw_alerts_parse(bad[i], v, &n))
            g_error("accepted alerts '%s'", bad[i]);
        g_assert_cmpuint(n, ==, 99);
    }
}

/* ---- guards ---- */

static void test_guard_kind(void)
{
    const char *good[] = {"loop", "rate", "spend-rate", "size", "growth"};
    for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
        LwGuardKind k;
        g_assert_true(lw_guard_kind_parse(good[i], &k));
        g_assert_cmpstr(lw_guard_kind_to_string(k), ==, good[i]);
    }
    const char *bad[] = {"", "Loop", "spend_rate", "spendrate", "sizes", "budget"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        LwGuardKind k;
        g_assert_false(lw_guard_kind_parse(bad[i], &k));
    }
}

/* ---- USD ---- */

static const struct {
    const char *text;
    gint64 pusd;
} usd_good[] = {
    {"0", 0},
    {"2", 2 * PUSD},
    {"0.50", PUSD / 2},
    {"0.5", PUSD / 2},
    {"12.345678901234", G_GINT64_CONSTANT(12345678901234)},
    {"0.000000000001", 1},
    {"0.000123", 123000000},
    {"007.10", 7 * PUSD + PUSD / 10},
    {"9223372", G_GINT64_CONSTANT(9223372) * PUSD},
    {"9223372.036854775807", G_MAXINT64},
};

static const char *const usd_bad[] = {
    "", "0.0000000000001", /* 13 decimals: would round */
    "1.0000000000000",     /* 13 decimals, even if zero */
    "9223372.036854775808", "9223373", "99999999999999999999",
    "1e3", "1E3", "1.5e-3", "-1", "-0", "+1", " 1", "1 ", ".5", "5.", "1.2.3",
    "$5", "0x10", "1,5", "inf", "nan", "5usd", "١",
};

static void test_usd_parse(void)
{
    for (guint i = 0; i < G_N_ELEMENTS(usd_good); i++) {
        gint64 v = -7;
        g_assert_true(lw_usd_parse(usd_good[i].text, &v));
        g_assert_cmpint(v, ==, usd_good[i].pusd);
    }
    for (guint i = 0; i < G_N_ELEMENTS(usd_bad); i++) {
        gint64 v = -7;
        if (lw_usd_parse(usd_bad[i], &v))
            g_error("accepted USD '%s'", usd_bad[i]);
        g_assert_cmpint(v, ==, -7);
    }
    gint64 v;
    g_assert_false(lw_usd_parse(NULL, &v));
}

static void test_usd_format(void)
{
    static const struct {
        gint64 pusd;
        const char *text;
    } cases[] = {
        {0, "0"},
        {1, "0.000000000001"},
        {PUSD / 2, "0.5"},
        {123000000, "0.000123"},
        {2 * PUSD, "2"},
        {-3 * PUSD / 2, "-1.5"},
        {G_GINT64_CONSTANT(12345678901234), "12.345678901234"},
        {G_MAXINT64, "9223372.036854775807"},
        {G_MININT64, "-9223372.036854775808"},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *s = lw_usd_format(cases[i].pusd);
        g_assert_cmpstr(s, ==, cases[i].text);
    }
    /* Every non-negative amount comes back exactly: a spread of values
     * with every count of fractional digits. */
    gint64 v = 1;
    for (int i = 0; i < 62; i++) {
        g_autofree char *s = lw_usd_format(v);
        gint64 back = -1;
        g_assert_true(lw_usd_parse(s, &back));
        g_assert_cmpint(back, ==, v);
        if (v > G_MAXINT64 / 2 - 2)
            break; /* the next doubling would overflow */
        v = v * 2 + (i % 3);
    }
}

static void test_name(void)
{
    g_assert_true(lw_budget_name_is_valid("daily"));
    g_assert_true(lw_budget_name_is_valid("team.search_daily-2"));
    g_autofree char *max = g_strnfill(LW_BUDGET_NAME_MAX, 'a');
    g_assert_true(lw_budget_name_is_valid(max));
    g_autofree char *over = g_strnfill(LW_BUDGET_NAME_MAX + 1, 'a');
    g_assert_false(lw_budget_name_is_valid(over));
    const char *bad[] = {"", "a b", "run:1", "x/y", "é", "a\n", NULL};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_false(lw_budget_name_is_valid(bad[i]));
}

/* ---- windows ---- */

typedef struct {
    const char *what;
    LwPeriod period;
    int at[7];            /* y, mo, d, h, mi, s, ms */
    int start[4], end[4]; /* y, mo, d, h */
} WindowCase;

static const WindowCase window_cases[] = {
    {"hour, last ms", LW_PERIOD_HOUR,
     {2026, 11, 21, 10, 59, 59, 999}, {2026, 11, 21, 10}, {2026, 11, 21, 11}},
    {"hour, first ms", LW_PERIOD_HOUR,
     {2026, 11, 21, 11, 0, 0, 0}, {2026, 11, 21, 11}, {2026, 11, 21, 12}},
    {"hour across midnight", LW_PERIOD_HOUR,
     {2026, 12, 31, 23, 30, 0, 0}, {2026, 12, 31, 23}, {2027, 1, 1, 0}},
    {"hour before 1970", LW_PERIOD_HOUR,
     {1969, 12, 31, 23, 59, 59, 999}, {1969, 12, 31, 23}, {1970, 1, 1, 0}},
    {"day, last ms", LW_PERIOD_DAY,
     {2026, 11, 21, 23, 59, 59, 999}, {2026, 11, 21, 0}, {2026, 11, 22, 0}},
    {"day, first ms", LW_PERIOD_DAY,
     {2026, 11, 22, 0, 0, 0, 0}, {2026, 11, 22, 0}, {2026, 11, 23, 0}},
    {"day, leap day", LW_PERIOD_DAY,
     {2024, 2, 29, 12, 0, 0, 0}, {2024, 2, 29, 0}, {2024, 3, 1, 0}},
    {"day before 1970", LW_PERIOD_DAY,
     {1969, 12, 31, 0, 0, 0, 1}, {1969, 12, 31, 0}, {1970, 1, 1, 0}},
    {"month, last ms of Nov", LW_PERIOD_MONTH,
     {2026, 11, 30, 23, 59, 59, 999}, {2026, 11, 1, 0}, {2026, 12, 1, 0}},
    {"month, first ms of Dec", LW_PERIOD_MONTH,
     {2026, 12, 1, 0, 0, 0, 0}, {2026, 12, 1, 0}, {2027, 1, 1, 0}},
    {"month, Dec -> Jan", LW_PERIOD_MONTH,
     {2026, 12, 31, 23, 59, 59, 999}, {2026, 12, 1, 0}, {2027, 1, 1, 0}},
    {"month, first ms of Jan", LW_PERIOD_MONTH,
     {2027, 1, 1, 0, 0, 0, 0}, {2027, 1, 1, 0}, {2027, 2, 1, 0}},
    {"month, leap Feb 29", LW_PERIOD_MONTH,
     {2024, 2, 29, 23, 59, 59, 999}, {2024, 2, 1, 0}, {2024, 3, 1, 0}},
    {"month, after leap Feb", LW_PERIOD_MONTH,
     {2024, 3, 1, 0, 0, 0, 0}, {2024, 3, 1, 0}, {2024, 4, 1, 0}},
    {"month, common Feb 28", LW_PERIOD_MONTH,
     {2026, 2, 28, 23, 59, 59, 999}, {2026, 2, 1, 0}, {2026, 3, 1, 0}},
    {"month, 2000 leap", LW_PERIOD_MONTH,
     {2000, 2, 29, 0, 0, 0, 0}, {2000, 2, 1, 0}, {2000, 3, 1, 0}},
    {"month, 2100 not leap", LW_PERIOD_MONTH,
     {2100, 2, 28, 12, 0, 0, 0}, {2100, 2, 1, 0}, {2100, 3, 1, 0}},
    {"month, 30-day April", LW_PERIOD_MONTH,
     {2026, 4, 30, 23, 59, 59, 999}, {2026, 4, 1, 0}, {2026, 5, 1, 0}},
    {"month before 1970", LW_PERIOD_MONTH,
     {1969, 12, 31, 23, 59, 59, 999}, {1969, 12, 1, 0}, {1970, 1, 1, 0}},
    {"month, epoch", LW_PERIOD_MONTH,
     {1970, 1, 1, 0, 0, 0, 0}, {1970, 1, 1, 0}, {1970, 2, 1, 0}},
};

static void test_window_case(gconstpointer data)
{
    const WindowCase *c = data;
    gint64 now = utc_ms(c->at[0], c->at[1], c->at[2], c->at[3], c->at[4], c->at[5], c->at[6]);
    gint64 start = -1, end = -1;
    g_assert_true(lw_period_window(c->period, now, &start, &end));
    g_assert_cmpint(start, ==,
                    utc_ms(c->start[0], c->start[1], c->start[2], c->start[3], 0, 0, 0));
    g_assert_cmpint(end, ==, utc_ms(c->end[0], c->end[1], c->end[2], c->end[3], 0, 0, 0));
    g_assert_cmpint(start, <=, now);
    g_assert_cmpint(now, <, end);
    /* The ms before the start is in the previous window, the end in the next. */
    gint64 s2, e2;
    g_assert_true(lw_period_window(c->period, start - 1, &s2, &e2));
    g_assert_cmpint(e2, ==, start);
    g_assert_true(lw_period_window(c->period, end, &s2, &e2));
    g_assert_cmpint(s2, ==, end);
}

/* Every month boundary from 1600 to 2400 (Gregorian leap rules at their
 * century edges), against GLib: the last ms of a month, its first ms and
 * a midpoint. */
static void test_window_months_sweep(void)
{
    for (int y = 1600; y <= 2400; y++) {
        for (int m = 1; m <= 12; m++) {
            gint64 first = utc_ms(y, m, 1, 0, 0, 0, 0);
            gint64 next = m == 12 ? utc_ms(y + 1, 1, 1, 0, 0, 0, 0)
                                  : utc_ms(y, m + 1, 1, 0, 0, 0, 0);
            const gint64 probes[] = {first, first + (next - first) / 2, next - 1};
            for (guint i = 0; i < G_N_ELEMENTS(probes); i++) {
                gint64 s, e;
                g_assert_true(lw_period_window(LW_PERIOD_MONTH, probes[i], &s, &e));
                if (s != first || e != next)
                    g_error("%04d-%02d probe %u: got [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                            "), want [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                            y, m, i, s, e, first, next);
            }
        }
    }
}

static void test_window_not_calendar(void)
{
    gint64 s = 5, e = 6;
    g_assert_false(lw_period_window(LW_PERIOD_RUN, 1000, &s, &e));
    g_assert_false(lw_period_window(LW_PERIOD_REQUEST, 1000, &s, &e));
    g_assert_cmpint(s, ==, 5);
    g_assert_cmpint(e, ==, 6);
}

/* ---- lifetime ---- */

static void test_lifetime(void)
{
    LwBudgetDef def = {
        .name = g_strdup("team"),
        .limit_pusd = 5 * PUSD,
        .period = LW_PERIOD_DAY,
        .scope = LW_SCOPE_TAG,
        .scope_key = g_strdup("team"),
        .scope_value = g_strdup("search"),
        .action = LW_ACTION_DOWNGRADE,
        .action_model = g_strdup("gpt-4o-mini"),
        .alerts = {50, 80},
        .n_alerts = 2,
        .alert_command = g_strdup("notify-send budget"),
        .created_ms = 1,
        .reset_ms = 2,
    };
    LwBudgetDef *copy = lw_budget_def_copy(&def);
    lw_budget_def_clear(&def);
    g_assert_null(def.name);
    g_assert_cmpint(def.limit_pusd, ==, 0);
    /* The copy owns its own strings: they survive the original. */
    g_assert_cmpstr(copy->name, ==, "team");
    g_assert_cmpstr(copy->scope_key, ==, "team");
    g_assert_cmpstr(copy->scope_value, ==, "search");
    g_assert_cmpstr(copy->action_model, ==, "gpt-4o-mini");
    g_assert_cmpstr(copy->alert_command, ==, "notify-send budget");
    g_assert_cmpuint(copy->n_alerts, ==, 2);
    g_assert_cmpuint(copy->alerts[1], ==, 80);
    g_assert_cmpint(copy->reset_ms, ==, 2);
    lw_budget_def_free(copy);
    lw_budget_def_free(NULL);
    lw_budget_def_clear(NULL);
    g_assert_null(lw_budget_def_copy(NULL));

    LwGuardDef *g = g_new0(LwGuardDef, 1);
    g->name = g_strdup("loops");
    lw_guard_def_free(g);
    lw_guard_def_free(NULL);
    lw_guard_def_clear(NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/budget-def/period", test_period);
    for (guint i = 0; i < G_N_ELEMENTS(scope_good); i++) {
        g_autofree char *path = g_strdup_printf("/budget-def/scope/good/%u", i);
        g_test_add_data_func(path, &scope_good[i], test_scope_good);
    }
    g_test_add_func("/budget-def/scope/bad", test_scope_bad);
    g_test_add_func("/budget-def/action", test_action);
    g_test_add_func("/budget-def/alerts", test_alerts);
    g_test_add_func("/budget-def/guard-kind", test_guard_kind);
    g_test_add_func("/budget-def/usd/parse", test_usd_parse);
    g_test_add_func("/budget-def/usd/format", test_usd_format);
    g_test_add_func("/budget-def/name", test_name);
    for (guint i = 0; i < G_N_ELEMENTS(window_cases); i++) {
        g_autofree char *path = g_strdup_printf("/budget-def/window/%u", i);
        g_test_add_data_func(path, &window_cases[i], test_window_case);
    }
    g_test_add_func("/budget-def/window/months-sweep", test_window_months_sweep);
    g_test_add_func("/budget-def/window/not-calendar", test_window_not_calendar);
    g_test_add_func("/budget-def/lifetime", test_lifetime);
    return g_test_run();
}
