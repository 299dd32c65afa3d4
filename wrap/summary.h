/* summary.h - what a run spent: the exit summary on stderr and the
 * --json-summary file.
 *
 * The spend comes from the collector's ledger over IPC, after the run is
 * closed: the collector commits a request's row before the last byte of
 * its answer reaches the program, so every request the program saw
 * answered is there. A run's spend includes its nested runs. (llmwrap does
 * not open the database itself: SQLite and libcrypto would add
 * milliseconds to every wrapped command's start.)
 *
 * Costs are printed exactly from pico-USD (lw_options_format_usd), never
 * through a float.
 *
 * Thread-safety: reentrant.
 */
#pragma once

#include <glib.h>

#include "ipc.h"
#include "run-summary.h"

#define LW_SUMMARY_TIMEOUT_MS 5000

/* Asks the collector what run_id (and its descendants) spent. FALSE with
 * error when it cannot answer; *ret is then untouched. Free a filled
 * summary with lw_summary_clear(). */
gboolean lw_summary_load(LwIpcClient *client, guint64 run_id, LwRunSummary *ret,
                         GError **error);
void lw_summary_clear(LwRunSummary *s);

/* The stderr summary, lines prefixed "llmwrap: ". `spend` is NULL when it
 * could not be read (`unavailable` then says why); `warnings` (char*, may
 * be NULL) are llmwrap's own (what could not be intercepted or trusted),
 * repeated at the end where the program's output cannot bury them.
 * Transfer full. */
char *lw_summary_text(guint64 run_id, const LwRunSummary *spend, const char *unavailable,
                      GPtrArray *warnings);

/* The --json-summary document:
 *   {"run_id", "exit_status", "requests", "cost_usd", "models": [{"provider",
 *    "model", "requests", "input_tokens", "output_tokens",
 *    "cached_input_tokens", "reasoning_tokens", "cost_usd", "unpriced"}],
 *    "warnings": [...]}
 * cost_usd is a JSON number with up to 12 fractional digits; "requests"
 * and "cost_usd" are null when the spend is unavailable (and a warning
 * says why). Transfer full. */
char *lw_summary_json(guint64 run_id, int exit_status, const LwRunSummary *spend,
                      const char *unavailable, GPtrArray *warnings);

/* Writes `text` to the --json-summary FILE through its name: a symlink is
 * followed, a FIFO or a terminal is written to, and /dev/stdout (or a
 * /proc/self/fd link) that is a regular file gets the text after the
 * program's output; any other regular file is overwritten. (A write to a
 * new file renamed over FILE, as g_file_set_contents does, put a regular
 * file in place of the link or the FIFO, so the text never reached the
 * caller, and, run as root, replaced /dev/stdout itself.) Opening a FIFO
 * waits for its reader, as a shell redirection does. FALSE with error when
 * it cannot be written. */
gboolean lw_summary_write_file(const char *path, const char *text, GError **error);

/* A markdown section for a CI job summary (GITHUB_STEP_SUMMARY): the run,
 * its command (on one line, at most 200 bytes of it), a spend table by
 * provider and model with a total, and what was refused. `spend` may be
 * NULL (`unavailable` says why). Transfer full. */
char *lw_summary_markdown(guint64 run_id, char *const *argv, int exit_status,
                          const LwRunSummary *spend, const char *unavailable);
