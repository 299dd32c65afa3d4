/* llm-sim.c - the simulated LLM provider: event loop, connections, framing.
 *
 * One thread, one epoll set, non-blocking OpenSSL. A connection reads
 * requests into a reused buffer, parses them with the project's HTTP/1
 * parser, renders the whole answer up front (sim-render.c) and then sends it
 * segment by segment, so delays, drops and stalls are only a matter of when
 * (and whether) the next segment goes out. Timers live in a binary min-heap.
 */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <zlib.h>

#define MAX_HEAD        (64 * 1024)
#define MAX_HEADERS     100
#define MAX_BODY        (32u * 1024 * 1024)
#define MAX_CONNS       4096
#define MAX_OUT_BACKLOG (1024 * 1024) /* stop parsing pipelined requests above this */
#define RING_SIZE       1000
#define MAX_PATHS       1000 /* distinct by_path keys */
#define READ_CHUNK      16384
#define LINGER_MS       2000

/* ---- statistics and the request ring ---- */

typedef struct {
    uint64_t seq;
    char method[8];
    char path[256];
    char query[128];
    char user_agent[128];
    char retry_count[16];
    char content_type[64];
    char accept_encoding[64];
    char host[128];
    char model[SIM_MODEL_MAX + 1];
    size_t body_len;
    int status;
    bool stream, include_usage;
    SimApi api;
    SimFlavor flavor;
    SimFault fault;
} Record;

static struct {
    uint64_t requests, retries, active, seq;
    uint64_t uploads_completed, uploads_aborted, upload_aborted_bytes;
    GHashTable *by_path; /* char* -> guint64* */
    Record *ring;
    size_t ring_next, ring_count;
    FILE *log;
} stats;

/* ---- connections ---- */

typedef enum {
    C_HANDSHAKE,
    C_READING,    /* idle or receiving a request */
    C_RESPONDING, /* a response is being sent (maybe waiting on a timer) */
    C_STALLED,    /* fault=stall: head sent, waiting for the client to leave */
    C_CLOSING,    /* flushing the last bytes, then close */
    C_LINGER,     /* FIN sent; draining input until the peer closes */
} ConnState;

typedef enum {
    T_NONE,
    T_HEAD,    /* delay_ms before the head */
    T_SEGMENT, /* chunk_delay_ms before the next segment */
    T_LINGER,  /* bound on C_LINGER */
} TimerKind;

typedef struct Conn Conn;
struct Conn {
    Conn *prev, *next; /* all connections, for the orderly exit */
    int fd;
    SSL *ssl;
    ConnState state;
    uint32_t events; /* current epoll interest */
    bool write_blocked_on_read;

    GString *in;
    size_t last_len;
    LwChunkedDecoder chunked;
    size_t chunked_done; /* decoded body bytes kept after the head */
    bool sent_continue;

    /* A file upload (POST /v1/files, /v1/uploads/{id}/parts): its body is
     * hashed as it arrives, never held, whatever its size. */
    bool upload, upload_chunked;
    uint64_t upload_left, upload_bytes;
    EVP_MD_CTX *upload_md;

    GString *out;
    size_t out_off;
    bool abort_after_flush; /* close without close_notify (faults) */
    bool rst;               /* fault=reset: close with a TCP RST */

    /* The response in flight. */
    SimRequest req;
    SimResponse resp;
    guint next_seg, seg_limit;
    bool keep_alive, http10, chunked_out, gzip_out, active_counted;
    z_stream *z;
    GString *scratch;

    TimerKind timer;
    uint64_t deadline_ms;
    int heap_idx;
};

static Conn *conns;

static int epfd = -1;
static int n_conns;
static SSL_CTX *ssl_ctx;

/* epoll user data for the non-connection descriptors */
static char LISTENER_TAG, SIGNAL_TAG;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- timer heap ---- */

static GPtrArray *heap;

static void heap_swap(guint a, guint b)
{
    Conn *ca = g_ptr_array_index(heap, a), *cb = g_ptr_array_index(heap, b);
    heap->pdata[a] = cb;
    heap->pdata[b] = ca;
    cb->heap_idx = (int)a;
    ca->heap_idx = (int)b;
}

static void heap_up(guint i)
{
    while (i > 0) {
        guint p = (i - 1) / 2;
        if (((Conn *)heap->pdata[p])->deadline_ms <= ((Conn *)heap->pdata[i])->deadline_ms)
            break;
        heap_swap(i, p);
        i = p;
    }
}

static void heap_down(guint i)
{
    for (;;) {
        guint l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap->len &&
            ((Conn *)heap->pdata[l])->deadline_ms < ((Conn *)heap->pdata[m])->deadline_ms)
            m = l;
        if (r < heap->len &&
            ((Conn *)heap->pdata[r])->deadline_ms < ((Conn *)heap->pdata[m])->deadline_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static void timer_cancel(Conn *c)
{
    if (c->heap_idx < 0)
        return;
    guint i = (guint)c->heap_idx, last = heap->len - 1;
    if (i != last)
        heap_swap(i, last);
    g_ptr_array_set_size(heap, last);
    c->heap_idx = -1;
    c->timer = T_NONE;
    if (i < heap->len) {
        heap_up(i);
        heap_down(i);
    }
}

static void timer_set(Conn *c, TimerKind kind, int64_t delay_ms)
{
    timer_cancel(c);
    c->timer = kind;
    c->deadline_ms = now_ms() + (uint64_t)delay_ms;
    c->heap_idx = (int)heap->len;
    g_ptr_array_add(heap, c);
    heap_up(heap->len - 1);
}

/* ---- epoll interest ---- */

static void set_events(Conn *c, uint32_t ev)
{
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* ---- connection lifetime ---- */

static void conn_free(Conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    timer_cancel(c);
    if (c->active_counted)
        stats.active--;
    if (c->upload) {
        stats.uploads_aborted++;
        stats.upload_aborted_bytes = c->upload_bytes;
    }
    EVP_MD_CTX_free(c->upload_md);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    SSL_free(c->ssl);
    close(c->fd);
    g_string_free(c->in, TRUE);
    g_string_free(c->out, TRUE);
    if (c->scratch != NULL)
        g_string_free(c->scratch, TRUE);
    if (c->z != NULL) {
        deflateEnd(c->z);
        g_free(c->z);
    }
    sim_response_free(&c->resp);
    g_free(c);
    n_conns--;
}

/* Ends the connection with a TCP RST (fault=reset). */
static void conn_reset(Conn *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    conn_free(c);
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (n_conns >= MAX_CONNS) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Conn *c = g_new0(Conn, 1);
        c->fd = fd;
        c->ssl = SSL_new(ssl_ctx);
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
        c->state = C_HANDSHAKE;
        c->in = g_string_sized_new(READ_CHUNK);
        c->out = g_string_sized_new(READ_CHUNK);
        c->heap_idx = -1;
        sim_response_init(&c->resp);
        c->events = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
            SSL_free(c->ssl);
            close(fd);
            g_string_free(c->in, TRUE);
            g_string_free(c->out, TRUE);
            sim_response_free(&c->resp);
            g_free(c);
            continue;
        }
        c->next = conns;
        if (conns != NULL)
            conns->prev = c;
        conns = c;
        n_conns++;
    }
}

/* ---- output ---- */

/* Writes pending output. Returns false when the connection was freed. */
static bool flush_out(Conn *c)
{
    if (c->rst) {
        conn_reset(c);
        return false;
    }
    while (c->out_off < c->out->len) {
        size_t n = MIN(c->out->len - c->out_off, (size_t)INT_MAX);
        int w = SSL_write(c->ssl, c->out->str + c->out_off, (int)n);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        /* The error queue is cleared after each failure instead of before
         * each call: ERR_clear_error is measurable on the hot path. */
        int err = SSL_get_error(c->ssl, w);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_WRITE) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return true;
        }
        if (err == SSL_ERROR_WANT_READ) {
            c->write_blocked_on_read = true;
            return true;
        }
        conn_free(c);
        return false;
    }
    g_string_truncate(c->out, 0);
    c->out_off = 0;
    c->write_blocked_on_read = false;
    set_events(c, EPOLLIN);
    if (c->abort_after_flush) {
        conn_free(c);
        return false;
    }
    if (c->state == C_CLOSING) {
        /* Closing with unread request bytes in the socket would make the
         * kernel send a RST that can destroy the answer before the client
         * reads it (e.g. a 400 for a request whose body we never read), so
         * half-close and drain for a bounded time instead. */
        SSL_shutdown(c->ssl);
        shutdown(c->fd, SHUT_WR);
        c->state = C_LINGER;
        timer_set(c, T_LINGER, LINGER_MS);
    }
    return true;
}

/* Decimal digits of v at buf (no NUL); returns the length. printf is
 * measurable at this request rate. */
static gssize format_u64(char buf[24], uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    memcpy(buf, tmp + i, sizeof tmp - (size_t)i);
    return (gssize)(sizeof tmp - (size_t)i);
}

static void append_head(Conn *c, int status, const char *content_type, GString *extra,
                        int64_t content_length)
{
    GString *o = c->out;
    char num[24];
    g_string_append(o, "HTTP/1.1 ");
    g_string_append_len(o, num, format_u64(num, (uint64_t)status));
    g_string_append_c(o, ' ');
    g_string_append(o, lw_http1_reason(status));
    g_string_append(o, "\r\nserver: llm-sim\r\ncontent-type: ");
    g_string_append(o, content_type);
    g_string_append(o, "\r\n");
    if (extra != NULL)
        g_string_append_len(o, extra->str, (gssize)extra->len);
    if (content_length >= 0) {
        g_string_append(o, "content-length: ");
        g_string_append_len(o, num, format_u64(num, (uint64_t)content_length));
        g_string_append(o, "\r\n");
    }
    if (!c->keep_alive)
        g_string_append(o, "connection: close\r\n");
    g_string_append(o, "\r\n");
}

/* A small complete response outside the provider shapes (/_sim, errors
 * before a request is understood). */
static void simple_response(Conn *c, int status, const char *content_type, const char *body,
                            size_t len)
{
    append_head(c, status, content_type, NULL, (int64_t)len);
    g_string_append_len(c->out, body, (gssize)len);
}

/* ---- gzip ---- */

static bool gzip_begin(Conn *c)
{
    if (c->z == NULL) {
        c->z = g_new0(z_stream, 1);
        if (deflateInit2(c->z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            g_free(c->z);
            c->z = NULL;
            return false;
        }
    } else {
        deflateReset(c->z);
    }
    if (c->scratch == NULL)
        c->scratch = g_string_sized_new(READ_CHUNK);
    return true;
}

/* Compresses data into c->scratch (replacing it); flush is Z_SYNC_FLUSH for
 * a stream event (the client can decode it at once) or Z_FINISH. */
static void gzip_chunk(Conn *c, const char *data, size_t len, int flush)
{
    z_stream *z = c->z;
    g_string_truncate(c->scratch, 0);
    z->next_in = (Bytef *)data;
    z->avail_in = (uInt)len;
    for (;;) {
        size_t room = deflateBound(z, (uLong)len) + 64;
        size_t old = c->scratch->len;
        g_string_set_size(c->scratch, old + room);
        z->next_out = (Bytef *)c->scratch->str + old;
        z->avail_out = (uInt)room;
        int rc = deflate(z, flush);
        g_string_set_size(c->scratch, old + room - z->avail_out);
        if (rc == Z_STREAM_END || (z->avail_out != 0 && z->avail_in == 0) || rc == Z_STREAM_ERROR)
            break;
    }
}

/* ---- response sending ---- */

static void conn_run(Conn *c);

static void finish_response(Conn *c)
{
    timer_cancel(c);
    if (c->active_counted) {
        stats.active--;
        c->active_counted = false;
    }
    if (c->http10 && c->resp.is_stream) {
        c->state = C_CLOSING; /* close-delimited body */
        return;
    }
    c->state = c->keep_alive ? C_READING : C_CLOSING;
}

static void append_segment(Conn *c, guint i)
{
    GArray *ends = c->resp.ends;
    guint32 start = i == 0 ? 0 : g_array_index(ends, guint32, i - 1);
    guint32 end = g_array_index(ends, guint32, i);
    const char *data = c->resp.body->str + start;
    size_t len = end - start;
    if (c->gzip_out) {
        gzip_chunk(c, data, len, i + 1 == ends->len ? Z_FINISH : Z_SYNC_FLUSH);
        data = c->scratch->str;
        len = c->scratch->len;
    }
    if (len == 0)
        return;
    if (c->chunked_out) {
        char size_line[LW_HTTP1_CHUNK_HEAD_MAX];
        g_string_append_len(c->out, size_line, (gssize)lw_http1_chunk_head(size_line, len));
    }
    g_string_append_len(c->out, data, (gssize)len);
    if (c->chunked_out)
        g_string_append(c->out, "\r\n");
}

/* Sends segments until the end, a chunk delay or the drop point. */
static void send_segments(Conn *c)
{
    guint n = c->resp.ends->len;
    while (c->next_seg < n) {
        if (c->next_seg >= c->seg_limit) {
            c->abort_after_flush = true; /* fault=drop: no terminator */
            return;
        }
        append_segment(c, c->next_seg++);
        int64_t delay = c->req.d.chunk_delay_ms;
        if (c->next_seg < n && delay > 0) {
            timer_set(c, T_SEGMENT, delay);
            return;
        }
    }
    if (c->chunked_out)
        g_string_append(c->out, "0\r\n\r\n");
    finish_response(c);
}

static bool accepts_gzip(const LwHttpRequest *h)
{
    const LwHttpHeader *ae = lw_http1_find_header(h, "accept-encoding");
    if (ae == NULL)
        return false;
    const char *v = ae->value, *end = ae->value + ae->value_len;
    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *tok_end = comma != NULL ? comma : end;
        while (v < tok_end && (*v == ' ' || *v == '\t'))
            v++;
        size_t tl = (size_t)(tok_end - v);
        if ((tl >= 4 && g_ascii_strncasecmp(v, "gzip", 4) == 0 &&
             (tl == 4 || v[4] == ';' || v[4] == ' ')) ||
            (tl >= 1 && v[0] == '*')) {
            const char *q = g_strstr_len(v, (gssize)tl, "q=0");
            bool zero = q != NULL && (q + 3 == tok_end || q[3] != '.' ||
                                      strspn(q + 4, "0") >= (size_t)(tok_end - q - 4));
            if (!zero)
                return true;
        }
        v = tok_end + 1;
    }
    return false;
}

/* Sends the head (and everything that follows it without a delay). */
static void send_head(Conn *c)
{
    SimResponse *r = &c->resp;
    const SimDirectives *d = &c->req.d;
    if (d->fault == SIM_FAULT_GARBAGE) {
        static const char garbage[] = "\x16\x03\xffSIM GARBAGE \x00\x01\x02 not http\r\n\r\n";
        g_string_append_len(c->out, garbage, sizeof garbage - 1);
        c->abort_after_flush = true;
        return;
    }
    GString *extra = r->headers;
    if (r->retry_after >= 0)
        g_string_append_printf(extra, "retry-after: %" G_GINT64_FORMAT "\r\n", r->retry_after);
    if (c->gzip_out)
        g_string_append(extra, "content-encoding: gzip\r\nvary: accept-encoding\r\n");

    if (!r->is_stream) {
        const char *body = r->body->str;
        size_t len = r->body->len;
        if (c->gzip_out) {
            gzip_chunk(c, body, len, Z_FINISH);
            body = c->scratch->str;
            len = c->scratch->len;
        }
        append_head(c, r->status, r->content_type, extra, (int64_t)len);
        if (d->fault == SIM_FAULT_STALL) {
            c->state = C_STALLED;
            return;
        }
        if (d->fault == SIM_FAULT_DROP) {
            g_string_append_len(c->out, body, (gssize)(len / 2));
            c->abort_after_flush = true;
            return;
        }
        g_string_append_len(c->out, body, (gssize)len);
        finish_response(c);
        return;
    }

    c->chunked_out = !c->http10;
    g_string_append(extra, "cache-control: no-cache\r\n");
    if (c->chunked_out)
        g_string_append(extra, "transfer-encoding: chunked\r\n");
    else
        c->keep_alive = false;
    append_head(c, r->status, r->content_type, extra, -1);
    if (d->fault == SIM_FAULT_STALL) {
        c->state = C_STALLED;
        return;
    }
    send_segments(c);
}

static void on_timer(Conn *c)
{
    TimerKind kind = c->timer;
    c->timer = T_NONE;
    if (kind == T_LINGER) {
        conn_free(c);
        return;
    }
    if (kind == T_HEAD)
        send_head(c);
    else if (kind == T_SEGMENT)
        send_segments(c);
    conn_run(c);
}

/* ---- requests ---- */

static void copy_field(char *dst, size_t cap, const char *v, size_t len)
{
    size_t n = MIN(len, cap - 1);
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void copy_header(char *dst, size_t cap, const LwHttpRequest *h, const char *name)
{
    const LwHttpHeader *f = lw_http1_find_header(h, name);
    if (f != NULL)
        copy_field(dst, cap, f->value, f->value_len);
    else
        dst[0] = '\0';
}

/* The query string without credentials: every key= parameter is dropped. */
static void redact_query(char *dst, size_t cap, const char *q, size_t len)
{
    size_t o = 0;
    const char *end = q + len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp != NULL ? amp : end;
        size_t pl = (size_t)(pe - q);
        if (!(pl >= 4 && memcmp(q, "key=", 4) == 0) && pl > 0 && o + pl + 2 < cap) {
            if (o > 0)
                dst[o++] = '&';
            memcpy(dst + o, q, pl);
            o += pl;
        }
        q = pe + 1;
    }
    dst[o] = '\0';
}

static bool query_has(const char *q, size_t len, const char *param)
{
    size_t pl = strlen(param);
    const char *end = q + len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp != NULL ? amp : end;
        if ((size_t)(pe - q) >= pl && memcmp(q, param, pl) == 0)
            return true;
        q = pe + 1;
    }
    return false;
}

/* Counters are allocated once per distinct path, never per request. */
static void count_path(const char *path)
{
    guint64 *n = g_hash_table_lookup(stats.by_path, path);
    if (n == NULL && g_hash_table_size(stats.by_path) >= MAX_PATHS) {
        path = "(other)";
        n = g_hash_table_lookup(stats.by_path, path);
    }
    if (n == NULL) {
        n = g_new0(guint64, 1);
        g_hash_table_insert(stats.by_path, g_strdup(path), n);
    }
    (*n)++;
}

static const char *api_name(SimApi api)
{
    static const char *const names[] = {
        "none",        "chat",     "completions",  "responses",       "responses_input_tokens",
        "embeddings",  "messages", "count_tokens", "generateContent", "streamGenerateContent",
        "countTokens",
    };
    return (unsigned)api < G_N_ELEMENTS(names) ? names[api] : "none";
}

static const char *fault_name(SimFault f)
{
    static const char *const names[] = {"none", "503", "429", "drop", "reset", "garbage", "stall"};
    return (unsigned)f < G_N_ELEMENTS(names) ? names[f] : "none";
}

static void json_field_str(GString *s, const char *name, const char *v)
{
    g_string_append_printf(s, ",\"%s\":", name);
    sim_append_json_str(s, v, strlen(v));
}

static void stats_json(GString *s)
{
    g_string_append_printf(s,
                           "{\"requests\":%" G_GUINT64_FORMAT ",\"retries_seen\":%" G_GUINT64_FORMAT
                           ",\"active\":%" G_GUINT64_FORMAT ",\"uploads\":{\"completed\":%"
                           G_GUINT64_FORMAT ",\"aborted\":%" G_GUINT64_FORMAT
                           ",\"aborted_bytes\":%" G_GUINT64_FORMAT "},\"by_path\":{",
                           stats.requests, stats.retries, stats.active, stats.uploads_completed,
                           stats.uploads_aborted, stats.upload_aborted_bytes);
    GHashTableIter it;
    gpointer k, v;
    bool first = true;
    g_hash_table_iter_init(&it, stats.by_path);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (!first)
            g_string_append_c(s, ',');
        first = false;
        sim_append_json_str(s, k, strlen(k));
        g_string_append_printf(s, ":%" G_GUINT64_FORMAT, *(guint64 *)v);
    }
    g_string_append(s, "}}");
}

static void requests_json(GString *s, size_t limit)
{
    size_t n = MIN(limit, stats.ring_count);
    g_string_append_c(s, '[');
    for (size_t i = 0; i < n; i++) {
        size_t idx = (stats.ring_next + RING_SIZE - n + i) % RING_SIZE;
        const Record *r = &stats.ring[idx];
        if (i > 0)
            g_string_append_c(s, ',');
        g_string_append_printf(s, "{\"seq\":%" G_GUINT64_FORMAT, r->seq);
        json_field_str(s, "method", r->method);
        json_field_str(s, "path", r->path);
        json_field_str(s, "query", r->query);
        g_string_append(s, ",\"headers\":{");
        const struct {
            const char *name, *value;
        } hs[] = {
            {"user-agent", r->user_agent},
            {"x-stainless-retry-count", r->retry_count},
            {"content-type", r->content_type},
            {"accept-encoding", r->accept_encoding},
            {"host", r->host},
        };
        bool first = true;
        for (size_t j = 0; j < G_N_ELEMENTS(hs); j++) {
            if (hs[j].value[0] == '\0')
                continue;
            g_string_append_printf(s, "%s\"%s\":", first ? "" : ",", hs[j].name);
            sim_append_json_str(s, hs[j].value, strlen(hs[j].value));
            first = false;
        }
        g_string_append_printf(s, "},\"body_len\":%zu", r->body_len);
        json_field_str(s, "model", r->model);
        g_string_append_printf(s, ",\"stream\":%s,\"include_usage\":%s,\"status\":%d",
                               r->stream ? "true" : "false", r->include_usage ? "true" : "false",
                               r->status);
        json_field_str(s, "api", api_name(r->api));
        json_field_str(s, "flavor", sim_flavor_name(r->flavor));
        json_field_str(s, "fault", fault_name(r->fault));
        g_string_append_c(s, '}');
    }
    g_string_append_c(s, ']');
}

static void stats_reset(void)
{
    stats.requests = stats.retries = stats.seq = 0;
    stats.uploads_completed = stats.uploads_aborted = stats.upload_aborted_bytes = 0;
    g_hash_table_remove_all(stats.by_path);
    stats.ring_next = stats.ring_count = 0;
}

/* /healthz and /_sim/...; returns false when the path is not one of them. */
static bool handle_internal(Conn *c, const char *method, size_t mlen, const char *path, size_t plen,
                            const char *query, size_t qlen)
{
    bool get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    bool post = mlen == 4 && memcmp(method, "POST", 4) == 0;
#define PATH_IS(lit) (plen == sizeof(lit) - 1 && memcmp(path, lit, plen) == 0)
    if (PATH_IS("/healthz") && get) {
        simple_response(c, 200, "text/plain", "ok", 2);
        return true;
    }
    if (!(plen >= 6 && memcmp(path, "/_sim/", 6) == 0))
        return false;
    g_autoptr(GString) s = g_string_sized_new(1024);
    if (PATH_IS("/_sim/stats") && get) {
        stats_json(s);
    } else if (PATH_IS("/_sim/reset") && post) {
        stats_reset();
        g_string_append(s, "{\"ok\":true}");
    } else if (PATH_IS("/_sim/requests") && get) {
        size_t limit = RING_SIZE;
        const char *l = g_strstr_len(query, (gssize)qlen, "limit=");
        if (l != NULL) {
            guint64 v = g_ascii_strtoull(l + 6, NULL, 10);
            limit = (size_t)MIN(v, (guint64)RING_SIZE);
        }
        requests_json(s, limit);
    } else {
        g_string_append(s, "{\"error\":{\"message\":\"unknown /_sim endpoint\"}}");
        simple_response(c, 404, "application/json", s->str, s->len);
        return true;
    }
#undef PATH_IS
    simple_response(c, 200, "application/json", s->str, s->len);
    return true;
}

static bool has_auth(const LwHttpRequest *h, const char *query, size_t qlen)
{
    static const char *const names[] = {"authorization", "x-api-key", "x-goog-api-key", "api-key"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        const LwHttpHeader *f = lw_http1_find_header(h, names[i]);
        if (f != NULL && f->value_len > 0)
            return true;
    }
    return query_has(query, qlen, "key=");
}

static Record *record_request(const LwHttpRequest *h, const char *path, size_t plen,
                              const char *query, size_t qlen, const SimRequest *req)
{
    Record *r = &stats.ring[stats.ring_next];
    stats.ring_next = (stats.ring_next + 1) % RING_SIZE;
    stats.ring_count = MIN(stats.ring_count + 1, (size_t)RING_SIZE);
    r->seq = req->seq;
    copy_field(r->method, sizeof r->method, h->method, h->method_len);
    copy_field(r->path, sizeof r->path, path, plen);
    redact_query(r->query, sizeof r->query, query, qlen);
    copy_header(r->user_agent, sizeof r->user_agent, h, "user-agent");
    copy_header(r->retry_count, sizeof r->retry_count, h, "x-stainless-retry-count");
    copy_header(r->content_type, sizeof r->content_type, h, "content-type");
    copy_header(r->accept_encoding, sizeof r->accept_encoding, h, "accept-encoding");
    copy_header(r->host, sizeof r->host, h, "host");
    g_strlcpy(r->model, req->model, sizeof r->model);
    r->body_len = req->body_len;
    r->stream = req->stream;
    r->include_usage = req->include_usage;
    r->api = req->api;
    r->flavor = req->flavor;
    r->fault = req->d.fault;
    r->status = 200;
    return r;
}

/* Handles one complete request; the body is body[0..body_len). Everything
 * needed later is copied out: the input buffer is compacted afterwards. */
static void dispatch(Conn *c, const LwHttpRequest *h, const char *body, size_t body_len)
{
    const char *target = h->target;
    size_t tlen = h->target_len;
    const char *qmark = memchr(target, '?', tlen);
    size_t plen = qmark != NULL ? (size_t)(qmark - target) : tlen;
    const char *query = qmark != NULL ? qmark + 1 : "";
    size_t qlen = qmark != NULL ? tlen - plen - 1 : 0;

    c->keep_alive = h->keep_alive;
    c->http10 = h->minor_version == 0;
    if (handle_internal(c, h->method, h->method_len, target, plen, query, qlen))
        return;

    SimRequest *req = &c->req;
    memset(req, 0, sizeof *req);
    sim_directives_init(&req->d);
    req->seq = ++stats.seq;
    req->api = sim_route(target, plen, req->model);
    bool json_ok = sim_request_scan(req, body, body_len);
    const LwHttpHeader *xsim = lw_http1_find_header(h, "x-sim");
    if (xsim != NULL)
        sim_directives_apply(&req->d, xsim->value, xsim->value_len);
    if (req->api == SIM_API_GEMINI_GENERATE || req->api == SIM_API_GEMINI_STREAM ||
        req->api == SIM_API_GEMINI_COUNT) {
        req->flavor = SIM_FLAVOR_GEMINI;
        req->stream = req->api == SIM_API_GEMINI_STREAM;
        req->gemini_sse = query_has(query, qlen, "alt=sse");
    } else if (req->api == SIM_API_MESSAGES || req->api == SIM_API_MESSAGES_COUNT) {
        req->flavor = SIM_FLAVOR_ANTHROPIC;
    } else if (req->d.flavor >= 0 && req->d.flavor != SIM_FLAVOR_ANTHROPIC &&
               req->d.flavor != SIM_FLAVOR_GEMINI) {
        req->flavor = (SimFlavor)req->d.flavor;
    } else {
        req->flavor = sim_flavor_for_model(req->model);
    }
    if (req->api == SIM_API_EMBEDDINGS || req->api == SIM_API_RESPONSES_COUNT ||
        req->api == SIM_API_MESSAGES_COUNT || req->api == SIM_API_GEMINI_COUNT)
        req->stream = false;

    char path_key[256];
    copy_field(path_key, sizeof path_key, target, plen);
    stats.requests++;
    count_path(path_key);
    const LwHttpHeader *retry = lw_http1_find_header(h, "x-stainless-retry-count");
    if (retry != NULL && retry->value_len > 0 && !(retry->value_len == 1 && retry->value[0] == '0'))
        stats.retries++;
    Record *rec = record_request(h, target, plen, query, qlen, req);

    SimResponse *resp = &c->resp;
    const SimDirectives *d = &req->d;
    bool post = h->method_len == 4 && memcmp(h->method, "POST", 4) == 0;
    c->gzip_out = false;
    if (req->api == SIM_API_NONE) {
        sim_render_error(req, 404, "Unknown endpoint (llm-sim).", resp);
    } else if (!post) {
        sim_render_error(req, 405, "Method not allowed (llm-sim).", resp);
    } else if (!has_auth(h, query, qlen)) {
        sim_render_error(req, 401, "Missing API key (llm-sim).", resp);
    } else if (!json_ok) {
        sim_render_error(req, 400, "Request body is not valid JSON (llm-sim).", resp);
    } else if (d->fault == SIM_FAULT_503) {
        sim_render_error(req, 503, "Simulated overload (llm-sim).", resp);
    } else if (d->fault == SIM_FAULT_429) {
        sim_render_error(req, 429, "Simulated rate limit (llm-sim).", resp);
        resp->retry_after = d->retry_after >= 0 ? d->retry_after : 1;
    } else if (d->status >= 400) {
        sim_render_error(req, (int)d->status, "Simulated error status (llm-sim).", resp);
        if (d->status == 429 && d->retry_after >= 0)
            resp->retry_after = d->retry_after;
    } else {
        sim_render(req, resp);
        if (d->status >= 200)
            resp->status = (int)d->status;
        c->gzip_out = d->gzip && accepts_gzip(h) && gzip_begin(c);
    }
    rec->status = resp->status;
    if (stats.log != NULL)
        fprintf(stats.log, "%06" G_GUINT64_FORMAT " %.*s %.*s %d model=%s flavor=%s stream=%d\n",
                req->seq, (int)h->method_len, h->method, (int)MIN(plen, 200), target, resp->status,
                req->model, sim_flavor_name(req->flavor), req->stream);

    if (d->fault == SIM_FAULT_RESET) {
        c->state = C_CLOSING;
        c->rst = true;
        return;
    }
    c->state = C_RESPONDING;
    c->active_counted = true;
    stats.active++;
    c->next_seg = 0;
    c->seg_limit = d->fault == SIM_FAULT_DROP
                       ? resp->n_comments + (guint)(d->drop_after >= 0 ? d->drop_after : 2)
                       : G_MAXUINT;
    if (d->delay_ms > 0)
        timer_set(c, T_HEAD, d->delay_ms);
    else
        send_head(c);
}

static void reject(Conn *c, int status);

/* POST /v1/files or /v1/uploads/{id}/parts. */
static bool is_upload(const LwHttpRequest *h)
{
    size_t plen = h->target_len;
    const char *q = memchr(h->target, '?', plen);
    if (q != NULL)
        plen = (size_t)(q - h->target);
    if (!(h->method_len == 4 && memcmp(h->method, "POST", 4) == 0) ||
        h->body_kind == LW_HTTP1_BODY_NONE)
        return false;
    if (plen == 9 && memcmp(h->target, "/v1/files", 9) == 0)
        return true;
    return plen > 18 && memcmp(h->target, "/v1/uploads/", 12) == 0 &&
           memcmp(h->target + plen - 6, "/parts", 6) == 0;
}

/* The upload's answer: what arrived, so a test can compare it byte for
 * byte (its size and SHA-256). */
static void finish_upload(Conn *c)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(c->upload_md, md, &md_len);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < md_len; i++)
        g_snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * md_len] = '\0';
    char body[256];
    int n = g_snprintf(body, sizeof body,
                       "{\"id\":\"file-sim%" G_GUINT64_FORMAT "\",\"object\":\"file\",\"bytes\":%"
                       G_GUINT64_FORMAT ",\"sha256\":\"%s\"}",
                       stats.uploads_completed + 1, c->upload_bytes, hex);
    stats.uploads_completed++;
    c->upload = false;
    simple_response(c, 200, "application/json", body, (size_t)n);
}

/* Hashes and drops the upload's body bytes in c->in. Returns false when
 * more input is needed (or the connection is closing). */
static bool upload_consume(Conn *c)
{
    size_t len = c->in->len;
    if (!c->upload_chunked) {
        size_t take = (size_t)MIN((uint64_t)len, c->upload_left);
        EVP_DigestUpdate(c->upload_md, c->in->str, take);
        c->upload_bytes += take;
        c->upload_left -= take;
        g_string_erase(c->in, 0, (gssize)take);
        if (c->upload_left > 0)
            return false;
        finish_upload(c);
        return true;
    }
    ssize_t rc = lw_http1_chunked_decode(&c->chunked, c->in->str, &len);
    if (rc == LW_HTTP1_BAD_REQUEST) {
        c->upload = false;
        reject(c, 400);
        return false;
    }
    EVP_DigestUpdate(c->upload_md, c->in->str, len);
    c->upload_bytes += len;
    if (rc == LW_HTTP1_INCOMPLETE) {
        g_string_truncate(c->in, 0);
        return false;
    }
    g_string_truncate(c->in, len + (size_t)rc);
    g_string_erase(c->in, 0, (gssize)len);
    lw_http1_chunked_init(&c->chunked);
    finish_upload(c);
    return true;
}

/* Starts an upload once its head is parsed (head_len bytes of c->in).
 * An x-sim status=N (N >= 400) answers at once, before the body, and
 * closes (draining the rest): a provider refusing an upload early. */
static void start_upload(Conn *c, const LwHttpRequest *h, size_t head_len)
{
    stats.requests++;
    char path_key[256];
    const char *q = memchr(h->target, '?', h->target_len);
    copy_field(path_key, sizeof path_key, h->target,
               q != NULL ? (size_t)(q - h->target) : h->target_len);
    count_path(path_key);
    c->keep_alive = h->keep_alive;
    c->http10 = h->minor_version == 0;
    SimDirectives d;
    sim_directives_init(&d);
    const LwHttpHeader *xsim = lw_http1_find_header(h, "x-sim");
    if (xsim != NULL)
        sim_directives_apply(&d, xsim->value, xsim->value_len);
    g_string_erase(c->in, 0, (gssize)head_len);
    c->last_len = 0;
    if (d.status >= 400) {
        reject(c, (int)d.status);
        return;
    }
    if (h->expect_continue)
        g_string_append(c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    c->upload = true;
    c->upload_chunked = h->body_kind == LW_HTTP1_BODY_CHUNKED;
    c->upload_left = c->upload_chunked ? 0 : (uint64_t)h->content_length;
    c->upload_bytes = 0;
    if (c->upload_md == NULL)
        c->upload_md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c->upload_md, EVP_sha256(), NULL);
    lw_http1_chunked_init(&c->chunked);
}

/* Answers a request that could not be parsed, then closes. */
static void reject(Conn *c, int status)
{
    c->keep_alive = false;
    char body[160];
    int n =
        g_snprintf(body, sizeof body,
                   "{\"error\":{\"message\":\"%s (llm-sim)\",\"type\":\"invalid_request_error\","
                   "\"param\":null,\"code\":null}}",
                   lw_http1_reason(status));
    simple_response(c, status, "application/json", body, (size_t)n);
    c->state = C_CLOSING;
}

/* Parses and dispatches buffered requests while the connection is idle. */
static void process_input(Conn *c)
{
    while (c->state == C_READING && c->in->len > 0 && c->out->len < MAX_OUT_BACKLOG) {
        if (c->upload) {
            if (!upload_consume(c))
                return;
            continue;
        }
        LwHttpHeader headers[MAX_HEADERS];
        LwHttpRequest h = {.headers = headers, .max_headers = MAX_HEADERS};
        ssize_t n = lw_http1_parse_request(c->in->str, c->in->len, c->last_len, MAX_HEAD, &h);
        if (n == LW_HTTP1_INCOMPLETE) {
            c->last_len = c->in->len;
            return;
        }
        if (n < 0) {
            int status = n == LW_HTTP1_HEAD_TOO_LARGE || n == LW_HTTP1_TOO_MANY_HEADERS ? 431
                         : n == LW_HTTP1_BAD_VERSION                                    ? 505
                         : n == LW_HTTP1_NOT_IMPLEMENTED                                ? 501
                                                                                        : 400;
            reject(c, status);
            return;
        }
        size_t head = (size_t)n, body_len = 0;
        if (is_upload(&h)) {
            start_upload(c, &h, head);
            continue;
        }
        if (h.body_kind == LW_HTTP1_BODY_LENGTH) {
            if (h.content_length > MAX_BODY) {
                reject(c, 413);
                return;
            }
            body_len = (size_t)h.content_length;
            if (c->in->len - head < body_len) {
                if (h.expect_continue && !c->sent_continue) {
                    g_string_append(c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                    c->sent_continue = true;
                }
                c->last_len = 0;
                return;
            }
        } else if (h.body_kind == LW_HTTP1_BODY_CHUNKED) {
            size_t raw_start = head + c->chunked_done;
            size_t len = c->in->len - raw_start;
            ssize_t rc = lw_http1_chunked_decode(&c->chunked, c->in->str + raw_start, &len);
            c->chunked_done += len;
            if (rc == LW_HTTP1_BAD_REQUEST || c->chunked_done > MAX_BODY) {
                reject(c, rc == LW_HTTP1_BAD_REQUEST ? 400 : 413);
                return;
            }
            if (rc == LW_HTTP1_INCOMPLETE) {
                g_string_truncate(c->in, head + c->chunked_done);
                if (h.expect_continue && !c->sent_continue) {
                    g_string_append(c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                    c->sent_continue = true;
                }
                c->last_len = 0;
                return;
            }
            body_len = c->chunked_done;
            g_string_truncate(c->in, head + body_len + (size_t)rc);
        }
        c->last_len = 0;
        c->chunked_done = 0;
        c->sent_continue = false;
        lw_http1_chunked_init(&c->chunked);
        dispatch(c, &h, c->in->str + head, body_len);
        g_string_erase(c->in, 0, (gssize)(head + body_len));
    }
}

/* Reads what TLS has; false when the connection was freed. */
static bool read_input(Conn *c)
{
    for (;;) {
        if (c->in->len >= MAX_HEAD + MAX_BODY + READ_CHUNK) {
            if (c->state == C_READING) {
                reject(c, 413);
                return true;
            }
            g_string_truncate(c->in, 0); /* a stalled/busy peer flooding us */
        }
        size_t old = c->in->len;
        g_string_set_size(c->in, old + READ_CHUNK);
        int r = SSL_read(c->ssl, c->in->str + old, READ_CHUNK);
        g_string_set_size(c->in, old + (size_t)MAX(r, 0));
        if (r > 0) {
            if (c->state == C_STALLED || c->state == C_CLOSING || c->state == C_LINGER)
                g_string_truncate(c->in, 0);
            /* With read-ahead one read(2) takes everything the socket had;
             * skipping the read that would only say EAGAIN saves a syscall
             * per request (epoll is level-triggered, so nothing is missed). */
            if (!SSL_has_pending(c->ssl))
                return true;
            continue;
        }
        int err = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ)
            return true;
        if (err == SSL_ERROR_WANT_WRITE) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return true;
        }
        conn_free(c); /* EOF, reset or TLS error */
        return false;
    }
}

/* Drives the connection after any event: flush, parse, flush again. */
static void conn_run(Conn *c)
{
    for (int round = 0; round < 2; round++) {
        if (!flush_out(c))
            return;
        if (c->state != C_READING || c->in->len == 0)
            return;
        process_input(c);
    }
}

static void on_conn_event(Conn *c, uint32_t ev)
{
    if (c->state == C_HANDSHAKE) {
        int r = SSL_accept(c->ssl);
        if (r != 1) {
            int err = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if (err == SSL_ERROR_WANT_READ)
                set_events(c, EPOLLIN);
            else if (err == SSL_ERROR_WANT_WRITE)
                set_events(c, EPOLLIN | EPOLLOUT);
            else
                conn_free(c);
            return;
        }
        c->state = C_READING;
        set_events(c, EPOLLIN);
        ev |= EPOLLIN;
    }
    if ((ev & EPOLLOUT) || ((ev & EPOLLIN) && c->write_blocked_on_read)) {
        if (!flush_out(c))
            return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (!read_input(c))
            return;
    }
    conn_run(c);
}

/* ---- startup ---- */

typedef struct {
    char *listen;
    char *cert_dir;
    char *ready_file;
    char *log_file;
    gboolean h2;
} Options;

static int open_listener(const char *spec, char *ret_display, size_t cap, GError **error)
{
    g_autofree char *host = NULL;
    const char *port;
    const char *colon = strrchr(spec, ':');
    if (colon == NULL) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "--listen wants HOST:PORT");
        return -1;
    }
    if (spec[0] == '[' && colon > spec && colon[-1] == ']')
        host = g_strndup(spec + 1, (gsize)(colon - spec - 2));
    else
        host = g_strndup(spec, (gsize)(colon - spec));
    port = colon + 1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: %s", spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", spec,
                    g_strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    int p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ai->ai_family == AF_INET6)
        g_snprintf(ret_display, cap, "[%s]:%d", host, p);
    else
        g_snprintf(ret_display, cap, "%s:%d", host, p);
    freeaddrinfo(ai);
    return fd;
}

static bool write_ready_file(const char *path, const char *port, GError **error)
{
    g_autofree char *text = g_strdup_printf("%s\n", port);
    /* g_file_set_contents writes a temporary and renames it into place. */
    return g_file_set_contents(path, text, -1, error);
}

/* SIGTERM/SIGINT: free everything so leak checkers see a clean exit. */
static void shutdown_all(Options *opt, int lfd, int sfd)
{
    while (conns != NULL)
        conn_free(conns);
    close(lfd);
    close(sfd);
    close(epfd);
    g_ptr_array_free(heap, TRUE);
    g_hash_table_destroy(stats.by_path);
    g_free(stats.ring);
    if (stats.log != NULL)
        fclose(stats.log);
    SSL_CTX_free(ssl_ctx);
    g_free(opt->listen);
    g_free(opt->cert_dir);
    g_free(opt->ready_file);
    g_free(opt->log_file);
}

int main(int argc, char **argv)
{
    Options opt = {0};
    GOptionEntry entries[] = {
        {"listen", 0, 0, G_OPTION_ARG_STRING, &opt.listen, "Address to listen on", "HOST:PORT"},
        {"cert-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt.cert_dir,
         "Directory of sim-ca.pem, sim-server.pem, sim-server.key (created if needed)", "DIR"},
        {"ready-file", 0, 0, G_OPTION_ARG_FILENAME, &opt.ready_file,
         "Write the port here once listening", "FILE"},
        {"log", 0, 0, G_OPTION_ARG_FILENAME, &opt.log_file, "Log one line per request", "FILE"},
        {"h2", 0, 0, G_OPTION_ARG_NONE, &opt.h2, "Offer HTTP/2 (not supported by this build)",
         NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("- simulated LLM provider");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "llm-sim: %s\n", error->message);
        return 2;
    }
    if (opt.listen == NULL || opt.cert_dir == NULL) {
        fprintf(stderr, "llm-sim: --listen and --cert-dir are required\n");
        return 2;
    }
    if (opt.h2) {
        fprintf(stderr, "llm-sim: --h2 is not supported (HTTP/1.1 only)\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    ssl_ctx = sim_tls_context(opt.cert_dir, &error);
    if (ssl_ctx == NULL) {
        fprintf(stderr, "llm-sim: %s\n", error->message);
        return 1;
    }
    char display[128];
    int lfd = open_listener(opt.listen, display, sizeof display, &error);
    if (lfd < 0) {
        fprintf(stderr, "llm-sim: %s\n", error->message);
        return 1;
    }
    if (opt.log_file != NULL) {
        stats.log = fopen(opt.log_file, "ae");
        if (stats.log != NULL)
            setvbuf(stats.log, NULL, _IOLBF, 0);
    }
    stats.by_path = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    stats.ring = g_new0(Record, RING_SIZE);
    heap = g_ptr_array_new();

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &LISTENER_TAG};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &e);
    e.data.ptr = &SIGNAL_TAG;
    epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &e);

    printf("llm-sim listening on %s\n", display);
    fflush(stdout);
    if (opt.ready_file != NULL) {
        const char *port = strrchr(display, ':') + 1;
        if (!write_ready_file(opt.ready_file, port, &error)) {
            fprintf(stderr, "llm-sim: %s\n", error->message);
            return 1;
        }
    }

    struct epoll_event events[256];
    for (;;) {
        int timeout = -1;
        if (heap->len > 0) {
            uint64_t now = now_ms(), dl = ((Conn *)heap->pdata[0])->deadline_ms;
            timeout = dl <= now ? 0 : (int)MIN(dl - now, (uint64_t)INT_MAX);
        }
        int n = epoll_wait(epfd, events, G_N_ELEMENTS(events), timeout);
        if (n < 0 && errno != EINTR) {
            perror("llm-sim: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == &LISTENER_TAG) {
                accept_all(lfd);
            } else if (p == &SIGNAL_TAG) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    shutdown_all(&opt, lfd, sfd);
                    return 0;
                }
            } else {
                on_conn_event(p, events[i].events);
            }
        }
        uint64_t now = now_ms();
        while (heap->len > 0 && ((Conn *)heap->pdata[0])->deadline_ms <= now) {
            Conn *c = heap->pdata[0];
            TimerKind kind = c->timer;
            timer_cancel(c);
            c->timer = kind;
            on_timer(c);
        }
    }
}
