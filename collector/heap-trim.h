/* heap-trim.h - gives freed heap back to the system once the collector is quiet.
 *
 * glibc keeps what a burst of requests freed in its arenas and returns to
 * the system only what lies at the top of the main heap, so without this a
 * long-running collector stays at the size of its busiest moment. Once no
 * request has started and no connection has been accepted for
 * `[collector] release_memory_after`, and none is in flight, the spare
 * upstream handles are freed and malloc_trim(0) hands the free pages of
 * every arena (the loop's and the spool thread's) back. A quiet collector
 * runs no timer for this. The trim takes ~2 ms on the loop after a burst
 * that left ~8 MiB free; it runs only after a quiet spell, so only a
 * request arriving in that moment waits for it.
 */
#pragma once

#include "server.h"

/* Notes activity (a request started, a connection accepted); the first
 * call after a trim arms the check. One branch when already armed. */
void lw_heap_trim_activity(LwServer *server);

/* Stops the check (shutdown). */
void lw_heap_trim_stop(LwServer *server);
