/* attrib.c - attribution datagrams from the shim. */
#define G_LOG_DOMAIN "attrib"

#include "attrib.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "llmwrap.pb-c.h"


#define EXPIRY_MS 60000
#define SWEEP_MS 10000
#define MAX_ENTRIES 65536
#define MAX_DATAGRAM 2048

typedef struct {
    LwAttribution a;
    guint64 received_ms;
} Entry;

struct _LwAttrib {
    LwServer *server;
    int fd;
    char *path;
    GHashTable *by_port; /* port -> Entry* */
    LwTimer sweep;
};

gboolean lw_attrib_decode(const guint8 *buf, size_t len, LwAttribution *ret, guint16 *ret_port)
{
    Lw__Attribution *m = lw__attribution__unpack(NULL, len, buf);
    if (m == NULL)
        return FALSE;
    gboolean ok = m->has_local_port && m->local_port > 0 && m->local_port <= 65535;
    if (ok) {
        memset(ret, 0, sizeof *ret);
        ret->run_id = m->has_run_id ? m->run_id : 0;
        ret->pid = m->has_pid ? m->pid : 0;
        ret->ppid = m->has_ppid ? m->ppid : 0;
        if (m->exe != NULL)
            g_strlcpy(ret->exe, m->exe, sizeof ret->exe);
        *ret_port = (guint16)m->local_port;
    }
    lw__attribution__free_unpacked(m, NULL);
    return ok;
}

static void drain(LwAttrib *at)
{
    guint8 buf[MAX_DATAGRAM];
    for (int i = 0; i < 1024; i++) {
        ssize_t n = recv(at->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
            return;
        LwAttribution a;
        guint16 port;
        if ((size_t)n > sizeof buf || !lw_attrib_decode(buf, (size_t)n, &a, &port)) {
            g_debug("dropping a malformed attribution datagram (%zd bytes)", n);
            continue;
        }
        if (g_hash_table_size(at->by_port) >= MAX_ENTRIES)
            continue;
        Entry *e = g_new(Entry, 1);
        e->a = a;
        e->received_ms = lw_loop_now_ms(at->server->loop);
        g_hash_table_replace(at->by_port, GUINT_TO_POINTER(port), e);
    }
}

static void on_readable(LwLoop *loop, int fd, uint32_t events, void *data)
{
    drain(data);
}

static gboolean is_expired(gpointer key, gpointer value, gpointer data)
{
    const Entry *e = value;
    guint64 now = *(const guint64 *)data;
    return now - e->received_ms > EXPIRY_MS;
}

static void on_sweep(LwLoop *loop, void *data)
{
    LwAttrib *at = data;
    guint64 now = lw_loop_now_ms(loop);
    g_hash_table_foreach_remove(at->by_port, is_expired, &now);
    lw_timer_start(loop, &at->sweep, SWEEP_MS, on_sweep, at);
}

LwAttrib *lw_attrib_new(LwServer *server, const char *path, GError **error)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG, "%s: path too long", path);
        return NULL;
    }
    g_strlcpy(sun.sun_path, path, sizeof sun.sun_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "socket: %s", g_strerror(e));
        return NULL;
    }
    unlink(path);
    /* Created 0600 from the start: no window where others could connect. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (rc != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot bind %s: %s", path,
                    g_strerror(e));
        close(fd);
        return NULL;
    }
    int rcvbuf = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

    LwAttrib *at = g_new0(LwAttrib, 1);
    at->server = server;
    at->fd = fd;
    at->path = g_strdup(path);
    at->by_port = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    lw_timer_init(&at->sweep);
    if (!lw_loop_watch(server->loop, fd, EPOLLIN, on_readable, at, error)) {
        lw_attrib_free(at);
        return NULL;
    }
    lw_timer_start(server->loop, &at->sweep, SWEEP_MS, on_sweep, at);
    return at;
}

void lw_attrib_free(LwAttrib *at)
{
    if (at == NULL)
        return;
    lw_timer_stop(at->server->loop, &at->sweep);
    lw_loop_unwatch(at->server->loop, at->fd);
    close(at->fd);
    unlink(at->path);
    g_free(at->path);
    g_hash_table_unref(at->by_port);
    g_free(at);
}

gboolean lw_attrib_take(LwAttrib *at, guint16 port, LwAttribution *ret)
{
    drain(at);
    Entry *e = g_hash_table_lookup(at->by_port, GUINT_TO_POINTER(port));
    if (e == NULL)
        return FALSE;
    *ret = e->a;
    g_hash_table_remove(at->by_port, GUINT_TO_POINTER(port));
    return TRUE;
}
