/* conn.h - one client connection: TLS (or plain) transport, HTTP/1.1
 * request reading with limits and timeouts, response writing with
 * backpressure, keep-alive and pipelining.
 *
 * A connection runs one exchange (request/response) at a time. Pipelined
 * requests wait in the input buffer until the current response is complete,
 * so responses always leave in request order.
 *
 * Limits (from [collector]): max_head → 431, max_headers → 431, max_body →
 * 413, header_timeout (slow head) → 408, idle_timeout (keep-alive and body
 * progress) → close. Anything malformed → 400 and close. A connection that
 * fails the TLS handshake (garbage, truncated ClientHello, no SNI, SNI not a
 * provider or not the listener's provider) is dropped.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>
#include <netinet/in.h>

#include "attrib.h"
#include "providers.h"
#include "server.h"

typedef struct _LwExchange LwExchange;

/* Takes ownership of an accepted, non-blocking socket. `provider` is the
 * provider named by the synthetic address it was accepted on, or NULL for a
 * configured listen address. Never fails: on a setup error the socket is
 * closed. */
void lw_conn_accept(LwServer *server, int fd, const LwProvider *provider);

/* ---- for the exchange (exchange.c) ---- */

/* Queues response bytes and writes what the socket takes now. */
void lw_conn_send(LwConn *conn, const void *data, size_t len);

/* Writes what is queued now instead of at the end of the loop iteration. */
void lw_conn_flush_now(LwConn *conn);

/* Bytes queued but not yet written. */
size_t lw_conn_pending(const LwConn *conn);

/* How long (ms, loop time) queued bytes have waited without the client
 * taking any of them; 0 when nothing is queued. */
guint64 lw_conn_unread_ms(const LwConn *conn);

/* Above this many queued bytes the exchange stops taking upstream bytes
 * (backpressure); lw_exchange_on_drain() is called when the queue is empty
 * again. */
#define LW_CONN_HIGH_WATER (256 * 1024)

/* A streamed request body's upstream queue has room again: read on. */
void lw_conn_upload_room(LwConn *conn);

/* The response is complete: flush it, then read the next request
 * (keep_alive) or close (always, when a streamed request body is not all
 * read yet: the answer came early). Frees the exchange: the caller must not touch it
 * after this returns. */
void lw_conn_response_done(LwConn *conn, gboolean keep_alive);

/* The response cannot be completed (upstream broke mid-body): close the
 * connection without finishing the framing, so the client sees a truncated
 * response rather than a short one that looks whole. Frees the exchange. */
void lw_conn_abort(LwConn *conn);

/* Who opened the connection, per the shim's attribution message for
 * exactly this connection (taken once, when its first byte arrives); NULL
 * when none arrived. */
const LwAttribution *lw_conn_attribution(LwConn *conn);

/* Facts about the connection, for the exchange and logs. */
const LwProvider *lw_conn_provider(const LwConn *conn);
guint16 lw_conn_peer_port(const LwConn *conn);
gboolean lw_conn_is_tls(const LwConn *conn);
guint64 lw_conn_id(const LwConn *conn);

/* Closes every connection that is idle between requests; connections with
 * an exchange in flight close when it completes (SIGTERM drain). */
void lw_conn_drain_all(LwServer *server);

/* Closes every connection now (end of drain timeout, shutdown). */
void lw_conn_close_all(LwServer *server);
