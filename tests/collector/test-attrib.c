/* test-attrib.c - the collector joins each attribution message to exactly
 * the connection it names: both ends, not the client's port alone (Linux
 * gives one local port to connections to different synthetic addresses).
 * Real loopback connections and a real attribution socket; no loop runs. */
#include "attrib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "llmwrap.pb-c.h"

/* ---- messages ---- */

typedef struct {
    guint64 run_id;
    gboolean no_addresses; /* as a version 1 shim sent it */
    struct sockaddr_storage local, remote;
} Message;

static void end_bytes(const struct sockaddr_storage *ss, ProtobufCBinaryData *addr, uint32_t *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        addr->data = (uint8_t *)&sin->sin_addr;
        addr->len = 4;
        *port = ntohs(sin->sin_port);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        addr->data = (uint8_t *)&sin6->sin6_addr;
        addr->len = 16;
        *port = ntohs(sin6->sin6_port);
    }
}

/* Packs `m` with protobuf-c. Transfer full. */
static GBytes *pack(const Message *m)
{
    Lw__Attribution a = LW__ATTRIBUTION__INIT;
    a.has_version = TRUE;
    a.version = m->no_addresses ? 1 : 2;
    a.has_run_id = TRUE;
    a.run_id = m->run_id;
    a.has_pid = TRUE;
    a.pid = 4242;
    a.exe = (char *)"/usr/bin/test";
    a.has_local_port = TRUE;
    end_bytes(&m->local, &a.local_addr, &a.local_port);
    if (!m->no_addresses) {
        a.has_local_addr = a.has_remote_addr = a.has_remote_port = TRUE;
        end_bytes(&m->remote, &a.remote_addr, &a.remote_port);
    }
    size_t n = lw__attribution__get_packed_size(&a);
    guint8 *buf = g_malloc(n);
    lw__attribution__pack(&a, buf);
    return g_bytes_new_take(buf, n);
}

/* ---- loopback sockets ---- */

static struct sockaddr_in inet(const char *addr, guint16 port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    g_assert_cmpint(inet_pton(AF_INET, addr, &sin.sin_addr), ==, 1);
    return sin;
}

static int listen_on(const char *addr, guint16 port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = inet(addr, port);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof sin), ==, 0);
    g_assert_cmpint(listen(fd, 8), ==, 0);
    return fd;
}

static guint16 port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&ss, &len), ==, 0);
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A client connection to `to` (IPv4 text), from `local_port` when not 0 (as
 * Linux may choose by itself for connections to different addresses);
 * `v6`: an AF_INET6 socket dialling the v4-mapped address, as the shim
 * redirects one. Fills the message as the shim would. */
static int dial(const char *to, guint16 port, guint16 local_port, gboolean v6, Message *m)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(fd, >=, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage dst = {0};
    socklen_t dst_len;
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&dst;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        g_autofree char *mapped = g_strdup_printf("::ffff:%s", to);
        g_assert_cmpint(inet_pton(AF_INET6, mapped, &sin6->sin6_addr), ==, 1);
        dst_len = sizeof *sin6;
    } else {
        struct sockaddr_in sin = inet(to, port);
        memcpy(&dst, &sin, sizeof sin);
        dst_len = sizeof sin;
    }
    if (local_port != 0) {
        struct sockaddr_in sin = inet("127.0.0.1", local_port);
        g_assert_false(v6);
        g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof sin), ==, 0);
    }
    g_assert_cmpint(connect(fd, (struct sockaddr *)&dst, dst_len), ==, 0);
    socklen_t len = sizeof m->local;
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&m->local, &len), ==, 0);
    memcpy(&m->remote, &dst, dst_len);
    return fd;
}

static void accept_key(int listener, LwAttribKey *key)
{
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_true(lw_attrib_key_from_socket(fd, key));
    close(fd);
}

/* ---- the attribution socket ---- */

typedef struct {
    char *dir;
    char *path;
    LwServer server;
    LwAttrib *attrib;
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->dir = g_dir_make_tmp("lw-attrib-XXXXXX", &error);
    g_assert_no_error(error);
    f->path = g_build_filename(f->dir, "attrib.sock", NULL);
    f->server.loop = lw_loop_new(&error);
    g_assert_no_error(error);
    f->server.config = lw_config_new_default();
    f->attrib = lw_attrib_new(&f->server, f->path, &error);
    g_assert_no_error(error);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
    lw_attrib_free(f->attrib);
    lw_config_free(f->server.config);
    lw_loop_free(f->server.loop);
    rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

/* Sends one message the way the shim does: a connection, one packet. */
static void send_message(Fixture *f, const Message *m)
{
    g_autoptr(GBytes) b = pack(m);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    g_strlcpy(sun.sun_path, f->path, sizeof sun.sun_path);
    g_assert_cmpint(connect(s, (struct sockaddr *)&sun, sizeof sun), ==, 0);
    gsize n;
    const void *p = g_bytes_get_data(b, &n);
    g_assert_cmpint(send(s, p, n, MSG_NOSIGNAL), ==, (ssize_t)n);
    close(s);
}

static guint64 taken_run(Fixture *f, const LwAttribKey *key)
{
    LwAttribution a;
    if (!lw_attrib_take(f->attrib, key, &a))
        return 0;
    g_assert_cmpuint(a.pid, ==, 4242);
    g_assert_cmpstr(a.exe, ==, "/usr/bin/test");
    return a.run_id;
}

/* Two connections from one local port to two providers' addresses, under
 * two runs: each is booked to its own run, whichever message came last. */
static void test_same_port_two_addresses(Fixture *f, gconstpointer data)
{
    int l1 = listen_on("127.241.0.1", 0);
    guint16 port = port_of(l1);
    int l4 = listen_on("127.241.0.4", port);
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in any = inet("127.0.0.1", 0);
    g_assert_cmpint(bind(probe, (struct sockaddr *)&any, sizeof any), ==, 0);
    guint16 local_port = port_of(probe);
    close(probe);

    Message m1 = {.run_id = 11}, m4 = {.run_id = 44};
    int c1 = dial("127.241.0.1", port, local_port, FALSE, &m1);
    int c4 = dial("127.241.0.4", port, local_port, FALSE, &m4);
    g_assert_cmpuint(port_of(c1), ==, port_of(c4));
    send_message(f, &m1);
    send_message(f, &m4);
    LwAttribKey k1, k4;
    accept_key(l1, &k1);
    accept_key(l4, &k4);

    g_assert_cmpuint(taken_run(f, &k4), ==, 44);
    g_assert_cmpuint(taken_run(f, &k1), ==, 11);
    /* Taken once: nothing is left for a later connection to inherit. */
    g_assert_cmpuint(taken_run(f, &k1), ==, 0);
    g_assert_cmpuint(taken_run(f, &k4), ==, 0);
    close(c1);
    close(c4);
    close(l1);
    close(l4);
}

/* An AF_INET6 client socket dialling a v4-mapped synthetic address names
 * the same connection as the AF_INET socket the collector accepts. */
static void test_v4_mapped_client(Fixture *f, gconstpointer data)
{
    int l = listen_on("127.241.0.2", 0);
    Message m = {.run_id = 22};
    int c = dial("127.241.0.2", port_of(l), 0, TRUE, &m);
    g_assert_cmpint(m.local.ss_family, ==, AF_INET6);
    send_message(f, &m);
    LwAttribKey k;
    accept_key(l, &k);
    g_assert_cmpuint(taken_run(f, &k), ==, 22);
    close(c);
    close(l);
}

/* A message that names another connection, or only a port (a version 1
 * shim), attributes nothing. */
static void test_no_loose_match(Fixture *f, gconstpointer data)
{
    int l = listen_on("127.241.0.1", 0);
    Message m = {.run_id = 33};
    int c = dial("127.241.0.1", port_of(l), 0, FALSE, &m);
    LwAttribKey k;
    accept_key(l, &k);

    Message other = m;
    ((struct sockaddr_in *)&other.remote)->sin_addr.s_addr = htonl(0x7ff10004); /* .0.4 */
    send_message(f, &other);
    Message port_only = m;
    port_only.no_addresses = TRUE;
    send_message(f, &port_only);
    g_assert_cmpuint(taken_run(f, &k), ==, 0);

    send_message(f, &m);
    g_assert_cmpuint(taken_run(f, &k), ==, 33);
    close(c);
    close(l);
}

static void test_decode(void)
{
    Message m = {.run_id = 7};
    struct sockaddr_in local = inet("127.0.0.1", 50123), remote = inet("127.241.0.4", 38017);
    memcpy(&m.local, &local, sizeof local);
    memcpy(&m.remote, &remote, sizeof remote);
    g_autoptr(GBytes) b = pack(&m);
    LwAttribution a;
    LwAttribKey key;
    g_assert_true(lw_attrib_decode(g_bytes_get_data(b, NULL), g_bytes_get_size(b), &a, &key));
    g_assert_cmpuint(a.run_id, ==, 7);
    static const guint8 lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    static const guint8 synth[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 241, 0, 4};
    g_assert_cmpmem(key.client_addr, 16, lo, 16);
    g_assert_cmpmem(key.server_addr, 16, synth, 16);
    g_assert_cmpuint(key.client_port, ==, 50123);
    g_assert_cmpuint(key.server_port, ==, 38017);

    m.no_addresses = TRUE;
    g_autoptr(GBytes) v1 = pack(&m);
    g_assert_false(lw_attrib_decode(g_bytes_get_data(v1, NULL), g_bytes_get_size(v1), &a, &key));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/attrib/decode", test_decode);
    g_test_add("/attrib/same-port-two-addresses", Fixture, NULL, fixture_set_up,
               test_same_port_two_addresses, fixture_tear_down);
    g_test_add("/attrib/v4-mapped-client", Fixture, NULL, fixture_set_up, test_v4_mapped_client,
               fixture_tear_down);
    g_test_add("/attrib/no-loose-match", Fixture, NULL, fixture_set_up, test_no_loose_match,
               fixture_tear_down);
    return g_test_run();
}
