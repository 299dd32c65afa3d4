/* test-attrib-encode.c - the shim's hand-written lw.Attribution encoding
 * decodes, with protobuf-c's generated code, to the values it was given.
 * Keeps preload/core-attrib.c and proto/llmwrap.proto in step. */
#include "llmwrap.pb-c.h"
#include "shim-core.h"

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
     {.version = 1,
      .run_id = 42,
      .pid = 4242,
      .ppid = 1,
      .exe = "/usr/bin/python3.11",
      .exe_len = 19,
      .local_port = 50123},
     19},
    {"maxima",
     {.version = UINT32_MAX,
      .run_id = UINT64_MAX,
      .pid = UINT32_MAX,
      .ppid = UINT32_MAX,
      .exe = "/x",
      .exe_len = 2,
      .local_port = 65535},
     2},
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
                  m->has_local_port);
    g_assert_cmpuint(m->version, ==, c->in.version);
    g_assert_cmpuint(m->run_id, ==, c->in.run_id);
    g_assert_cmpuint(m->pid, ==, c->in.pid);
    g_assert_cmpuint(m->ppid, ==, c->in.ppid);
    g_assert_cmpuint(m->local_port, ==, c->in.local_port);
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
    return g_test_run();
}
