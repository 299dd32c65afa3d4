/* log.c - the log writer. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "llmwrap";
static volatile gint threshold = G_LOG_LEVEL_INFO; /* most verbose level shown */

/* Rotation of a log file on stderr (lw_log_rotate_at). */
static GMutex rotate_lock;
static char *rotate_path;      /* NULL: stderr is not a file of ours */
static guint64 rotate_max;     /* 0: never */
static guint64 rotate_written; /* bytes in the current file */

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

/* Moves a full log file to PATH.1 (replacing the one before) and goes on
 * in a new PATH: at most two files' worth stays on disk. Called with
 * rotate_lock held. */
static void rotate(void)
{
    g_autofree char *old = g_strconcat(rotate_path, ".1", NULL);
    int fd = -1;
    if (rename(rotate_path, old) == 0)
        fd = open(rotate_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        rotate_max = 0; /* said once, not on every line */
        fprintf(stderr, "llm-collector: cannot rotate %s, it now grows unbounded: %s\n",
                rotate_path, g_strerror(e));
        return;
    }
    fflush(stdout);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    rotate_written = 0;
}

static void count_written(int n)
{
    if (n <= 0 || g_atomic_pointer_get(&rotate_path) == NULL)
        return;
    g_mutex_lock(&rotate_lock);
    rotate_written += (guint64)n;
    if (rotate_max > 0 && rotate_written >= rotate_max)
        rotate();
    g_mutex_unlock(&rotate_lock);
}

/* Messages carry bytes from programs and providers (a file name, a model
 * name): a control byte is written escaped, so none can start a forged
 * line or drive the terminal of someone reading the log. */
static char *escape_controls(const char *s)
{
    const char *p = s;
    while (*p != '\0' && (guchar)*p >= 0x20 && *p != 0x7f)
        p++;
    if (*p == '\0')
        return NULL; /* the common case: nothing to escape, nothing copied */
    GString *out = g_string_new_len(s, p - s);
    for (; *p != '\0'; p++) {
        guchar c = (guchar)*p;
        if (c == '\n')
            g_string_append(out, "\\n");
        else if (c < 0x20 || c == 0x7f)
            g_string_append_printf(out, "\\x%02x", c);
        else
            g_string_append_c(out, (char)c);
    }
    return g_string_free(out, FALSE);
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
    g_autofree char *escaped = message != NULL ? escape_controls(message) : NULL;
    if (escaped != NULL)
        message = escaped;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line: stdio's lock keeps lines whole across threads. */
    int n = fprintf(stderr, "%s.%03ldZ %s[%d] %s %s%s%s\n", stamp, ts.tv_nsec / 1000000,
                    log_program, (int)getpid(), level_name(level), domain != NULL ? domain : "",
                    domain != NULL ? ": " : "", message != NULL ? message : "");
    fflush(stderr);
    count_written(n);
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

void lw_log_rotate_at(const char *path, guint64 max_bytes)
{
    g_mutex_lock(&rotate_lock);
    if (rotate_path == NULL) {
        struct stat st;
        rotate_written = fstat(STDERR_FILENO, &st) == 0 ? (guint64)st.st_size : 0;
        g_atomic_pointer_set(&rotate_path, g_strdup(path));
    }
    rotate_max = max_bytes;
    if (rotate_max > 0 && rotate_written >= rotate_max)
        rotate();
    g_mutex_unlock(&rotate_lock);
}

void lw_log_init(const char *program, const char *level)
{
    log_program = program;
    lw_log_set_level(level);
    g_log_set_writer_func(writer, NULL, NULL);
}
