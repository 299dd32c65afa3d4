/* log.c - the log writer. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "llmwrap";
static volatile gint threshold = G_LOG_LEVEL_INFO; /* most verbose level shown */

static int level_rank(GLogLevelFlags level)
{
    if (level & G_LOG_LEVEL_ERROR)
        return 0;
    if (level & G_LOG_LEVEL_CRITICAL)
        return 1;
    if (level & G_LOG_LEVEL_WARNING)
        return 2;
    if (level & G_LOG_LEVEL_MESSAGE)
        return 3;
    if (level & G_LOG_LEVEL_INFO)
        return 4;
    return 5;
}

static const char *level_name(GLogLevelFlags level)
{
    static const char *const names[] = {"ERROR", "CRITICAL", "WARNING", "MESSAGE", "INFO",
                                        "DEBUG"};
    return names[level_rank(level)];
}

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                               gpointer user_data)
{
    if (level_rank(level) > level_rank((GLogLevelFlags)g_atomic_int_get(&threshold)))
        return G_LOG_WRITER_HANDLED;
    const char *domain = NULL, *message = NULL;
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0)
            domain = fields[i].value;
        else if (strcmp(fields[i].key, "MESSAGE") == 0)
            message = fields[i].value;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line: stdio's lock keeps lines whole across threads. */
    fprintf(stderr, "%s.%03ldZ %s[%d] %s %s%s%s\n", stamp, ts.tv_nsec / 1000000, log_program,
            (int)getpid(), level_name(level), domain != NULL ? domain : "",
            domain != NULL ? ": " : "", message != NULL ? message : "");
    fflush(stderr);
    return G_LOG_WRITER_HANDLED;
}

gboolean lw_log_enabled(GLogLevelFlags level)
{
    return level_rank(level) <= level_rank((GLogLevelFlags)g_atomic_int_get(&threshold));
}

void lw_log_set_level(const char *level)
{
    if (g_strcmp0(level, "debug") == 0)
        g_atomic_int_set(&threshold, G_LOG_LEVEL_DEBUG);
    else if (g_strcmp0(level, "info") == 0)
        g_atomic_int_set(&threshold, G_LOG_LEVEL_INFO);
    else if (g_strcmp0(level, "warning") == 0)
        g_atomic_int_set(&threshold, G_LOG_LEVEL_WARNING);
}

void lw_log_init(const char *program, const char *level)
{
    log_program = program;
    lw_log_set_level(level);
    g_log_set_writer_func(writer, NULL, NULL);
}
