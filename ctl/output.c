/* output.c - tables, CSV and number formats for llmctl. */
#include "output.h"

#include <string.h>

#define PUSD_PER_USD G_GUINT64_CONSTANT(1000000000000)

gboolean lw_output_format_pick(gboolean json, gboolean csv, LwOutputFormat *ret_format)
{
    if (json && csv)
        return FALSE;
    *ret_format = json ? LW_OUTPUT_JSON : csv ? LW_OUTPUT_CSV : LW_OUTPUT_TABLE;
    return TRUE;
}

/* ---- tables ---- */

struct _LwOutputTable {
    guint n;
    LwOutputAlign *align;
    GPtrArray *rows; /* char** of n cells, or NULL for a rule */
};

char *lw_output_printable(const char *s)
{
    if (s == NULL)
        return g_strdup("");
    g_autofree char *valid = g_utf8_make_valid(s, -1);
    GString *out = g_string_sized_new(strlen(valid));
    for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (g_unichar_iscntrl(c))
            g_string_append_c(out, '?');
        else
            g_string_append_unichar(out, c);
    }
    return g_string_free(out, FALSE);
}

static void row_free(gpointer p)
{
    g_strfreev(p);
}

LwOutputTable *lw_output_table_new(guint n, const char *const *headers,
                                   const LwOutputAlign *align)
{
    LwOutputTable *t = g_new0(LwOutputTable, 1);
    t->n = n;
    t->align = g_memdup2(align, n * sizeof *align);
    t->rows = g_ptr_array_new_with_free_func(row_free);
    lw_output_table_add(t, headers);
    return t;
}

void lw_output_table_free(LwOutputTable *t)
{
    if (t == NULL)
        return;
    g_ptr_array_unref(t->rows);
    g_free(t->align);
    g_free(t);
}

void lw_output_table_add(LwOutputTable *t, const char *const *cells)
{
    char **row = g_new0(char *, t->n + 1);
    for (guint i = 0; i < t->n; i++)
        row[i] = lw_output_printable(cells[i]);
    g_ptr_array_add(t->rows, row);
}

void lw_output_table_add_rule(LwOutputTable *t)
{
    g_ptr_array_add(t->rows, NULL);
}

/* Columns a terminal gives the text: two for a wide (CJK) character, none
 * for a combining mark. */
static glong display_width(const char *s)
{
    glong w = 0;
    for (const char *p = s; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        w += g_unichar_iszerowidth(c) ? 0 : g_unichar_iswide(c) ? 2 : 1;
    }
    return w;
}

void lw_output_table_print(const LwOutputTable *t, FILE *out)
{
    g_autofree glong *width = g_new0(glong, t->n);
    for (guint r = 0; r < t->rows->len; r++) {
        char **row = g_ptr_array_index(t->rows, r);
        for (guint c = 0; row != NULL && c < t->n; c++)
            width[c] = MAX(width[c], display_width(row[c]));
    }
    g_autoptr(GString) line = g_string_new(NULL);
    for (guint r = 0; r < t->rows->len; r++) {
        char **row = g_ptr_array_index(t->rows, r);
        g_string_truncate(line, 0);
        for (guint c = 0; c < t->n; c++) {
            if (c > 0)
                g_string_append(line, "  ");
            if (row == NULL) {
                for (glong k = 0; k < width[c]; k++)
                    g_string_append_c(line, '-');
                continue;
            }
            glong pad = width[c] - display_width(row[c]);
            if (t->align[c] == LW_OUTPUT_RIGHT)
                for (glong k = 0; k < pad; k++)
                    g_string_append_c(line, ' ');
            g_string_append(line, row[c]);
            if (t->align[c] == LW_OUTPUT_LEFT)
                for (glong k = 0; k < pad; k++)
                    g_string_append_c(line, ' ');
        }
        while (line->len > 0 && line->str[line->len - 1] == ' ')
            g_string_truncate(line, line->len - 1);
        fprintf(out, "%s\n", line->str);
    }
}

/* ---- CSV ---- */

void lw_output_csv_row(GString *out, guint n, const char *const *fields)
{
    for (guint i = 0; i < n; i++) {
        if (i > 0)
            g_string_append_c(out, ',');
        const char *f = fields[i];
        if (f == NULL)
            continue;
        if (strpbrk(f, ",\"\r\n") == NULL) {
            g_string_append(out, f);
            continue;
        }
        g_string_append_c(out, '"');
        for (const char *p = f; *p != '\0'; p++) {
            if (*p == '"')
                g_string_append_c(out, '"');
            g_string_append_c(out, *p);
        }
        g_string_append_c(out, '"');
    }
    g_string_append(out, "\r\n");
}

/* ---- numbers ---- */

static guint64 magnitude(gint64 v)
{
    return v < 0 ? (guint64)(-(v + 1)) + 1 : (guint64)v;
}

char *lw_output_usd_exact(gint64 pusd)
{
    guint64 u = magnitude(pusd);
    guint64 whole = u / PUSD_PER_USD, frac = u % PUSD_PER_USD;
    const char *sign = pusd < 0 ? "-" : "";
    if (frac == 0)
        return g_strdup_printf("%s%" G_GUINT64_FORMAT, sign, whole);
    char digits[16];
    g_snprintf(digits, sizeof digits, "%012" G_GUINT64_FORMAT, frac);
    for (int i = 11; i > 0 && digits[i] == '0'; i--)
        digits[i] = '\0';
    return g_strdup_printf("%s%" G_GUINT64_FORMAT ".%s", sign, whole, digits);
}

void lw_output_json_usd(GString *out, gint64 pusd)
{
    g_autofree char *s = lw_output_usd_exact(pusd);
    g_string_append(out, s);
}

static void append_grouped(GString *out, guint64 v)
{
    char digits[32];
    int n = g_snprintf(digits, sizeof digits, "%" G_GUINT64_FORMAT, v);
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            g_string_append_c(out, ',');
        g_string_append_c(out, digits[i]);
    }
}

char *lw_output_count(gint64 n)
{
    GString *out = g_string_new(n < 0 ? "-" : "");
    append_grouped(out, magnitude(n));
    return g_string_free(out, FALSE);
}

static char *usd_human(gint64 pusd, gboolean down)
{
    guint64 u = magnitude(pusd);
    int decimals = 2;
    if (u > 0 && u < PUSD_PER_USD) {
        int len = 0;
        for (guint64 x = u; x > 0; x /= 10)
            len++;
        /* 12 - len zeros after the point, then three significant digits. */
        decimals = CLAMP(12 - len + 3, 2, 12);
    }
    guint64 unit = 1;
    for (int i = decimals; i < 12; i++)
        unit *= 10;
    guint64 scale = PUSD_PER_USD / unit; /* 10^decimals */
    guint64 r = u / unit + (!down && u % unit >= unit / 2 && unit > 1 ? 1 : 0);
    GString *out = g_string_new(pusd < 0 ? "-$" : "$");
    append_grouped(out, r / scale);
    char frac[16];
    g_snprintf(frac, sizeof frac, "%0*" G_GUINT64_FORMAT, decimals, r % scale);
    for (int i = decimals - 1; i >= 2 && frac[i] == '0'; i--)
        frac[i] = '\0';
    g_string_append_printf(out, ".%s", frac);
    return g_string_free(out, FALSE);
}

char *lw_output_usd_human(gint64 pusd)
{
    return usd_human(pusd, FALSE);
}

char *lw_output_usd_human_down(gint64 pusd)
{
    return usd_human(pusd, pusd >= 0);
}

char *lw_output_rate_exact(gint64 micro)
{
    if (micro < 0)
        return NULL;
    if (micro > G_MAXINT64 / 1000000)
        return g_strdup_printf("%" G_GINT64_FORMAT "e-6", micro);
    /* micro-USD per 1M tokens == pico-USD scaled by 1e6. */
    return lw_output_usd_exact(micro * 1000000);
}

/* ---- times ---- */

static GDateTime *utc_from_ms(gint64 ms, int *ret_millis)
{
    gint64 s = ms / 1000, m = ms % 1000;
    if (m < 0) {
        s--;
        m += 1000;
    }
    *ret_millis = (int)m;
    return g_date_time_new_from_unix_utc(s);
}

char *lw_output_time_iso(gint64 ms)
{
    int millis = 0;
    g_autoptr(GDateTime) t = utc_from_ms(ms, &millis);
    if (t == NULL)
        return g_strdup_printf("%" G_GINT64_FORMAT, ms);
    g_autofree char *base = g_date_time_format(t, "%Y-%m-%dT%H:%M:%S");
    return g_strdup_printf("%s.%03dZ", base, millis);
}

char *lw_output_time_human(gint64 ms)
{
    int millis = 0;
    g_autoptr(GDateTime) t = utc_from_ms(ms, &millis);
    if (t == NULL)
        return g_strdup_printf("%" G_GINT64_FORMAT, ms);
    return g_date_time_format(t, "%Y-%m-%d %H:%M:%S");
}

char *lw_output_duration(gint64 ms)
{
    if (ms < 0)
        return g_strdup("?");
    /* The ledger keeps whole milliseconds, truncated: 0 is an answer faster
     * than 1 ms (a cache hit, a loopback provider), not an instant one. */
    if (ms == 0)
        return g_strdup("<1ms");
    if (ms < 1000)
        return g_strdup_printf("%" G_GINT64_FORMAT "ms", ms);
    gint64 s = ms / 1000;
    if (s < 60)
        return g_strdup_printf("%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT "s", s, ms % 1000 / 100);
    if (s < 3600)
        return g_strdup_printf("%" G_GINT64_FORMAT "m%02" G_GINT64_FORMAT "s", s / 60, s % 60);
    if (s < 86400)
        return g_strdup_printf("%" G_GINT64_FORMAT "h%02" G_GINT64_FORMAT "m", s / 3600,
                               s % 3600 / 60);
    return g_strdup_printf("%" G_GINT64_FORMAT "d%02" G_GINT64_FORMAT "h", s / 86400,
                           s % 86400 / 3600);
}
