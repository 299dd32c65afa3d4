/* conn.c - one client connection. See conn.h for the contract.
 *
 * States:
 *   SNIFF      first byte decides: 0x16 (TLS handshake record) or plain HTTP
 *   HANDSHAKE  TLS handshake; SNI is checked in tls-server.c
 *   HEAD       reading a request head          (idle_timeout, then header_timeout)
 *   BODY       reading its body                (idle_timeout per read)
 *              a streamed body (exchange.h): the exchange runs already and
 *              takes the body as it arrives (idle_timeout per move)
 *   EXCHANGE   the exchange owns the response; further input is only buffered
 *   CLOSING    flushing a final response, then close
 *   CLOSED     descriptor closed; the struct is freed on the next loop
 *              iteration, so callers up the stack may still test the state
 */
#define G_LOG_DOMAIN "conn"

#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "errors.h"
#include "exchange.h"
#include "heap-trim.h"
#include "http1.h"
#include "tls-server.h"


/* Input beyond a request head is buffered up to this many bytes while a
 * body streams in or a response is in flight (pipelined requests); the
 * last read may pass it by less than one READ_CHUNK. */
#define IN_SLACK (64 * 1024)
/* A close that waits for a final response to flush gives up after this. */
#define CLOSING_TIMEOUT_MS 5000
/* Then, how long the collector reads and drops what the client still
 * sends (see conn_linger). */
#define LINGER_MS 2000
/* Output is written once per loop iteration (see lw_conn_send), unless this
 * much is already queued: then at once, so a large body keeps the socket
 * busy instead of waiting in memory. */
#define FLUSH_NOW_BYTES (64 * 1024)
/* Reads go through one buffer per process; a connection keeps only what
 * it has not parsed yet. */
#define READ_CHUNK 16384
/* A body under Content-Length gets a buffer of its size at once, up to
 * this; a larger one grows as its bytes come. The size is only what the
 * client announced: allocated whole, a Content-Length below a large
 * max_body but above what the machine can map aborted the collector. */
#define BODY_PREALLOC (1024 * 1024)

typedef enum {
    CONN_SNIFF,
    CONN_HANDSHAKE,
    CONN_HEAD,
    CONN_BODY,
    CONN_EXCHANGE,
    CONN_CLOSING,
    CONN_LINGER,
    CONN_CLOSED,
} ConnState;

struct _LwConn {
    LwServer *server;
    guint64 id;
    int fd;
    SSL *ssl; /* NULL on a plain connection */
    ConnState state;
    const LwProvider *provider; /* from the synthetic address, then SNI */
    LwAttribKey key;            /* both ends, for the shim's attribution message */
    gboolean have_key;
    LwBuf in, out;
    size_t parse_last_len;
    LwTimer timer;
    LwTimer next_timer; /* deferred start of the next pipelined request */
    LwTimer flush_timer; /* end-of-iteration write of `out` */
    GList link;         /* in server->conns */

    /* Request being read. */
    LwRequestHead *head;
    char *body;
    size_t body_len;
    size_t body_cap;
    gboolean body_chunked;
    LwChunkedDecoder chunked;
    /* A streamed body: handed to the exchange as it arrives, as much as
     * the upstream's queue takes; what it does not take waits in `in`,
     * whose cap then stops reading (backpressure). */
    gboolean upload;
    guint64 upload_left;     /* Content-Length: bytes still to come */
    size_t upload_ready;     /* body bytes (decoded) at the front of `in`, not yet taken */
    gboolean upload_complete; /* the body's last byte is among them */
    gboolean keep_alive;

    LwExchange *exchange;
    LwAttribution attribution;
    gboolean attribution_checked;
    gboolean have_attribution;
    gboolean close_after; /* close when the current response is flushed */
    gboolean io_error;    /* the transport failed: never write again */
    gboolean cut;         /* an answer was cut: no close_notify, which would say it ended */
    guint64 out_moved_ms; /* loop time the queue was last empty or written from */
    gboolean ssl_read_wants_write;
    gboolean ssl_write_wants_read;
};

static guint64 next_conn_id = 1;

static void conn_io(LwLoop *loop, int fd, uint32_t events, void *data);
static void process_input(LwConn *conn);
static void upload_failed(LwConn *conn, int status, const char *message);
static void conn_flush(LwConn *conn);

/* ---- lifecycle ---- */

static void conn_free(LwLoop *loop, void *data)
{
    LwConn *conn = data;
    lw_request_head_free(conn->head);
    g_free(conn->body);
    lw_buf_clear(&conn->in);
    lw_buf_clear(&conn->out);
    g_free(conn);
}

/* Takes the connection's attribution message if it has come. Once it has,
 * or once `last` (the first request, the close), it is not looked for
 * again. */
static void claim_attribution(LwConn *conn, gboolean last)
{
    if (conn->attribution_checked || conn->server->attrib == NULL)
        return;
    conn->have_attribution =
        conn->have_key && lw_attrib_take(conn->server->attrib, &conn->key, &conn->attribution);
    conn->attribution_checked = conn->have_attribution || last;
}

/* Tears the connection down now and frees it on the next iteration. */
static void conn_close(LwConn *conn)
{
    LwServer *server = conn->server;
    if (conn->state == CONN_CLOSED)
        return;
    ConnState was = conn->state;
    conn->state = CONN_CLOSED;
    lw_timer_stop(server->loop, &conn->next_timer);
    lw_timer_stop(server->loop, &conn->flush_timer);
    /* A message not claimed yet goes with its connection rather than
     * wait to expire. */
    claim_attribution(conn, TRUE);
    if (conn->exchange != NULL) {
        LwExchange *ex = conn->exchange;
        conn->exchange = NULL;
        server->counters.requests_active--;
        lw_exchange_client_gone(ex);
    }
    lw_loop_unwatch(server->loop, conn->fd);
    if (conn->ssl != NULL) {
        if (!conn->io_error && !conn->cut && was != CONN_HANDSHAKE && was != CONN_SNIFF &&
            was != CONN_LINGER)
            SSL_shutdown(conn->ssl); /* best-effort close_notify, never wait for the peer's */
        SSL_free(conn->ssl);
        conn->ssl = NULL;
        ERR_clear_error();
    }
    close(conn->fd);
    conn->fd = -1;
    g_queue_unlink(&server->conns, &conn->link);
    server->counters.connections_active--;
    lw_timer_start(server->loop, &conn->timer, 0, conn_free, conn);
    lw_server_conn_closed(server);
}

static void on_closing_timeout(LwLoop *loop, void *data)
{
    conn_close(data);
}

/* Reads and drops what the lingering client sends; closes at its EOF. */
static void do_linger(LwConn *conn)
{
    char buf[4096];
    for (int i = 0; i < 16; i++) { /* then let other connections have a turn */
        ssize_t n = recv(conn->fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            conn_close(conn);
            return;
        }
    }
}

/* The last response is written: half-close, and read and drop what the
 * client still sends until it closes too, for LINGER_MS at most. Closing
 * at once with the client's bytes unread makes the kernel send a reset,
 * which can destroy the response before the client reads it: a client
 * still sending a body the collector refused (413, 431) would see
 * "connection reset" instead of the error (RFC 9112, section 9.6). */
static void conn_linger(LwConn *conn)
{
    if (conn->server->draining) {
        conn_close(conn);
        return;
    }
    if (conn->ssl != NULL && !conn->cut) {
        SSL_shutdown(conn->ssl); /* close_notify, as conn_close would */
        ERR_clear_error();
    }
    if (shutdown(conn->fd, SHUT_WR) != 0) {
        conn_close(conn);
        return;
    }
    conn->state = CONN_LINGER;
    lw_timer_stop(conn->server->loop, &conn->flush_timer);
    lw_timer_stop(conn->server->loop, &conn->next_timer);
    lw_buf_clear(&conn->in);
    lw_buf_clear(&conn->out);
    lw_timer_start(conn->server->loop, &conn->timer, LINGER_MS, on_closing_timeout, conn);
    lw_loop_set_events(conn->server->loop, conn->fd, EPOLLIN | EPOLLRDHUP);
    do_linger(conn);
}

/* Closes once the queued output is written (bounded by CLOSING_TIMEOUT_MS). */
static void conn_close_after_flush(LwConn *conn)
{
    conn->state = CONN_CLOSING;
    if (conn->io_error) {
        conn_close(conn);
        return;
    }
    if (lw_buf_len(&conn->out) == 0) {
        conn_linger(conn);
        return;
    }
    /* Stop reading: we answer nothing more on this connection. */
    lw_timer_start(conn->server->loop, &conn->timer, CLOSING_TIMEOUT_MS, on_closing_timeout,
                   conn);
    lw_loop_set_events(conn->server->loop, conn->fd, EPOLLOUT);
}

/* ---- transport ---- */

typedef enum {
    IO_OK,
    IO_AGAIN,
    IO_EOF,
    IO_ERROR,
} IoResult;

static IoResult transport_read(LwConn *conn, char *buf, size_t cap, size_t *ret_n)
{
    if (conn->ssl == NULL) {
        ssize_t n = recv(conn->fd, buf, cap, 0);
        if (n > 0) {
            *ret_n = (size_t)n;
            return IO_OK;
        }
        if (n == 0)
            return IO_EOF;
        return (errno == EAGAIN || errno == EINTR) ? IO_AGAIN : IO_ERROR;
    }
    conn->ssl_read_wants_write = FALSE;
    int n = SSL_read(conn->ssl, buf, (int)MIN(cap, (size_t)G_MAXINT));
    if (n > 0) {
        *ret_n = (size_t)n;
        return IO_OK;
    }
    int err = SSL_get_error(conn->ssl, n);
    ERR_clear_error();
    switch (err) {
    case SSL_ERROR_WANT_READ:
        return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        conn->ssl_read_wants_write = TRUE;
        return IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return IO_EOF;
    default:
        return IO_ERROR;
    }
}

static IoResult transport_write(LwConn *conn, const char *buf, size_t len, size_t *ret_n)
{
    if (conn->ssl == NULL) {
        ssize_t n = send(conn->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) {
            *ret_n = (size_t)n;
            return IO_OK;
        }
        return (errno == EAGAIN || errno == EINTR) ? IO_AGAIN : IO_ERROR;
    }
    conn->ssl_write_wants_read = FALSE;
    int n = SSL_write(conn->ssl, buf, (int)MIN(len, (size_t)G_MAXINT));
    if (n > 0) {
        *ret_n = (size_t)n;
        return IO_OK;
    }
    int err = SSL_get_error(conn->ssl, n);
    ERR_clear_error();
    switch (err) {
    case SSL_ERROR_WANT_WRITE:
        return IO_AGAIN;
    case SSL_ERROR_WANT_READ:
        conn->ssl_write_wants_read = TRUE;
        return IO_AGAIN;
    default:
        return IO_ERROR;
    }
}

/* Recomputes the epoll interest from the state. Reading stops while the
 * input buffer is at its cap (backpressure on pipelining clients) and while
 * closing. */
static void update_events(LwConn *conn)
{
    uint32_t events = 0;
    size_t in_cap = conn->server->config->max_head + IN_SLACK;
    gboolean want_read = conn->state != CONN_CLOSING && lw_buf_len(&conn->in) < in_cap;
    if (want_read || conn->ssl_write_wants_read)
        events |= EPOLLIN | EPOLLRDHUP;
    /* Queued output waits for EPOLLOUT only when a write found the socket
     * full; otherwise the flush timer writes it this iteration. */
    if ((lw_buf_len(&conn->out) > 0 && !lw_timer_is_armed(&conn->flush_timer)) ||
        conn->ssl_read_wants_write)
        events |= EPOLLOUT;
    lw_loop_set_events(conn->server->loop, conn->fd, events);
}

/* ---- responses the connection answers itself ---- */

static void send_error(LwConn *conn, int status, const char *message)
{
    LwFormat format = conn->provider != NULL ? conn->provider->format : LW_FORMAT_OPENAI;
    g_autoptr(GString) body = lw_error_body(format, status, NULL, message);
    g_autoptr(GString) head = g_string_sized_new(256);
    g_string_append_printf(head,
                           "HTTP/1.1 %d %s\r\n"
                           "content-type: application/json\r\n"
                           "content-length: %zu\r\n"
                           "connection: close\r\n\r\n",
                           status, lw_http1_reason(status), body->len);
    lw_buf_append(&conn->out, head->str, head->len);
    lw_buf_append(&conn->out, body->str, body->len);
    conn->server->counters.requests_bad++;
    g_debug("conn %" G_GUINT64_FORMAT ": answered %d: %s", conn->id, status, message);
    if (conn->state != CONN_CLOSED)
        conn_close_after_flush(conn);
}

static gboolean is_websocket_upgrade(const LwHttpRequest *req)
{
    const LwHttpHeader *h = lw_http1_find_header(req, "upgrade");
    static const char ws[] = "websocket";
    for (size_t i = 0; h != NULL && i + sizeof ws - 1 <= h->value_len; i++) {
        if (g_ascii_strncasecmp(h->value + i, ws, sizeof ws - 1) == 0)
            return TRUE;
    }
    return FALSE;
}

/* Does an absolute-form target's authority name a provider, and on a
 * provider's own connection, that provider? */
static gboolean is_for_this_provider(LwConn *conn, const LwHttpTarget *target)
{
    g_autofree char *host = g_strndup(target->authority, target->authority_len);
    char *colon = strrchr(host, ':');
    if (colon != NULL && strchr(host, ']') == NULL)
        *colon = '\0';
    const LwProvider *p = lw_provider_table_by_host(conn->server->providers, host);
    return p != NULL && (conn->provider == NULL || p == conn->provider);
}

/* ---- timers ---- */

static void on_timeout(LwLoop *loop, void *data)
{
    LwConn *conn = data;
    switch (conn->state) {
    case CONN_HEAD:
        if (lw_buf_len(&conn->in) > 0) {
            send_error(conn, 408, "the request head was not received in time");
            return;
        }
        break; /* idle keep-alive connection: close quietly */
    case CONN_BODY:
        if (conn->upload) {
            /* Body bytes waiting for the upstream's queue: the provider
             * stopped taking them; none waiting: the client stopped
             * sending. */
            if (conn->upload_ready > 0)
                upload_failed(conn, 504,
                              "the provider took none of the request body for [collector] "
                              "idle_timeout");
            else
                upload_failed(conn, 408, "the request body stalled");
            return;
        }
        send_error(conn, 408, "the request body stalled");
        return;
    default:
        break;
    }
    g_debug("conn %" G_GUINT64_FORMAT ": timed out in state %d", conn->id, conn->state);
    conn_close(conn);
}

static void arm_timer(LwConn *conn, guint ms)
{
    lw_timer_start(conn->server->loop, &conn->timer, ms, on_timeout, conn);
}

/* ---- writing ---- */

/* An exchange's call into lw_conn_send() found the client gone: the close
 * (which frees the exchange) must wait until that call chain unwinds. */
static void on_deferred_close(LwLoop *loop, void *data)
{
    conn_close(data);
}

static void conn_flush(LwConn *conn)
{
    while (lw_buf_len(&conn->out) > 0 && !conn->io_error) {
        size_t n = 0;
        IoResult r = transport_write(conn, lw_buf_head(&conn->out), lw_buf_len(&conn->out), &n);
        if (r == IO_OK) {
            lw_buf_consume(&conn->out, n);
            conn->server->counters.bytes_out += n;
            conn->out_moved_ms = lw_loop_now_ms(conn->server->loop);
        } else if (r == IO_AGAIN) {
            break;
        } else {
            conn->io_error = TRUE;
        }
    }
    if (conn->io_error) {
        /* Nothing more can be written; close unless an exchange must first
         * learn that its client is gone (conn_close tells it). */
        lw_buf_reset(&conn->out);
        if (conn->exchange == NULL)
            conn_close(conn);
        else
            lw_timer_start(conn->server->loop, &conn->next_timer, 0, on_deferred_close, conn);
        return;
    }
    if (conn->state == CONN_CLOSING && lw_buf_len(&conn->out) == 0) {
        conn_linger(conn);
        return;
    }
    update_events(conn);
}

/* An idle keep-alive connection holds no buffers: with hundreds of them
 * open, their memory is most of the collector's (OpenSSL's own record
 * buffers are released likewise, SSL_MODE_RELEASE_BUFFERS). */
static void release_idle_buffers(LwConn *conn)
{
    if (conn->state == CONN_HEAD && lw_buf_len(&conn->in) == 0 && lw_buf_len(&conn->out) == 0 &&
        conn->exchange == NULL) {
        lw_buf_clear(&conn->in);
        lw_buf_clear(&conn->out);
    }
}

static void on_flush_timer(LwLoop *loop, void *data)
{
    LwConn *conn = data;
    conn_flush(conn);
    if (conn->state == CONN_CLOSED)
        return;
    /* A transfer paused for backpressure resumes once the queue is empty
     * (conn_io does the same after EPOLLOUT). */
    if (conn->exchange != NULL && lw_buf_len(&conn->out) == 0)
        lw_exchange_on_drain(conn->exchange);
    release_idle_buffers(conn);
}

/* Queues the bytes; they are written after the current batch of events
 * (a zero-delay timer), so what one iteration produces for a connection
 * (a response head and its body, a chunk's size line, data and CRLF, the
 * events of one upstream read) goes out as one TLS record and one write
 * instead of one each. */
void lw_conn_send(LwConn *conn, const void *data, size_t len)
{
    if (conn->io_error || conn->state == CONN_CLOSED)
        return;
    if (lw_buf_len(&conn->out) == 0)
        conn->out_moved_ms = lw_loop_now_ms(conn->server->loop);
    lw_buf_append(&conn->out, data, len);
    if (lw_buf_len(&conn->out) >= FLUSH_NOW_BYTES) {
        lw_timer_stop(conn->server->loop, &conn->flush_timer);
        conn_flush(conn);
    } else if (!lw_timer_is_armed(&conn->flush_timer)) {
        lw_timer_start(conn->server->loop, &conn->flush_timer, 0, on_flush_timer, conn);
    }
}

void lw_conn_flush_now(LwConn *conn)
{
    if (conn->io_error || conn->state == CONN_CLOSED || lw_buf_len(&conn->out) == 0)
        return;
    lw_timer_stop(conn->server->loop, &conn->flush_timer);
    conn_flush(conn); /* what the socket does not take waits for EPOLLOUT */
}

size_t lw_conn_pending(const LwConn *conn)
{
    return lw_buf_len(&conn->out);
}

guint64 lw_conn_unread_ms(const LwConn *conn)
{
    if (lw_buf_len(&conn->out) == 0)
        return 0;
    return lw_loop_now_ms(conn->server->loop) - conn->out_moved_ms;
}

/* ---- request reading ---- */

static void start_exchange(LwConn *conn)
{
    LwServer *server = conn->server;
    if (conn->upload) {
        conn->state = CONN_BODY; /* the exchange starts with its body still to come */
        arm_timer(conn, server->config->idle_timeout_ms);
    } else {
        conn->state = CONN_EXCHANGE;
        lw_timer_stop(server->loop, &conn->timer);
    }
    server->counters.requests_total++;
    server->counters.requests_active++;
    lw_heap_trim_activity(server);
    LwRequestHead *head = g_steal_pointer(&conn->head);
    char *body = g_steal_pointer(&conn->body);
    size_t body_len = conn->body_len;
    conn->body_len = conn->body_cap = 0;
    conn->exchange = lw_exchange_new(server, conn, conn->provider, head, body, body_len);
    if (conn->upload)
        lw_exchange_stream_body(conn->exchange,
                                conn->body_chunked ? -1 : (gint64)conn->upload_left);
    lw_exchange_start(conn->exchange);
}

/* A streamed body cannot be completed: the exchange answers (or cuts its
 * answer) and the connection closes. */
static void upload_failed(LwConn *conn, int status, const char *message)
{
    conn->server->counters.requests_bad++;
    g_debug("conn %" G_GUINT64_FORMAT ": streamed body failed: %s", conn->id, message);
    lw_exchange_upload_failed(conn->exchange, status, message);
}

/* Hands a streamed body on as it arrives. Returns TRUE when the body is
 * complete (the connection then waits for the answer), FALSE when more
 * input is needed, the upstream's queue is full (lw_conn_upload_room
 * reads on) or the request failed. */
static gboolean read_body_upload(LwConn *conn)
{
    for (;;) {
        if (conn->upload_ready > 0) {
            size_t n = lw_exchange_upload(conn->exchange, lw_buf_head(&conn->in),
                                          conn->upload_ready);
            lw_buf_consume(&conn->in, n);
            conn->upload_ready -= n;
            if (n > 0) /* progress: idle_timeout counts from here */
                arm_timer(conn, conn->server->config->idle_timeout_ms);
            if (conn->upload_ready > 0)
                return FALSE;
        }
        if (conn->upload_complete) {
            conn->upload = FALSE;
            conn->upload_complete = FALSE;
            conn->state = CONN_EXCHANGE;
            lw_timer_stop(conn->server->loop, &conn->timer);
            lw_exchange_upload_end(conn->exchange);
            return TRUE;
        }
        size_t len = lw_buf_len(&conn->in);
        if (len == 0)
            return FALSE;
        if (!conn->body_chunked) {
            conn->upload_ready = (size_t)MIN((guint64)len, conn->upload_left);
            conn->upload_left -= conn->upload_ready;
            conn->upload_complete = conn->upload_left == 0;
            continue;
        }
        ssize_t r = lw_http1_chunked_decode(&conn->chunked, lw_buf_head_mut(&conn->in), &len);
        if (r == LW_HTTP1_BAD_REQUEST) {
            upload_failed(conn, 400, "malformed chunked request body");
            return FALSE;
        }
        /* Decoded bytes are at the front; after the last chunk come the
         * `r` raw bytes of a pipelined request, and then stale input the
         * decoder moved (as in read_body). */
        conn->upload_complete = r != LW_HTTP1_INCOMPLETE;
        lw_buf_truncate(&conn->in, conn->upload_complete ? len + (size_t)r : len);
        conn->upload_ready = len;
        if (len == 0 && !conn->upload_complete)
            return FALSE;
    }
}

static gboolean body_append(LwConn *conn, const char *data, size_t len)
{
    if (len == 0) /* an empty chunked body: no buffer yet, and memcpy may not take NULL */
        return TRUE;
    if (conn->body_len + len > conn->body_cap) {
        size_t cap = MAX(conn->body_cap * 2, conn->body_len + len);
        if (!conn->body_chunked) /* no more than the body announced */
            cap = MIN(cap, (size_t)conn->head->req.content_length);
        conn->body = g_realloc(conn->body, cap);
        conn->body_cap = cap;
    }
    memcpy(conn->body + conn->body_len, data, len);
    conn->body_len += len;
    return TRUE;
}

/* Moves body bytes from the input buffer. Returns TRUE when the body is
 * complete (and the exchange started), FALSE when more input is needed or
 * the connection was answered with an error. */
static gboolean read_body(LwConn *conn)
{
    const LwConfig *config = conn->server->config;
    if (conn->upload)
        return read_body_upload(conn);
    if (!conn->body_chunked) {
        size_t want = conn->head->req.content_length - conn->body_len;
        size_t take = MIN(want, lw_buf_len(&conn->in));
        body_append(conn, lw_buf_head(&conn->in), take);
        lw_buf_consume(&conn->in, take);
        if (conn->body_len < conn->head->req.content_length)
            return FALSE;
        start_exchange(conn);
        return TRUE;
    }
    size_t len = lw_buf_len(&conn->in);
    if (len == 0)
        return FALSE;
    ssize_t r = lw_http1_chunked_decode(&conn->chunked, lw_buf_head_mut(&conn->in), &len);
    if (r == LW_HTTP1_BAD_REQUEST) {
        send_error(conn, 400, "malformed chunked request body");
        return FALSE;
    }
    if (conn->body_len + len > config->max_body) {
        send_error(conn, 413, "the request body is larger than the collector's max_body");
        return FALSE;
    }
    body_append(conn, lw_buf_head(&conn->in), len);
    if (r == LW_HTTP1_INCOMPLETE) {
        lw_buf_consume(&conn->in, lw_buf_len(&conn->in));
        return FALSE;
    }
    /* Complete: the decoder left `r` raw bytes of the next request right
     * after the decoded ones; what follows them is stale input it moved. */
    lw_buf_truncate(&conn->in, len + (size_t)r);
    lw_buf_consume(&conn->in, len);
    start_exchange(conn);
    return TRUE;
}

static int status_for_parse_error(ssize_t r)
{
    switch (r) {
    case LW_HTTP1_HEAD_TOO_LARGE:
    case LW_HTTP1_TOO_MANY_HEADERS:
        return 431;
    case LW_HTTP1_BAD_VERSION:
        return 505;
    case LW_HTTP1_NOT_IMPLEMENTED:
        return 501;
    default:
        return 400;
    }
}

static const char *message_for_parse_error(ssize_t r)
{
    switch (r) {
    case LW_HTTP1_HEAD_TOO_LARGE:
        return "the request head is larger than the collector accepts";
    case LW_HTTP1_TOO_MANY_HEADERS:
        return "the request has more header fields than the collector accepts";
    case LW_HTTP1_BAD_VERSION:
        return "only HTTP/1.0 and HTTP/1.1 are supported";
    case LW_HTTP1_NOT_IMPLEMENTED:
        return "unsupported transfer coding";
    default:
        return "malformed HTTP request";
    }
}

/* Parses a head from the input buffer. Returns TRUE when a request is
 * complete enough to go on (head parsed; body state set up). */
static gboolean read_head(LwConn *conn)
{
    const LwConfig *config = conn->server->config;
    if (lw_buf_len(&conn->in) == 0)
        return FALSE;
    LwHttpHeader headers[config->max_headers];
    LwHttpRequest req = {.headers = headers, .max_headers = config->max_headers};
    ssize_t r = lw_http1_parse_request(lw_buf_head(&conn->in), lw_buf_len(&conn->in),
                                       conn->parse_last_len, config->max_head, &req);
    if (r == LW_HTTP1_INCOMPLETE) {
        if (conn->parse_last_len == 0)
            arm_timer(conn, config->header_timeout_ms); /* first bytes of a head */
        conn->parse_last_len = lw_buf_len(&conn->in);
        return FALSE;
    }
    conn->parse_last_len = 0;
    if (r < 0) {
        send_error(conn, status_for_parse_error(r), message_for_parse_error(r));
        return FALSE;
    }
    LwHttpTarget target;
    if (!lw_http1_split_target(req.target, req.target_len, &target)) {
        send_error(conn, 400, "the request target must be a path or an http(s) URL");
        return FALSE;
    }
    if (!lw_http1_path_is_normal(target.path, target.path_len)) {
        send_error(conn, 400,
                   "the request target must not hold a fragment, a \".\" or \"..\" segment or a "
                   "percent-encoded letter, digit or -._~");
        return FALSE;
    }
    if (is_websocket_upgrade(&req)) {
        /* Upgrade is hop-by-hop: dropped, the request would reach the
         * provider as a plain GET and fail there, obscurely. */
        send_error(conn, 501,
                   "llmwrap does not carry WebSocket connections (the Realtime and Live APIs); "
                   "their spend would not be seen");
        return FALSE;
    }
    if (target.authority != NULL && !is_for_this_provider(conn, &target)) {
        /* A proxy client (http_proxy set to the listen address) sends every
         * plain-HTTP call here, credentials included: only provider hosts
         * are forwarded (RFC 9110 §15.5.20). */
        g_autofree char *msg = g_strdup_printf(
            "llmwrap forwards only to LLM provider hosts, and %.*s is not one%s",
            (int)MIN(target.authority_len, 256), target.authority,
            conn->provider != NULL ? " served on this connection" : "");
        send_error(conn, 421, msg);
        return FALSE;
    }
    /* From here on the target is the path (which exchange completes with
     * "/" when an absolute URL had none), and an absolute URL's authority
     * is the Host (RFC 9112 §3.2.2). */
    req.target = target.path;
    req.target_len = target.path_len;
    if (target.authority != NULL) {
        req.host = target.authority;
        req.host_len = target.authority_len;
    }
    conn->head = lw_request_head_copy(lw_buf_head(&conn->in), (size_t)r, &req);
    lw_buf_consume(&conn->in, (size_t)r);
    conn->keep_alive = req.keep_alive;
    conn->body_len = 0;

    /* max_body caps what is buffered; a streamed body is never whole in
     * memory, and the provider has its own limits (files of 512 MB). */
    conn->upload = lw_exchange_body_streams(conn->server, conn->provider, conn->head);
    if (!conn->upload && req.body_kind == LW_HTTP1_BODY_LENGTH &&
        req.content_length > config->max_body) {
        send_error(conn, 413, "the request body is larger than the collector's max_body");
        return FALSE;
    }
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    gboolean expect = req.expect_continue && req.body_kind != LW_HTTP1_BODY_NONE;
    if (expect && !conn->upload)
        lw_conn_send(conn, cont, sizeof cont - 1);
    if (req.body_kind == LW_HTTP1_BODY_NONE ||
        (req.body_kind == LW_HTTP1_BODY_LENGTH && req.content_length == 0)) {
        start_exchange(conn);
        return TRUE;
    }
    conn->body_chunked = req.body_kind == LW_HTTP1_BODY_CHUNKED;
    if (conn->body_chunked)
        lw_http1_chunked_init(&conn->chunked);
    if (conn->upload) {
        conn->upload_left = conn->body_chunked ? 0 : req.content_length;
        conn->upload_ready = 0;
        conn->upload_complete = FALSE;
        start_exchange(conn); /* may answer (a refusal) and close at once */
        /* A client waiting for the go-ahead gets it only if the body is
         * still wanted: a refused upload is then never sent at all. */
        if (expect && conn->upload && conn->state == CONN_BODY)
            lw_conn_send(conn, cont, sizeof cont - 1);
        return TRUE;
    }
    if (!conn->body_chunked) {
        conn->body_cap = (size_t)MIN(req.content_length, BODY_PREALLOC);
        conn->body = g_malloc(MAX(conn->body_cap, 1));
    }
    conn->state = CONN_BODY;
    arm_timer(conn, config->idle_timeout_ms);
    return TRUE;
}

static void process_input(LwConn *conn)
{
    for (;;) {
        if (conn->state == CONN_CLOSED)
            return;
        if (conn->state == CONN_HEAD) {
            if (!read_head(conn))
                return;
        } else if (conn->state == CONN_BODY) {
            if (!read_body(conn))
                return;
        } else {
            return;
        }
    }
}

/* ---- TLS and sniffing ---- */

static void do_handshake(LwConn *conn)
{
    ERR_clear_error();
    int r = SSL_do_handshake(conn->ssl);
    if (r == 1) {
        const LwProvider *p = lw_tls_provider(conn->ssl);
        if (p != NULL)
            conn->provider = p;
        conn->state = CONN_HEAD;
        arm_timer(conn, conn->server->config->idle_timeout_ms);
        update_events(conn);
        return;
    }
    int err = SSL_get_error(conn->ssl, r);
    if (err == SSL_ERROR_WANT_READ) {
        lw_loop_set_events(conn->server->loop, conn->fd, EPOLLIN);
        return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        lw_loop_set_events(conn->server->loop, conn->fd, EPOLLOUT);
        return;
    }
    char detail[256] = "";
    unsigned long e = ERR_peek_error();
    if (e != 0)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    conn->server->counters.connections_rejected++;
    g_debug("conn %" G_GUINT64_FORMAT ": TLS handshake failed: %s", conn->id,
            detail[0] ? detail : "connection closed");
    conn->io_error = TRUE;
    conn_close(conn);
}

static void do_sniff(LwConn *conn)
{
    unsigned char first;
    ssize_t n = recv(conn->fd, &first, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(conn);
        return;
    }
    /* The shim sends the attribution message before the program can
     * write this byte: claim it now, while it is fresh, rather than at the
     * first request, which may come after a long idle (keep-alive). But a
     * TCP Fast Open client's first bytes travel with its connect, before
     * the shim can send the message: the first request looks again. */
    claim_attribution(conn, FALSE);
    if (first == 0x16) {
        g_autoptr(GError) error = NULL;
        conn->ssl = lw_tls_new_ssl(conn->server->tls, conn->fd, conn->provider, &error);
        if (conn->ssl == NULL) {
            g_warning("conn %" G_GUINT64_FORMAT ": %s", conn->id, error->message);
            conn_close(conn);
            return;
        }
        conn->state = CONN_HANDSHAKE;
        do_handshake(conn);
        return;
    }
    conn->state = CONN_HEAD;
    update_events(conn);
    conn_io(conn->server->loop, conn->fd, EPOLLIN, conn);
}

/* ---- event dispatch ---- */

/* Reads what the transport has; *ret_any tells whether it had anything.
 * Returns FALSE if the connection was closed. */
static gboolean fill_input(LwConn *conn, gboolean *ret_any)
{
    size_t in_cap = conn->server->config->max_head + IN_SLACK;
    *ret_any = FALSE;
    for (;;) {
        if (lw_buf_len(&conn->in) >= in_cap)
            return TRUE;
        /* Always a whole TLS record's worth, even past the cap: a shorter
         * read would leave the rest of the record decrypted inside
         * OpenSSL, off the socket, where epoll never reports it (a
         * pipelining client would stall once it has sent everything). */
        static char scratch[READ_CHUNK];
        G_STATIC_ASSERT(READ_CHUNK >= SSL3_RT_MAX_PLAIN_LENGTH);
        size_t n = 0;
        IoResult r = transport_read(conn, scratch, sizeof scratch, &n);
        if (r == IO_OK) {
            *ret_any = TRUE;
            lw_buf_append(&conn->in, scratch, n);
            conn->server->counters.bytes_in += n;
            if (conn->state == CONN_BODY)
                arm_timer(conn, conn->server->config->idle_timeout_ms);
            continue;
        }
        if (r == IO_AGAIN)
            return TRUE;
        /* EOF or error: the client is gone. A half-received request is
         * dropped; an exchange in flight is told (it records what it has). */
        if (r == IO_ERROR)
            conn->io_error = TRUE;
        conn_close(conn);
        return FALSE;
    }
}

/* Called when a read left a request incomplete. Many clients (httpx, so
 * the OpenAI and Anthropic Python SDKs; anything without TCP_NODELAY)
 * write a request's head and body apart, and Nagle holds the body until
 * the head is acknowledged. Linux delays that ACK by 40 ms when the
 * reader has nothing to send, so each such request would wait 40 ms on
 * loopback: acknowledge now instead. A client that sends its request in
 * one piece never gets here. */
static void ack_now(LwConn *conn)
{
    int one = 1;
    setsockopt(conn->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

static void conn_io(LwLoop *loop, int fd, uint32_t events, void *data)
{
    LwConn *conn = data;
    switch (conn->state) {
    case CONN_SNIFF:
        do_sniff(conn);
        return;
    case CONN_HANDSHAKE:
        do_handshake(conn);
        return;
    case CONN_LINGER:
        do_linger(conn);
        return;
    case CONN_CLOSED:
        return;
    default:
        break;
    }
    if ((events & EPOLLOUT) || conn->ssl_write_wants_read) {
        conn_flush(conn);
        if (conn->state == CONN_CLOSED)
            return;
    }
    if (conn->state == CONN_CLOSING) {
        if (events & (EPOLLERR | EPOLLHUP))
            conn_close(conn);
        return;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) || conn->ssl_read_wants_write) {
        gboolean any;
        if (!fill_input(conn, &any))
            return;
        process_input(conn);
        if (conn->state == CONN_CLOSED)
            return;
        if (any && (conn->state == CONN_BODY ||
                    (conn->state == CONN_HEAD && lw_buf_len(&conn->in) > 0)))
            ack_now(conn);
        if (conn->state != CONN_CLOSING)
            update_events(conn);
    }
    if (conn->exchange != NULL && lw_buf_len(&conn->out) == 0)
        lw_exchange_on_drain(conn->exchange);
    release_idle_buffers(conn);
}

/* ---- for the exchange ---- */

static void on_next_request(LwLoop *loop, void *data)
{
    LwConn *conn = data;
    process_input(conn);
    if (conn->state == CONN_HEAD || conn->state == CONN_BODY)
        update_events(conn);
}

void lw_conn_response_done(LwConn *conn, gboolean keep_alive)
{
    LwServer *server = conn->server;
    LwExchange *ex = conn->exchange;
    conn->exchange = NULL;
    server->counters.requests_active--;
    lw_exchange_free(ex);

    /* An answer that came before the whole streamed body (said
     * "connection: close"): the rest is not read, only drained. */
    gboolean body_unread = conn->upload;
    conn->upload = FALSE;
    if (!keep_alive || !conn->keep_alive || conn->close_after || server->draining ||
        conn->io_error || body_unread) {
        conn_close_after_flush(conn);
        return;
    }
    conn->state = CONN_HEAD;
    arm_timer(conn, server->config->idle_timeout_ms);
    /* Start a pipelined request on the next iteration: the exchange that
     * called us is still on the stack. */
    lw_timer_start(server->loop, &conn->next_timer, 0, on_next_request, conn);
    update_events(conn);
}

void lw_conn_abort(LwConn *conn)
{
    /* A close-delimited answer (HTTP/1.0) ends at close_notify: without
     * it the client can tell the cut (RFC 9112 §9.8). */
    conn->cut = TRUE;
    conn->upload = FALSE;
    LwExchange *ex = conn->exchange;
    conn->exchange = NULL;
    conn->server->counters.requests_active--;
    lw_exchange_free(ex);
    /* What was produced still goes out (the client sees how far the answer
     * got); the close without a final chunk then marks it cut. */
    lw_timer_stop(conn->server->loop, &conn->flush_timer);
    conn_close_after_flush(conn);
}

void lw_conn_upload_room(LwConn *conn)
{
    if (conn->state != CONN_BODY || !conn->upload)
        return;
    process_input(conn);
    if (conn->state == CONN_BODY || conn->state == CONN_EXCHANGE)
        update_events(conn); /* reading resumes once `in` is below its cap */
}

const LwAttribution *lw_conn_attribution(LwConn *conn)
{
    claim_attribution(conn, TRUE);
    return conn->have_attribution ? &conn->attribution : NULL;
}

const LwProvider *lw_conn_provider(const LwConn *conn)
{
    return conn->provider;
}

guint16 lw_conn_peer_port(const LwConn *conn)
{
    return conn->have_key ? conn->key.client_port : 0;
}

gboolean lw_conn_is_tls(const LwConn *conn)
{
    return conn->ssl != NULL;
}

guint64 lw_conn_id(const LwConn *conn)
{
    return conn->id;
}

void lw_conn_accept(LwServer *server, int fd, const LwProvider *provider)
{
    LwConn *conn = g_new0(LwConn, 1);
    conn->server = server;
    conn->id = next_conn_id++;
    conn->fd = fd;
    conn->provider = provider;
    conn->state = CONN_SNIFF;
    lw_timer_init(&conn->timer);
    lw_timer_init(&conn->next_timer);
    lw_timer_init(&conn->flush_timer);
    conn->link.data = conn;
    g_queue_push_tail_link(&server->conns, &conn->link);
    server->counters.connections_accepted++;
    server->counters.connections_active++;
    lw_heap_trim_activity(server);

    conn->have_key = lw_attrib_key_from_socket(fd, &conn->key);

    g_autoptr(GError) error = NULL;
    if (!lw_loop_watch(server->loop, fd, EPOLLIN | EPOLLRDHUP, conn_io, conn, &error)) {
        g_warning("conn: %s", error->message);
        conn_close(conn);
        return;
    }
    arm_timer(conn, server->config->header_timeout_ms);
}

void lw_conn_drain_all(LwServer *server)
{
    GList *l = server->conns.head;
    while (l != NULL) {
        LwConn *conn = l->data;
        l = l->next;
        if (conn->exchange != NULL)
            conn->close_after = TRUE;
        else if (conn->state != CONN_CLOSING)
            conn_close(conn);
    }
}

void lw_conn_close_all(LwServer *server)
{
    while (server->conns.head != NULL)
        conn_close(server->conns.head->data);
}
