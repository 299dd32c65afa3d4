/* child.h - running the wrapped program: fork + exec, signal forwarding,
 * and its exit status in shell form.
 *
 * Signals. llmwrap and the program share a process group (and so the
 * terminal's foreground group): a key the terminal turns into a signal
 * (Ctrl-C, Ctrl-\, a window resize) reaches the program directly, from
 * the kernel, and so does a signal a process sends to the whole group
 * (kill -TERM -PGID, a shell's `kill %1`, timeout(1), systemd stopping a
 * unit). llmwrap blocks the forwarded signals and reads them from a
 * signalfd; it passes one on only when a process sent it (si_code SI_USER,
 * SI_QUEUE or SI_TKILL) to llmwrap alone (kill PID, a supervisor), about
 * LW_SIGRELAY_WAIT_US later: what tells the two apart is a witness process
 * in the group (sigrelay.h). So the program gets each signal once. A
 * signal the program sends to llmwrap itself is not sent back to it.
 *
 * The program starts with the signal mask and dispositions llmwrap
 * inherited (an ignored SIGHUP under nohup stays ignored), as from a shell.
 *
 * Thread-safety: one thread; call from the main thread of a
 * single-threaded process.
 */
#pragma once

#include <glib.h>
#include <signal.h>

/* A descriptor watched while the program runs (the collector's IPC
 * connection: readable with EOF means the collector died). on_ready returns
 * the descriptor to watch from then on (the same, a new one after a
 * restart), LW_CHILD_WATCH_RETRY to be called again (with fd -1) after
 * LW_CHILD_WATCH_RETRY_MS, or -1 to stop watching. */
#define LW_CHILD_WATCH_RETRY (-2)
#define LW_CHILD_WATCH_RETRY_MS 500
typedef struct {
    int fd;
    int (*on_ready)(int fd, void *data);
    void *data;
} LwChildWatch;

/* Blocks the forwarded signals and SIGCHLD, remembering the mask and the
 * SIGPIPE disposition to give the program; sets SIGPIPE to ignored for
 * llmwrap. Call once, early, before any other thread could exist. */
void lw_child_prepare_signals(void);

/* The signal mask llmwrap started with (for other processes it spawns). */
const sigset_t *lw_child_original_mask(void);

/* Runs argv (argv[0] resolved through PATH as execvp does, a file the
 * kernel cannot run is run by /bin/sh) with environment envp, forwarding
 * signals and calling `watch` (may be NULL) until the program exits.
 * Returns its status as a shell reports it: the exit code, 128+N when killed
 * by signal N, 127 when the command is not found and 126 when it cannot be
 * executed (with the shell's message on stderr). -1 with error set if it
 * could not be started for another reason. *ret_termsig (may be NULL) is
 * the signal that killed the program, 0 when it exited or did not start.
 * When SIGINT, SIGQUIT, SIGTERM or SIGHUP arrived before the program was
 * started (a Ctrl-C while the collector starts), it is not started: that
 * signal N is *ret_termsig and 128+N is returned. */
int lw_child_run(char *const *argv, char *const *envp, LwChildWatch *watch, int *ret_termsig,
                 GError **error);

/* Ends llmwrap by signal `sig` when it is one a user ends a program with
 * (SIGINT, SIGQUIT, SIGTERM, SIGHUP), as timeout(1) does: its default
 * action restored, unblocked and raised, with no core dump. A shell that
 * waits for llmwrap then sees what the program died of; bash stops a loop
 * on Ctrl-C only when its command died of SIGINT, not when it exited 130.
 * Returns (doing nothing) for 0 or any other signal. Call last: once all
 * output is flushed. */
void lw_child_end_like(int sig);
