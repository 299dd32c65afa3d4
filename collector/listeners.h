/* listeners.h - the collector's listening sockets.
 *
 * One TCP listener per provider on its synthetic address 127.X.0.slot, all
 * on the same port (the shim rewrites only the port), plus the configured
 * [collector] listen addresses for clients that point their base URL at the
 * collector. The accepted socket's listener says which provider it is for.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "server.h"

typedef struct {
    const char *provider; /* provider name, or NULL for a listen address */
    char address[64];     /* numeric, without port */
    guint16 port;
} LwListenerInfo;

/* Binds and starts accepting. `port` is the synthetic port to use (0 picks
 * a free one); `fallback_to_any` lets a busy `port` fall back to a free one
 * (a preference, such as the port of the previous run) instead of failing.
 * Returns NULL with error set when binding fails. */
LwListeners *lw_listeners_new(LwServer *server, guint16 port, gboolean fallback_to_any,
                              GError **error);

/* Stops accepting and closes the sockets (drain); idempotent. */
void lw_listeners_close(LwListeners *l);
void lw_listeners_free(LwListeners *l);

/* What the synthetic listeners are bound to: X of 127.X.0.slot, and the
 * port. Fixed for the listeners' life: a reload does not rebind them. */
guint8 lw_listeners_synthetic_net(const LwListeners *l);
guint16 lw_listeners_synthetic_port(const LwListeners *l);

/* Every listener, synthetic ones first. Borrowed, lives as long as `l`. */
const LwListenerInfo *lw_listeners_info(const LwListeners *l, guint *ret_count);
