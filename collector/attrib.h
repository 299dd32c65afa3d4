/* attrib.h - who opened a connection: attribution messages from the shim.
 *
 * After each connect() to the collector (a provider's synthetic address,
 * or a listen address) the preload shim connects to run/attrib.sock
 * (AF_UNIX SOCK_SEQPACKET) and sends one lw.Attribution message (run id,
 * pid, ppid, exe, and the connection's two ends: the client socket's
 * address and port, and the address and port it connected to). The
 * collector joins it to the accepted TCP connection whose
 * peer and local addresses are exactly those: Linux gives one local port to
 * connections to different addresses (two providers' synthetic addresses),
 * so the port alone would hand one connection's run to another. A message
 * without both ends matches nothing.
 * The shim sends it before the program writes its first byte (the
 * ClientHello), so draining the socket when that byte arrives always finds
 * it; entries nobody claims expire. (A connection per message rather than
 * datagrams: the kernel queues only ~10 datagrams for a receiver, a listen
 * backlog thousands.)
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

/* A TCP connection by its two ends. Addresses are IPv6, an IPv4 address as
 * its v4-mapped form (::ffff:a.b.c.d), so that an AF_INET6 client socket
 * connected to a v4-mapped synthetic address names the same connection as
 * the AF_INET socket the collector accepted. Ports in host order. Compared
 * bytewise: no padding. */
typedef struct {
    guint8 client_addr[16];
    guint8 server_addr[16];
    guint16 client_port;
    guint16 server_port;
} LwAttribKey;

/* Listens at `path` (mode 0600, replacing a stale file). Transfer full. */
LwAttrib *lw_attrib_new(LwServer *server, const char *path, GError **error);
void lw_attrib_free(LwAttrib *attrib);

/* The key of an accepted TCP socket: its peer is the client, its local
 * address the server end. Returns FALSE (ret untouched) when either is not
 * an IPv4 or IPv6 address. */
gboolean lw_attrib_key_from_socket(int fd, LwAttribKey *ret);

/* Reads pending messages, then removes and returns the attribution for the
 * connection `key`. Returns FALSE (ret untouched) when none arrived for
 * exactly that connection. */
gboolean lw_attrib_take(LwAttrib *attrib, const LwAttribKey *key, LwAttribution *ret);

/* Decodes one message and the key of the connection it names. Returns FALSE
 * when the message does not decode or lacks either end. Exposed for tests
 * and the fuzz target. */
gboolean lw_attrib_decode(const guint8 *buf, size_t len, LwAttribution *ret, LwAttribKey *ret_key);
