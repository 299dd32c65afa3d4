/* upstream.h - requests to providers through libcurl's multi interface,
 * driven by the collector's event loop.
 *
 * One LwUpstream owns one CURLM: its connection cache gives keep-alive and
 * HTTP/2 multiplexing across all client connections. TLS to the provider is
 * always verified (system roots plus [upstream] ca_file); environment
 * proxies are ignored, only [upstream] proxy is used. Bodies stream both
 * ways: the response body reaches on_body as curl reads it, content-coding
 * untouched, and a full client lets on_body refuse bytes, which pauses the
 * transfer (backpressure) until lw_transfer_resume(). A request body is
 * either whole (GBytes) or streamed through a bounded queue that libcurl
 * reads from (lw_transfer_upload), pausing the upload when it is empty.
 *
 * Thread: the loop thread only. Callbacks run from inside the loop.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "config.h"
#include "http1.h"
#include "loop.h"

typedef struct _LwUpstream LwUpstream;
typedef struct _LwTransfer LwTransfer;

typedef enum {
    LW_UPSTREAM_OK = 0,
    LW_UPSTREAM_CONNECT_FAILED, /* resolve or connect failed: 502 */
    LW_UPSTREAM_TLS_FAILED,     /* handshake or verification failed: 502 */
    LW_UPSTREAM_TIMEOUT,        /* connect timed out: 504 */
    LW_UPSTREAM_BROKEN,         /* the response was cut or malformed: 502 (or a cut stream) */
    LW_UPSTREAM_FAILED,         /* anything else libcurl reports: 502 */
} LwUpstreamStatus;

typedef struct {
    /* The final response head (1xx heads are skipped). `headers` are the
     * upstream's fields minus pseudo-headers, borrowed for the call.
     * content_length is -1 when the length is not known in advance.
     * reason is the upstream's reason phrase or "" (HTTP/2 has none). */
    void (*on_head)(void *data, int status, const char *reason, const LwHttpHeader *headers,
                    size_t n_headers, int64_t content_length);
    /* Response body bytes. Return TRUE when all `len` bytes were taken, or
     * FALSE to take none of them and pause the transfer: the same bytes are
     * offered again after lw_transfer_resume(). */
    gboolean (*on_body)(void *data, const char *buf, size_t len);
    /* The transfer ended; `detail` is a human-readable reason on failure
     * (borrowed for the call, never contains secrets). The transfer is freed
     * right after this returns: do not touch it again. Not called after
     * lw_transfer_cancel(). */
    void (*on_done)(void *data, LwUpstreamStatus status, const char *detail);
    /* A streamed request body's queue has room again after
     * lw_transfer_upload() took less than it was offered. Runs from the
     * loop, never from inside libcurl; NULL when nothing streams. */
    void (*on_upload_room)(void *data);
} LwTransferCallbacks;

typedef struct {
    const char *method;
    const char *url;             /* absolute URL: upstream base + request target */
    const LwHttpHeader *headers; /* end-to-end fields to send (copied) */
    size_t n_headers;
    GBytes *body;                /* request body (the transfer keeps a reference), NULL if none */
    /* A body that streams instead (body is NULL): fed with
     * lw_transfer_upload() as it arrives, ended with
     * lw_transfer_upload_end(). upload_length is its length, or -1 when
     * unknown (then it goes chunked over HTTP/1.1). */
    gboolean upload;
    int64_t upload_length;
} LwTransferRequest;

/* At most this many bytes of a streamed request body wait for libcurl;
 * beyond it lw_transfer_upload() takes nothing, and the client connection
 * stops reading (backpressure towards the client). */
#define LW_TRANSFER_UPLOAD_MAX (128 * 1024)

/* Creates the upstream side. Reads [upstream] ca_file now (an unreadable or
 * certificate-less file is an error) and writes the trust file into
 * `run_dir` (upstream-trust.h). Transfer full. */
LwUpstream *lw_upstream_new(LwLoop *loop, const LwConfig *config, const char *run_dir,
                            GError **error);

/* Cancels every transfer (no callbacks) and frees. NULL is ignored. */
void lw_upstream_free(LwUpstream *up);

/* Applies a reloaded [upstream] section to transfers started from now on.
 * On error the previous settings stay. */
gboolean lw_upstream_reconfigure(LwUpstream *up, const LwConfig *config, GError **error);

/* Starts a transfer. Callbacks begin on a later loop iteration. Returns NULL
 * with error set if libcurl refuses the request (bad URL). The transfer is
 * owned by the upstream until on_done or lw_transfer_cancel. */
LwTransfer *lw_upstream_start(LwUpstream *up, const LwTransferRequest *req,
                              const LwTransferCallbacks *cb, void *data, GError **error);

/* Offers the paused body bytes again (deferred to the next loop iteration). */
void lw_transfer_resume(LwTransfer *t);

/* Queues streamed request body bytes; returns how many it took (fewer
 * than `len` when the queue is full: on_upload_room follows once libcurl
 * has taken some). A cancelled transfer takes everything and drops it. */
size_t lw_transfer_upload(LwTransfer *t, const char *buf, size_t len);

/* The streamed request body is complete. */
void lw_transfer_upload_end(LwTransfer *t);

/* Aborts the transfer; no callback runs after this. Safe from inside this
 * transfer's own callbacks. */
void lw_transfer_cancel(LwTransfer *t);

/* Transfers in flight. */
guint lw_upstream_active(const LwUpstream *up);

/* Frees the easy handles kept for reuse (when the collector goes quiet). */
void lw_upstream_release_spares(LwUpstream *up);

/* Has the request begun to go out (the connection is up, or was reused)?
 * From then on the provider may have it, and may bill it. */
gboolean lw_transfer_request_sent(const LwTransfer *t);

/* The protocol negotiated with the provider ("HTTP/1.1", "HTTP/2") once the
 * head arrived; static storage. */
const char *lw_transfer_http_version(const LwTransfer *t);
