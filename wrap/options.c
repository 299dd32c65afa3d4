/* options.c - parsing and validating llmwrap's option values. */
#include "options.h"

#include <string.h>

#define PUSD_DIGITS 12

gboolean lw_options_parse_usd(const char *s, gint64 *ret_pusd)
{
    g_return_val_if_fail(s != NULL, FALSE);
    gint64 whole = 0, frac = 0;
    const char *p = s;
    if (!g_ascii_isdigit(*p))
        return FALSE;
    for (; g_ascii_isdigit(*p); p++) {
        if (whole > (G_MAXINT64 / LW_PUSD_PER_USD))
            return FALSE;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        int digits = 0;
        for (; g_ascii_isdigit(*p); p++) {
            if (++digits > PUSD_DIGITS)
                return FALSE;
            frac = frac * 10 + (*p - '0');
        }
        if (digits == 0)
            return FALSE;
        for (; digits < PUSD_DIGITS; digits++)
            frac *= 10;
    }
    if (*p != '\0' || whole > (G_MAXINT64 - frac) / LW_PUSD_PER_USD)
        return FALSE;
    *ret_pusd = whole * LW_PUSD_PER_USD + frac;
    return TRUE;
}

char *lw_options_format_usd(gint64 pusd)
{
    /* G_MININT64 has no positive counterpart: go through guint64. */
    guint64 mag = pusd < 0 ? (guint64)0 - (guint64)pusd : (guint64)pusd;
    guint64 whole = mag / (guint64)LW_PUSD_PER_USD;
    guint64 frac = mag % (guint64)LW_PUSD_PER_USD;
    if (frac == 0)
        return g_strdup_printf("%s%" G_GUINT64_FORMAT, pusd < 0 ? "-" : "", whole);
    char digits[PUSD_DIGITS + 1];
    g_snprintf(digits, sizeof digits, "%012" G_GUINT64_FORMAT, frac);
    int len = PUSD_DIGITS;
    while (len > 0 && digits[len - 1] == '0')
        len--;
    digits[len] = '\0';
    return g_strdup_printf("%s%" G_GUINT64_FORMAT ".%s", pusd < 0 ? "-" : "", whole, digits);
}

static gboolean is_key_char(char c)
{
    return g_ascii_isalnum(c) || c == '_' || c == '.' || c == '-';
}

gboolean lw_options_parse_tag(const char *s, char **ret_key, char **ret_value, GError **error)
{
    g_return_val_if_fail(s != NULL, FALSE);
    const char *eq = strchr(s, '=');
    if (eq == NULL) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--tag %s: expected KEY=VALUE",
                    s);
        return FALSE;
    }
    size_t key_len = (size_t)(eq - s);
    if (key_len == 0 || key_len > LW_TAG_KEY_MAX_LEN || !g_ascii_isalnum(s[0])) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--tag %s: KEY must be 1..%d characters and start with a letter or digit", s,
                    LW_TAG_KEY_MAX_LEN);
        return FALSE;
    }
    for (size_t i = 0; i < key_len; i++) {
        if (!is_key_char(s[i])) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "--tag %s: KEY may contain only letters, digits, '_', '.' and '-'", s);
            return FALSE;
        }
    }
    const char *value = eq + 1;
    size_t value_len = strlen(value);
    if (value_len == 0 || value_len > LW_TAG_VALUE_MAX_LEN) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--tag %.*s: VALUE must be 1..%d bytes", (int)key_len, s, LW_TAG_VALUE_MAX_LEN);
        return FALSE;
    }
    if (!g_utf8_validate(value, (gssize)value_len, NULL)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--tag %.*s: VALUE is not valid UTF-8", (int)key_len, s);
        return FALSE;
    }
    for (const char *p = value; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar u = g_utf8_get_char(p);
        if (g_unichar_iscntrl(u)) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "--tag %.*s: VALUE contains a control character", (int)key_len, s);
            return FALSE;
        }
    }
    *ret_key = g_strndup(s, key_len);
    *ret_value = g_strdup(value);
    return TRUE;
}
