/* ipc.h - the collector's IPC channel: framing and a blocking client.
 *
 * Frames on run/collector.sock are a 4-byte big-endian payload length and a
 * protobuf payload (lw.Request from clients, lw.Response from the
 * collector; proto/llmwrap.proto). A frame longer than LW_IPC_MAX_FRAME, or
 * one that does not decode, ends that connection and nothing else.
 *
 * The generated protobuf-c types appear only in IPC-facing code: this
 * module, collector/ipc-server.c and the CLI commands that talk to the
 * collector.
 *
 * Thread-safety: an LwIpcClient is used by one thread at a time.
 */
#pragma once

#include <glib.h>

#include "llmwrap.pb-c.h"
#include "run-summary.h"

#define LW_IPC_MAX_FRAME (1024 * 1024)
#define LW_IPC_HEADER_LEN 4

#define LW_IPC_ERROR (lw_ipc_error_quark())
GQuark lw_ipc_error_quark(void);

typedef enum {
    LW_IPC_ERROR_UNREACHABLE, /* no collector listening (not running) */
    LW_IPC_ERROR_IO,          /* the connection broke */
    LW_IPC_ERROR_TIMEOUT,
    LW_IPC_ERROR_PROTOCOL,    /* a bad frame */
    LW_IPC_ERROR_REMOTE,      /* the collector answered with an error */
} LwIpcError;

typedef enum {
    LW_IPC_FRAME_INCOMPLETE = 0,
    LW_IPC_FRAME_COMPLETE,
    LW_IPC_FRAME_TOO_LARGE,
} LwIpcFrameResult;

/* Looks at buf[0..len): when a whole frame is there, stores its payload
 * length in *ret_payload_len and returns COMPLETE (the payload starts at
 * buf + LW_IPC_HEADER_LEN). */
LwIpcFrameResult lw_ipc_frame_peek(const guint8 *buf, size_t len, size_t *ret_payload_len);

/* Appends one framed message to `out`. */
void lw_ipc_frame_append_request(GByteArray *out, const Lw__Request *req);
void lw_ipc_frame_append_response(GByteArray *out, const Lw__Response *resp);

typedef struct _LwIpcClient LwIpcClient;

/* Connects to the collector's socket. LW_IPC_ERROR_UNREACHABLE when no
 * collector listens there. Transfer full. */
LwIpcClient *lw_ipc_client_connect(const char *socket_path, GError **error);
void lw_ipc_client_free(LwIpcClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwIpcClient, lw_ipc_client_free)

/* Sends `req` (its id is set here) and waits up to timeout_ms for the
 * response with the same id; pushed events in between are skipped. A
 * response carrying an error becomes LW_IPC_ERROR_REMOTE. Transfer full:
 * free with lw__response__free_unpacked(resp, NULL). */
Lw__Response *lw_ipc_client_call(LwIpcClient *client, Lw__Request *req, int timeout_ms,
                                 GError **error);

/* lw_ipc_client_call() for a request answered by ok or an error only. */
gboolean lw_ipc_client_call_ok(LwIpcClient *client, Lw__Request *req, int timeout_ms,
                               GError **error);

/* Waits up to timeout_ms (-1: forever) for the next message (for tail
 * subscriptions). Returns NULL with LW_IPC_ERROR_TIMEOUT on timeout. */
Lw__Response *lw_ipc_client_next(LwIpcClient *client, int timeout_ms, GError **error);

/* The collector's status: a response whose `status` is set (any other
 * answer is LW_IPC_ERROR_PROTOCOL). Transfer full, as lw_ipc_client_call. */
Lw__Response *lw_ipc_client_status(LwIpcClient *client, int timeout_ms, GError **error);

/* Returns once the collector has applied its ledger spool: every request
 * it recorded so far is then in the SQLite file. */
gboolean lw_ipc_client_ledger_sync(LwIpcClient *client, int timeout_ms, GError **error);

/* What run `run_id` (with its nested runs) spent, from the collector's
 * ledger. Free *ret with lw_run_summary_clear(). */
gboolean lw_ipc_client_run_summary(LwIpcClient *client, guint64 run_id, int timeout_ms,
                                   LwRunSummary *ret, GError **error);

/* The socket, for poll() (readable + EOF means the collector went away). */
int lw_ipc_client_fd(const LwIpcClient *client);
