/* child.c - running the wrapped program. */
#include "child.h"

#include "program.h"
#include "sigrelay.h"

#include <errno.h>
#include <fcntl.h>
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
    /* An ignored SIGCHLD stays ignored across exec, and a caller may
     * ignore it (a supervisor or daemon that never waits for children):
     * the kernel would then reap the program as it exits, with no SIGCHLD
     * and no status, and llmwrap would wait for ever. The program gets the
     * default too, as under other wrappers that wait (timeout, tini). */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, NULL);
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

/* ---- the witness (sigrelay.h) ---- */

/* What the witness writes for each signal a process sent it; a pipe write
 * this small is atomic. */
typedef struct {
    gint32 sig;
    gint32 sender;
} WitnessReport;

/* The witness's name in ps, and to pgrep and pkill: it must not match what
 * names llmwrap (`pkill llmwrap`, `pkill -f llmwrap`), or a signal sent to
 * llmwrap alone would look as if the whole group had got it. */
#define WITNESS_NAME "lw-sig-witness"

/* Where this process's command line is (what ps and pkill -f read):
 * fields 48 and 49 of /proc/self/stat. */
static gboolean find_cmdline(char **ret_start, gsize *ret_len)
{
    g_autofree char *stat = NULL;
    if (!g_file_get_contents("/proc/self/stat", &stat, NULL, NULL))
        return FALSE;
    const char *after_name = strrchr(stat, ')');
    if (after_name == NULL)
        return FALSE;
    g_auto(GStrv) fields = g_strsplit(after_name + 1, " ", 0); /* [1] is field 3 */
    if (g_strv_length(fields) < 48)
        return FALSE;
    guint64 start = g_ascii_strtoull(fields[46], NULL, 10);
    guint64 end = g_ascii_strtoull(fields[47], NULL, 10);
    if (start == 0 || end <= start)
        return FALSE;
    *ret_start = (char *)(uintptr_t)start;
    *ret_len = (gsize)(end - start);
    return TRUE;
}

static G_GNUC_NORETURN void witness_main(int report_fd, pid_t parent, char *cmdline,
                                         gsize cmdline_len)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0); /* llmwrap died before PDEATHSIG was armed */
    /* It keeps nothing of llmwrap's or of llmwrap's caller's (a lock, a
     * pipe someone waits to see closed), and goes by its own name. */
    for (int fd = 0; fd < report_fd; fd++)
        close(fd);
    closefrom(report_fd + 1);
    prctl(PR_SET_NAME, WITNESS_NAME);
    if (cmdline != NULL) {
        memset(cmdline, 0, cmdline_len);
        memcpy(cmdline, WITNESS_NAME, MIN(strlen(WITNESS_NAME), cmdline_len - 1));
    }
    /* The forwarded signals are blocked (llmwrap's mask, inherited). */
    sigset_t set;
    sigemptyset(&set);
    for (guint i = 0; i < G_N_ELEMENTS(forwarded); i++)
        sigaddset(&set, forwarded[i]);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    struct signalfd_siginfo si;
    while (sfd >= 0 && read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (!is_from_process(&si))
            continue;
        WitnessReport report = {.sig = (gint32)si.ssi_signo, .sender = (gint32)si.ssi_pid};
        if (write(report_fd, &report, sizeof report) != (ssize_t)sizeof report)
            break; /* llmwrap is gone */
    }
    _exit(0);
}

/* Starts the witness in llmwrap's process group: its pid, with
 * *ret_fd its reports (non-blocking); or -1 when it cannot run, and then
 * every signal is passed on at once (at worst twice, never lost). */
static pid_t witness_start(int *ret_fd)
{
    char *cmdline = NULL;
    gsize cmdline_len = 0;
    if (!find_cmdline(&cmdline, &cmdline_len))
        cmdline = NULL;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        witness_main(p[1], parent, cmdline, cmdline_len);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *ret_fd = p[0];
    return pid;
}

static void witness_stop(pid_t pid, int fd)
{
    if (fd >= 0)
        close(fd);
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
}

/* Reads what the witness reported. FALSE when it is gone. */
static gboolean read_reports(int fd, LwSigRelay *relay, pid_t child, gint64 now)
{
    WitnessReport report;
    ssize_t n;
    while ((n = read(fd, &report, sizeof report)) == (ssize_t)sizeof report) {
        /* A program that left llmwrap's process group (setsid, as daemons
         * do) did not get what the group got. */
        if (getpgid(child) == getpgrp())
            lw_sigrelay_witnessed(relay, report.sig, report.sender, now);
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* The program stopped itself for job control (a full-screen program given
 * Ctrl-Z restores the terminal and sends itself SIGTSTP; one in the
 * background that reads or writes the terminal is stopped by SIGTTIN or
 * SIGTTOU): llmwrap stops by the same signal, so the shell running it gets
 * the terminal back and can fg or bg the job, as it could without llmwrap.
 * Once continued, llmwrap continues the program too: the shell's SIGCONT
 * to the job did already, one to llmwrap alone did not. A SIGSTOP is left
 * alone: sent to the program alone, it is usually undone by a SIGCONT to
 * the program alone, which would leave llmwrap stopped. */
static void stop_like(pid_t child, int sig)
{
    if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
        return;
    /* One llmwrap's caller blocked or ignored would not stop llmwrap:
     * then it waits, as before, and leaves the program stopped. */
    sigset_t mask;
    struct sigaction sa;
    if (sigprocmask(SIG_BLOCK, NULL, &mask) != 0 || sigismember(&mask, sig) ||
        sigaction(sig, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL)
        return;
    raise(sig);
    kill(child, SIGCONT);
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

/* Waits for the program to exit, passing on the signals it did not get
 * and calling `watch`; returns its wait status. */
static int wait_for(pid_t child, int sfd, int witness_fd, LwChildWatch *watch)
{
    LwSigRelay relay;
    lw_sigrelay_init(&relay, witness_fd >= 0);
    int watch_fd = watch != NULL ? watch->fd : -1;
    gint64 retry_at = g_get_monotonic_time() + LW_CHILD_WATCH_RETRY_MS * 1000;
    for (;;) {
        gint64 now = g_get_monotonic_time();
        for (int sig; (sig = lw_sigrelay_take_due(&relay, now)) != 0;)
            kill(child, sig);
        if (watch_fd == LW_CHILD_WATCH_RETRY && now >= retry_at) {
            watch_fd = watch->on_ready(-1, watch->data);
            retry_at = g_get_monotonic_time() + LW_CHILD_WATCH_RETRY_MS * 1000;
            continue;
        }
        gint64 wake = lw_sigrelay_next_due(&relay);
        if (watch_fd == LW_CHILD_WATCH_RETRY && (wake < 0 || retry_at < wake))
            wake = retry_at;
        /* Negative descriptors (no witness, no watch, a watch to retry)
         * are left out by poll. */
        struct pollfd pfd[3] = {
            {.fd = sfd, .events = POLLIN},
            {.fd = witness_fd, .events = POLLIN},
            {.fd = watch_fd, .events = POLLIN},
        };
        int pr = poll(pfd, 3, wake < 0 ? -1 : (int)((wake - now + 999) / 1000));
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            /* Cannot watch any more: wait for the program plainly. */
            g_printerr("llmwrap: poll: %s\n", g_strerror(e));
            int status;
            while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
            }
            return status;
        }
        now = g_get_monotonic_time();
        if (pfd[1].revents != 0 && !read_reports(witness_fd, &relay, child, now)) {
            witness_fd = -1; /* closed by the caller */
            lw_sigrelay_lose_witness(&relay);
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                    continue;
                if (is_from_process(&si) && (pid_t)si.ssi_pid != child &&
                    lw_sigrelay_got(&relay, (int)si.ssi_signo, (pid_t)si.ssi_pid, now))
                    kill(child, (int)si.ssi_signo);
            }
            /* SIGCHLD may be merged with others or be for another child
             * (a collector being started, the witness): ask about ours
             * each time. */
            int status;
            if (waitpid(child, &status, WNOHANG | WUNTRACED) == child) {
                if (!WIFSTOPPED(status))
                    return status;
                stop_like(child, WSTOPSIG(status));
            }
        }
        if (watch_fd >= 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            watch_fd = watch->on_ready(watch_fd, watch->data);
            retry_at = g_get_monotonic_time() + LW_CHILD_WATCH_RETRY_MS * 1000;
        }
    }
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

    int witness_fd = -1;
    pid_t witness = witness_start(&witness_fd);
    int status = wait_for(child, sfd, witness_fd, watch);
    witness_stop(witness, witness_fd);
    close(sfd);
    return shell_status(status, ret_termsig);
}
