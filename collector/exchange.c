/* exchange.c - one request and its response. See exchange.h. */
#define G_LOG_DOMAIN "exchange"

#include "exchange.h"

#include <string.h>

#include "account.h"
#include "buf.h"
#include "conn.h"
#include "errors.h"
#include "http1.h"
#include "log.h"
#include "observe.h"
#include "policy.h"
#include "refusal.h"
#include "upstream-head.h"
#include "upstream.h"


struct _LwExchange {
    LwServer *server;
    LwConn *conn;
    const LwProvider *provider;
    LwRequestHead *head;
    GBytes *body; /* NULL when the request has none, or it streams */
    gboolean upload;      /* the body streams (lw_exchange_stream_body) */
    gboolean upload_open; /* ... and has not all arrived yet */
    gint64 upload_length; /* declared length, -1 when chunked */
    char *path; /* request target after any /NAME/ routing prefix */

    LwTransfer *transfer;
    LwTimer upstream_timer; /* first_byte_timeout, then stall_timeout once the head is out */
    guint64 last_body_ms;   /* when the upstream last sent body bytes (loop time) */
    guint64 started_us;
    LwAccount *account;
    char *warning; /* x-llmwrap-warning value (budget or guard warned) */

    /* Response side. */
    int status;
    gboolean head_sent;
    gboolean no_body;         /* HEAD, 1xx, 204, 304 */
    gboolean chunked_out;     /* we frame the body with chunked encoding */
    gboolean close_delimited; /* HTTP/1.0 client, unknown length: close ends it */
    gboolean client_keep_alive;
    guint64 body_bytes;       /* upstream body bytes */
    const char *upstream_proto; /* "HTTP/2", "HTTP/1.1" once the head arrived; static */
    gint64 content_length;    /* promised to the client, -1 when not */
    gint64 emitted;           /* body bytes handed to the client (incl. held) */
    LwBuf held;               /* bytes that end the answer, sent after the ledger commit */
};

/* ---- request heads ---- */

LwRequestHead *lw_request_head_copy(const char *buf, size_t head_len, const LwHttpRequest *req)
{
    LwRequestHead *h = g_new0(LwRequestHead, 1);
    h->raw = g_memdup2(buf, head_len);
    h->raw_len = head_len;
    h->req = *req;
    h->headers = g_new(LwHttpHeader, MAX(req->num_headers, 1));
    /* Rebase every slice from the connection's buffer onto the copy. */
#define REBASE(p) ((p) != NULL ? h->raw + ((p) - buf) : NULL)
    h->req.method = REBASE(req->method);
    h->req.target = REBASE(req->target);
    h->req.host = REBASE(req->host);
    for (size_t i = 0; i < req->num_headers; i++) {
        h->headers[i] = req->headers[i];
        h->headers[i].name = REBASE(req->headers[i].name);
        h->headers[i].value = REBASE(req->headers[i].value);
    }
#undef REBASE
    h->req.headers = h->headers;
    h->req.max_headers = req->num_headers;
    return h;
}

void lw_request_head_free(LwRequestHead *h)
{
    if (h == NULL)
        return;
    g_free(h->raw);
    g_free(h->headers);
    g_free(h);
}

/* ---- routing ---- */

/* Does the query of `path` have a key= parameter (Gemini's credential)? */
static gboolean has_key_param(const char *path)
{
    const char *q = strchr(path, '?');
    while (q != NULL) {
        q++;
        if (g_str_has_prefix(q, "key="))
            return TRUE;
        q = strchr(q, '&');
    }
    return FALSE;
}

/* On a configured listen address nothing names the provider but the
 * request: a Host that is a provider host, a "/NAME/" path prefix (for
 * base URLs like http://127.0.0.1:PORT/groq/openai/v1), a header of one
 * provider's API, or the API's own path shape. */
static const LwProvider *route_path(const LwHttpRequest *req, char **path_inout,
                                    const LwProviderTable *providers)
{
    if (req->host != NULL) {
        g_autofree char *host = g_strndup(req->host, req->host_len);
        char *colon = strrchr(host, ':');
        if (colon != NULL && strchr(host, ']') == NULL)
            *colon = '\0';
        const LwProvider *p = lw_provider_table_by_host(providers, host);
        if (p != NULL)
            return p;
    }
    const char *path = *path_inout;
    const char *seg_end = strchr(path + 1, '/');
    if (seg_end != NULL) {
        g_autofree char *first = g_strndup(path + 1, (gsize)(seg_end - path - 1));
        const LwProvider *p = lw_provider_table_by_name(providers, first);
        if (p != NULL) {
            char *rest = g_strdup(seg_end);
            g_free(*path_inout);
            *path_inout = rest;
            return p;
        }
    }
    /* A header or credential only one provider's API takes names it before
     * the path does: its SDK sends it on every call, also to paths the
     * others share (Anthropic's GET /v1/models and POST /v1/files, Gemini's
     * /upload/v1beta/files or /v1/models/M:countTokens), which would
     * otherwise take the caller's key to OpenAI. */
    if (lw_http1_find_field(req->headers, req->num_headers, "anthropic-version") != NULL)
        return lw_provider_table_by_name(providers, "anthropic");
    if (lw_http1_find_field(req->headers, req->num_headers, "x-goog-api-key") != NULL ||
        has_key_param(path))
        return lw_provider_table_by_name(providers, "gemini");
    if (g_str_has_prefix(path, "/v1/messages"))
        return lw_provider_table_by_name(providers, "anthropic");
    if (g_str_has_prefix(path, "/v1beta/") || g_str_has_prefix(path, "/upload/v1beta/") ||
        strstr(path, ":generateContent") != NULL ||
        strstr(path, ":streamGenerateContent") != NULL)
        return lw_provider_table_by_name(providers, "gemini");
    return lw_provider_table_by_name(providers, "openai");
}

static const LwProvider *route(LwExchange *ex, const LwProviderTable *providers)
{
    return route_path(&ex->head->req, &ex->path, providers);
}

/* The request target as a path ("/" added to an absolute URL without
 * one). Transfer full. */
static char *target_path(const LwHttpRequest *req)
{
    if (req->target_len > 0 && req->target[0] == '/')
        return g_strndup(req->target, req->target_len);
    /* an absolute URL without a path: "http://h" or "http://h?q" */
    return g_strdup_printf("/%.*s", (int)req->target_len, req->target);
}

/* ---- finishing ---- */

static void log_done(LwExchange *ex, const char *outcome)
{
    if (!lw_log_enabled(G_LOG_LEVEL_INFO))
        return;
    g_autofree char *path = lw_path_for_display(ex->path);
    guint64 ms = (lw_loop_now_us() - ex->started_us) / 1000;
    g_info("%s %.*s %s -> %d %s (%" G_GUINT64_FORMAT " ms, %" G_GUINT64_FORMAT " B%s%s)",
           ex->provider != NULL ? ex->provider->name : "-", (int)ex->head->req.method_len,
           ex->head->req.method, path, ex->status, outcome, ms, ex->body_bytes,
           ex->upstream_proto != NULL ? ", upstream " : "",
           ex->upstream_proto != NULL ? ex->upstream_proto : "");
}

static gboolean is_head_request_line(const LwHttpRequest *req)
{
    return req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
}

static gboolean is_head_request(const LwExchange *ex)
{
    return is_head_request_line(&ex->head->req);
}

/* Cuts `out` (a whole response) to its head when the request was HEAD: the
 * head still gives the length of the body it describes (RFC 9110, 9.3.2),
 * and a body sent anyway would be read as the start of the next response. */
static void drop_body_for_head(const LwExchange *ex, GString *out)
{
    const char *end = is_head_request(ex) ? strstr(out->str, "\r\n\r\n") : NULL;
    if (end != NULL)
        g_string_truncate(out, (gsize)(end + 4 - out->str));
}

/* The shape the client's SDK expects: the endpoint's, which is not always
 * the provider's (Gemini's OpenAI-compatible chat completions). */
static LwFormat answer_format(const LwExchange *ex)
{
    LwFormat format = ex->provider != NULL ? ex->provider->format : LW_FORMAT_OPENAI;
    if (ex->account != NULL)
        format = lw_endpoint_format(lw_account_info(ex->account)->endpoint, format);
    return format;
}

/* Answers with an error of our own (before any response byte was sent). */
static void answer_error(LwExchange *ex, int status, const char *message)
{
    LwFormat format = answer_format(ex);
    if (ex->upload_open) /* the rest of the body is not read: the connection ends */
        ex->client_keep_alive = FALSE;
    g_autoptr(GString) body = lw_error_body(format, status, NULL, message);
    g_autoptr(GString) out = g_string_sized_new(256 + body->len);
    g_string_append_printf(out,
                           "HTTP/1.1 %d %s\r\n"
                           "content-type: application/json\r\n"
                           "content-length: %zu\r\n"
                           "%s\r\n",
                           status, lw_http1_reason(status), body->len,
                           ex->client_keep_alive ? "" : "connection: close\r\n");
    g_string_append_len(out, body->str, (gssize)body->len);
    drop_body_for_head(ex, out);
    ex->status = status;
    ex->head_sent = TRUE;
    if (status == 502 || status == 504)
        ex->server->counters.upstream_errors++;
    if (ex->account != NULL)
        lw_account_settle_local(ex->account, status, NULL);
    log_done(ex, message);
    LwConn *conn = ex->conn;
    gboolean keep = ex->client_keep_alive;
    lw_conn_send(conn, out->str, out->len);
    lw_conn_response_done(conn, keep); /* frees ex */
}

/* Refuses the request in the provider's own shape (budget, guard, kill). */
static void answer_refusal(LwExchange *ex, const char *refused_by, const char *message)
{
    LwFormat format = answer_format(ex);
    if (ex->upload_open)
        ex->client_keep_alive = FALSE;
    static guint64 refusal_seq;
    g_autofree char *request_id =
        g_strdup_printf("req_llmwrap_%" G_GUINT64_FORMAT, ++refusal_seq);
    g_autoptr(GString) out =
        lw_refusal_response(format, message, request_id, ex->client_keep_alive);
    drop_body_for_head(ex, out);
    ex->status = lw_refusal_status(format);
    ex->head_sent = TRUE;
    ex->server->counters.refused++;
    lw_account_settle_local(ex->account, ex->status, refused_by);
    log_done(ex, refused_by);
    LwConn *conn = ex->conn;
    gboolean keep = ex->client_keep_alive;
    lw_conn_send(conn, out->str, out->len);
    lw_conn_response_done(conn, keep); /* frees ex */
}

/* ---- upstream callbacks ---- */

/* Frames body bytes for the client: a chunk, or raw bytes under a
 * Content-Length or close-delimited framing. */
static void send_framed(LwExchange *ex, const char *buf, gsize len)
{
    if (len == 0)
        return;
    if (ex->chunked_out) {
        char size_line[LW_HTTP1_CHUNK_HEAD_MAX];
        lw_conn_send(ex->conn, size_line, lw_http1_chunk_head(size_line, len));
        lw_conn_send(ex->conn, buf, len);
        lw_conn_send(ex->conn, "\r\n", 2);
    } else {
        lw_conn_send(ex->conn, buf, len);
    }
}

static void flush_held(LwExchange *ex)
{
    if (lw_buf_len(&ex->held) == 0)
        return;
    send_framed(ex, lw_buf_head(&ex->held), lw_buf_len(&ex->held));
    lw_buf_reset(&ex->held);
}

/* The observer's sink. Terminal bytes (and, under Content-Length, the very
 * last byte) wait in `held` until the ledger row is committed: a client
 * that has the whole answer is a client whose request is recorded. */
static void emit(void *data, const char *buf, gsize len, gboolean terminal)
{
    LwExchange *ex = data;
    if (len == 0)
        return;
    ex->emitted += (gint64)len;
    if (!terminal && ex->content_length >= 0 && ex->emitted >= ex->content_length) {
        len--;
        terminal = FALSE;
        flush_held(ex);
        send_framed(ex, buf, len);
        lw_buf_append(&ex->held, buf + len, 1);
        return;
    }
    if (terminal) {
        lw_buf_append(&ex->held, buf, len);
        return;
    }
    flush_held(ex);
    send_framed(ex, buf, len);
}

static const LwObserverSink observer_sink = {emit};

/* printf costs more than the rest of a response head together. */
static void append_decimal(GString *out, gint64 v)
{
    char digits[24];
    int n = 0;
    guint64 u = v < 0 ? (guint64)0 - (guint64)v : (guint64)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        g_string_append_c(out, '-');
    while (n > 0)
        g_string_append_c(out, digits[--n]);
}

static char *header_value(const LwHttpHeader *headers, size_t n, const char *name)
{
    const LwHttpHeader *h = lw_http1_find_field(headers, n, name);
    return h != NULL ? g_strndup(h->value, h->value_len) : NULL;
}

/* Ends an answer one side stopped moving: booked with what it used. */
static void cut_stalled(LwExchange *ex, const char *outcome)
{
    lw_account_settle(ex->account, ex->status, TRUE);
    flush_held(ex); /* recorded now: see on_done */
    log_done(ex, outcome);
    lw_conn_abort(ex->conn); /* frees ex, which cancels the transfer */
}

/* Once the head is out, either side may stop: the provider (no body bytes
 * for [upstream] stall_timeout) or the client (queued bytes it takes none
 * of for [collector] idle_timeout, while the provider waits paused and a
 * budget holds the reservation). Re-armed lazily: body bytes only note the
 * time, the timer checks when it fires. */
static void on_stall_timeout(LwLoop *loop, void *data)
{
    LwExchange *ex = data;
    const LwConfig *config = ex->server->config;
    guint64 now = lw_loop_now_ms(loop), limit = config->stall_timeout_ms;
    guint64 unread = lw_conn_unread_ms(ex->conn);
    if (unread >= config->idle_timeout_ms) {
        g_warning("upstream %s: the client took none of the answer for [collector] idle_timeout "
                  "(%g s); cutting it",
                  ex->provider->name, config->idle_timeout_ms / 1000.0);
        cut_stalled(ex, "cut: the client stopped reading");
        return;
    }
    guint64 next = limit;
    if (lw_conn_pending(ex->conn) > 0) {
        /* The upstream is paused for the client: its silence is ours. */
        ex->last_body_ms = now;
        next = MIN(limit, config->idle_timeout_ms - unread);
    }
    if (now - ex->last_body_ms < limit) {
        lw_timer_start(loop, &ex->upstream_timer, MIN(next, limit - (now - ex->last_body_ms)),
                       on_stall_timeout, ex);
        return;
    }
    g_warning("upstream %s: no answer bytes for [upstream] stall_timeout (%g s); cutting the "
              "answer",
              ex->provider->name, limit / 1000.0);
    ex->server->counters.upstream_errors++;
    cut_stalled(ex, "cut: upstream stalled mid-body");
}

static void on_head(void *data, int status, const char *reason, const LwHttpHeader *headers,
                    size_t n_headers, int64_t content_length)
{
    LwExchange *ex = data;
    lw_timer_stop(ex->server->loop, &ex->upstream_timer);
    ex->status = status;
    ex->upstream_proto = lw_transfer_http_version(ex->transfer);
    gboolean is_head = is_head_request(ex);
    ex->no_body = is_head || status == 204 || status == 304 || status < 200;
    /* An answer before the whole body (a 401 or 413 the provider sends
     * early) ends the connection: the rest of the body is not read. */
    if (ex->upload_open)
        ex->client_keep_alive = FALSE;

    g_autofree char *content_type = header_value(headers, n_headers, "content-type");
    g_autofree char *content_encoding = header_value(headers, n_headers, "content-encoding");
    lw_account_response(ex->account, status, content_type, content_encoding, &observer_sink, ex);
    /* An answer the observer edits has a length nobody knows in advance. */
    if (lw_account_rewrites(ex->account))
        content_length = -1;

    g_autoptr(GString) out = g_string_sized_new(1024);
    g_string_append(out, "HTTP/1.1 ");
    append_decimal(out, status);
    g_string_append_c(out, ' ');
    g_string_append(out, reason[0] != '\0' ? reason : lw_http1_reason(status));
    g_string_append(out, "\r\n");
    lw_upstream_head_write_fields(out, headers, n_headers, is_head);
    if (!ex->no_body) {
        if (content_length >= 0) {
            ex->content_length = content_length;
            g_string_append(out, "content-length: ");
            append_decimal(out, content_length);
            g_string_append(out, "\r\n");
        } else if (ex->head->req.minor_version >= 1) {
            ex->chunked_out = TRUE;
            g_string_append(out, "transfer-encoding: chunked\r\n");
        } else {
            ex->close_delimited = TRUE;
        }
    }
    if (!ex->client_keep_alive || ex->close_delimited || ex->server->draining)
        g_string_append(out, "connection: close\r\n");
    if (ex->warning != NULL) {
        /* Our own text, but a header value must stay printable ASCII. */
        g_string_append(out, "x-llmwrap-warning: ");
        for (const char *p = ex->warning; *p != '\0'; p++)
            g_string_append_c(out, (*p >= 0x20 && *p < 0x7f) ? *p : '?');
        g_string_append(out, "\r\n");
    }
    g_string_append(out, "\r\n");
    ex->head_sent = TRUE;
    lw_conn_send(ex->conn, out->str, out->len);
    if (!ex->no_body) {
        ex->last_body_ms = lw_loop_now_ms(ex->server->loop);
        lw_timer_start(ex->server->loop, &ex->upstream_timer, ex->server->config->stall_timeout_ms,
                       on_stall_timeout, ex);
    }
}

static gboolean on_body(void *data, const char *buf, size_t len)
{
    LwExchange *ex = data;
    if (ex->no_body)
        return TRUE;
    ex->last_body_ms = lw_loop_now_ms(ex->server->loop);
    if (lw_conn_pending(ex->conn) > LW_CONN_HIGH_WATER) {
        /* Backpressure: resumed from lw_exchange_on_drain(). The timer
         * now watches the client instead (on_stall_timeout). */
        lw_timer_start(ex->server->loop, &ex->upstream_timer, ex->server->config->idle_timeout_ms,
                       on_stall_timeout, ex);
        return FALSE;
    }
    ex->body_bytes += len;
    lw_account_body(ex->account, buf, len);
    if (lw_account_must_end_stream(ex->account)) {
        /* A metered stream reached its budget, or its run was killed: end
         * it with the provider's own error event, charge what it used,
         * stop the upstream. */
        g_autoptr(GString) ev = lw_account_end_stream(ex->account);
        lw_transfer_cancel(ex->transfer);
        ex->transfer = NULL;
        flush_held(ex);
        send_framed(ex, ev->str, ev->len);
        lw_account_settle(ex->account, ex->status, TRUE);
        if (ex->chunked_out)
            lw_conn_send(ex->conn, "0\r\n\r\n", 5);
        log_done(ex, "ended by llmwrap");
        LwConn *conn = ex->conn;
        gboolean keep = ex->client_keep_alive && !ex->close_delimited && ex->chunked_out;
        lw_conn_response_done(conn, keep); /* frees ex */
    }
    return TRUE;
}

static void on_done(void *data, LwUpstreamStatus status, const char *detail)
{
    LwExchange *ex = data;
    ex->transfer = NULL;
    lw_timer_stop(ex->server->loop, &ex->upstream_timer);
    LwConn *conn = ex->conn;
    if (status != LW_UPSTREAM_OK) {
        if (!ex->head_sent) {
            g_warning("upstream %s: %s", ex->provider->name, detail);
            g_autofree char *msg =
                g_strdup_printf("llmwrap could not reach %s: %s", ex->provider->host, detail);
            answer_error(ex, status == LW_UPSTREAM_TIMEOUT ? 504 : 502, msg);
            return;
        }
        /* The head is out: record what we saw, then the only honest signal
         * left is a cut connection. Every byte the provider sent goes out
         * first, the end of the answer held for the row included (a
         * stream's last event came before the break, which took only the
         * framing): the row is recorded now, and without that event an
         * SDK fails an answer it had whole. */
        lw_account_settle(ex->account, ex->status, TRUE);
        flush_held(ex);
        ex->server->counters.upstream_errors++;
        log_done(ex, "cut: upstream broke mid-body");
        lw_conn_abort(conn);
        return;
    }
    /* A stream's events already emitted are the client's now: they must
     * not wait for the ledger commit below, which holds back only the
     * bytes that end the answer. (They are still queued when the end came
     * in the same read, as a fast provider's whole short answer does.) */
    if (lw_account_info(ex->account)->stream)
        lw_conn_flush_now(conn);
    /* Settle (the observer may emit its last buffered bytes), commit the
     * ledger row, and only then let the answer's last bytes go. */
    lw_account_settle(ex->account, ex->status, FALSE);
    flush_held(ex);
    if (ex->chunked_out)
        lw_conn_send(conn, "0\r\n\r\n", 5);
    log_done(ex, "");
    gboolean keep = ex->client_keep_alive && !ex->close_delimited;
    lw_conn_response_done(conn, keep); /* frees ex */
}

static void on_upload_room(void *data)
{
    LwExchange *ex = data;
    lw_conn_upload_room(ex->conn);
}

static const LwTransferCallbacks transfer_callbacks = {on_head, on_body, on_done, on_upload_room};

static void on_first_byte_timeout(LwLoop *loop, void *data)
{
    LwExchange *ex = data;
    /* Booked before answer_error's own settling, which would book the
     * request as never sent. */
    if (ex->account != NULL && ex->transfer != NULL && lw_transfer_request_sent(ex->transfer))
        lw_account_settle_unanswered(ex->account, 504, ex->body);
    if (ex->transfer != NULL) {
        lw_transfer_cancel(ex->transfer);
        ex->transfer = NULL;
    }
    g_autofree char *msg = g_strdup_printf(
        "llmwrap: %s did not answer within [upstream] first_byte_timeout (%g s)",
        ex->provider->host, ex->server->config->first_byte_timeout_ms / 1000.0);
    answer_error(ex, 504, msg);
}

/* ---- public ---- */

LwExchange *lw_exchange_new(LwServer *server, LwConn *conn, const LwProvider *provider,
                            LwRequestHead *head, char *body, size_t body_len)
{
    LwExchange *ex = g_new0(LwExchange, 1);
    ex->server = server;
    ex->conn = conn;
    ex->provider = provider;
    ex->head = head;
    if (body != NULL || head->req.body_kind != LW_HTTP1_BODY_NONE)
        ex->body = g_bytes_new_take(body, body_len);
    const LwHttpRequest *req = &head->req;
    ex->path = target_path(req);
    ex->client_keep_alive = head->req.keep_alive;
    ex->started_us = lw_loop_now_us();
    ex->content_length = -1;
    lw_timer_init(&ex->upstream_timer);
    return ex;
}

/* Accept-Encoding is not among them: upstream_accept_encoding replaces it. */
static gboolean is_forwarded_request_header(const LwHttpRequest *req, const LwHttpHeader *h)
{
    static const char *const dropped[] = {"host", "content-length", "expect",
                                          "proxy-authorization", "accept-encoding"};
    if (lw_http1_is_hop_by_hop(req->headers, req->num_headers, h->name, h->name_len))
        return FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(dropped); i++) {
        if (lw_http1_name_is(h->name, h->name_len, dropped[i]))
            return FALSE;
    }
    return TRUE;
}

/* What the upstream may encode its answer with: only codings the observer
 * reads, or the usage of a zstd or br answer would be lost (the client
 * still gets the answer's bytes as they came); "identity" when the answer
 * will be edited (include_usage). Transfer full. */
static char *upstream_accept_encoding(const LwHttpRequest *req, gboolean identity)
{
    if (identity)
        return g_strdup("identity");
    g_autoptr(GString) accept = NULL;
    for (size_t i = 0; i < req->num_headers; i++) {
        const LwHttpHeader *h = &req->headers[i];
        if (!lw_http1_name_is(h->name, h->name_len, "accept-encoding"))
            continue;
        if (accept == NULL)
            accept = g_string_new(NULL);
        else
            g_string_append_c(accept, ',');
        g_string_append_len(accept, h->value, (gssize)h->value_len);
    }
    return lw_observer_accept_encoding(accept != NULL ? accept->str : NULL);
}

void lw_exchange_start(LwExchange *ex)
{
    LwServer *server = ex->server;
    const LwHttpRequest *req = &ex->head->req;
    if (ex->provider == NULL)
        ex->provider = route(ex, server->providers);

    LwAccountRequest areq = {
        .provider = ex->provider,
        .req = req,
        .path = ex->path,
        .body = ex->body,
        .body_streamed = ex->upload,
        .body_length = ex->upload_length,
        .attribution = lw_conn_attribution(ex->conn),
    };
    GBytes *new_body = NULL;
    gboolean identity = FALSE;
    ex->account = lw_account_begin(server, &areq, &new_body, &identity);
    if (new_body != NULL) {
        g_bytes_unref(ex->body);
        ex->body = new_body;
    }

    LwPolicyDecision pd;
    lw_policy_admit(server, ex->account, ex->path, ex->body, &pd);
    if (pd.refuse) {
        answer_refusal(ex, pd.refused_by, pd.message);
        lw_policy_decision_clear(&pd);
        return;
    }
    if (pd.body != NULL) {
        if (ex->body != NULL)
            g_bytes_unref(ex->body);
        ex->body = g_steal_pointer(&pd.body);
    }
    if (pd.path != NULL) {
        g_free(ex->path);
        ex->path = g_steal_pointer(&pd.path);
    }
    ex->warning = g_steal_pointer(&pd.warning);
    lw_policy_decision_clear(&pd);

    g_autofree LwHttpHeader *fwd = g_new(LwHttpHeader, req->num_headers + 1);
    size_t n_fwd = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        if (is_forwarded_request_header(req, &req->headers[i]))
            fwd[n_fwd++] = req->headers[i];
    }
    static const char accept_name[] = "accept-encoding";
    g_autofree char *accept = upstream_accept_encoding(req, identity);
    fwd[n_fwd++] = (LwHttpHeader){accept_name, sizeof accept_name - 1, accept, strlen(accept)};
    g_autofree char *method = g_strndup(req->method, req->method_len);
    g_autofree char *url = g_strconcat(ex->provider->upstream, ex->path, NULL);
    LwTransferRequest treq = {
        .method = method,
        .url = url,
        .headers = fwd,
        .n_headers = n_fwd,
        .body = ex->body,
        .upload = ex->upload,
        .upload_length = ex->upload_length,
    };
    g_autoptr(GError) error = NULL;
    ex->transfer = lw_upstream_start(server->upstream, &treq, &transfer_callbacks, ex, &error);
    if (ex->transfer == NULL) {
        answer_error(ex, 502, error->message);
        return;
    }
    /* A streamed body's wait for the answer starts when it is all sent
     * (lw_exchange_upload_end); until then the connection's idle_timeout
     * watches both sides of the upload. */
    if (!ex->upload_open)
        lw_timer_start(server->loop, &ex->upstream_timer, server->config->first_byte_timeout_ms,
                       on_first_byte_timeout, ex);
}

gboolean lw_exchange_body_streams(LwServer *server, const LwProvider *provider,
                                  const LwRequestHead *head)
{
    const LwHttpRequest *req = &head->req;
    if (req->body_kind == LW_HTTP1_BODY_NONE ||
        (req->body_kind == LW_HTTP1_BODY_LENGTH && req->content_length == 0) ||
        is_head_request_line(req))
        return FALSE;
    /* No Content-Type may still be JSON: read it. The media type only,
     * case-insensitively: application/json, text/json, anything+json. */
    const LwHttpHeader *ct = lw_http1_find_header(req, "content-type");
    if (ct == NULL)
        return FALSE;
    gsize n = 0;
    while (n < ct->value_len && ct->value[n] != ';' && ct->value[n] != ' ' &&
           ct->value[n] != '\t')
        n++;
    if ((n >= 5 && g_ascii_strncasecmp(ct->value + n - 5, "/json", 5) == 0) ||
        (n >= 5 && g_ascii_strncasecmp(ct->value + n - 5, "+json", 5) == 0))
        return FALSE;
    g_autofree char *path = target_path(req);
    if (provider == NULL)
        route_path(req, &path, server->providers);
    g_autofree char *method = g_strndup(req->method, req->method_len);
    LwEndpoint e = lw_inspect_endpoint(method, path);
    return e == LW_ENDPOINT_OTHER || e == LW_ENDPOINT_UNPRICED;
}

void lw_exchange_stream_body(LwExchange *ex, gint64 length)
{
    g_clear_pointer(&ex->body, g_bytes_unref);
    ex->upload = TRUE;
    ex->upload_open = TRUE;
    ex->upload_length = length;
}

size_t lw_exchange_upload(LwExchange *ex, const char *buf, size_t len)
{
    if (ex->transfer == NULL) /* the answer is decided: the rest goes nowhere */
        return len;
    size_t n = lw_transfer_upload(ex->transfer, buf, len);
    lw_account_streamed_in(ex->account, n);
    return n;
}

void lw_exchange_upload_end(LwExchange *ex)
{
    ex->upload_open = FALSE;
    if (ex->transfer == NULL)
        return;
    lw_transfer_upload_end(ex->transfer);
    if (ex->status == 0)
        lw_timer_start(ex->server->loop, &ex->upstream_timer,
                       ex->server->config->first_byte_timeout_ms, on_first_byte_timeout, ex);
}

void lw_exchange_upload_failed(LwExchange *ex, int status, const char *message)
{
    /* The provider got part of the body and never all of it: it has
     * nothing to answer, or bill. */
    if (ex->transfer != NULL) {
        lw_transfer_cancel(ex->transfer);
        ex->transfer = NULL;
    }
    if (!ex->head_sent) {
        answer_error(ex, status, message); /* frees ex */
        return;
    }
    lw_account_settle(ex->account, ex->status, TRUE);
    log_done(ex, message);
    lw_conn_abort(ex->conn); /* frees ex */
}

void lw_exchange_on_drain(LwExchange *ex)
{
    if (ex->transfer != NULL)
        lw_transfer_resume(ex->transfer);
}

void lw_exchange_client_gone(LwExchange *ex)
{
    if (ex->transfer != NULL) {
        /* What the provider produced so far is spent: record it. Before
         * its answer's head, nothing says how much that is. */
        if (ex->account != NULL && ex->status == 0 && lw_transfer_request_sent(ex->transfer))
            lw_account_settle_unanswered(ex->account, 0, ex->body);
        else if (ex->account != NULL)
            lw_account_settle(ex->account, ex->head_sent ? ex->status : 0, TRUE);
        log_done(ex, "client went away");
    }
    lw_exchange_free(ex);
}

void lw_exchange_free(LwExchange *ex)
{
    if (ex == NULL)
        return;
    if (ex->transfer != NULL)
        lw_transfer_cancel(ex->transfer);
    lw_timer_stop(ex->server->loop, &ex->upstream_timer);
    lw_account_free(ex->account);
    g_free(ex->warning);
    lw_buf_clear(&ex->held);
    lw_request_head_free(ex->head);
    if (ex->body != NULL)
        g_bytes_unref(ex->body);
    g_free(ex->path);
    g_free(ex);
}
