/* ctl.h - what llmctl's subcommands share: the command table entry, exit
 * statuses, and helpers for options, errors and opening the ledger.
 *
 * A subcommand is one file (cmd-NAME.c) with one entry point, listed in
 * the table in main.c. It parses its own options (GOption), prints to
 * stdout, reports problems on stderr, and returns an exit status.
 *
 * Thread: llmctl is single-threaded.
 */
#pragma once

#include <glib.h>
#include <stdio.h>

#include "ledger.h"
#include "paths.h"

typedef enum {
    LW_CTL_EXIT_OK = 0,
    LW_CTL_EXIT_ERROR = 1,       /* a runtime failure */
    LW_CTL_EXIT_USAGE = 2,       /* unknown command or option, bad value */
    LW_CTL_EXIT_NOT_RUNNING = 3, /* `status`, `kill`: no collector */
} LwCtlExit;

typedef struct {
    LwPaths *paths;     /* after --home */
    gboolean caught_up; /* the spool was applied (or said not to be) once */
} LwCtl;

/* argv[0] is the command's name; returns the exit status. */
typedef int (*LwCtlCommandFunc)(LwCtl *ctl, int argc, char **argv);

typedef struct {
    const char *name;
    const char *summary; /* one line for `llmctl help` */
    LwCtlCommandFunc run;
} LwCtlCommand;

int lw_cmd_status(LwCtl *ctl, int argc, char **argv);
int lw_cmd_usage(LwCtl *ctl, int argc, char **argv);
int lw_cmd_requests(LwCtl *ctl, int argc, char **argv);
int lw_cmd_runs(LwCtl *ctl, int argc, char **argv);
int lw_cmd_tail(LwCtl *ctl, int argc, char **argv);
int lw_cmd_pricing(LwCtl *ctl, int argc, char **argv);
int lw_cmd_reprice(LwCtl *ctl, int argc, char **argv);
int lw_cmd_budget(LwCtl *ctl, int argc, char **argv);
int lw_cmd_guard(LwCtl *ctl, int argc, char **argv);
int lw_cmd_kill(LwCtl *ctl, int argc, char **argv);
int lw_cmd_ca(LwCtl *ctl, int argc, char **argv);

/* An option context for a command, with `parameters` after the options in
 * the usage line and `description` below them; lw_ctl_options_parse() names
 * the command. Transfer full. */
GOptionContext *lw_ctl_options_new(const char *parameters, const GOptionEntry *entries,
                                   const char *description);

/* Parses argv (a command's, argv[0] its name) and leaves the positional
 * arguments in it. On failure prints the message and returns FALSE: the
 * command then exits with LW_CTL_EXIT_USAGE. */
gboolean lw_ctl_options_parse(GOptionContext *ctx, const char *name, int *argc, char ***argv);

/* Prints "llmctl NAME: MESSAGE" and a pointer to --help on stderr;
 * returns LW_CTL_EXIT_USAGE. */
int lw_ctl_usage_error(const char *name, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Prints "llmctl NAME: MESSAGE" on stderr; returns LW_CTL_EXIT_ERROR. */
int lw_ctl_error(const char *name, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Opens the ledger, with every request recorded so far in it (a running
 * collector applies its spool first; a stopped one's spool is applied
 * here). A ledger that does not exist yet is not an error: returns NULL
 * with *error unset (the caller shows "no data"). */
LwLedger *lw_ctl_open_ledger(LwCtl *ctl, gboolean readonly, GError **error);

/* Opens the ledger to change budget or guard definitions, creating it
 * (and its directory, 0700) when there is none yet: the collector reads
 * definitions from it when it starts. An older ledger is migrated. */
LwLedger *lw_ctl_open_ledger_for_definitions(LwCtl *ctl, GError **error);

/* Opens the ledger to read definitions: read-only, except that an older
 * ledger (which a read-only open refuses) is opened for writing so it is
 * migrated. NULL with *error unset when there is no ledger yet. */
LwLedger *lw_ctl_open_ledger_any(LwCtl *ctl, GError **error);

/* After a change to budgets or guards in the ledger: tells a running
 * collector to re-read them (ReloadRequest) and prints on stdout whether
 * the change took effect now or applies when the collector starts.
 * Returns FALSE, with a message on stderr, when a collector runs but did
 * not reload (the change is saved either way). */
gboolean lw_ctl_reload_collector(LwCtl *ctl, const char *name);

/* The directory that holds llmwrap's state (LLMWRAP_HOME, else the data
 * directory with the ledger). Transfer full. */
char *lw_ctl_state_dir(const LwCtl *ctl);

/* Flushes stdout; FALSE (with a message) when output could not be
 * written, so the command exits 1 rather than pretend. */
gboolean lw_ctl_flush(const char *name);

/* Turns --since/--until values (NULL: not given) into a range for the
 * ledger queries (LW_LEDGER_NO_SINCE/NO_UNTIL when not given). Prints a
 * usage error naming the bad value and returns FALSE on failure. */
gboolean lw_ctl_parse_range(const char *name, const char *since, const char *until,
                            gint64 *ret_since_ms, gint64 *ret_until_ms);

/* The footer under tables with unknown costs, one line per cause: "N
 * requests have no price (unknown model: X, Y) — see llmctl pricing" for
 * the n_models requests to `models` (char*, "" for none), and "N requests
 * are calls llmwrap cannot price (POST PATH, ...): cost unknown" for the
 * n_calls calls to `paths` (char*; may be NULL or empty). Nothing for a
 * count of 0. */
void lw_ctl_print_unpriced(gint64 n_models, const GPtrArray *models, gint64 n_calls,
                           const GPtrArray *paths);
