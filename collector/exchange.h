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

/* Does the request's body stream to the provider as it arrives, instead of
 * being read whole first? Only where nothing reads it: a body to a free or
 * unpriced endpoint (inspect.h) whose Content-Type is not JSON (a
 * multipart file upload, audio, ...). Budgets and accounting never look
 * into such a body, and a file of hundreds of MB then costs the collector
 * a bounded queue instead of its size. `provider` as for
 * lw_exchange_new. */
gboolean lw_exchange_body_streams(LwServer *server, const LwProvider *provider,
                                  const LwRequestHead *head);

/* Makes the exchange (created with no body) stream its body: the
 * connection feeds it with lw_exchange_upload() after
 * lw_exchange_start(). `length` is the declared length, -1 when chunked. */
void lw_exchange_stream_body(LwExchange *ex, gint64 length);

/* Hands on streamed body bytes; returns how many were taken. Fewer than
 * `len` means the upstream's queue is full: the connection stops reading
 * until lw_conn_upload_room(). Never finishes the exchange. */
size_t lw_exchange_upload(LwExchange *ex, const char *buf, size_t len);

/* The streamed body is complete. */
void lw_exchange_upload_end(LwExchange *ex);

/* The streamed body cannot be completed (malformed, or a side stalled):
 * answers `status` with `message` if no answer has begun, else cuts the
 * answer; frees the exchange. */
void lw_exchange_upload_failed(LwExchange *ex, int status, const char *message);

/* Starts the exchange. It may finish (and so be freed) before this returns. */
void lw_exchange_start(LwExchange *ex);

/* The connection's output queue drained: take upstream bytes again. */
void lw_exchange_on_drain(LwExchange *ex);

/* The client went away: stop, record what is known, free the exchange. */
void lw_exchange_client_gone(LwExchange *ex);

/* Frees the exchange (the connection calls this from lw_conn_response_done
 * and lw_conn_abort). NULL is ignored. */
void lw_exchange_free(LwExchange *ex);
