/* ipc.c - IPC framing and the blocking client. */
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

G_DEFINE_QUARK(lw-ipc-error-quark, lw_ipc_error)

struct _LwIpcClient {
    int fd;
    guint64 next_id;
    GByteArray *in;
};

LwIpcFrameResult lw_ipc_frame_peek(const guint8 *buf, size_t len, size_t *ret_payload_len)
{
    if (len < LW_IPC_HEADER_LEN)
        return LW_IPC_FRAME_INCOMPLETE;
    size_t n = ((size_t)buf[0] << 24) | ((size_t)buf[1] << 16) | ((size_t)buf[2] << 8) | buf[3];
    if (n > LW_IPC_MAX_FRAME)
        return LW_IPC_FRAME_TOO_LARGE;
    if (len - LW_IPC_HEADER_LEN < n)
        return LW_IPC_FRAME_INCOMPLETE;
    *ret_payload_len = n;
    return LW_IPC_FRAME_COMPLETE;
}

static void append_framed(GByteArray *out, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    guint8 header[LW_IPC_HEADER_LEN] = {(guint8)(n >> 24), (guint8)(n >> 16), (guint8)(n >> 8),
                                        (guint8)n};
    g_byte_array_append(out, header, sizeof header);
    guint old = out->len;
    g_byte_array_set_size(out, old + (guint)n);
    protobuf_c_message_pack(msg, out->data + old);
}

void lw_ipc_frame_append_request(GByteArray *out, const Lw__Request *req)
{
    append_framed(out, &req->base);
}

void lw_ipc_frame_append_response(GByteArray *out, const Lw__Response *resp)
{
    append_framed(out, &resp->base);
}

LwIpcClient *lw_ipc_client_connect(const char *socket_path, GError **error)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof sun.sun_path) {
        /* Not "not running": no collector can ever listen there. */
        g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_IO,
                    "%s: the path is too long for a unix socket (%zu bytes, at most %zu); use a "
                    "shorter LLMWRAP_HOME (or XDG_RUNTIME_DIR)",
                    socket_path, strlen(socket_path), sizeof sun.sun_path - 1);
        return NULL;
    }
    g_strlcpy(sun.sun_path, socket_path, sizeof sun.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        /* No socket, or no one behind it: not running. Anything else (a
         * socket of another user's, no permission) is not that. */
        if (e == ENOENT || e == ECONNREFUSED)
            g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_UNREACHABLE, "no collector at %s: %s",
                        socket_path, g_strerror(e));
        else
            g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_IO, "cannot reach the collector at %s: %s",
                        socket_path, g_strerror(e));
        return NULL;
    }
    LwIpcClient *c = g_new0(LwIpcClient, 1);
    c->fd = fd;
    c->next_id = 1;
    c->in = g_byte_array_new();
    return c;
}

void lw_ipc_client_free(LwIpcClient *c)
{
    if (c == NULL)
        return;
    close(c->fd);
    g_byte_array_unref(c->in);
    g_free(c);
}

int lw_ipc_client_fd(const LwIpcClient *c)
{
    return c->fd;
}

static gboolean write_all(int fd, const guint8 *p, size_t len, GError **error)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_IO, "IPC write: %s", g_strerror(e));
            return FALSE;
        }
        p += n;
        len -= (size_t)n;
    }
    return TRUE;
}

Lw__Response *lw_ipc_client_next(LwIpcClient *c, int timeout_ms, GError **error)
{
    gint64 deadline = timeout_ms < 0 ? -1 : g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    for (;;) {
        size_t payload = 0;
        LwIpcFrameResult r = lw_ipc_frame_peek(c->in->data, c->in->len, &payload);
        if (r == LW_IPC_FRAME_TOO_LARGE) {
            g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_PROTOCOL, "IPC frame too large");
            return NULL;
        }
        if (r == LW_IPC_FRAME_COMPLETE) {
            Lw__Response *resp =
                lw__response__unpack(NULL, payload, c->in->data + LW_IPC_HEADER_LEN);
            g_byte_array_remove_range(c->in, 0, (guint)(LW_IPC_HEADER_LEN + payload));
            if (resp == NULL) {
                g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_PROTOCOL,
                            "undecodable IPC response");
                return NULL;
            }
            return resp;
        }
        int wait_ms = -1;
        if (deadline >= 0) {
            gint64 left = deadline - g_get_monotonic_time();
            if (left <= 0) {
                g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_TIMEOUT,
                            "the collector did not answer in time");
                return NULL;
            }
            wait_ms = (int)((left + 999) / 1000);
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue; /* the deadline check above reports the timeout */
        guint8 buf[16384];
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_IO, "the collector closed the connection");
            return NULL;
        }
        g_byte_array_append(c->in, buf, (guint)n);
    }
}

Lw__Response *lw_ipc_client_call(LwIpcClient *c, Lw__Request *req, int timeout_ms,
                                 GError **error)
{
    req->has_id = TRUE;
    req->id = c->next_id++;
    g_autoptr(GByteArray) out = g_byte_array_new();
    lw_ipc_frame_append_request(out, req);
    if (!write_all(c->fd, out->data, out->len, error))
        return NULL;
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    for (;;) {
        gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
        Lw__Response *resp = lw_ipc_client_next(c, (int)MAX(left_ms, 0), error);
        if (resp == NULL)
            return NULL;
        if (!resp->has_id || resp->id != req->id) {
            lw__response__free_unpacked(resp, NULL);
            continue;
        }
        if (resp->error != NULL) {
            g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_REMOTE, "%s",
                        resp->error->message != NULL ? resp->error->message : "error");
            lw__response__free_unpacked(resp, NULL);
            return NULL;
        }
        return resp;
    }
}

Lw__Response *lw_ipc_client_status(LwIpcClient *c, int timeout_ms, GError **error)
{
    Lw__StatusRequest body = LW__STATUS_REQUEST__INIT;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_STATUS;
    req.status = &body;
    Lw__Response *resp = lw_ipc_client_call(c, &req, timeout_ms, error);
    if (resp != NULL && (resp->body_case != LW__RESPONSE__BODY_STATUS || resp->status == NULL)) {
        lw__response__free_unpacked(resp, NULL);
        g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_PROTOCOL, "the collector sent no status");
        return NULL;
    }
    return resp;
}

gboolean lw_ipc_client_call_ok(LwIpcClient *c, Lw__Request *req, int timeout_ms, GError **error)
{
    Lw__Response *resp = lw_ipc_client_call(c, req, timeout_ms, error);
    if (resp == NULL)
        return FALSE;
    lw__response__free_unpacked(resp, NULL);
    return TRUE;
}

gboolean lw_ipc_client_ledger_sync(LwIpcClient *c, int timeout_ms, GError **error)
{
    Lw__LedgerSyncRequest body = LW__LEDGER_SYNC_REQUEST__INIT;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_LEDGER_SYNC;
    req.ledger_sync = &body;
    return lw_ipc_client_call_ok(c, &req, timeout_ms, error);
}

gboolean lw_ipc_client_run_summary(LwIpcClient *c, guint64 run_id, int timeout_ms,
                                   LwRunSummary *ret, GError **error)
{
    Lw__RunSummaryRequest body = LW__RUN_SUMMARY_REQUEST__INIT;
    body.has_run_id = TRUE;
    body.run_id = run_id;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_RUN_SUMMARY;
    req.run_summary = &body;
    Lw__Response *resp = lw_ipc_client_call(c, &req, timeout_ms, error);
    if (resp == NULL)
        return FALSE;
    if (resp->body_case != LW__RESPONSE__BODY_RUN_SUMMARY) {
        g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_PROTOCOL, "unexpected reply to a summary");
        lw__response__free_unpacked(resp, NULL);
        return FALSE;
    }
    const Lw__RunSummary *r = resp->run_summary;
    LwRunSummary s = {
        .models = g_ptr_array_new_with_free_func(lw_run_model_spend_free),
        .refused_by = g_ptr_array_new_with_free_func(g_free),
        .warnings = g_ptr_array_new_with_free_func(g_free),
        .requests = (gint64)r->requests,
        .cost_pusd = r->cost_pusd,
        .unpriced = (gint64)r->unpriced,
        .partial = (gint64)r->partial,
        .refused = (gint64)r->refused,
    };
    for (size_t i = 0; i < r->n_models; i++) {
        const Lw__ModelSpend *m = r->models[i];
        LwRunModelSpend *ms = g_new0(LwRunModelSpend, 1);
        ms->provider = g_strdup(m->provider != NULL ? m->provider : "");
        ms->model = g_strdup(m->model != NULL ? m->model : "");
        ms->requests = (gint64)m->requests;
        ms->input_tokens = (gint64)m->input_tokens;
        ms->cached_input_tokens = (gint64)m->cached_input_tokens;
        ms->output_tokens = (gint64)m->output_tokens;
        ms->reasoning_tokens = (gint64)m->reasoning_tokens;
        ms->cost_pusd = m->cost_pusd;
        ms->unpriced = (gint64)m->unpriced_requests;
        g_ptr_array_add(s.models, ms);
    }
    for (size_t i = 0; i < r->n_refused_by; i++)
        g_ptr_array_add(s.refused_by, g_strdup(r->refused_by[i]));
    for (size_t i = 0; i < r->n_warnings; i++)
        g_ptr_array_add(s.warnings, g_strdup(r->warnings[i]));
    lw__response__free_unpacked(resp, NULL);
    *ret = s;
    return TRUE;
}
