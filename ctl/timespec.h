/* timespec.h - the times llmctl accepts for --since and --until.
 *
 *   30s 30m 2h 7d 4w          that long before now
 *   now
 *   2026-11-21                midnight UTC
 *   2026-11-21T13:00          UTC (a space works instead of T)
 *   2026-11-21T13:00:05.250Z  seconds and fraction optional, Z = UTC
 *   2026-11-21T13:00+01:00    an explicit offset (also +0100, +01)
 *
 * "Now" is lw_clock_now_ms() (clock.h): the clock, or LLMWRAP_NOW (Unix
 * seconds) / LLMWRAP_NOW_FILE when set, a hook for tests and for
 * re-running a report as of a fixed time.
 *
 * Thread: any.
 */
#pragma once

#include <glib.h>

/* Now in Unix milliseconds. FALSE with error (naming the value) when
 * LLMWRAP_NOW is set but is not a number of seconds. */
gboolean lw_timespec_now_ms(gint64 *ret_ms, GError **error);

/* Parses `s` relative to `now_ms` into Unix milliseconds. FALSE with a
 * G_IO_ERROR_INVALID_ARGUMENT error naming `s` when it is none of the
 * forms above. */
gboolean lw_timespec_parse(const char *s, gint64 now_ms, gint64 *ret_ms, GError **error);
