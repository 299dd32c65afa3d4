/* exchange.h - one request and its response, from a parsed request to the
 * last byte sent to the client.
 *
 * The exchange decides where the request goes (provider, upstream URL),
 * forwards it through upstream.c, relays the response head and body to its
 * connection with backpressure, and turns upstream failures into errors in
 * the provider's own shape (502, 504). It is where accounting and policy
 * hook in (see docs/architecture.md).
 *
 * Ownership: the connection owns its exchange. The exchange finishes by
 * calling lw_conn_response_done() or lw_conn_abort(), which free it.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "http1.h"
#include "server.h"

typedef struct _LwExchange LwExchange;

/* A request head that outlives the connection's input buffer: a private
 * copy of the head bytes with every slice pointing into it. */
typedef struct {
    char *raw;
    size_t raw_len;
    LwHttpRequest req;
    LwHttpHeader *headers;
} LwRequestHead;

/* Copies the head parsed from `buf` (head_len bytes, parsed into `req`).
 * Transfer full; free with lw_request_head_free(). */
LwRequestHead *lw_request_head_copy(const char *buf, size_t head_len, const LwHttpRequest *req);
void lw_request_head_free(LwRequestHead *head);

/* Creates the exchange for a complete request. Takes ownership of `head`
 * and `body` (g_malloc'd, may be NULL when body_len is 0). `provider` is the
 * provider the connection's address or SNI named (NULL on a listen address
 * without SNI: the exchange routes by path and Host). */
LwExchange *lw_exchange_new(LwServer *server, LwConn *conn, const LwProvider *provider,
                            LwRequestHead *head, char *body, size_t body_len);

/* Starts the exchange. It may finish (and so be freed) before this returns. */
void lw_exchange_start(LwExchange *ex);

/* The connection's output queue drained: take upstream bytes again. */
void lw_exchange_on_drain(LwExchange *ex);

/* The client went away: stop, record what is known, free the exchange. */
void lw_exchange_client_gone(LwExchange *ex);

/* Frees the exchange (the connection calls this from lw_conn_response_done
 * and lw_conn_abort). NULL is ignored. */
void lw_exchange_free(LwExchange *ex);
