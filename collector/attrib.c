/* attrib.c - attribution messages from the shim. */
#define G_LOG_DOMAIN "attrib"

#include "attrib.h"

#include <errno.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "llmwrap.pb-c.h"


/* An entry waits for its connection's first byte, which comes within
 * header_timeout of the accept (the connection is closed otherwise); this
 * much more covers a late accept. */
#define EXPIRY_MS 60000
#define SWEEP_MS 10000
#define MAX_ENTRIES 65536
#define MAX_MESSAGE 2048
/* Accepted connections whose message has not arrived yet (the shim sends
 * right after connecting): bounded, and dropped after PENDING_MS. */
#define MAX_PENDING 1024
#define PENDING_MS 2000

typedef struct {
    LwAttribKey key; /* the hash table's key points here */
    LwAttribution a;
    guint64 received_ms;
} Entry;

G_STATIC_ASSERT(sizeof(LwAttribKey) == 36);

typedef struct {
    int fd;
    guint64 accepted_ms;
} Pending;

struct _LwAttrib {
    LwServer *server;
    int fd; /* listening */
    char *path;
    GHashTable *by_conn; /* LwAttribKey* -> Entry* */
    GArray *pending;     /* Pending: accepted, message not read yet */
    LwTimer sweep;
    LwAcceptPause pause;
};

static guint key_hash(gconstpointer p)
{
    const guint8 *b = p;
    guint32 h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < sizeof(LwAttribKey); i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(LwAttribKey)) == 0;
}

/* An address of 4 (IPv4) or 16 (IPv6) bytes in the key's IPv6 form. */
static gboolean set_addr(guint8 out[16], const guint8 *addr, size_t len)
{
    if (len == 16) {
        memcpy(out, addr, 16);
        return TRUE;
    }
    if (len != 4)
        return FALSE;
    static const guint8 v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(out, v4mapped, sizeof v4mapped);
    memcpy(out + 12, addr, 4);
    return TRUE;
}

static gboolean set_end(const struct sockaddr_storage *ss, guint8 addr[16], guint16 *ret_port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        *ret_port = ntohs(sin->sin_port);
        return set_addr(addr, (const guint8 *)&sin->sin_addr, 4);
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        *ret_port = ntohs(sin6->sin6_port);
        return set_addr(addr, sin6->sin6_addr.s6_addr, 16);
    }
    return FALSE;
}

gboolean lw_attrib_key_from_socket(int fd, LwAttribKey *ret)
{
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    LwAttribKey k;
    memset(&k, 0, sizeof k);
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &llen) != 0 ||
        !set_end(&peer, k.client_addr, &k.client_port) ||
        !set_end(&local, k.server_addr, &k.server_port))
        return FALSE;
    *ret = k;
    return TRUE;
}

static gboolean is_port(gboolean has, guint32 port)
{
    return has && port > 0 && port <= 65535;
}

gboolean lw_attrib_decode(const guint8 *buf, size_t len, LwAttribution *ret, LwAttribKey *ret_key)
{
    Lw__Attribution *m = lw__attribution__unpack(NULL, len, buf);
    if (m == NULL)
        return FALSE;
    LwAttribKey k;
    memset(&k, 0, sizeof k);
    gboolean ok = is_port(m->has_local_port, m->local_port) &&
                  is_port(m->has_remote_port, m->remote_port) && m->has_local_addr &&
                  m->has_remote_addr &&
                  set_addr(k.client_addr, m->local_addr.data, m->local_addr.len) &&
                  set_addr(k.server_addr, m->remote_addr.data, m->remote_addr.len);
    if (ok) {
        k.client_port = (guint16)m->local_port;
        k.server_port = (guint16)m->remote_port;
        memset(ret, 0, sizeof *ret);
        ret->run_id = m->has_run_id ? m->run_id : 0;
        ret->pid = m->has_pid ? m->pid : 0;
        ret->ppid = m->has_ppid ? m->ppid : 0;
        if (m->exe != NULL)
            g_strlcpy(ret->exe, m->exe, sizeof ret->exe);
        *ret_key = k;
    }
    lw__attribution__free_unpacked(m, NULL);
    return ok;
}

static void store(LwAttrib *at, const guint8 *buf, ssize_t n)
{
    Entry e;
    if (n <= 0 || n > MAX_MESSAGE || !lw_attrib_decode(buf, (size_t)n, &e.a, &e.key)) {
        g_debug("dropping a malformed attribution message (%zd bytes)", n);
        return;
    }
    if (g_hash_table_size(at->by_conn) >= MAX_ENTRIES)
        return;
    e.received_ms = lw_loop_now_ms(at->server->loop);
    Entry *entry = g_memdup2(&e, sizeof e);
    g_hash_table_replace(at->by_conn, &entry->key, entry);
}

/* Reads the message of an accepted connection. Returns FALSE when it has
 * not arrived yet; TRUE when the connection is done with (read, or broken):
 * the caller closes it. */
static gboolean read_one(LwAttrib *at, int fd)
{
    guint8 buf[MAX_MESSAGE + 1];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return FALSE;
    if (n > 0)
        store(at, buf, n);
    return TRUE;
}

static void on_pending_readable(LwLoop *loop, int fd, uint32_t events, void *data);

/* Accepts waiting connections and reads every message that has arrived. */
static void drain(LwAttrib *at)
{
    guint64 now = lw_loop_now_ms(at->server->loop);
    for (guint i = 0; i < at->pending->len;) {
        Pending *p = &g_array_index(at->pending, Pending, i);
        if (!read_one(at, p->fd) && now - p->accepted_ms <= PENDING_MS) {
            i++;
            continue;
        }
        lw_loop_unwatch(at->server->loop, p->fd);
        close(p->fd);
        g_array_remove_index_fast(at->pending, i);
    }
    for (int i = 0; i < 4096; i++) {
        int fd = accept4(at->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            lw_accept_pause_on_error(&at->pause, at->server->loop, at->fd, errno,
                                     "attribution socket");
            return;
        }
        if (read_one(at, fd)) {
            close(fd);
            continue;
        }
        if (at->pending->len >= MAX_PENDING ||
            !lw_loop_watch(at->server->loop, fd, EPOLLIN, on_pending_readable, at, NULL)) {
            close(fd);
            continue;
        }
        Pending p = {fd, now};
        g_array_append_val(at->pending, p);
    }
}

static void on_pending_readable(LwLoop *loop, int fd, uint32_t events, void *data)
{
    drain(data);
}

static void on_readable(LwLoop *loop, int fd, uint32_t events, void *data)
{
    drain(data);
}

static gboolean is_received_before(gpointer key, gpointer value, gpointer data)
{
    const Entry *e = value;
    guint64 oldest = *(const guint64 *)data;
    return e->received_ms < oldest;
}

static void on_sweep(LwLoop *loop, void *data)
{
    LwAttrib *at = data;
    guint64 now = lw_loop_now_ms(loop);
    guint64 keep = (guint64)at->server->config->header_timeout_ms + EXPIRY_MS;
    if (now > keep) {
        guint64 oldest = now - keep;
        g_hash_table_foreach_remove(at->by_conn, is_received_before, &oldest);
    }
    drain(at); /* also drops pending connections that never sent */
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
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
    if (rc == 0)
        rc = listen(fd, SOMAXCONN);
    if (rc != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot bind %s: %s", path,
                    g_strerror(e));
        close(fd);
        return NULL;
    }
    LwAttrib *at = g_new0(LwAttrib, 1);
    at->server = server;
    at->fd = fd;
    at->path = g_strdup(path);
    at->by_conn = g_hash_table_new_full(key_hash, key_equal, NULL, g_free);
    at->pending = g_array_new(FALSE, FALSE, sizeof(Pending));
    lw_timer_init(&at->sweep);
    lw_accept_pause_init(&at->pause);
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
    lw_accept_pause_stop(&at->pause);
    for (guint i = 0; i < at->pending->len; i++) {
        Pending *p = &g_array_index(at->pending, Pending, i);
        lw_loop_unwatch(at->server->loop, p->fd);
        close(p->fd);
    }
    g_array_unref(at->pending);
    lw_loop_unwatch(at->server->loop, at->fd);
    close(at->fd);
    unlink(at->path);
    g_free(at->path);
    g_hash_table_unref(at->by_conn);
    g_free(at);
}

gboolean lw_attrib_take(LwAttrib *at, const LwAttribKey *key, LwAttribution *ret)
{
    drain(at);
    Entry *e = g_hash_table_lookup(at->by_conn, key);
    if (e == NULL)
        return FALSE;
    *ret = e->a;
    g_hash_table_remove(at->by_conn, key);
    return TRUE;
}
