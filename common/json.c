/* json.c - JSON text production helpers. */
#include "json.h"

#include <math.h>
#include <string.h>

void lw_json_append_string(GString *out, const char *s, gssize len)
{
    if (s == NULL) {
        g_string_append(out, "null");
        return;
    }
    const char *end = len < 0 ? s + strlen(s) : s + len;
    g_string_append_c(out, '"');
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            gunichar u = g_utf8_get_char_validated(s, end - s);
            if (u == (gunichar)-1 || u == (gunichar)-2) {
                g_string_append(out, "\\ufffd");
                s++;
            } else {
                const char *next = g_utf8_next_char(s);
                g_string_append_len(out, s, next - s);
                s = next;
            }
            continue;
        }
        switch (c) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (c < 0x20)
                g_string_append_printf(out, "\\u%04x", c);
            else
                g_string_append_c(out, (char)c);
        }
        s++;
    }
    g_string_append_c(out, '"');
}

void lw_json_append_double(GString *out, double v)
{
    if (!isfinite(v)) {
        g_string_append(out, "null");
        return;
    }
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_dtostr(buf, sizeof buf, v);
    g_string_append(out, buf);
}
