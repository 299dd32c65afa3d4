/* launch.c - finding the binaries; starting or joining the collector. */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

G_DEFINE_QUARK(lw - launch - error - quark, lw_launch_error)

/* ---- binaries ---- */

static char *self_dir(void)
{
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    return exe != NULL ? g_path_get_dirname(exe) : NULL;
}

static char *first_existing(const char *const *candidates, guint n, int mode)
{
    for (guint i = 0; i < n; i++) {
        if (candidates[i] != NULL && access(candidates[i], mode) == 0)
            return g_canonicalize_filename(candidates[i], NULL);
    }
    return NULL;
}

char *lw_launch_find_collector(GError **error)
{
    const char *env = g_getenv("LLMWRAP_COLLECTOR_BIN");
    if (env != NULL && *env != '\0') {
        if (access(env, X_OK) == 0)
            return g_canonicalize_filename(env, NULL);
        g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_NOT_FOUND,
                    "LLMWRAP_COLLECTOR_BIN=%s is not an executable file", env);
        return NULL;
    }
    g_autofree char *dir = self_dir();
    g_autofree char *build =
        dir ? g_build_filename(dir, "..", "collector", "llm-collector", NULL) : NULL;
    g_autofree char *beside = dir ? g_build_filename(dir, "llm-collector", NULL) : NULL;
    const char *candidates[] = {build, beside, LW_COLLECTOR_INSTALLED};
    char *found = first_existing(candidates, G_N_ELEMENTS(candidates), X_OK);
    if (found == NULL)
        g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_NOT_FOUND,
                    "llm-collector not found (looked next to llmwrap and at %s; "
                    "set LLMWRAP_COLLECTOR_BIN)",
                    LW_COLLECTOR_INSTALLED);
    return found;
}

static char *find_preload(GError **error)
{
    const char *env = g_getenv("LLMWRAP_PRELOAD_PATH");
    if (env != NULL && *env != '\0') {
        if (access(env, R_OK) == 0)
            return g_canonicalize_filename(env, NULL);
        g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_NOT_FOUND,
                    "LLMWRAP_PRELOAD_PATH=%s is not a readable file", env);
        return NULL;
    }
    g_autofree char *dir = self_dir();
    g_autofree char *build =
        dir ? g_build_filename(dir, "..", "preload", "libllmwrap-preload.so", NULL) : NULL;
    const char *candidates[] = {build, LW_PRELOAD_INSTALLED};
    char *found = first_existing(candidates, G_N_ELEMENTS(candidates), R_OK);
    if (found == NULL)
        g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_NOT_FOUND,
                    "libllmwrap-preload.so not found (looked next to llmwrap and at %s; "
                    "set LLMWRAP_PRELOAD_PATH)",
                    LW_PRELOAD_INSTALLED);
    return found;
}

char *lw_launch_find_preload(GError **error)
{
    g_autofree char *found = find_preload(error);
    /* ld.so splits LD_PRELOAD at spaces and colons (and childenv.c, reading
     * a user's LD_PRELOAD, at tabs too): the shim would silently not load,
     * and the program would run unmetered, its budget unenforced. */
    if (found != NULL && strpbrk(found, " :\t") != NULL) {
        g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_BAD_PATH,
                    "the preload shim's path \"%s\" contains a space, tab or ':', which "
                    "LD_PRELOAD cannot hold; put libllmwrap-preload.so in a directory without "
                    "them and point LLMWRAP_PRELOAD_PATH at it",
                    found);
        return NULL;
    }
    return g_steal_pointer(&found);
}

/* ---- starting the collector ---- */

LwLaunch *lw_launch_new(const LwPaths *paths, const char *collector_bin, char **env,
                        const sigset_t *mask)
{
    LwLaunch *l = g_new0(LwLaunch, 1);
    l->paths = paths;
    l->collector_bin = g_strdup(collector_bin);
    l->env = g_strdupv(env);
    l->mask = *mask;
    return l;
}

void lw_launch_free(LwLaunch *l)
{
    if (l == NULL)
        return;
    g_free(l->collector_bin);
    g_strfreev(l->env);
    g_free(l);
}

static gint64 now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/* Runs `llm-collector --daemon [--port P]` and waits (until deadline) for
 * that first process to exit: it does once the daemon serves, or failed.
 * Returns its exit status, or -1 with error set; *ret_stderr gets what it
 * printed (the daemon itself logs to the state directory). */
static int spawn_daemon(LwLaunch *l, guint16 port, gint64 deadline, char **ret_stderr,
                        GError **error)
{
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        int e = errno;
        g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_START, "pipe: %s", g_strerror(e));
        return -1;
    }
    char port_s[16];
    g_snprintf(port_s, sizeof port_s, "%u", port);
    char *argv[] = {l->collector_bin, (char *)"--daemon", port > 0 ? (char *)"--port" : NULL,
                    port_s, NULL};
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_START, "fork: %s", g_strerror(e));
        return -1;
    }
    if (pid == 0) {
        /* The daemon outlives us: it must not keep our terminal, our
         * output pipes, our working directory or our blocked signals, nor
         * any descriptor our caller left open without close-on-exec (a
         * `flock 9` around a cron job would stay locked, a pipe would never
         * reach EOF). It needs only errpipe, now its stderr. */
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        dup2(errpipe[1], STDERR_FILENO);
        closefrom(STDERR_FILENO + 1);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &l->mask, NULL);
        if (chdir("/") != 0) {
            /* Not fatal: the collector uses absolute paths. */
        }
        execve(l->collector_bin, argv, l->env);
        dprintf(STDERR_FILENO, "cannot run %s: %s\n", l->collector_bin, g_strerror(errno));
        _exit(127);
    }
    close(errpipe[1]);

    GString *err = g_string_new(NULL);
    int status = 0;
    gboolean exited = FALSE;
    while (!exited) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            exited = TRUE;
            break;
        }
        gint64 left = deadline - now_ms();
        if (left <= 0)
            break;
        /* The pipe reaches EOF when that process has exited and the daemon
         * redirected its output; poll it rather than spin. */
        struct pollfd pfd = {.fd = errpipe[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)MIN(left, 20));
        if (pr > 0) {
            char buf[512];
            ssize_t n = read(errpipe[0], buf, sizeof buf);
            if (n > 0 && err->len < 4096)
                g_string_append_len(err, buf, n);
            else if (n == 0) {
                /* EOF: wait for the exit itself (it is imminent). */
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
            }
        }
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(errpipe[0]);
        g_string_free(err, TRUE);
        g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_TIMEOUT,
                    "%s --daemon did not finish starting in time", l->collector_bin);
        return -1;
    }
    /* Whatever the first process wrote is in the pipe already. */
    int fl = fcntl(errpipe[0], F_GETFL);
    fcntl(errpipe[0], F_SETFL, fl | O_NONBLOCK);
    char buf[512];
    ssize_t n;
    while (err->len < 4096 && (n = read(errpipe[0], buf, sizeof buf)) > 0)
        g_string_append_len(err, buf, n);
    close(errpipe[0]);
    *ret_stderr = g_strstrip(g_string_free(err, FALSE));
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* The pid in the collector's pid file, if that process exists. */
static gboolean recorded_collector_alive(const LwPaths *paths)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents(paths->pid_file, &text, NULL, NULL))
        return FALSE;
    guint64 pid = g_ascii_strtoull(text, NULL, 10);
    return pid > 1 && pid <= G_MAXINT && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Polls the IPC socket until something answers, the deadline passes, or
 * the collector that should answer is gone (then NULL at once: a new
 * attempt, not a long wait, is what helps). */
static LwIpcClient *poll_connect(const LwPaths *paths, gint64 deadline)
{
    int wait_us = 1000;
    for (;;) {
        LwIpcClient *c = lw_ipc_client_connect(paths->ipc_socket, NULL);
        if (c != NULL)
            return c;
        if (now_ms() >= deadline || !recorded_collector_alive(paths))
            return NULL;
        g_usleep(wait_us);
        wait_us = MIN(wait_us * 2, 50000);
    }
}

LwIpcClient *lw_launch_connect(LwLaunch *l, guint16 port, int timeout_ms, gboolean *ret_started,
                               GError **error)
{
    gint64 deadline = now_ms() + timeout_ms;
    if (ret_started != NULL)
        *ret_started = FALSE;
    g_autofree char *last_problem = NULL;
    for (guint attempt = 0; attempt < LW_LAUNCH_MAX_ATTEMPTS; attempt++) {
        LwIpcClient *c = lw_ipc_client_connect(l->paths->ipc_socket, NULL);
        if (c != NULL)
            return c;
        if (now_ms() >= deadline)
            break;
        g_autofree char *said = NULL;
        g_autoptr(GError) spawn_error = NULL;
        int rc = spawn_daemon(l, port, deadline, &said, &spawn_error);
        if (rc < 0) {
            g_propagate_error(error, g_steal_pointer(&spawn_error));
            return NULL;
        }
        if (rc == LW_COLLECTOR_EXIT_CONFIG) {
            g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_START, "%s: %s",
                        l->collector_bin, *said ? said : "bad configuration");
            return NULL;
        }
        if (rc == 0 || rc == LW_COLLECTOR_EXIT_RUNNING) {
            /* Ours serves; or another holds the lock: one starting (wait
             * for it), or one that just died whose lock the kernel has not
             * released yet (poll_connect gives up at once; retry). */
            c = poll_connect(l->paths, deadline);
            if (c != NULL) {
                if (ret_started != NULL)
                    *ret_started = rc == 0;
                return c;
            }
            g_free(last_problem);
            last_problem = g_strdup_printf("nothing answers on %s", l->paths->ipc_socket);
        } else {
            /* It died while starting (killed, or a port race): try again. */
            g_free(last_problem);
            last_problem = g_strdup_printf("%s exited with status %d%s%s", l->collector_bin, rc,
                                           *said ? ": " : "", said);
        }
        g_usleep(20000); /* let a dead collector's lock and sockets go */
    }
    g_set_error(error, LW_LAUNCH_ERROR, LW_LAUNCH_ERROR_TIMEOUT,
                "could not reach or start the collector within %d ms%s%s (its log: %s)", timeout_ms,
                last_problem ? ": " : "", last_problem ? last_problem : "", l->paths->log_file);
    return NULL;
}
