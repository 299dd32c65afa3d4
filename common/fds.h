/* fds.h - the standard descriptors a process may be started without.
 *
 * Run with one of descriptors 0-2 closed (`2>&-`, a careless service
 * unit), a process hands that number to the next descriptor it opens: a
 * socket or a locked file would then receive everything written to stderr,
 * and a dup2() onto stderr would close it.
 *
 * Thread-safety: call first in main(), before any other thread exists.
 */
#pragma once

#include <glib.h>

/* Opens /dev/null on each of descriptors 0, 1 and 2 that is closed. The
 * placeholders are close-on-exec: a program the process runs gets the
 * standard descriptors the process was given. FALSE (errno set) when
 * /dev/null cannot be opened. */
gboolean lw_fds_ensure_std(void);
