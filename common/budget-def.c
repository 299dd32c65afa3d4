/* budget-def.c - budget and guard definitions: syntax, exact USD amounts
 * and calendar windows. See budget-def.h.
 *
 * Every parser is strict: the whole string must match (no surrounding
 * blanks, no trailing garbage), so a typo is reported rather than read as
 * something else. Each *_to_string gives back text its parser accepts and
 * that parses to the same value.
 *
 * Windows use integer calendar arithmetic on days since the epoch (the
 * proleptic Gregorian calendar, UTC), never the local time zone nor a
 * float, so a boundary is exact to the millisecond.
 */
#include "budget-def.h"

#include <stdlib.h>
#include <string.h>

#define PUSD_PER_USD        G_GINT64_CONSTANT(1000000000000)
#define USD_FRACTION_DIGITS 12
#define HOUR_MS             G_GINT64_CONSTANT(3600000)
#define DAY_MS              (24 * HOUR_MS)

static const char *const period_names[] = {
    [LW_PERIOD_HOUR] = "hour", [LW_PERIOD_DAY] = "day",         [LW_PERIOD_MONTH] = "month",
    [LW_PERIOD_RUN] = "run",   [LW_PERIOD_REQUEST] = "request",
};

static const char *const guard_names[] = {
    [LW_GUARD_LOOP] = "loop", [LW_GUARD_RATE] = "rate",     [LW_GUARD_SPEND_RATE] = "spend-rate",
    [LW_GUARD_SIZE] = "size", [LW_GUARD_GROWTH] = "growth",
};

/* ---- syntax ---- */

gboolean lw_period_parse(const char *s, LwPeriod *ret)
{
    g_return_val_if_fail(ret != NULL, FALSE);
    for (guint i = 0; s != NULL && i < G_N_ELEMENTS(period_names); i++) {
        if (strcmp(s, period_names[i]) == 0) {
            *ret = (LwPeriod)i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *lw_period_to_string(LwPeriod p)
{
    return (guint)p < G_N_ELEMENTS(period_names) ? period_names[p] : "?";
}

/* Keys and values of scopes end up in SQL parameters, JSON paths (quoted)
 * and log lines: printable UTF-8 without control characters, and bounded. */
#define SCOPE_PART_MAX 256

static gboolean is_clean_text(const char *s, gsize len)
{
    if (len == 0 || len > SCOPE_PART_MAX || !g_utf8_validate(s, (gssize)len, NULL))
        return FALSE;
    for (const char *p = s; p < s + len; p = g_utf8_next_char(p))
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return FALSE;
    return TRUE;
}

/* Tag keys as llmwrap --tag accepts them: a letter or digit, then letters,
 * digits, '_', '.', '-'. */
static gboolean is_tag_key(const char *s, gsize len)
{
    if (len == 0 || len > 64 || !g_ascii_isalnum(s[0]))
        return FALSE;
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return FALSE;
    return TRUE;
}

/* Provider names as config.ini's [provider.NAME] allows them, roughly:
 * the configured table is checked by the caller. Blanks and ':' would
 * make the syntax ambiguous. */
static gboolean is_provider_name(const char *s)
{
    gsize len = strlen(s);
    if (len == 0 || len > 64)
        return FALSE;
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return FALSE;
    return TRUE;
}

gboolean lw_scope_parse(const char *s, LwScopeKind *ret_kind, char **ret_key, char **ret_value)
{
    g_return_val_if_fail(ret_kind != NULL && ret_key != NULL && ret_value != NULL, FALSE);
    if (s == NULL)
        return FALSE;
    if (strcmp(s, "global") == 0) {
        *ret_kind = LW_SCOPE_GLOBAL;
        *ret_key = NULL;
        *ret_value = NULL;
        return TRUE;
    }
    if (g_str_has_prefix(s, "provider:")) {
        const char *p = s + strlen("provider:");
        if (!is_provider_name(p))
            return FALSE;
        *ret_kind = LW_SCOPE_PROVIDER;
        *ret_key = g_strdup(p);
        *ret_value = NULL;
        return TRUE;
    }
    if (g_str_has_prefix(s, "model:")) {
        const char *m = s + strlen("model:");
        if (!is_clean_text(m, strlen(m)) || m[0] == ' ' || m[strlen(m) - 1] == ' ')
            return FALSE;
        *ret_kind = LW_SCOPE_MODEL;
        *ret_key = g_strdup(m);
        *ret_value = NULL;
        return TRUE;
    }
    if (g_str_has_prefix(s, "tag:")) {
        const char *k = s + strlen("tag:");
        const char *eq = strchr(k, '=');
        if (eq == NULL || !is_tag_key(k, (gsize)(eq - k)) || !is_clean_text(eq + 1, strlen(eq + 1)))
            return FALSE;
        *ret_kind = LW_SCOPE_TAG;
        *ret_key = g_strndup(k, (gsize)(eq - k));
        *ret_value = g_strdup(eq + 1);
        return TRUE;
    }
    return FALSE;
}

char *lw_scope_to_string(LwScopeKind kind, const char *key, const char *value)
{
    switch (kind) {
    case LW_SCOPE_GLOBAL:
        return g_strdup("global");
    case LW_SCOPE_PROVIDER:
        return g_strconcat("provider:", key != NULL ? key : "", NULL);
    case LW_SCOPE_MODEL:
        return g_strconcat("model:", key != NULL ? key : "", NULL);
    case LW_SCOPE_TAG:
        return g_strconcat("tag:", key != NULL ? key : "", "=", value != NULL ? value : "", NULL);
    }
    return g_strdup("?");
}

gboolean lw_action_parse(const char *s, LwActionKind *ret_kind, char **ret_model)
{
    g_return_val_if_fail(ret_kind != NULL && ret_model != NULL, FALSE);
    if (s == NULL)
        return FALSE;
    static const struct {
        const char *name;
        LwActionKind kind;
    } plain[] = {
        {"block", LW_ACTION_BLOCK},
        {"warn", LW_ACTION_WARN},
        {"clamp", LW_ACTION_CLAMP},
    };
    for (guint i = 0; i < G_N_ELEMENTS(plain); i++) {
        if (strcmp(s, plain[i].name) == 0) {
            *ret_kind = plain[i].kind;
            *ret_model = NULL;
            return TRUE;
        }
    }
    if (g_str_has_prefix(s, "downgrade:")) {
        const char *m = s + strlen("downgrade:");
        gsize len = strlen(m);
        if (!is_clean_text(m, len) || m[0] == ' ' || m[len - 1] == ' ')
            return FALSE;
        *ret_kind = LW_ACTION_DOWNGRADE;
        *ret_model = g_strdup(m);
        return TRUE;
    }
    return FALSE;
}

char *lw_action_to_string(LwActionKind kind, const char *model)
{
    switch (kind) {
    case LW_ACTION_BLOCK:
        return g_strdup("block");
    case LW_ACTION_WARN:
        return g_strdup("warn");
    case LW_ACTION_CLAMP:
        return g_strdup("clamp");
    case LW_ACTION_DOWNGRADE:
        return g_strconcat("downgrade:", model != NULL ? model : "", NULL);
    }
    return g_strdup("?");
}

static gint compare_uint(gconstpointer a, gconstpointer b)
{
    guint x = *(const guint *)a, y = *(const guint *)b;
    return x < y ? -1 : x > y;
}

gboolean lw_alerts_parse(const char *s, guint *ret_alerts, guint *ret_n)
{
    g_return_val_if_fail(ret_alerts != NULL && ret_n != NULL, FALSE);
    if (s == NULL)
        return FALSE;
    guint alerts[LW_BUDGET_MAX_ALERTS];
    guint n = 0;
    /* "" is no alerts: what a budget without --alert stores. */
    const char *p = s;
    while (*p != '\0') {
        guint v = 0, digits = 0;
        for (; g_ascii_isdigit(*p); p++, digits++) {
            v = v * 10 + (guint)(*p - '0');
            if (v > 100)
                return FALSE;
        }
        if (digits == 0 || v < 1 || n == LW_BUDGET_MAX_ALERTS)
            return FALSE;
        for (guint i = 0; i < n; i++)
            if (alerts[i] == v)
                return FALSE;
        alerts[n++] = v;
        if (*p == ',') {
            p++;
            if (*p == '\0')
                return FALSE;
        } else if (*p != '\0') {
            return FALSE;
        }
    }
    qsort(alerts, n, sizeof alerts[0], compare_uint);
    memcpy(ret_alerts, alerts, n * sizeof alerts[0]);
    *ret_n = n;
    return TRUE;
}

gboolean lw_guard_kind_parse(const char *s, LwGuardKind *ret)
{
    g_return_val_if_fail(ret != NULL, FALSE);
    for (guint i = 0; s != NULL && i < G_N_ELEMENTS(guard_names); i++) {
        if (strcmp(s, guard_names[i]) == 0) {
            *ret = (LwGuardKind)i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *lw_guard_kind_to_string(LwGuardKind k)
{
    return (guint)k < G_N_ELEMENTS(guard_names) ? guard_names[k] : "?";
}

gboolean lw_usd_parse(const char *s, gint64 *ret_pusd)
{
    g_return_val_if_fail(ret_pusd != NULL, FALSE);
    if (s == NULL || !g_ascii_isdigit(s[0]))
        return FALSE; /* also rejects signs, blanks and ".5" */
    const gint64 max_whole = G_MAXINT64 / PUSD_PER_USD;
    gint64 whole = 0;
    const char *p = s;
    for (; g_ascii_isdigit(*p); p++) {
        whole = whole * 10 + (*p - '0');
        if (whole > max_whole)
            return FALSE;
    }
    gint64 frac = 0;
    int frac_digits = 0;
    if (*p == '.') {
        p++;
        for (; g_ascii_isdigit(*p); p++) {
            if (++frac_digits > USD_FRACTION_DIGITS)
                return FALSE; /* would need rounding: never silently */
            frac = frac * 10 + (*p - '0');
        }
        if (frac_digits == 0)
            return FALSE;
    }
    if (*p != '\0')
        return FALSE; /* exponents, units, trailing text */
    for (int i = frac_digits; i < USD_FRACTION_DIGITS; i++)
        frac *= 10;
    if (whole == max_whole && frac > G_MAXINT64 - whole * PUSD_PER_USD)
        return FALSE;
    *ret_pusd = whole * PUSD_PER_USD + frac;
    return TRUE;
}

char *lw_usd_format(gint64 pusd)
{
    /* Magnitude in unsigned arithmetic: -G_MININT64 does not fit a gint64. */
    guint64 u = pusd < 0 ? (guint64)0 - (guint64)pusd : (guint64)pusd;
    guint64 whole = u / (guint64)PUSD_PER_USD, frac = u % (guint64)PUSD_PER_USD;
    const char *sign = pusd < 0 ? "-" : "";
    if (frac == 0)
        return g_strdup_printf("%s%" G_GUINT64_FORMAT, sign, whole);
    char digits[USD_FRACTION_DIGITS + 4];
    g_snprintf(digits, sizeof digits, "%012" G_GUINT64_FORMAT, frac);
    for (int i = USD_FRACTION_DIGITS - 1; i > 0 && digits[i] == '0'; i--)
        digits[i] = '\0';
    return g_strdup_printf("%s%" G_GUINT64_FORMAT ".%s", sign, whole, digits);
}

gboolean lw_budget_name_is_valid(const char *name)
{
    if (name == NULL)
        return FALSE;
    gsize len = strlen(name);
    if (len == 0 || len > LW_BUDGET_NAME_MAX)
        return FALSE;
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isalnum(name[i]) && name[i] != '_' && name[i] != '.' && name[i] != '-')
            return FALSE;
    return TRUE;
}

/* ---- windows ---- */

static gint64 floor_div(gint64 a, gint64 b)
{
    gint64 q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Days since 1970-01-01 to the civil date and back (proleptic Gregorian),
 * the well-known era-based algorithm: 400-year eras of 146097 days, years
 * counted from March so the leap day is the last day of the "year". */
static void civil_from_days(gint64 z, gint64 *ret_y, int *ret_m)
{
    z += 719468;
    gint64 era = floor_div(z, 146097);
    gint64 doe = z - era * 146097;                                      /* [0, 146096] */
    gint64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    gint64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    gint64 mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *ret_y = yoe + era * 400 + (m <= 2);
    *ret_m = m;
}

static gint64 days_from_civil(gint64 y, int m, int d)
{
    y -= m <= 2;
    gint64 era = floor_div(y, 400);
    gint64 yoe = y - era * 400;
    gint64 mp = m > 2 ? m - 3 : m + 9;
    gint64 doy = (153 * mp + 2) / 5 + d - 1;
    gint64 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

gboolean lw_period_window(LwPeriod period, gint64 now_ms, gint64 *ret_start_ms, gint64 *ret_end_ms)
{
    g_return_val_if_fail(ret_start_ms != NULL && ret_end_ms != NULL, FALSE);
    gint64 start, end;
    switch (period) {
    case LW_PERIOD_HOUR:
        start = floor_div(now_ms, HOUR_MS) * HOUR_MS;
        end = start + HOUR_MS;
        break;
    case LW_PERIOD_DAY:
        start = floor_div(now_ms, DAY_MS) * DAY_MS;
        end = start + DAY_MS;
        break;
    case LW_PERIOD_MONTH: {
        gint64 y;
        int m;
        civil_from_days(floor_div(now_ms, DAY_MS), &y, &m);
        start = days_from_civil(y, m, 1) * DAY_MS;
        end = (m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1)) * DAY_MS;
        break;
    }
    default:
        return FALSE;
    }
    *ret_start_ms = start;
    *ret_end_ms = end;
    return TRUE;
}

/* ---- lifetime ---- */

void lw_budget_def_clear(LwBudgetDef *def)
{
    if (def == NULL)
        return;
    g_free(def->name);
    g_free(def->scope_key);
    g_free(def->scope_value);
    g_free(def->action_model);
    g_free(def->alert_command);
    memset(def, 0, sizeof *def);
}

void lw_budget_def_free(LwBudgetDef *def)
{
    if (def == NULL)
        return;
    lw_budget_def_clear(def);
    g_free(def);
}

LwBudgetDef *lw_budget_def_copy(const LwBudgetDef *def)
{
    if (def == NULL)
        return NULL;
    LwBudgetDef *c = g_new(LwBudgetDef, 1);
    *c = *def;
    c->name = g_strdup(def->name);
    c->scope_key = g_strdup(def->scope_key);
    c->scope_value = g_strdup(def->scope_value);
    c->action_model = g_strdup(def->action_model);
    c->alert_command = g_strdup(def->alert_command);
    return c;
}

void lw_guard_def_clear(LwGuardDef *def)
{
    if (def == NULL)
        return;
    g_free(def->name);
    memset(def, 0, sizeof *def);
}

void lw_guard_def_free(LwGuardDef *def)
{
    if (def == NULL)
        return;
    lw_guard_def_clear(def);
    g_free(def);
}
