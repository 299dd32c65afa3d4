/* fuzz-http1.c - libFuzzer target for common/http1.c.
 *
 * The input is what a client might send on a connection: a request head and
 * whatever follows it. Besides crashes and sanitizer reports, the target
 * aborts when a result breaks the contract in http1.h: a slice outside the
 * buffer, a length beyond the input, or an answer that depends on how the
 * bytes were split across reads.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define MAX_HEAD    (64 * 1024)
#define MAX_HEADERS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool within(const char *buf, size_t len, const char *p, size_t n)
{
    return p >= buf && (size_t)(p - buf) <= len && n <= len - (size_t)(p - buf);
}

/* A split point derived from the input, so the fuzzer can steer it. */
static size_t pick_split(const uint8_t *data, size_t size, size_t range)
{
    if (size < 2)
        return range;
    size_t v = ((size_t)data[size - 1] << 8) | data[size - 2];
    return v % (range + 1);
}

/* Copies into an exact-size allocation so that reads past `len` trip ASan. */
static char *dup_exact(const void *src, size_t len)
{
    char *p = malloc(len ? len : 1);
    require(p != NULL);
    if (len)
        memcpy(p, src, len);
    return p;
}

static ssize_t parse(const char *buf, size_t len, size_t last_len, LwHttpRequest *req,
                     LwHttpHeader *headers)
{
    memset(req, 0, sizeof *req);
    req->headers = headers;
    req->max_headers = MAX_HEADERS;
    ssize_t r = lw_http1_parse_request(buf, len, last_len, MAX_HEAD, req);
    if (r <= 0) {
        require(r < 0 && r >= LW_HTTP1_NOT_IMPLEMENTED);
        return r;
    }

    size_t head = (size_t)r;
    require(head <= len && head <= MAX_HEAD);
    require(req->method_len > 0 && within(buf, head, req->method, req->method_len));
    require(req->target_len > 0 && within(buf, head, req->target, req->target_len));
    require(req->minor_version == 0 || req->minor_version == 1);
    require(req->num_headers <= MAX_HEADERS);
    for (size_t i = 0; i < req->num_headers; i++) {
        const LwHttpHeader *h = &req->headers[i];
        require(h->name_len > 0 && within(buf, head, h->name, h->name_len));
        require(within(buf, head, h->value, h->value_len));
    }
    for (size_t i = 0; i < req->num_headers; i++) {
        const LwHttpHeader *h = &req->headers[i];
        bool hop = lw_http1_is_hop_by_hop(req->headers, req->num_headers, h->name, h->name_len);
        require(hop || !lw_http1_is_hop_by_hop(NULL, 0, h->name, h->name_len));
        require(lw_http1_find_header(req, "host") == NULL || req->host != NULL);
    }
    if (req->host)
        require(within(buf, head, req->host, req->host_len));
    else
        require(req->minor_version == 0);
    require(req->body_kind != LW_HTTP1_BODY_CHUNKED || req->minor_version == 1);
    LwHttpTarget t;
    if (lw_http1_split_target(req->target, req->target_len, &t)) {
        require(within(req->target, req->target_len, t.path, t.path_len));
        require(t.authority == NULL ||
                (t.authority_len > 0 &&
                 within(req->target, req->target_len, t.authority, t.authority_len)));
        require(t.authority != NULL || (t.path_len > 0 && t.path[0] == '/'));
        /* a normal path has no fragment (ASan: reads stay inside it) */
        require(!lw_http1_path_is_normal(t.path, t.path_len) ||
                memchr(t.path, '#', t.path_len) == NULL);
    }
    return r;
}

typedef struct {
    ssize_t result; /* >= 0: done; else INCOMPLETE or BAD_REQUEST */
    char *body;     /* decoded bytes, size input length */
    size_t body_len;
    char *leftover; /* bytes after the body, size input length */
    size_t leftover_len;
} Decoded;

/* Decodes raw[0..len) fed as raw[0..cut) then raw[cut..len). */
static Decoded decode(const char *raw, size_t len, size_t cut)
{
    Decoded out = {LW_HTTP1_INCOMPLETE, dup_exact("", len), 0, dup_exact("", len), 0};
    LwChunkedDecoder d;
    lw_http1_chunked_init(&d);
    size_t piece_at[2] = {0, cut}, piece_len[2] = {cut, len - cut};
    for (int i = 0; i < 2; i++) {
        const char *src = raw + piece_at[i];
        size_t n = piece_len[i];
        if (out.result >= 0) {
            memcpy(out.leftover + out.leftover_len, src, n);
            out.leftover_len += n;
            continue;
        }
        char *buf = dup_exact(src, n);
        size_t dec = n;
        ssize_t r = lw_http1_chunked_decode(&d, buf, &dec);
        require(dec <= n);
        memcpy(out.body + out.body_len, buf, dec);
        out.body_len += dec;
        if (r >= 0) {
            require((size_t)r <= n - dec);
            memcpy(out.leftover + out.leftover_len, buf + dec, (size_t)r);
            out.leftover_len += (size_t)r;
        } else {
            require(r == LW_HTTP1_INCOMPLETE || r == LW_HTTP1_BAD_REQUEST);
        }
        out.result = r >= 0 ? 0 : r;
        free(buf);
        if (r == LW_HTTP1_BAD_REQUEST)
            break;
    }
    require(out.body_len + out.leftover_len <= len);
    if (out.result != LW_HTTP1_BAD_REQUEST)
        require(lw_http1_chunked_total(&d) == out.body_len);
    return out;
}

static void check_chunked(const uint8_t *data, size_t size, const char *raw, size_t len)
{
    Decoded whole = decode(raw, len, len);
    Decoded split = decode(raw, len, pick_split(data, size, len));
    require(whole.result == split.result);
    require(whole.body_len == split.body_len);
    require(memcmp(whole.body, split.body, whole.body_len) == 0);
    if (whole.result >= 0) {
        require(whole.leftover_len == split.leftover_len);
        require(memcmp(whole.leftover, split.leftover, whole.leftover_len) == 0);
    }
    free(whole.body);
    free(whole.leftover);
    free(split.body);
    free(split.leftover);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static LwHttpHeader headers[MAX_HEADERS];
    LwHttpRequest req;
    char *buf = dup_exact(data, size);

    ssize_t r = parse(buf, size, 0, &req, headers);

    /* A prefix answers "need more" or the final answer, and resuming from
     * the prefix with last_len gives the final answer. */
    size_t cut = pick_split(data, size, size);
    char *prefix = dup_exact(data, cut);
    ssize_t rp = parse(prefix, cut, 0, &req, headers);
    free(prefix);
    if (rp == LW_HTTP1_INCOMPLETE)
        require(parse(buf, size, cut, &req, headers) == r);
    else
        require(rp == r);

    /* Parse again so `req` describes the whole buffer. */
    r = parse(buf, size, 0, &req, headers);
    if (r > 0 && req.body_kind == LW_HTTP1_BODY_CHUNKED) {
        check_chunked(data, size, buf + r, size - (size_t)r);
    } else if (r <= 0) {
        /* Exercise the decoder even when the mutator broke the head. */
        check_chunked(data, size, buf, size);
    }

    free(buf);
    return 0;
}
