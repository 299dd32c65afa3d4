/* ipc-server.c - the collector's side of run/collector.sock. */
#define G_LOG_DOMAIN "ipc"

#include "ipc-server.h"

#include <errno.h>
#include <stdlib.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "attrib.h"
#include "buf.h"
#include "ipc.h"
#include "ledger-spool.h"
#include "listeners.h"
#include "upstream.h"


/* Each llmwrap run keeps a client for its whole life: room for many runs
 * at once, with a bound so that a runaway cannot take every descriptor. */
#define MAX_CLIENTS 4096
/* A refusal for being full is logged at most this often. */
#define FULL_LOG_GAP_US (10 * G_USEC_PER_SEC)
#define MAX_CLIENT_OUT (1024 * 1024)

typedef struct {
    LwIpcServer *ipc;
    guint64 id; /* lw_ipc_server_current_client */
    int fd;
    GByteArray *in;
    LwBuf out;
    gboolean tail;
    GList link;
} Client;

typedef struct {
    LwIpcHandler func;
    void *data;
} Handler;

struct _LwIpcServer {
    LwServer *server;
    int fd;
    char *path;
    GQueue clients;
    GHashTable *handlers; /* body case -> Handler* */
    gint64 full_logged_us; /* when a refusal for being full was last logged */
    guint64 next_client_id;
    guint64 current_client; /* whose request a handler is running; 0 outside */
    LwIpcCloseFunc on_close;
    void *on_close_data;
    LwAcceptPause pause;
};

static void client_close(Client *c)
{
    LwIpcServer *ipc = c->ipc;
    if (ipc->on_close != NULL)
        ipc->on_close(c->id, ipc->on_close_data);
    lw_loop_unwatch(ipc->server->loop, c->fd);
    close(c->fd);
    g_byte_array_unref(c->in);
    lw_buf_clear(&c->out);
    g_queue_unlink(&ipc->clients, &c->link);
    g_free(c);
}

/* Writes what the socket takes; FALSE if the client was closed. */
static gboolean client_flush(Client *c)
{
    while (lw_buf_len(&c->out) > 0) {
        ssize_t n = send(c->fd, lw_buf_head(&c->out), lw_buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            client_close(c);
            return FALSE;
        }
        lw_buf_consume(&c->out, (size_t)n);
    }
    lw_loop_set_events(c->ipc->server->loop, c->fd,
                       EPOLLIN | (lw_buf_len(&c->out) > 0 ? EPOLLOUT : 0));
    return TRUE;
}

static gboolean client_send(Client *c, const Lw__Response *resp)
{
    g_autoptr(GByteArray) frame = g_byte_array_new();
    lw_ipc_frame_append_response(frame, resp);
    if (lw_buf_len(&c->out) + frame->len > MAX_CLIENT_OUT) {
        g_warning("IPC client too slow, disconnecting it");
        client_close(c);
        return FALSE;
    }
    lw_buf_append(&c->out, frame->data, frame->len);
    return client_flush(c);
}

void lw_ipc_response_set_error(Lw__Response *resp, const char *message)
{
    if (resp->error == NULL) {
        resp->error = g_malloc(sizeof *resp->error);
        lw__error__init(resp->error);
    }
    free(resp->error->message);
    resp->error->message = g_strdup(message);
}

void lw_ipc_response_clear(Lw__Response *resp)
{
    lw__response__free_unpacked(resp, NULL);
}

void lw_ipc_fill_status(LwServer *server, Lw__StatusReply *s)
{
    s->has_pid = TRUE;
    s->pid = (uint32_t)getpid();
    s->version = g_strdup(LW_VERSION);
    s->has_uptime_ms = TRUE;
    s->uptime_ms = (lw_loop_now_us() - server->started_us) / 1000;
    /* What the listeners are bound to, which llmwrap tells the shim: not
     * the configuration's value, which may have changed since. */
    s->has_synthetic_net = TRUE;
    s->synthetic_net = server->listeners != NULL ? lw_listeners_synthetic_net(server->listeners)
                                                 : server->config->synthetic_net;
    s->hosts = lw_provider_table_env_hosts(server->providers);
    s->ca_file = g_strdup(server->ca_root_file);
    if (server->listeners != NULL) {
        s->has_synthetic_port = TRUE;
        s->synthetic_port = lw_listeners_synthetic_port(server->listeners);
        guint n = 0;
        const LwListenerInfo *info = lw_listeners_info(server->listeners, &n);
        s->n_listeners = n;
        s->listeners = g_new0(Lw__Listener *, MAX(n, 1));
        for (guint i = 0; i < n; i++) {
            Lw__Listener *l = g_malloc(sizeof *l);
            lw__listener__init(l);
            l->provider = g_strdup(info[i].provider != NULL ? info[i].provider : "");
            l->address = g_strdup(info[i].address);
            l->has_port = TRUE;
            l->port = info[i].port;
            s->listeners[i] = l;
        }
    }
    Lw__Counters *c = g_malloc(sizeof *c);
    lw__counters__init(c);
    const LwCounters *k = &server->counters;
#define COUNTER(f)                                                                                \
    do {                                                                                          \
        c->has_##f = TRUE;                                                                        \
        c->f = k->f;                                                                              \
    } while (0)
    COUNTER(connections_accepted);
    COUNTER(connections_active);
    COUNTER(connections_rejected);
    COUNTER(requests_total);
    COUNTER(requests_active);
    COUNTER(requests_bad);
    COUNTER(upstream_errors);
    COUNTER(bytes_in);
    COUNTER(bytes_out);
    COUNTER(ipc_bad_frames);
    COUNTER(refused);
#undef COUNTER
    s->counters = c;
}

static void handle_status(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                          void *data)
{
    Lw__StatusReply *s = g_malloc(sizeof *s);
    lw__status_reply__init(s);
    lw_ipc_fill_status(server, s);
    resp->body_case = LW__RESPONSE__BODY_STATUS;
    resp->status = s;
}

static void handle_tail(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                        void *data)
{
    Client *c = data;
    c->tail = TRUE;
    Lw__Empty *ok = g_malloc(sizeof *ok);
    lw__empty__init(ok);
    resp->body_case = LW__RESPONSE__BODY_OK;
    resp->ok = ok;
}

/* What llmctl asks before it reads the ledger: the spool's rows applied.
 * An error when they could not be, so llmctl says its answer may lack them. */
static void handle_ledger_sync(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                               void *data)
{
    gboolean applied = lw_spool_hold(server->spool);
    lw_spool_release(server->spool);
    if (!applied) {
        lw_ipc_response_set_error(resp, "the ledger is locked by another process; the newest "
                                        "rows are recorded but not in it yet");
        return;
    }
    Lw__Empty *ok = g_malloc(sizeof *ok);
    lw__empty__init(ok);
    resp->body_case = LW__RESPONSE__BODY_OK;
    resp->ok = ok;
}

/* Returns FALSE if the client was closed. */
static gboolean dispatch(Client *c, const Lw__Request *req)
{
    LwIpcServer *ipc = c->ipc;
    Lw__Response *resp = g_malloc(sizeof *resp);
    lw__response__init(resp);
    resp->has_id = req->has_id;
    resp->id = req->id;
    switch (req->body_case) {
    case LW__REQUEST__BODY_STATUS:
        handle_status(ipc->server, req, resp, NULL);
        break;
    case LW__REQUEST__BODY_TAIL:
        handle_tail(ipc->server, req, resp, c);
        break;
    case LW__REQUEST__BODY_LEDGER_SYNC:
        handle_ledger_sync(ipc->server, req, resp, NULL);
        break;
    default: {
        Handler *h = g_hash_table_lookup(ipc->handlers, GINT_TO_POINTER(req->body_case));
        if (h != NULL) {
            ipc->current_client = c->id;
            h->func(ipc->server, req, resp, h->data);
            ipc->current_client = 0;
        } else {
            g_autofree char *msg =
                g_strdup_printf("this collector does not handle request type %d",
                                (int)req->body_case);
            lw_ipc_response_set_error(resp, msg);
        }
        break;
    }
    }
    gboolean alive = client_send(c, resp);
    lw_ipc_response_clear(resp);
    return alive;
}

static void bad_frame(Client *c, const char *why)
{
    c->ipc->server->counters.ipc_bad_frames++;
    g_warning("closing an IPC client: %s", why);
    client_close(c);
}

static void on_client_io(LwLoop *loop, int fd, uint32_t events, void *data)
{
    Client *c = data;
    if (events & EPOLLOUT) {
        if (!client_flush(c))
            return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    guint8 buf[16384];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        client_close(c);
        return;
    }
    g_byte_array_append(c->in, buf, (guint)n);
    for (;;) {
        size_t payload = 0;
        LwIpcFrameResult r = lw_ipc_frame_peek(c->in->data, c->in->len, &payload);
        if (r == LW_IPC_FRAME_INCOMPLETE)
            return;
        if (r == LW_IPC_FRAME_TOO_LARGE) {
            bad_frame(c, "frame too large");
            return;
        }
        Lw__Request *req = lw__request__unpack(NULL, payload, c->in->data + LW_IPC_HEADER_LEN);
        g_byte_array_remove_range(c->in, 0, (guint)(LW_IPC_HEADER_LEN + payload));
        if (req == NULL || req->body_case == LW__REQUEST__BODY__NOT_SET) {
            if (req != NULL)
                lw__request__free_unpacked(req, NULL);
            bad_frame(c, "undecodable request");
            return;
        }
        gboolean alive = dispatch(c, req);
        lw__request__free_unpacked(req, NULL);
        if (!alive)
            return;
    }
}

static void on_accept(LwLoop *loop, int fd, uint32_t events, void *data)
{
    LwIpcServer *ipc = data;
    for (int i = 0; i < 16; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            lw_accept_pause_on_error(&ipc->pause, loop, fd, errno, "IPC socket");
            return;
        }
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            cred.uid != geteuid()) {
            close(cfd);
            continue;
        }
        if (g_queue_get_length(&ipc->clients) >= MAX_CLIENTS) {
            gint64 now = g_get_monotonic_time();
            if (now - ipc->full_logged_us >= FULL_LOG_GAP_US) {
                g_warning("IPC: %d clients already (llmwrap runs, llmctl): refusing more",
                          MAX_CLIENTS);
                ipc->full_logged_us = now;
            }
            close(cfd);
            continue;
        }
        Client *c = g_new0(Client, 1);
        c->ipc = ipc;
        c->id = ++ipc->next_client_id;
        c->fd = cfd;
        c->in = g_byte_array_new();
        c->link.data = c;
        g_queue_push_tail_link(&ipc->clients, &c->link);
        g_autoptr(GError) error = NULL;
        if (!lw_loop_watch(loop, cfd, EPOLLIN, on_client_io, c, &error)) {
            g_warning("%s", error->message);
            client_close(c);
        }
    }
}

LwIpcServer *lw_ipc_server_new(LwServer *server, const char *path, GError **error)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG, "%s: path too long", path);
        return NULL;
    }
    g_strlcpy(sun.sun_path, path, sizeof sun.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "socket: %s", g_strerror(e));
        return NULL;
    }
    unlink(path);
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (rc != 0 || listen(fd, 64) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot listen on %s: %s", path,
                    g_strerror(e));
        close(fd);
        return NULL;
    }
    LwIpcServer *ipc = g_new0(LwIpcServer, 1);
    lw_accept_pause_init(&ipc->pause);
    ipc->server = server;
    ipc->fd = fd;
    ipc->path = g_strdup(path);
    ipc->handlers = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    g_queue_init(&ipc->clients);
    if (!lw_loop_watch(server->loop, fd, EPOLLIN, on_accept, ipc, error)) {
        lw_ipc_server_free(ipc);
        return NULL;
    }
    return ipc;
}

void lw_ipc_server_free(LwIpcServer *ipc)
{
    if (ipc == NULL)
        return;
    /* The collector is going away, not the clients: their runs go on. */
    ipc->on_close = NULL;
    while (ipc->clients.head != NULL)
        client_close(ipc->clients.head->data);
    lw_accept_pause_stop(&ipc->pause);
    lw_loop_unwatch(ipc->server->loop, ipc->fd);
    close(ipc->fd);
    unlink(ipc->path);
    g_free(ipc->path);
    g_hash_table_unref(ipc->handlers);
    g_free(ipc);
}

void lw_ipc_server_set_handler(LwIpcServer *ipc, Lw__Request__BodyCase which, LwIpcHandler func,
                               void *data)
{
    Handler *h = g_new(Handler, 1);
    h->func = func;
    h->data = data;
    g_hash_table_replace(ipc->handlers, GINT_TO_POINTER(which), h);
}

void lw_ipc_server_publish(LwIpcServer *ipc, const Lw__RequestEvent *event)
{
    Lw__Response resp = LW__RESPONSE__INIT;
    resp.body_case = LW__RESPONSE__BODY_EVENT;
    resp.event = (Lw__RequestEvent *)event;
    GList *l = ipc->clients.head;
    while (l != NULL) {
        Client *c = l->data;
        l = l->next;
        if (c->tail)
            client_send(c, &resp);
    }
}

guint64 lw_ipc_server_current_client(const LwIpcServer *ipc)
{
    return ipc->current_client;
}

void lw_ipc_server_set_close_handler(LwIpcServer *ipc, LwIpcCloseFunc func, void *data)
{
    ipc->on_close = func;
    ipc->on_close_data = data;
}
