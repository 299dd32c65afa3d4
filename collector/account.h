/* account.h - accounting for one exchange: what the request asks for, who
 * sent it, what the answer used, what it cost, and the ledger row.
 *
 * The exchange calls, in order:
 *   lw_account_begin()      once the request is complete: inspects it and
 *                           may replace the body (stream_options.include_usage)
 *   lw_account_response()   when the upstream's response head arrives
 *   lw_account_body()       for every upstream body chunk
 *   lw_account_settle()     when the answer ended (or was cut): prices the
 *                           usage and commits the ledger row
 * Bytes for the client leave through the sink the exchange gives; the bytes
 * that end the answer are handed to the sink with terminal = TRUE, and the
 * exchange sends them only after lw_account_settle() committed the row.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "attrib.h"
#include "http1.h"
#include "inspect.h"
#include "observe.h"
#include "server.h"

typedef struct _LwAccount LwAccount;

typedef struct {
    const LwProvider *provider;
    const LwHttpRequest *req;   /* borrowed for the call */
    const char *path;           /* request target after routing */
    GBytes *body;               /* NULL when none or streamed; borrowed */
    gboolean body_streamed;     /* the body streams past unread (exchange.h) */
    gint64 body_length;         /* ... its declared length, -1 when chunked */
    const LwAttribution *attribution; /* NULL when the shim sent none */
} LwAccountRequest;

/* Starts accounting. Returns the account; *ret_body is set to a replacement
 * request body (transfer full) when one must be sent instead of the
 * original, else left NULL; *ret_identity_encoding is TRUE when the request
 * must ask the upstream for an unencoded answer (the answer is rewritten). */
LwAccount *lw_account_begin(LwServer *server, const LwAccountRequest *request,
                            GBytes **ret_body, gboolean *ret_identity_encoding);
void lw_account_free(LwAccount *account);

/* What the request asks for. Borrowed. */
const LwRequestInfo *lw_account_info(const LwAccount *account);
const LwProvider *lw_account_provider(const LwAccount *account);
guint64 lw_account_run_id(const LwAccount *account);

/* Hands the budget reservation to the account (settled with the actual
 * cost). `metered`: the stream has no output bound and must be checked as
 * it runs (lw_account_must_end_stream). `downgraded_to`: the model the budget
 * rewrote the request to (priced when the answer does not name one). */
struct _LwReservation;
void lw_account_set_reservation(LwAccount *account, struct _LwReservation *res,
                                gboolean metered, const char *downgraded_to);

/* Must the streamed answer be ended now? A metered stream whose output so
 * far reached a budget, or any stream of a run stopped with `llmctl kill`
 * (spend stops at once, not when the stream ends). The exchange then ends
 * it (lw_account_end_stream). */
gboolean lw_account_must_end_stream(LwAccount *account);

/* The response head arrived. Creates the observer; bytes then flow through
 * `sink`. */
void lw_account_response(LwAccount *account, int status, const char *content_type,
                         const char *content_encoding, const LwObserverSink *sink,
                         void *sink_data);

/* Does the observer rewrite the body (so Content-Length cannot be kept)? */
gboolean lw_account_rewrites(const LwAccount *account);

void lw_account_body(LwAccount *account, const char *buf, gsize len);

/* Counts `len` more bytes of a streamed request body as sent. */
void lw_account_streamed_in(LwAccount *account, gsize len);

/* The answer ended: flushes the observer, computes tokens and cost, commits
 * the ledger row and publishes it to `llmctl tail`. `cut` says the answer
 * did not end normally (upstream broke, client left); `client_status` is the
 * HTTP status the client received (0 if none). Idempotent. */
void lw_account_settle(LwAccount *account, int client_status, gboolean cut);

/* Settles a request that had gone to the provider when the exchange gave
 * up on it before its answer's head: the client left, or the provider did
 * not answer in time. The provider may bill it all, so it is booked at
 * its worst case (from `body`, the body sent; may be NULL), partial, with
 * a warning. `client_status` as for lw_account_settle. */
void lw_account_settle_unanswered(LwAccount *account, int client_status, GBytes *body);

/* The exchange ends a metered stream: returns the provider-shaped error
 * event to send in place of the rest, drops the observer's partial event,
 * and marks the request as ended by `budget`. Transfer full. */
GString *lw_account_end_stream(LwAccount *account);

/* Records a request the collector answered itself (error, refusal) without
 * an upstream answer. */
void lw_account_settle_local(LwAccount *account, int client_status, const char *refused_by);
