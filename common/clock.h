/* clock.h - wall-clock time, with a hook for tests and operations.
 *
 * Budget windows are calendar-aligned in UTC, so tests need to move time:
 *   LLMWRAP_NOW=SECONDS        fixes "now" (Unix seconds, may be fractional)
 *   LLMWRAP_NOW_FILE=PATH      reads "now" from PATH at every call, so a test
 *                              can move a running collector's clock; an
 *                              unreadable or empty file means the real clock
 * Without either, the real clock.
 *
 * Thread-safety: any thread.
 */
#pragma once

#include <glib.h>

/* Unix milliseconds. */
gint64 lw_clock_now_ms(void);
