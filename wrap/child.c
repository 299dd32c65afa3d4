/* child.c - running the wrapped program. */
#include "child.h"

#include "program.h"

#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static sigset_t original_mask;
static struct sigaction original_sigpipe;
static sigset_t handled; /* forwarded + SIGCHLD */
static gboolean prepared;

void lw_child_prepare_signals(void)
{
    sigemptyset(&handled);
    for (guint i = 0; i < G_N_ELEMENTS(forwarded); i++)
        sigaddset(&handled, forwarded[i]);
    sigaddset(&handled, SIGCHLD);
    sigprocmask(SIG_BLOCK, &handled, &original_mask);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &original_sigpipe);
    prepared = TRUE;
}

const sigset_t *lw_child_original_mask(void)
{
    return &original_mask;
}

static gboolean is_from_process(const struct signalfd_siginfo *si)
{
    return si->ssi_code == SI_USER || si->ssi_code == SI_QUEUE || si->ssi_code == SI_TKILL;
}

/* The signals a user ends a program with; llmwrap ends the same way. */
static const int ending[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP};

static int shell_status(int status, int *ret_termsig)
{
    if (ret_termsig != NULL)
        *ret_termsig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

/* Takes (consumes) one pending ending signal: its number, or 0 if none is
 * pending. */
static int take_pending_ending(void)
{
    sigset_t set;
    sigemptyset(&set);
    for (guint i = 0; i < G_N_ELEMENTS(ending); i++)
        sigaddset(&set, ending[i]);
    const struct timespec now = {0, 0};
    int sig;
    while ((sig = sigtimedwait(&set, NULL, &now)) < 0 && errno == EINTR) {
    }
    return sig > 0 ? sig : 0;
}

void lw_child_end_like(int sig)
{
    gboolean is_ending = FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(ending); i++)
        is_ending = is_ending || ending[i] == sig;
    if (!is_ending)
        return;
    /* SIGQUIT's default action dumps core: the program's crash is not
     * llmwrap's. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
}

/* posix_spawnp (a vfork underneath) rather than fork: llmwrap maps large
 * libraries, and copying their page tables for a child that execs at once
 * costs a measurable part of a wrapped command's start-up. */
static int spawn(pid_t *ret_pid, char *const *argv, char *const *envp)
{
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    short flags = POSIX_SPAWN_SETSIGMASK;
    posix_spawnattr_setsigmask(&attr, &original_mask);
    if (original_sigpipe.sa_handler == SIG_DFL) {
        sigset_t def;
        sigemptyset(&def);
        sigaddset(&def, SIGPIPE);
        posix_spawnattr_setsigdefault(&attr, &def);
        flags |= POSIX_SPAWN_SETSIGDEF;
    }
    posix_spawnattr_setflags(&attr, flags);
    int rc = posix_spawnp(ret_pid, argv[0], NULL, &attr, argv, envp);
    if (rc == ENOEXEC) {
        /* As execvp: a file the kernel cannot run is a shell script. */
        guint n = g_strv_length((char **)argv);
        g_autofree char **sh = g_new0(char *, n + 2);
        sh[0] = (char *)"/bin/sh";
        g_autofree char *path = NULL;
        int err = 0;
        sh[1] = lw_program_lookup(argv[0], g_getenv("PATH"), &path, &err) == LW_LOOKUP_FOUND
                    ? path
                    : argv[0];
        for (guint i = 1; i < n; i++)
            sh[i + 1] = argv[i];
        rc = posix_spawn(ret_pid, "/bin/sh", NULL, &attr, sh, envp);
    }
    posix_spawnattr_destroy(&attr);
    return rc;
}

int lw_child_run(char *const *argv, char *const *envp, LwChildWatch *watch, int *ret_termsig,
                 GError **error)
{
    g_return_val_if_fail(prepared, -1);
    if (ret_termsig != NULL)
        *ret_termsig = 0;
    int sfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "signalfd: %s", g_strerror(e));
        return -1;
    }
    /* A Ctrl-C (or kill) that came while llmwrap was starting is held by
     * the mask: it means "do not run it", not a signal for nobody. */
    int early = take_pending_ending();
    if (early != 0) {
        close(sfd);
        fprintf(stderr, "llmwrap: %s while starting: not running %s\n", g_strsignal(early),
                argv[0]);
        if (ret_termsig != NULL)
            *ret_termsig = early;
        return 128 + early;
    }
    pid_t child = 0;
    int rc = spawn(&child, argv, envp);
    if (rc != 0) {
        close(sfd);
        if (rc == ENOENT) {
            fprintf(stderr, "llmwrap: %s: command not found\n", argv[0]);
            return 127;
        }
        if (rc == EACCES || rc == EISDIR || rc == ENOEXEC || rc == ENOTDIR || rc == ELOOP) {
            fprintf(stderr, "llmwrap: %s: %s\n", argv[0], g_strerror(rc));
            return 126;
        }
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(rc), "cannot start %s: %s", argv[0],
                    g_strerror(rc));
        return -1;
    }

    int watch_fd = watch != NULL ? watch->fd : -1;
    for (;;) {
        struct pollfd pfd[2] = {
            {.fd = sfd, .events = POLLIN},
            {.fd = watch_fd, .events = POLLIN},
        };
        int pr = poll(pfd, watch_fd >= 0 ? 2 : 1,
                      watch_fd == LW_CHILD_WATCH_RETRY ? LW_CHILD_WATCH_RETRY_MS : -1);
        if (pr == 0 && watch_fd == LW_CHILD_WATCH_RETRY) {
            watch_fd = watch->on_ready(-1, watch->data);
            continue;
        }
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            /* Cannot watch any more: wait for the program plainly. */
            g_printerr("llmwrap: poll: %s\n", g_strerror(e));
            int status;
            while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
            }
            close(sfd);
            return shell_status(status, ret_termsig);
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                    continue;
                if (is_from_process(&si) && (pid_t)si.ssi_pid != child)
                    kill(child, (int)si.ssi_signo);
            }
            /* SIGCHLD may be merged with others or be for another child
             * (a collector being started): ask about ours each time. */
            int status;
            pid_t w = waitpid(child, &status, WNOHANG);
            if (w == child) {
                close(sfd);
                return shell_status(status, ret_termsig);
            }
        }
        if (watch_fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
            watch_fd = watch->on_ready(watch_fd, watch->data);
    }
}
