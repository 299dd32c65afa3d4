/* attrib.h - who opened a connection: attribution messages from the shim.
 *
 * After each provider connect() the preload shim connects to
 * run/attrib.sock (AF_UNIX SOCK_SEQPACKET) and sends one lw.Attribution
 * message (run id, pid, ppid, exe, the client socket's local port). The
 * collector joins it to the accepted TCP connection by the client's port.
 * The shim sends it before the program writes its first byte (the
 * ClientHello), so draining the socket when a request arrives always finds
 * it; entries nobody claims expire after a minute. (A connection per
 * message rather than datagrams: the kernel queues only ~10 datagrams for
 * a receiver, a listen backlog thousands.)
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "server.h"

typedef struct {
    guint64 run_id; /* 0 when the program is not under llmwrap */
    guint32 pid;
    guint32 ppid;
    char exe[512];
} LwAttribution;

/* Listens at `path` (mode 0600, replacing a stale file). Transfer full. */
LwAttrib *lw_attrib_new(LwServer *server, const char *path, GError **error);
void lw_attrib_free(LwAttrib *attrib);

/* Reads pending messages, then removes and returns the attribution for a
 * client port. Returns FALSE (ret untouched) when none arrived. */
gboolean lw_attrib_take(LwAttrib *attrib, guint16 port, LwAttribution *ret);

/* Decodes one message. Exposed for tests and the fuzz target. */
gboolean lw_attrib_decode(const guint8 *buf, size_t len, LwAttribution *ret, guint16 *ret_port);
