/* test-attrib-encode.c - the shim's hand-written lw.Attribution encoding
 * decodes, with protobuf-c's generated code, to the values it was given.
 * Keeps preload/core-attrib.c and proto/llmwrap.proto in step. */
#include "llmwrap.pb-c.h"
#include "shim-core.h"

#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

typedef struct {
    const char *name;
    LwShimAttrib in;
    size_t exe_expect_len; /* bytes of in.exe that survive */
} EncodeCase;

/* 600 bytes: "/" + 599 'a' */
static char long_exe[601];
/* A path whose 512-byte cut falls inside a 3-byte UTF-8 character. */
static char utf8_exe[601];

static EncodeCase cases[] = {
    {"zeros", {.version = 0, .exe = "", .exe_len = 0}, 0},
    {"null-exe", {.version = 1, .run_id = 7, .exe = NULL}, 0},
    {"typical",
     {.version = 2,
      .run_id = 42,
      .pid = 4242,
      .ppid = 1,
      .exe = "/usr/bin/python3.11",
      .exe_len = 19,
      .local_addr = {127, 0, 0, 1},
      .local_addr_len = 4,
      .local_port = 50123,
      .remote_addr = {127, 241, 0, 4},
      .remote_addr_len = 4,
      .remote_port = 38017},
     19},
    {"ipv6",
     {.version = 2,
      .exe = "/x",
      .exe_len = 2,
      .local_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1},
      .local_addr_len = 16,
      .local_port = 1,
      .remote_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 241, 0, 1},
      .remote_addr_len = 16,
      .remote_port = 65535},
     2},
    {"maxima",
     {.version = UINT32_MAX,
      .run_id = UINT64_MAX,
      .pid = UINT32_MAX,
      .ppid = UINT32_MAX,
      .exe = "/x",
      .exe_len = 2,
      .local_addr = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                     0xff, 0xff, 0xff},
      .local_addr_len = 16,
      .local_port = 65535,
      .remote_addr = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                      0xff, 0xff, 0xff},
      .remote_addr_len = 16,
      .remote_port = UINT32_MAX},
     2},
    {"long-exe-and-addresses",
     {.version = 2,
      .exe = long_exe,
      .exe_len = 600,
      .local_addr_len = 16,
      .local_port = UINT32_MAX,
      .remote_addr_len = 16,
      .remote_port = UINT32_MAX},
     512},
    {"varint-edges",
     {.version = 127,
      .run_id = 128,
      .pid = 16383,
      .ppid = 16384,
      .exe = "/x",
      .exe_len = 2,
      .local_port = 255},
     2},
    {"long-exe", {.version = 1, .exe = long_exe, .exe_len = 600}, 512},
    {"exactly-512", {.version = 1, .exe = long_exe, .exe_len = 512}, 512},
    {"utf8-boundary", {.version = 1, .exe = utf8_exe, .exe_len = 600}, 510},
};

static void test_encode_case(gconstpointer data)
{
    const EncodeCase *c = data;
    uint8_t buf[LW_SHIM_ATTRIB_MAX];
    size_t n = lw_shim_attrib_encode(&c->in, buf, sizeof buf);
    g_assert_cmpuint(n, >, 0);

    Lw__Attribution *m = lw__attribution__unpack(NULL, n, buf);
    g_assert_nonnull(m);
    g_assert_true(m->has_version && m->has_run_id && m->has_pid && m->has_ppid &&
                  m->has_local_port && m->has_local_addr && m->has_remote_addr &&
                  m->has_remote_port);
    g_assert_cmpuint(m->version, ==, c->in.version);
    g_assert_cmpuint(m->run_id, ==, c->in.run_id);
    g_assert_cmpuint(m->pid, ==, c->in.pid);
    g_assert_cmpuint(m->ppid, ==, c->in.ppid);
    g_assert_cmpuint(m->local_port, ==, c->in.local_port);
    g_assert_cmpmem(m->local_addr.data, m->local_addr.len, c->in.local_addr, c->in.local_addr_len);
    g_assert_cmpmem(m->remote_addr.data, m->remote_addr.len, c->in.remote_addr,
                    c->in.remote_addr_len);
    g_assert_cmpuint(m->remote_port, ==, c->in.remote_port);
    g_assert_nonnull(m->exe);
    g_assert_cmpuint(strlen(m->exe), ==, c->exe_expect_len);
    g_assert_cmpuint(strlen(m->exe), <=, LW_SHIM_ATTRIB_EXE_MAX);
    if (c->exe_expect_len > 0)
        g_assert_cmpmem(m->exe, c->exe_expect_len, c->in.exe, c->exe_expect_len);
    g_assert_true(g_utf8_validate(m->exe, -1, NULL));
    lw__attribution__free_unpacked(m, NULL);

    /* Every shorter buffer is refused, never written past. */
    for (size_t cap = 0; cap < n; cap++) {
        g_autofree uint8_t *small = g_malloc(cap + 1);
        g_assert_cmpuint(lw_shim_attrib_encode(&c->in, small, cap), ==, 0);
    }
}

/* Both ends are taken from sockaddrs as the hook has them; anything the
 * collector could not match the message by is refused. */
static void test_set_ends(void)
{
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(50123)};
    struct sockaddr_in remote = {.sin_family = AF_INET, .sin_port = htons(38017)};
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    inet_pton(AF_INET, "127.241.0.4", &remote.sin_addr);
    LwShimAttrib a = {.version = 2};
    g_assert_true(lw_shim_attrib_set_ends(&a, (struct sockaddr *)&local, sizeof local,
                                          (struct sockaddr *)&remote, sizeof remote));
    static const uint8_t lo[4] = {127, 0, 0, 1}, synth[4] = {127, 241, 0, 4};
    g_assert_cmpmem(a.local_addr, a.local_addr_len, lo, 4);
    g_assert_cmpmem(a.remote_addr, a.remote_addr_len, synth, 4);
    g_assert_cmpuint(a.local_port, ==, 50123);
    g_assert_cmpuint(a.remote_port, ==, 38017);

    /* An AF_INET6 socket keeps its v4-mapped addresses (the collector maps
     * them). */
    struct sockaddr_in6 local6 = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};
    struct sockaddr_in6 remote6 = {.sin6_family = AF_INET6, .sin6_port = htons(38017)};
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &local6.sin6_addr);
    inet_pton(AF_INET6, "::ffff:127.241.0.1", &remote6.sin6_addr);
    g_assert_true(lw_shim_attrib_set_ends(&a, (struct sockaddr *)&local6, sizeof local6,
                                          (struct sockaddr *)&remote6, sizeof remote6));
    g_assert_cmpmem(a.local_addr, a.local_addr_len, &local6.sin6_addr, 16);
    g_assert_cmpmem(a.remote_addr, a.remote_addr_len, &remote6.sin6_addr, 16);
    g_assert_cmpuint(a.local_port, ==, 40000);
    /* connect() takes an IPv6 address without its scope id (RFC 2133). */
    g_assert_true(lw_shim_attrib_set_ends(&a, (struct sockaddr *)&local6, sizeof local6,
                                          (struct sockaddr *)&remote6, 24));

    /* A connect() to the unspecified address (a base URL of
     * http://0.0.0.0:PORT) reached the socket's own address: that is the
     * end the collector sees. */
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(4000)};
    g_assert_true(lw_shim_attrib_set_ends(&a, (struct sockaddr *)&local, sizeof local,
                                          (struct sockaddr *)&any, sizeof any));
    g_assert_cmpmem(a.remote_addr, a.remote_addr_len, lo, 4);
    g_assert_cmpuint(a.remote_port, ==, 4000);
    struct sockaddr_in6 any6 = {.sin6_family = AF_INET6, .sin6_port = htons(4000)};
    for (int mapped = 0; mapped < 2; mapped++) {
        if (mapped)
            inet_pton(AF_INET6, "::ffff:0.0.0.0", &any6.sin6_addr);
        g_assert_true(lw_shim_attrib_set_ends(&a, (struct sockaddr *)&local6, sizeof local6,
                                              (struct sockaddr *)&any6, sizeof any6));
        g_assert_cmpmem(a.remote_addr, a.remote_addr_len, &local6.sin6_addr, 16);
    }

    /* Refused, and `a` left as it was: no port, a short sockaddr, another
     * family, no address at all. */
    LwShimAttrib before = a;
    struct sockaddr_in no_port = local;
    no_port.sin_port = 0;
    g_assert_false(lw_shim_attrib_set_ends(&a, (struct sockaddr *)&no_port, sizeof no_port,
                                           (struct sockaddr *)&remote, sizeof remote));
    g_assert_false(lw_shim_attrib_set_ends(&a, (struct sockaddr *)&local, sizeof local,
                                           (struct sockaddr *)&remote, sizeof remote - 1));
    struct sockaddr_un unix_sa = {.sun_family = AF_UNIX};
    g_assert_false(lw_shim_attrib_set_ends(&a, (struct sockaddr *)&unix_sa, sizeof unix_sa,
                                           (struct sockaddr *)&remote, sizeof remote));
    g_assert_false(lw_shim_attrib_set_ends(&a, NULL, 0, (struct sockaddr *)&remote, sizeof remote));
    g_assert_cmpmem(a.local_addr, a.local_addr_len, before.local_addr, before.local_addr_len);
    g_assert_cmpmem(a.remote_addr, a.remote_addr_len, before.remote_addr, before.remote_addr_len);
    g_assert_cmpuint(a.local_port, ==, before.local_port);
    g_assert_cmpuint(a.remote_port, ==, before.remote_port);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    long_exe[0] = '/';
    memset(long_exe + 1, 'a', 599);
    /* "/" + 509 'b' + "€" (3 bytes at offsets 510..512) + ... */
    utf8_exe[0] = '/';
    memset(utf8_exe + 1, 'b', 509);
    for (size_t i = 510; i + 3 <= 600; i += 3)
        memcpy(utf8_exe + i, "\xe2\x82\xac", 3);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/shim/attrib/%s", cases[i].name);
        g_test_add_data_func(path, &cases[i], test_encode_case);
    }
    g_test_add_func("/shim/attrib/set-ends", test_set_ends);
    return g_test_run();
}
