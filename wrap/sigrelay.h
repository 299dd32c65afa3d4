/* sigrelay.h - which of the signals llmwrap gets it passes on to the
 * program.
 *
 * llmwrap and the program share a process group (a terminal's Ctrl-C and a
 * group SIGKILL must reach them both), so a signal sent to the group
 * (kill -INT -PGID, a shell's `kill %1` and its SIGHUP to its jobs,
 * timeout(1), systemd stopping a unit's control group) reaches the program
 * directly: llmwrap must pass on only what was sent to it alone (kill PID,
 * a supervisor stopping its main process), or the program gets the signal
 * twice, and many programs take a second Ctrl-C or SIGTERM for "stop now,
 * skip the clean-up". Nothing in the signal tells the two apart (kill(2)
 * gives both si_code SI_USER and the sender's pid), nor does the sender: a
 * parent that is the group's leader kills llmwrap's pid (a test harness)
 * or the group (timeout) alike.
 *
 * So llmwrap keeps a witness in its process group (child.c), a process
 * that blocks the forwarded signals and reports each one a process sent
 * it, and compares: a signal llmwrap got that the witness got from the
 * same sender went to the group (or to every process of it, as systemd
 * and pkill do), and the program has it. llmwrap holds each signal it gets
 * for LW_SIGRELAY_WAIT_US, waiting for the witness's copy (timeout(1)
 * signals llmwrap before the group, systemd the main process before the
 * others), and passes it on if none came. Two copies from one sender held
 * at once are one event, passed on once, as the kernel merges a signal
 * already pending. A program that left the group (setsid) did not get what
 * the group got: child.c reports nothing to the relay for it.
 *
 * What it cannot tell: a signal sent to llmwrap and to the program one by
 * one but not to the witness (pkill -f with a pattern both command lines
 * match) is passed on, and the program gets it twice; one sent to llmwrap
 * alone within LW_SIGRELAY_WAIT_US of the same signal from the same sender
 * to the group is taken for a copy of it.
 *
 * Pure: no system calls; times are the caller's monotonic microseconds.
 * One thread.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* How long a signal waits for the witness's copy. */
#define LW_SIGRELAY_WAIT_US (100 * 1000)
/* Signals held at once. */
#define LW_SIGRELAY_HELD 16
/* Signals 1..LW_SIGRELAY_NSIG-1 are tracked; any other passes on at once. */
#define LW_SIGRELAY_NSIG 32

typedef struct {
    int sig; /* 0: a free slot */
    pid_t sender;
    gint64 at_us; /* when it was got (held: when it falls due) */
} LwSighting;

typedef struct {
    gboolean witnessed; /* a witness reports: hold what llmwrap gets */
    LwSighting held[LW_SIGRELAY_HELD];
    LwSighting seen[LW_SIGRELAY_NSIG]; /* the witness's latest copy of each */
} LwSigRelay;

/* An empty relay; with `witnessed` FALSE everything passes on at once. */
void lw_sigrelay_init(LwSigRelay *r, gboolean witnessed);

/* llmwrap got `sig` from process `sender` at `now_us`. TRUE when it is to
 * be passed on now: without a witness, for a signal not tracked, or with
 * LW_SIGRELAY_HELD signals held already; FALSE when it is held (or the
 * group got it). */
gboolean lw_sigrelay_got(LwSigRelay *r, int sig, pid_t sender, gint64 now_us);

/* The witness got `sig` from `sender` at `now_us`: the whole process group
 * got it, the program too. Call only while the program is in llmwrap's
 * process group. */
void lw_sigrelay_witnessed(LwSigRelay *r, int sig, pid_t sender, gint64 now_us);

/* The witness is gone: what is held falls due at once, and from now on
 * every signal. */
void lw_sigrelay_lose_witness(LwSigRelay *r);

/* Removes and returns the held signal due first if it is due at `now_us`;
 * 0 when none is. */
int lw_sigrelay_take_due(LwSigRelay *r, gint64 now_us);

/* When the first held signal falls due, or -1 when none is held. */
gint64 lw_sigrelay_next_due(const LwSigRelay *r);
