/* heap-trim.c - malloc_trim once the collector goes quiet (heap-trim.h). */
#define G_LOG_DOMAIN "collector"

#include "heap-trim.h"

#include <malloc.h>

#include "upstream.h"

static guint64 activity(const LwServer *server)
{
    return server->counters.requests_total + server->counters.connections_accepted;
}

static void on_quiet_check(LwLoop *loop, void *data)
{
    LwServer *server = data;
    guint quiet_ms = server->config->release_memory_after_ms; /* SIGHUP may change it */
    if (quiet_ms == 0)
        return;
    guint64 now = activity(server);
    if (now != server->trim_seen || server->counters.requests_active > 0) {
        server->trim_seen = now;
        lw_timer_start(loop, &server->trim_timer, quiet_ms, on_quiet_check, server);
        return;
    }
    uint64_t t0 = lw_loop_now_us();
    lw_upstream_release_spares(server->upstream);
    int released = malloc_trim(0);
    g_debug("quiet for %u ms: freed memory returned to the system in %" G_GUINT64_FORMAT " us%s",
            quiet_ms, (guint64)(lw_loop_now_us() - t0), released ? "" : " (none to return)");
}

void lw_heap_trim_activity(LwServer *server)
{
    guint quiet_ms = server->config->release_memory_after_ms;
    if (quiet_ms == 0 || lw_timer_is_armed(&server->trim_timer))
        return;
    server->trim_seen = activity(server);
    lw_timer_start(server->loop, &server->trim_timer, quiet_ms, on_quiet_check, server);
}

void lw_heap_trim_stop(LwServer *server)
{
    lw_timer_stop(server->loop, &server->trim_timer);
}
