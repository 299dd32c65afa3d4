/* upstream.c - libcurl multi-socket transfers on the collector's loop. */
#include "upstream.h"

#include <curl/curl.h>
#include <gio/gio.h>
#include <string.h>

#include "buf.h"
#include "upstream-head.h"
#include "upstream-trust.h"

/* As many as are usually in flight at once at 1,000 req/s; a burst beyond
 * it creates handles as before. */
#define SPARE_HANDLES 8

struct _LwUpstream {
    LwLoop *loop;
    CURLM *multi;
    LwTimer curl_timer;  /* curl's single timeout */
    LwTimer reap_timer;  /* deferred removals and resumes */
    GQueue pending;      /* LwTransfer* needing removal (cancelled) or resume */
    GHashTable *active;  /* LwTransfer* set */
    gboolean in_multi;   /* inside a libcurl call that may run callbacks */
    LwUpstreamTrust *trust; /* NULL: the system bundle alone */
    char *system_bundle;    /* libcurl's default CA file */
    char *run_dir;          /* where trust files go */
    char *proxy;
    long connect_timeout_ms;
    gboolean http2;
    GString *line; /* scratch for building header lines */
    /* Easy handles of finished transfers, reset, for the next ones: a new
     * handle costs a large calloc and, on its first transfer, a 16 KiB
     * receive buffer (~11k instructions of ~320k per request). Freed when
     * the collector goes quiet (lw_upstream_release_spares). */
    CURL *spares[SPARE_HANDLES];
    guint n_spares;
};

struct _LwTransfer {
    LwUpstream *up;
    CURL *easy;
    struct curl_slist *headers;
    GBytes *body; /* curl reads it until the handle is removed, even after a cancel */
    LwTransferCallbacks cb;
    void *data;
    char errbuf[CURL_ERROR_SIZE];
    LwUpstreamHead head; /* the response head as it comes */
    gboolean paused;
    gboolean want_resume;
    /* A streamed request body (LwTransferRequest.upload). */
    LwBuf upload;
    gboolean upload_ended;   /* no more bytes will be queued */
    gboolean upload_paused;  /* the read callback paused: nothing queued */
    gboolean upload_blocked; /* lw_transfer_upload() refused bytes */
    gboolean want_room;      /* ... and libcurl has taken some since */
    gboolean cancelled;
    gboolean queued; /* in up->pending */
    LwUpstreamTrust *trust; /* the CA file it verifies with, kept while it runs */
};

/* ---- errors: the one place CURLcode becomes an LwUpstreamStatus ---- */

static LwUpstreamStatus status_from_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return LW_UPSTREAM_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
        return LW_UPSTREAM_CONNECT_FAILED;
    case CURLE_OPERATION_TIMEDOUT:
        return LW_UPSTREAM_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return LW_UPSTREAM_TLS_FAILED;
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return LW_UPSTREAM_BROKEN;
    default:
        return LW_UPSTREAM_FAILED;
    }
}

/* ---- the loop <-> curl glue ---- */

static void check_done(LwUpstream *up);

static void multi_action(LwUpstream *up, curl_socket_t fd, int flags)
{
    int running = 0;
    up->in_multi = TRUE;
    curl_multi_socket_action(up->multi, fd, flags, &running);
    up->in_multi = FALSE;
    check_done(up);
}

static void on_socket_ready(LwLoop *loop, int fd, uint32_t events, void *data)
{
    int flags = 0;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    multi_action(data, fd, flags);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    LwUpstream *up = userp;
    if (what == CURL_POLL_REMOVE) {
        lw_loop_unwatch(up->loop, fd);
        return 0;
    }
    uint32_t events = 0;
    if (what & CURL_POLL_IN)
        events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        events |= EPOLLOUT;
    if (lw_loop_events(up->loop, fd) == 0) {
        g_autoptr(GError) error = NULL;
        if (!lw_loop_watch(up->loop, fd, events, on_socket_ready, up, &error))
            g_warning("upstream socket: %s", error->message);
    } else {
        lw_loop_set_events(up->loop, fd, events);
    }
    return 0;
}

static void on_curl_timer(LwLoop *loop, void *data)
{
    multi_action(data, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    LwUpstream *up = userp;
    if (timeout_ms < 0)
        lw_timer_stop(up->loop, &up->curl_timer);
    else
        lw_timer_start(up->loop, &up->curl_timer, (uint64_t)timeout_ms, on_curl_timer, up);
    return 0;
}

/* After curl_multi_remove_handle. */
static void transfer_free(LwTransfer *t)
{
    LwUpstream *up = t->up;
    if (up->n_spares < SPARE_HANDLES) {
        /* Every option back to its default; what the handle keeps (its
         * buffers) holds nothing of the request: its header list and body
         * are ours and freed below. */
        curl_easy_reset(t->easy);
        up->spares[up->n_spares++] = t->easy;
    } else {
        curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    lw_buf_clear(&t->upload);
    if (t->body != NULL)
        g_bytes_unref(t->body);
    lw_upstream_head_clear(&t->head);
    lw_upstream_trust_unref(t->trust);
    g_free(t);
}

void lw_upstream_release_spares(LwUpstream *up)
{
    while (up->n_spares > 0)
        curl_easy_cleanup(up->spares[--up->n_spares]);
}

static void transfer_remove(LwTransfer *t)
{
    LwUpstream *up = t->up;
    g_hash_table_remove(up->active, t);
    curl_multi_remove_handle(up->multi, t->easy);
    transfer_free(t);
}

static void check_done(LwUpstream *up)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(up->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        LwTransfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = msg->data.result;
        if (t->queued)
            g_queue_remove(&up->pending, t);
        g_hash_table_remove(up->active, t);
        curl_multi_remove_handle(up->multi, t->easy);
        if (!t->cancelled) {
            LwUpstreamStatus status = status_from_curl(rc);
            const char *detail = t->head.refused != NULL ? t->head.refused
                                 : t->errbuf[0]            ? t->errbuf
                                                           : curl_easy_strerror(rc);
            /* A response that ended before its head is broken even when
             * curl saw a clean close. */
            if (status == LW_UPSTREAM_OK && !t->head.done) {
                status = LW_UPSTREAM_BROKEN;
                detail = "connection closed before the response head";
            }
            t->cb.on_done(t->data, status, status == LW_UPSTREAM_OK ? NULL : detail);
        }
        transfer_free(t);
    }
}

/* Deferred work: removals of transfers cancelled inside libcurl callbacks,
 * resumes (curl_easy_pause may call the write and read callbacks at once),
 * and telling a streamed body's producer there is room again (it may
 * queue more, or cancel: never from inside libcurl). */
static void on_reap(LwLoop *loop, void *data)
{
    LwUpstream *up = data;
    LwTransfer *t;
    while ((t = g_queue_pop_head(&up->pending)) != NULL) {
        t->queued = FALSE;
        if (t->cancelled) {
            transfer_remove(t);
            continue;
        }
        if (t->want_resume) {
            /* CONT lifts both directions' pauses: a callback whose side
             * still cannot move pauses again. */
            t->want_resume = FALSE;
            t->paused = FALSE;
            t->upload_paused = FALSE;
            up->in_multi = TRUE;
            curl_easy_pause(t->easy, CURLPAUSE_CONT);
            up->in_multi = FALSE;
        }
        if (t->want_room && !t->cancelled) {
            t->want_room = FALSE;
            t->cb.on_upload_room(t->data); /* may cancel t: not touched after */
        }
    }
    check_done(up);
}

static void queue_pending(LwTransfer *t)
{
    LwUpstream *up = t->up;
    if (!t->queued) {
        t->queued = TRUE;
        g_queue_push_tail(&up->pending, t);
    }
    if (!lw_timer_is_armed(&up->reap_timer))
        lw_timer_start(up->loop, &up->reap_timer, 0, on_reap, up);
}

/* ---- per-transfer callbacks ---- */

static void deliver_head(LwTransfer *t)
{
    size_t n = 0;
    const char *reason = "";
    g_autofree LwHttpHeader *headers = lw_upstream_head_fields(&t->head, &n, &reason);
    curl_off_t cl = -1;
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    t->head.done = TRUE;
    t->cb.on_head(t->data, t->head.status, reason, headers, n, (int64_t)cl);
    /* An answer before the whole streamed body (a 401 or 413 sent
     * early): libcurl stops sending on an error status, but ends the
     * transfer only once its upload is not paused. Paused on an empty
     * queue, it would wait for body bytes the client, which has the answer
     * but its last byte (held until the end), may never send. Resumed,
     * libcurl ends it, or, still sending, finds the queue empty and pauses
     * again. */
    if (t->upload_paused && !t->cancelled) {
        t->upload_paused = FALSE;
        t->want_resume = TRUE;
        queue_pending(t);
    }
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    LwTransfer *t = userp;
    if (t->cancelled)
        return 0;
    switch (lw_upstream_head_line(&t->head, buf, size * nitems)) {
    case LW_UPSTREAM_HEAD_MORE:
        break;
    case LW_UPSTREAM_HEAD_COMPLETE:
        deliver_head(t);
        break;
    case LW_UPSTREAM_HEAD_REFUSED:
        return 0; /* stops the transfer: a 502, as nginx answers */
    }
    return size * nitems;
}

static size_t write_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    LwTransfer *t = userp;
    size_t len = size * nitems;
    if (t->cancelled)
        return 0; /* aborts the transfer */
    if (!t->head.done)
        deliver_head(t); /* curl delivers the head first; this is a safety net */
    if (t->cancelled)
        return 0;
    if (len == 0)
        return 0;
    if (!t->cb.on_body(t->data, buf, len)) {
        t->paused = TRUE;
        return CURL_WRITEFUNC_PAUSE;
    }
    return t->cancelled ? 0 : len;
}

/* libcurl takes the streamed request body from the queue; an empty queue
 * pauses the upload until lw_transfer_upload() brings more. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    LwTransfer *t = userp;
    if (t->cancelled)
        return CURL_READFUNC_ABORT;
    size_t n = MIN(size * nitems, lw_buf_len(&t->upload));
    if (n == 0) {
        if (t->upload_ended)
            return 0;
        t->upload_paused = TRUE;
        return CURL_READFUNC_PAUSE;
    }
    memcpy(buf, lw_buf_head(&t->upload), n);
    lw_buf_consume(&t->upload, n);
    /* Half empty: let the producer refill it in one go rather than by the
     * few bytes each read frees. */
    if (t->upload_blocked && lw_buf_len(&t->upload) <= LW_TRANSFER_UPLOAD_MAX / 2) {
        t->upload_blocked = FALSE;
        t->want_room = TRUE;
        queue_pending(t);
    }
    return n;
}

/* ---- public ---- */

static gboolean apply_config(LwUpstream *up, const LwConfig *config, GError **error)
{
    LwUpstreamTrust *trust =
        lw_upstream_trust_new(config->ca_file, up->system_bundle, up->run_dir, error);
    if (config->ca_file != NULL && trust == NULL)
        return FALSE;
    lw_upstream_trust_unref(up->trust);
    up->trust = trust;
    g_free(up->proxy);
    up->proxy = g_strdup(config->proxy);
    up->connect_timeout_ms = config->connect_timeout_ms;
    up->http2 = config->http2;
    return TRUE;
}

/* libcurl's built-in CA file (Debian: the system bundle), NULL if none. */
static char *default_ca_file(void)
{
    CURL *e = curl_easy_init();
    char *path = NULL;
    if (e != NULL)
        curl_easy_getinfo(e, CURLINFO_CAINFO, &path);
    char *copy = g_strdup(path);
    curl_easy_cleanup(e);
    return copy;
}

LwUpstream *lw_upstream_new(LwLoop *loop, const LwConfig *config, const char *run_dir,
                            GError **error)
{
    static gsize curl_initialised = 0;
    if (g_once_init_enter(&curl_initialised)) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        g_once_init_leave(&curl_initialised, 1);
    }
    LwUpstream *up = g_new0(LwUpstream, 1);
    up->loop = loop;
    lw_timer_init(&up->curl_timer);
    lw_timer_init(&up->reap_timer);
    g_queue_init(&up->pending);
    up->active = g_hash_table_new(NULL, NULL);
    up->system_bundle = default_ca_file();
    up->run_dir = g_strdup(run_dir);
    lw_upstream_trust_clean_stale(run_dir);
    if (!apply_config(up, config, error)) {
        g_hash_table_unref(up->active);
        g_free(up->system_bundle);
        g_free(up->run_dir);
        g_free(up);
        return NULL;
    }
    up->line = g_string_sized_new(256);
    up->multi = curl_multi_init();
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, 256L);
    return up;
}

void lw_upstream_free(LwUpstream *up)
{
    if (up == NULL)
        return;
    GList *transfers = g_hash_table_get_keys(up->active);
    for (GList *l = transfers; l != NULL; l = l->next) {
        LwTransfer *t = l->data;
        curl_multi_remove_handle(up->multi, t->easy);
        transfer_free(t);
    }
    g_list_free(transfers);
    g_hash_table_unref(up->active);
    g_queue_clear(&up->pending);
    lw_upstream_release_spares(up);
    lw_timer_stop(up->loop, &up->curl_timer);
    lw_timer_stop(up->loop, &up->reap_timer);
    curl_multi_cleanup(up->multi);
    lw_upstream_trust_unref(up->trust);
    g_free(up->system_bundle);
    g_free(up->run_dir);
    g_free(up->proxy);
    g_string_free(up->line, TRUE);
    g_free(up);
}

gboolean lw_upstream_reconfigure(LwUpstream *up, const LwConfig *config, GError **error)
{
    return apply_config(up, config, error);
}

/* Request fields libcurl would add on its own unless told not to. */
static const char *const curl_defaults[] = {"Accept", "Content-Type", "Expect"};

LwTransfer *lw_upstream_start(LwUpstream *up, const LwTransferRequest *req,
                              const LwTransferCallbacks *cb, void *data, GError **error)
{
    LwTransfer *t = g_new0(LwTransfer, 1);
    t->up = up;
    t->cb = *cb;
    t->data = data;
    lw_upstream_head_init(&t->head);
    t->easy = up->n_spares > 0 ? up->spares[--up->n_spares] : curl_easy_init();
    CURL *e = t->easy;

    gboolean have_default[G_N_ELEMENTS(curl_defaults)] = {FALSE};
    for (size_t i = 0; i < req->n_headers; i++) {
        const LwHttpHeader *h = &req->headers[i];
        for (guint d = 0; d < G_N_ELEMENTS(curl_defaults); d++) {
            if (lw_http1_name_is(h->name, h->name_len, curl_defaults[d]))
                have_default[d] = TRUE;
        }
        GString *line = up->line;
        g_string_truncate(line, 0);
        g_string_append_len(line, h->name, (gssize)h->name_len);
        if (h->value_len == 0) { /* "Name;" sends an empty field; "Name:" would delete it */
            g_string_append_c(line, ';');
        } else {
            g_string_append_len(line, ": ", 2);
            g_string_append_len(line, h->value, (gssize)h->value_len);
        }
        t->headers = curl_slist_append(t->headers, line->str);
    }
    /* A header value may hold a credential: leave no copy behind. */
    memset(up->line->str, 0, up->line->allocated_len);
    g_string_truncate(up->line, 0);
    static const char *const suppressed[] = {"Accept:", "Content-Type:", "Expect:"};
    G_STATIC_ASSERT(G_N_ELEMENTS(suppressed) == G_N_ELEMENTS(curl_defaults));
    for (guint d = 0; d < G_N_ELEMENTS(curl_defaults); d++) {
        if (!have_default[d])
            t->headers = curl_slist_append(t->headers, suppressed[d]);
    }

    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    /* The path goes out as the client sent it (the collector refuses dot
     * segments before it gets here; libcurl would otherwise squash them). */
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    /* The system bundle only: libcurl keeps the parsed store of a CA file
     * (CURLOPT_CA_CACHE_TIMEOUT) but not when a CA directory is also set,
     * as Debian's build does by default, and then parses ~140
     * certificates again for every new upstream connection (~25 ms of CPU
     * and ~1 MiB each). Debian's directory holds the same certificates
     * as its bundle (update-ca-certificates writes both). */
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    t->trust = lw_upstream_trust_ref(up->trust);
    if (t->trust != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, lw_upstream_trust_file(t->trust));
    /* "" disables the proxy environment variables; only config decides. */
    curl_easy_setopt(e, CURLOPT_PROXY, up->proxy != NULL ? up->proxy : "");
    /* A proxy's CONNECT answer is not the provider's head. */
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, up->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     up->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Bytes go to the client exactly as the provider sent them. */
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);

    if (strcmp(req->method, "HEAD") == 0) {
        /* Without NOBODY libcurl waits for the body a HEAD answer only
         * describes; a HEAD request's own body (Content-Length: 0) has no
         * meaning (RFC 9110 §9.3.2) and is not sent. */
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (req->upload) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, t);
        /* -1: libcurl sends it chunked over HTTP/1.1, framed by DATA
         * frames over HTTP/2. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->upload_length);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (req->body != NULL) {
        gsize body_len = 0;
        t->body = g_bytes_ref(req->body);
        const char *body = g_bytes_get_data(t->body, &body_len);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }

    CURLMcode mrc = curl_multi_add_handle(up->multi, e);
    if (mrc != CURLM_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot start upstream request: %s",
                    curl_multi_strerror(mrc));
        transfer_free(t);
        return NULL;
    }
    g_hash_table_add(up->active, t);
    return t;
}

void lw_transfer_resume(LwTransfer *t)
{
    if (t->cancelled || !t->paused)
        return;
    t->want_resume = TRUE;
    queue_pending(t);
}

size_t lw_transfer_upload(LwTransfer *t, const char *buf, size_t len)
{
    if (t->cancelled || t->upload_ended)
        return len;
    size_t queued = lw_buf_len(&t->upload);
    size_t n = queued < LW_TRANSFER_UPLOAD_MAX ? MIN(len, LW_TRANSFER_UPLOAD_MAX - queued) : 0;
    if (n > 0)
        lw_buf_append(&t->upload, buf, n);
    if (n < len)
        t->upload_blocked = TRUE;
    if (n > 0 && t->upload_paused) {
        t->upload_paused = FALSE;
        t->want_resume = TRUE;
        queue_pending(t);
    }
    return n;
}

void lw_transfer_upload_end(LwTransfer *t)
{
    if (t->cancelled || t->upload_ended)
        return;
    t->upload_ended = TRUE;
    if (t->upload_paused) { /* the read callback must now see the end */
        t->upload_paused = FALSE;
        t->want_resume = TRUE;
        queue_pending(t);
    }
}

void lw_transfer_cancel(LwTransfer *t)
{
    if (t->cancelled)
        return;
    t->cancelled = TRUE;
    /* libcurl forbids removing a handle from inside its callbacks. */
    queue_pending(t);
}

guint lw_upstream_active(const LwUpstream *up)
{
    return g_hash_table_size(up->active);
}

gboolean lw_transfer_request_sent(const LwTransfer *t)
{
    curl_off_t pretransfer = 0;
    return curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) == CURLE_OK &&
           pretransfer > 0;
}

const char *lw_transfer_http_version(const LwTransfer *t)
{
    long v = 0;
    curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &v);
    switch (v) {
    case CURL_HTTP_VERSION_1_0:
        return "HTTP/1.0";
    case CURL_HTTP_VERSION_1_1:
        return "HTTP/1.1";
    case CURL_HTTP_VERSION_2_0:
        return "HTTP/2";
    case CURL_HTTP_VERSION_3:
        return "HTTP/3";
    default:
        return "unknown";
    }
}
