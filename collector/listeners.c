/* listeners.c - listening sockets and accept. */
#define G_LOG_DOMAIN "listen"

#include "listeners.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"


#define BACKLOG 1024
#define ACCEPTS_PER_WAKEUP 64
#define PORT_ATTEMPTS 32

typedef struct {
    LwListeners *owner;
    int fd;
    const LwProvider *provider;
    LwAcceptPause pause;
} Listener;

struct _LwListeners {
    LwServer *server;
    GPtrArray *listeners; /* Listener* */
    GArray *info;         /* LwListenerInfo */
    guint8 synthetic_net; /* the X of 127.X.0.slot the synthetic listeners are bound to */
    guint16 synthetic_port;
};

static void listener_close(Listener *l)
{
    if (l->fd < 0)
        return;
    lw_accept_pause_stop(&l->pause);
    lw_loop_unwatch(l->owner->server->loop, l->fd);
    close(l->fd);
    l->fd = -1;
}

static void listener_free(gpointer p)
{
    Listener *l = p;
    listener_close(l);
    g_free(l);
}

static void on_accept(LwLoop *loop, int fd, uint32_t events, void *data)
{
    Listener *l = data;
    LwServer *server = l->owner->server;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            lw_accept_pause_on_error(&l->pause, loop, fd, errno, "client listener");
            return;
        }
        if (server->draining ||
            server->counters.connections_active >= server->config->max_connections) {
            server->counters.connections_rejected++;
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        lw_conn_accept(server, cfd, l->provider);
    }
}

static int bind_one(const struct sockaddr *sa, socklen_t len, GError **error)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "socket: %s", g_strerror(e));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, sa, len) != 0 || listen(fd, BACKLOG) != 0) {
        int e = errno;
        char host[INET6_ADDRSTRLEN] = "?";
        guint16 port = 0;
        if (sa->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
            port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
        } else {
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
            port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        }
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot listen on %s:%u: %s",
                    host, port, g_strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

static guint16 bound_port(int fd, char *addr, size_t addr_size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, (socklen_t)addr_size);
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, (socklen_t)addr_size);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void add_listener(LwListeners *ls, int fd, const LwProvider *provider)
{
    Listener *l = g_new0(Listener, 1);
    l->owner = ls;
    l->fd = fd;
    l->provider = provider;
    lw_accept_pause_init(&l->pause);
    g_ptr_array_add(ls->listeners, l);
    LwListenerInfo info = {.provider = provider != NULL ? provider->name : NULL};
    info.port = bound_port(fd, info.address, sizeof info.address);
    g_array_append_val(ls->info, info);
}

/* Binds every synthetic address on one port. Returns FALSE (and closes what
 * it opened) when any of them fails. */
static gboolean bind_synthetic(LwListeners *ls, guint16 port, GError **error)
{
    LwServer *server = ls->server;
    guint count = lw_provider_table_count(server->providers);
    ls->synthetic_net = server->config->synthetic_net;
    for (guint i = 0; i < count; i++) {
        const LwProvider *p = lw_provider_table_nth(server->providers, i);
        struct sockaddr_in sin;
        lw_provider_synthetic_addr(ls->synthetic_net, p->slot, &sin);
        sin.sin_port = htons(port);
        int fd = bind_one((struct sockaddr *)&sin, sizeof sin, error);
        if (fd < 0) {
            g_ptr_array_set_size(ls->listeners, 0);
            g_array_set_size(ls->info, 0);
            return FALSE;
        }
        add_listener(ls, fd, p);
        if (port == 0)
            port = g_array_index(ls->info, LwListenerInfo, 0).port;
    }
    ls->synthetic_port = port;
    return TRUE;
}

LwListeners *lw_listeners_new(LwServer *server, guint16 port, gboolean fallback_to_any,
                              GError **error)
{
    LwListeners *ls = g_new0(LwListeners, 1);
    ls->server = server;
    ls->listeners = g_ptr_array_new_with_free_func(listener_free);
    ls->info = g_array_new(FALSE, TRUE, sizeof(LwListenerInfo));

    gboolean bound = FALSE;
    g_autoptr(GError) last = NULL;
    if (port != 0) {
        bound = bind_synthetic(ls, port, &last);
        if (!bound && !fallback_to_any) {
            g_propagate_error(error, g_steal_pointer(&last));
            lw_listeners_free(ls);
            return NULL;
        }
    }
    /* Port 0 on the first address, then that port on the others; another
     * process may hold it on one of them, so retry with a new port. */
    for (int attempt = 0; !bound && attempt < PORT_ATTEMPTS; attempt++) {
        g_clear_error(&last);
        bound = bind_synthetic(ls, 0, &last);
    }
    if (!bound) {
        g_propagate_error(error, g_steal_pointer(&last));
        lw_listeners_free(ls);
        return NULL;
    }

    for (guint i = 0; server->config->listen[i] != NULL; i++) {
        struct sockaddr_storage ss;
        unsigned int len;
        if (!lw_config_parse_listen(server->config->listen[i], &ss, &len)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "bad listen address '%s'", server->config->listen[i]);
            lw_listeners_free(ls);
            return NULL;
        }
        int fd = bind_one((struct sockaddr *)&ss, len, error);
        if (fd < 0) {
            lw_listeners_free(ls);
            return NULL;
        }
        add_listener(ls, fd, NULL);
    }

    for (guint i = 0; i < ls->listeners->len; i++) {
        Listener *l = g_ptr_array_index(ls->listeners, i);
        if (!lw_loop_watch(server->loop, l->fd, EPOLLIN, on_accept, l, error)) {
            lw_listeners_free(ls);
            return NULL;
        }
    }
    return ls;
}

void lw_listeners_close(LwListeners *ls)
{
    for (guint i = 0; i < ls->listeners->len; i++)
        listener_close(g_ptr_array_index(ls->listeners, i));
}

void lw_listeners_free(LwListeners *ls)
{
    if (ls == NULL)
        return;
    g_ptr_array_unref(ls->listeners);
    g_array_unref(ls->info);
    g_free(ls);
}

guint8 lw_listeners_synthetic_net(const LwListeners *ls)
{
    return ls->synthetic_net;
}

guint16 lw_listeners_synthetic_port(const LwListeners *ls)
{
    return ls->synthetic_port;
}

const LwListenerInfo *lw_listeners_info(const LwListeners *ls, guint *ret_count)
{
    *ret_count = ls->info->len;
    return (const LwListenerInfo *)ls->info->data;
}
