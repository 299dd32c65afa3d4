/* core-attrib.c - lw.Attribution in protobuf wire format, by hand.
 *
 * The shim links no protobuf runtime; field numbers follow
 * proto/llmwrap.proto, and tests/preload/test-attrib-encode.c decodes the
 * output with the generated code so the two cannot drift apart.
 */
#include "shim-core.h"

#include <stddef.h>
#include <string.h>

enum {
    WIRE_VARINT = 0,
    WIRE_LEN = 2,
};

enum {
    FIELD_VERSION = 1,
    FIELD_RUN_ID = 2,
    FIELD_PID = 3,
    FIELD_PPID = 4,
    FIELD_EXE = 5,
    FIELD_LOCAL_PORT = 6,
    FIELD_LOCAL_ADDR = 7,
    FIELD_REMOTE_ADDR = 8,
    FIELD_REMOTE_PORT = 9,
};

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow;
} Writer;

static void put_byte(Writer *w, uint8_t b)
{
    if (w->len == w->cap) {
        w->overflow = true;
        return;
    }
    w->buf[w->len++] = b;
}

static void put_varint(Writer *w, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_byte(w, (uint8_t)v);
}

static void put_uint(Writer *w, unsigned field, uint64_t v)
{
    put_varint(w, ((uint64_t)field << 3) | WIRE_VARINT);
    put_varint(w, v);
}

static void put_bytes(Writer *w, unsigned field, const char *p, size_t n)
{
    put_varint(w, ((uint64_t)field << 3) | WIRE_LEN);
    put_varint(w, n);
    if (w->overflow || w->cap - w->len < n) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* Length of the longest prefix of p[0..n) that ends on a UTF-8 character
 * boundary, after cutting at `max` bytes. */
static size_t utf8_cut(const char *p, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t cut = max;
    /* p[cut] is the first byte dropped; continuation bytes belong to the
     * character that started before the cut. */
    while (cut > 0 && ((unsigned char)p[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

size_t lw_shim_attrib_encode(const LwShimAttrib *a, uint8_t *buf, size_t cap)
{
    Writer w = {.buf = buf, .cap = cap};
    size_t exe_len = a->exe != NULL ? utf8_cut(a->exe, a->exe_len, LW_SHIM_ATTRIB_EXE_MAX) : 0;

    put_uint(&w, FIELD_VERSION, a->version);
    put_uint(&w, FIELD_RUN_ID, a->run_id);
    put_uint(&w, FIELD_PID, a->pid);
    put_uint(&w, FIELD_PPID, a->ppid);
    put_bytes(&w, FIELD_EXE, a->exe != NULL ? a->exe : "", exe_len);
    put_uint(&w, FIELD_LOCAL_PORT, a->local_port);
    put_bytes(&w, FIELD_LOCAL_ADDR, (const char *)a->local_addr,
              a->local_addr_len <= sizeof a->local_addr ? a->local_addr_len : 0);
    put_bytes(&w, FIELD_REMOTE_ADDR, (const char *)a->remote_addr,
              a->remote_addr_len <= sizeof a->remote_addr ? a->remote_addr_len : 0);
    put_uint(&w, FIELD_REMOTE_PORT, a->remote_port);
    return w.overflow ? 0 : w.len;
}

/* One end: its address bytes and port. Returns false unless `sa` is an
 * AF_INET or AF_INET6 address with a non-zero port. */
static bool get_end(const struct sockaddr *sa, socklen_t len, uint8_t addr[16],
                    uint8_t *ret_addr_len, uint32_t *ret_port)
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(addr, &sin->sin_addr, 4);
        *ret_addr_len = 4;
        *ret_port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6 &&
               len >= offsetof(struct sockaddr_in6, sin6_scope_id)) { /* RFC 2133's size */
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(addr, &sin6->sin6_addr, 16);
        *ret_addr_len = 16;
        *ret_port = ntohs(sin6->sin6_port);
    } else {
        return false;
    }
    return *ret_port != 0;
}

bool lw_shim_attrib_set_ends(LwShimAttrib *a, const struct sockaddr *local, socklen_t local_len,
                             const struct sockaddr *remote, socklen_t remote_len)
{
    LwShimAttrib t = *a;
    if (!get_end(local, local_len, t.local_addr, &t.local_addr_len, &t.local_port) ||
        !get_end(remote, remote_len, t.remote_addr, &t.remote_addr_len, &t.remote_port))
        return false;
    /* A base URL of http://0.0.0.0:PORT: Linux connects the unspecified
     * address to the socket's own (loopback unless it was bound), which is
     * the end the collector sees. */
    static const uint8_t unspecified[16] = {0};
    static const uint8_t v4_unspecified[16] = {[10] = 0xff, [11] = 0xff};
    if (memcmp(t.remote_addr, unspecified, t.remote_addr_len) == 0 ||
        (t.remote_addr_len == 16 && memcmp(t.remote_addr, v4_unspecified, 16) == 0)) {
        memcpy(t.remote_addr, t.local_addr, t.local_addr_len);
        t.remote_addr_len = t.local_addr_len;
    }
    *a = t;
    return true;
}
