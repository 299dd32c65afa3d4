/* log.h - log output for the collector and the CLIs.
 *
 * Everything logs through GLib structured logging (g_info, g_warning...);
 * this module installs the writer: one line per message,
 *   2026-11-21T13:45:01.123Z llm-collector[4242] INFO conn: message
 * on stderr (or the daemon's log file, which is stderr redirected), with a
 * level threshold. Messages never contain secrets: modules log paths
 * without query strings and never log request or response headers.
 *
 * Thread-safety: the writer may be called from any thread.
 */
#pragma once

#include <glib.h>

/* Installs the writer. `level` is "debug", "info" or "warning". */
void lw_log_init(const char *program, const char *level);

/* Changes the threshold (SIGHUP). Unknown names keep the current one. */
void lw_log_set_level(const char *level);

/* stderr is the log file `path` (a daemon's): once `max_bytes` are in it,
 * it moves to PATH.1 and a new one begins. 0: it grows unbounded. Called
 * again (a reload), it changes the size. */
void lw_log_rotate_at(const char *path, guint64 max_bytes);

/* Whether a message of `level` would be written: hot paths test it before
 * formatting a message the threshold would drop. */
gboolean lw_log_enabled(GLogLevelFlags level);
