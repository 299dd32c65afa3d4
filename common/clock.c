/* clock.c - wall-clock time with a test hook. */
#include "clock.h"

#include <stdlib.h>

static gboolean parse_seconds(const char *s, gint64 *ret_ms)
{
    char *end = NULL;
    double v = g_ascii_strtod(s, &end);
    if (end == s || v < 0 || v > 1e11)
        return FALSE;
    while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
        end++;
    if (*end != '\0')
        return FALSE;
    *ret_ms = (gint64)(v * 1000.0);
    return TRUE;
}

gint64 lw_clock_now_ms(void)
{
    /* The environment is read once: this runs several times per request,
     * and a test sets the variables before the process starts. The file's
     * contents are read every time (tests move the clock through it). */
    static const char *fixed, *file;
    static gsize env_read;
    if (g_once_init_enter(&env_read)) {
        fixed = g_getenv("LLMWRAP_NOW");
        file = g_getenv("LLMWRAP_NOW_FILE");
        g_once_init_leave(&env_read, 1);
    }
    gint64 ms;
    if (fixed != NULL && parse_seconds(fixed, &ms))
        return ms;
    if (file != NULL) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(file, &text, NULL, NULL) && parse_seconds(text, &ms))
            return ms;
    }
    return g_get_real_time() / 1000;
}
