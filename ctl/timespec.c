/* timespec.c - parsing --since/--until values. */
#include "timespec.h"

#include <gio/gio.h>
#include <string.h>

#include "clock.h"

#define FORMS "a duration (30m, 2h, 7d, 4w) or a date (2026-11-21, 2026-11-21T13:00, " \
              "2026-11-21T13:00:00Z)"

/* Whether `s` is a value lw_clock_now_ms() accepts for LLMWRAP_NOW (the
 * same rule as common/clock.c): a number of seconds, 0..1e11, blanks after
 * it allowed. */
static gboolean is_clock_value(const char *s)
{
    char *end = NULL;
    double v = g_ascii_strtod(s, &end);
    if (end == s || !(v >= 0 && v <= 1e11))
        return FALSE;
    while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
        end++;
    return *end == '\0';
}

gboolean lw_timespec_now_ms(gint64 *ret_ms, GError **error)
{
    /* The clock hook itself falls back to the real clock on a malformed
     * LLMWRAP_NOW; a command line tool says so instead of quietly
     * reporting on the wrong "now". */
    const char *env = g_getenv("LLMWRAP_NOW");
    if (env != NULL && env[0] != '\0' && !is_clock_value(env)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "LLMWRAP_NOW='%s' is not a number of seconds since 1970", env);
        return FALSE;
    }
    *ret_ms = lw_clock_now_ms();
    return TRUE;
}

/* Reads exactly `n` digits at *p. */
static gboolean digits(const char **p, int n, int *ret)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!g_ascii_isdigit((*p)[i]))
            return FALSE;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *ret = v;
    return TRUE;
}

static gboolean parse_duration(const char *s, gint64 *ret_ms)
{
    static const struct {
        char unit;
        gint64 ms;
    } units[] = {
        {'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000},
    };
    gsize len = strlen(s);
    if (len < 2)
        return FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
        if (s[len - 1] != units[i].unit)
            continue;
        g_autofree char *num = g_strndup(s, len - 1);
        guint64 n = 0;
        if (!g_ascii_string_to_unsigned(num, 10, 0, G_MAXINT64 / units[i].ms / 2, &n, NULL))
            return FALSE;
        *ret_ms = (gint64)n * units[i].ms;
        return TRUE;
    }
    return FALSE;
}

static gboolean parse_date(const char *s, gint64 *ret_ms)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, millis = 0, off_min = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return FALSE;
    if (mo < 1 || mo > 12 || !g_date_valid_dmy((GDateDay)d, (GDateMonth)mo, (GDateYear)y))
        return FALSE;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return FALSE;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return FALSE;
            if (*p == '.') {
                p++;
                int scale = 100, n = 0;
                for (; g_ascii_isdigit(*p); p++, n++) {
                    millis += (*p - '0') * scale;
                    scale /= 10;
                }
                if (n == 0)
                    return FALSE;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return FALSE;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh = 0, om = 0;
            if (!digits(&p, 2, &oh))
                return FALSE;
            if (*p == ':')
                p++;
            if (g_ascii_isdigit(*p) && !digits(&p, 2, &om))
                return FALSE;
            if (oh > 23 || om > 59)
                return FALSE;
            off_min = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0')
        return FALSE;
    g_autoptr(GDateTime) t = g_date_time_new_utc(y, mo, d, h, mi, sec);
    if (t == NULL)
        return FALSE;
    *ret_ms = (g_date_time_to_unix(t) - (gint64)off_min * 60) * 1000 + millis;
    return TRUE;
}

gboolean lw_timespec_parse(const char *s, gint64 now_ms, gint64 *ret_ms, GError **error)
{
    gint64 v = 0;
    if (s != NULL && strcmp(s, "now") == 0) {
        *ret_ms = now_ms;
        return TRUE;
    }
    if (s != NULL && parse_duration(s, &v)) {
        *ret_ms = now_ms - v;
        return TRUE;
    }
    if (s != NULL && parse_date(s, &v)) {
        *ret_ms = v;
        return TRUE;
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad time '%s': expected " FORMS,
                s != NULL ? s : "");
    return FALSE;
}
