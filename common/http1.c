/* http1.c - HTTP/1.x request-head parser and chunked body decoder.
 *
 * Plain C (libc only): the simulated provider and the fuzz targets link it
 * without GLib. Nothing here allocates or does I/O.
 *
 * Decisions the header leaves to the implementation:
 *
 * - Lines end in CRLF, everywhere (request line, fields, chunk-size lines,
 *   trailers). RFC 9112 §2.2 lets a recipient accept a bare LF; we do not,
 *   because a terminator that one hop accepts and another does not is exactly
 *   how requests get smuggled, and every real client sends CRLF. A bare LF
 *   and a bare CR are both LW_HTTP1_BAD_REQUEST.
 * - At most MAX_EMPTY_LINES empty lines are skipped before the request line.
 * - Content-Length and chunk sizes are capped at MAX_BODY (2^62) so
 *   that callers can hold any body size in an off_t without overflow.
 * - Transfer-Encoding: a final coding other than "chunked" (or "chunked"
 *   applied twice, or not last) is 400 per RFC 9112 §6.3 rule 4: the length
 *   cannot be determined. When the final coding is "chunked" but another
 *   coding precedes it ("gzip, chunked"), the framing is sound but we cannot
 *   decode the content for upstream, so that is 501 (RFC 9112 §6.1).
 * - Other 400 causes beat 501, so a request is never answered 501 when it is
 *   also malformed.
 * - Host must be a syntactically valid uri-host[:port] (RFC 9112 §3.2 makes an
 *   invalid one a 400); it is not compared with an absolute-form target.
 * - "Expect: 100-continue" in a 1.0 request is ignored (RFC 9110 §10.1.1).
 * - Chunk extensions are skipped without parsing their grammar: after the
 *   size, optional whitespace, then ';' and any field-value octets up to the
 *   CRLF. Trailer fields must be well-formed field lines.
 * - A decoder that failed stays failed; one that finished returns everything
 *   fed afterwards as leftover. On error, *len holds the bytes decoded by
 *   that call before the error.
 */
#include "http1.h"

#include <string.h>

#define MAX_EMPTY_LINES   4
#define MAX_BODY          ((uint64_t)1 << 62)
#define CHUNK_LINE_MAX    1024 /* chunk-size line, CRLF excluded */
#define CHUNK_TRAILER_MAX 8192 /* trailer field lines, CRLFs included */

/* ---- Character classes ---- */

enum {
    C_TCHAR = 1,  /* token character (RFC 9110 §5.6.2) */
    C_VALUE = 2,  /* field-value octet: VCHAR, obs-text, SP, HTAB */
    C_TARGET = 4, /* request-target octet: visible ASCII */
    C_HOST = 8,   /* uri-host / port octet: unreserved, sub-delims, ":[]%" */
};

static const unsigned char char_class[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    2,  15, 6,  7,  15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 6,  /* 0x20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 6,  14, 6,  6,  /* 0x30 */
    6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 6,  14, 7,  15, /* 0x50 */
    7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x80 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x90 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xa0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xb0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xc0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xd0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xe0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xf0 */
};

static inline bool has_class(char c, unsigned cls)
{
    return (char_class[(unsigned char)c] & cls) != 0;
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

static bool ascii_case_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    }
    return true;
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!has_class(s[i], C_TCHAR))
            return false;
    }
    return true;
}

bool lw_http1_name_is(const char *name, size_t name_len, const char *lit)
{
    return strlen(lit) == name_len && ascii_case_eq(name, lit, name_len);
}

/* lw_http1_name_is for a string literal, without the strlen: every field of
 * every request goes through a few of these. */
#define NAME_IS(name, name_len, lit)                                                               \
    ((name_len) == sizeof(lit) - 1 && ascii_case_eq((name), (lit), sizeof(lit) - 1))

/* Iterates over the elements of a comma-separated list (RFC 9110 §5.6.1),
 * each trimmed of OWS; empty elements are returned as such so each caller
 * decides whether they matter. Returns false when the list is exhausted. */
static bool list_next(const char **pos, const char *end, const char **ret_elem, size_t *ret_len)
{
    const char *p = *pos;
    if (p == NULL)
        return false;
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    while (p < stop && is_ows(*p))
        p++;
    const char *q = stop;
    while (q > p && is_ows(q[-1]))
        q--;
    *ret_elem = p;
    *ret_len = (size_t)(q - p);
    *pos = comma ? comma + 1 : NULL;
    return true;
}

/* ---- Request head ---- */

/* Looks for the blank line that ends the head in buf[from..limit), checking
 * line endings on the way so that a bare CR or LF fails as soon as it
 * arrives. `start` is where the request line begins (after skipped empty
 * lines). Returns the head length, 0 if the blank line is not there yet, or
 * LW_HTTP1_BAD_REQUEST. A CR in the last position is left undecided. */
static ssize_t find_head_end(const char *buf, size_t start, size_t from, size_t limit)
{
    for (size_t i = from; i < limit; i++) {
        char c = buf[i];
        if ((unsigned char)c > '\r')
            continue;
        if (c == '\r') {
            if (i + 1 < limit && buf[i + 1] != '\n')
                return LW_HTTP1_BAD_REQUEST;
        } else if (c == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return LW_HTTP1_BAD_REQUEST;
            if (i >= start + 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
                return (ssize_t)(i + 1);
        }
    }
    return 0;
}

/* Content-Length (RFC 9110 §8.6): 1*DIGIT; a list or repeated field is
 * accepted only when every value is the same. */
static int parse_content_length(const LwHttpHeader *h, bool *have, uint64_t *value)
{
    const char *pos = h->value, *end = h->value + h->value_len, *e;
    size_t n;
    while (list_next(&pos, end, &e, &n)) {
        if (n == 0)
            return LW_HTTP1_BAD_REQUEST;
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            if (e[i] < '0' || e[i] > '9')
                return LW_HTTP1_BAD_REQUEST;
            uint64_t d = (uint64_t)(e[i] - '0');
            if (v > (MAX_BODY - d) / 10)
                return LW_HTTP1_BAD_REQUEST;
            v = v * 10 + d;
        }
        if (*have && v != *value)
            return LW_HTTP1_BAD_REQUEST;
        *have = true;
        *value = v;
    }
    return 0;
}

typedef struct {
    bool present;
    bool last_is_chunked;
    bool chunked_misplaced; /* chunked applied twice or followed by a coding */
    bool other_coding;
} TeState;

/* Transfer-Encoding (RFC 9112 §6.1): the list may span several fields. */
static int parse_transfer_encoding(const LwHttpHeader *h, TeState *te)
{
    const char *pos = h->value, *end = h->value + h->value_len, *e;
    size_t n;
    te->present = true;
    while (list_next(&pos, end, &e, &n)) {
        if (n == 0)
            continue;
        size_t tok = 0;
        while (tok < n && has_class(e[tok], C_TCHAR))
            tok++;
        if (tok == 0)
            return LW_HTTP1_BAD_REQUEST;
        if (tok < n) {
            /* Only parameters may follow the coding name. */
            size_t i = tok;
            while (i < n && is_ows(e[i]))
                i++;
            if (i == n || e[i] != ';')
                return LW_HTTP1_BAD_REQUEST;
        }
        if (te->last_is_chunked)
            te->chunked_misplaced = true;
        if (NAME_IS(e, tok, "chunked")) {
            if (tok != n) /* chunked takes no parameters */
                return LW_HTTP1_BAD_REQUEST;
            te->last_is_chunked = true;
        } else {
            te->other_coding = true;
            te->last_is_chunked = false;
        }
    }
    return 0;
}

static bool is_valid_host(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!has_class(s[i], C_HOST))
            return false;
    }
    return true;
}

bool lw_http1_split_target(const char *target, size_t len, LwHttpTarget *out)
{
    *out = (LwHttpTarget){0};
    if (len > 0 && target[0] == '/') {
        out->path = target;
        out->path_len = len;
        return true;
    }
    size_t scheme;
    if (len >= 7 && NAME_IS(target, 7, "http://"))
        scheme = 7;
    else if (len >= 8 && NAME_IS(target, 8, "https://"))
        scheme = 8;
    else
        return false;
    const char *auth = target + scheme, *end = target + len;
    const char *p = auth;
    while (p < end && *p != '/' && *p != '?')
        p++;
    /* is_valid_host rejects '@', so userinfo is refused with the rest. */
    if (p == auth || !is_valid_host(auth, (size_t)(p - auth)))
        return false;
    out->authority = auth;
    out->authority_len = (size_t)(p - auth);
    out->path = p;
    out->path_len = (size_t)(end - p);
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool lw_http1_path_is_normal(const char *path, size_t len)
{
    if (memchr(path, '#', len) != NULL)
        return false;
    const char *q = memchr(path, '?', len);
    size_t n = q != NULL ? (size_t)(q - path) : len;
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '%' && i + 2 < n) {
            int hi = hex_value(path[i + 1]), lo = hex_value(path[i + 2]);
            if (hi >= 0 && lo >= 0) {
                char c = (char)(hi * 16 + lo);
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~')
                    return false;
            }
        }
        if (path[i] != '/')
            continue;
        /* the segment after this slash: "." or ".." up to the next '/' or the end */
        size_t s = i + 1, e = s;
        while (e < n && path[e] != '/')
            e++;
        if ((e - s == 1 && path[s] == '.') || (e - s == 2 && path[s] == '.' && path[s + 1] == '.'))
            return false;
    }
    return true;
}

/* Fills the derived fields of `req` from its parsed fields. */
static int derive_semantics(LwHttpRequest *req)
{
    bool have_cl = false, conn_close = false, conn_keep_alive = false, expect = false;
    uint64_t cl = 0;
    size_t hosts = 0;
    TeState te = {0};

    req->host = NULL;
    req->host_len = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const LwHttpHeader *h = &req->headers[i];
        int rc = 0;
        const char *pos = h->value, *end = h->value + h->value_len, *e;
        size_t n;

        if (NAME_IS(h->name, h->name_len, "content-length")) {
            rc = parse_content_length(h, &have_cl, &cl);
        } else if (NAME_IS(h->name, h->name_len, "transfer-encoding")) {
            rc = parse_transfer_encoding(h, &te);
        } else if (NAME_IS(h->name, h->name_len, "connection")) {
            while (list_next(&pos, end, &e, &n)) {
                if (n == 0)
                    continue;
                if (!is_token(e, n))
                    return LW_HTTP1_BAD_REQUEST;
                if (NAME_IS(e, n, "close"))
                    conn_close = true;
                else if (NAME_IS(e, n, "keep-alive"))
                    conn_keep_alive = true;
            }
        } else if (NAME_IS(h->name, h->name_len, "expect")) {
            while (list_next(&pos, end, &e, &n)) {
                if (NAME_IS(e, n, "100-continue"))
                    expect = true;
            }
        } else if (NAME_IS(h->name, h->name_len, "host")) {
            /* RFC 9112 §3.2: more than one Host, or an invalid one, is 400. */
            if (++hosts > 1 || !is_valid_host(h->value, h->value_len))
                return LW_HTTP1_BAD_REQUEST;
            req->host = h->value;
            req->host_len = h->value_len;
        }
        if (rc < 0)
            return rc;
    }

    if (req->minor_version == 1 && hosts == 0)
        return LW_HTTP1_BAD_REQUEST;

    req->content_length = 0;
    req->body_kind = LW_HTTP1_BODY_NONE;
    if (te.present) {
        /* RFC 9112 §6.1: TE in a 1.0 request means the framing is faulty;
         * §6.3: TE with Content-Length is a smuggling attempt, and a final
         * coding other than chunked leaves the length undeterminable. */
        if (req->minor_version == 0 || have_cl || !te.last_is_chunked || te.chunked_misplaced)
            return LW_HTTP1_BAD_REQUEST;
        if (te.other_coding)
            return LW_HTTP1_NOT_IMPLEMENTED;
        req->body_kind = LW_HTTP1_BODY_CHUNKED;
    } else if (have_cl) {
        req->body_kind = LW_HTTP1_BODY_LENGTH;
        req->content_length = cl;
    }

    if (req->minor_version == 1)
        req->keep_alive = !conn_close;
    else
        req->keep_alive = conn_keep_alive && !conn_close;
    /* RFC 9110 §10.1.1: a 100-continue expectation in 1.0 is ignored. */
    req->expect_continue = expect && req->minor_version == 1;
    return 0;
}

/* Outcome of parse_head when it runs out of bytes before the blank line. */
#define NEED_MORE 0

/* Is there a CRLF at p? 1 yes, 0 cannot tell yet, -1 no. */
static int crlf_at(const char *p, const char *e)
{
    if (p == e)
        return 0;
    if (p[0] != '\r')
        return -1;
    if (p + 1 == e)
        return 0;
    return p[1] == '\n' ? 1 : -1;
}

/* Word-at-a-time skips for the long runs of a head (targets and values),
 * checking 8 bytes per step; the byte loop after them is exact. Bit tricks
 * from "Bit Twiddling Hacks" (hasless/hasmore): they may report a match too
 * many, never one too few. */
#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t load64(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

static inline bool any_byte_below(uint64_t x, unsigned n)
{
    return ((x - ONES * n) & ~x & HIGHS) != 0;
}

static inline bool any_byte_above(uint64_t x, unsigned n)
{
    return (((x + ONES * (127 - n)) | x) & HIGHS) != 0;
}

static const char *skip_target(const char *p, const char *e)
{
    while (e - p >= 8) {
        uint64_t x = load64(p);
        if (any_byte_below(x, 0x21) || any_byte_above(x, 0x7e))
            break;
        p += 8;
    }
    while (p < e && has_class(*p, C_TARGET))
        p++;
    return p;
}

static const char *skip_value(const char *p, const char *e)
{
    while (e - p >= 8) {
        uint64_t x = load64(p);
        /* Controls (HTAB included, handled by the byte loop) and DEL. */
        if (any_byte_below(x, 0x20) || any_byte_below(x ^ (ONES * 0x7f), 1))
            break;
        p += 8;
    }
    while (p < e && has_class(*p, C_VALUE))
        p++;
    return p;
}

/* Parses the head that starts at buf[start], reading no further than
 * buf[limit]. Returns the head length, NEED_MORE when every byte up to
 * `limit` was valid but the blank line is not there, or an error. Errors may
 * be returned for a head that is not complete yet; the caller decides when
 * to report them. */
static ssize_t parse_head(const char *buf, size_t start, size_t limit, LwHttpRequest *req)
{
    const char *p = buf + start, *e = buf + limit;
    int crlf;

    const char *method = p;
    while (p < e && has_class(*p, C_TCHAR))
        p++;
    if (p == e)
        return NEED_MORE;
    if (p == method || *p != ' ')
        return LW_HTTP1_BAD_REQUEST;
    req->method = method;
    req->method_len = (size_t)(p - method);
    p++;

    const char *target = p;
    p = skip_target(p, e);
    if (p == e)
        return NEED_MORE;
    if (p == target || *p != ' ')
        return LW_HTTP1_BAD_REQUEST;
    req->target = target;
    req->target_len = (size_t)(p - target);
    p++;

    const char *version = p;
    while (p < e && has_class(*p, C_TARGET))
        p++;
    if ((crlf = crlf_at(p, e)) <= 0)
        return crlf == 0 ? NEED_MORE : LW_HTTP1_BAD_REQUEST;
    size_t vlen = (size_t)(p - version);
    p += 2;
    if (vlen != 8 || memcmp(version, "HTTP/", 5) != 0 || version[6] != '.' || version[5] < '0' ||
        version[5] > '9' || version[7] < '0' || version[7] > '9')
        return LW_HTTP1_BAD_REQUEST;
    if (version[5] != '1' || version[7] > '1')
        return LW_HTTP1_BAD_VERSION;
    req->minor_version = version[7] - '0';

    size_t count = 0;
    for (;;) {
        if (p == e)
            return NEED_MORE;
        if (*p == '\r') {
            if ((crlf = crlf_at(p, e)) <= 0)
                return crlf == 0 ? NEED_MORE : LW_HTTP1_BAD_REQUEST;
            p += 2;
            break;
        }
        /* A line starting with whitespace is obs-fold (RFC 9112 §5.2), or
         * whitespace between the request line and the first field (§2.2). */
        const char *name = p;
        while (p < e && has_class(*p, C_TCHAR))
            p++;
        if (p == e)
            return NEED_MORE;
        /* No whitespace before the colon (RFC 9112 §5.1). */
        if (p == name || *p != ':')
            return LW_HTTP1_BAD_REQUEST;
        if (count == req->max_headers)
            return LW_HTTP1_TOO_MANY_HEADERS;
        size_t name_len = (size_t)(p - name);
        p++;
        while (p < e && is_ows(*p))
            p++;
        const char *value = p;
        p = skip_value(p, e);
        if ((crlf = crlf_at(p, e)) <= 0)
            return crlf == 0 ? NEED_MORE : LW_HTTP1_BAD_REQUEST;
        const char *value_end = p;
        while (value_end > value && is_ows(value_end[-1]))
            value_end--;
        p += 2;

        LwHttpHeader *h = &req->headers[count++];
        h->name = name;
        h->name_len = name_len;
        h->value = value;
        h->value_len = (size_t)(value_end - value);
    }
    req->num_headers = count;

    int rc = derive_semantics(req);
    if (rc < 0)
        return rc;
    return p - buf;
}

/* The answer for a head that is not complete within buf[0..limit). */
static ssize_t not_complete(size_t len, size_t max_head)
{
    /* Nothing beyond max_head can belong to an acceptable head. */
    return len >= max_head ? LW_HTTP1_HEAD_TOO_LARGE : LW_HTTP1_INCOMPLETE;
}

/* How the result is kept independent of how the bytes arrived: an error is
 * reported only once the head is complete, except for a bad line ending or
 * a bad first byte, which are reported as soon as they arrive (the scanner
 * and parse_head agree on those). So a prefix of the input answers
 * "incomplete" or exactly what the whole input answers. */
ssize_t lw_http1_parse_request(const char *buf, size_t len, size_t last_len, size_t max_head,
                               LwHttpRequest *req)
{
    size_t limit = len < max_head ? len : max_head;

    size_t start = 0;
    for (unsigned empty = 0; start + 1 < limit && buf[start] == '\r' && buf[start + 1] == '\n';
         start += 2) {
        if (++empty > MAX_EMPTY_LINES)
            return LW_HTTP1_BAD_REQUEST;
    }
    /* A request starts with a method token. Failing on the first byte turns
     * a TLS handshake or other binary sent to a plain listener into an
     * immediate 400 instead of a wait for max_head bytes. */
    if (start < limit && buf[start] != '\r' && buf[start] != '\n' &&
        !has_class(buf[start], C_TCHAR))
        return LW_HTTP1_BAD_REQUEST;

    if (last_len > 0 && last_len <= len) {
        /* The previous call answered "incomplete" for buf[0..last_len): its
         * line endings were checked and it held no blank line. The
         * blank-line test looks backwards, so only a CR at last_len - 1
         * still needs checking; the head is parsed once, when the scan finds
         * its end, and any error it holds is reported then. */
        size_t from = last_len - 1 > start ? last_len - 1 : start;
        ssize_t end = find_head_end(buf, start, from, limit);
        if (end < 0)
            return end;
        if (end == 0)
            return not_complete(len, max_head);
        /* Cannot need more: the scan found the blank line. Should the two
         * ever disagree, refuse rather than return a length of 0. */
        ssize_t r = parse_head(buf, start, (size_t)end, req);
        return r == NEED_MORE ? LW_HTTP1_BAD_REQUEST : r;
    }

    /* First look: parse directly, which for a head that arrived whole is
     * the only pass over it. */
    ssize_t r = parse_head(buf, start, limit, req);
    if (r > 0)
        return r;
    if (r == NEED_MORE)
        return not_complete(len, max_head);
    ssize_t end = find_head_end(buf, start, start, limit);
    if (end < 0)
        return end;
    return end == 0 ? not_complete(len, max_head) : r;
}

const LwHttpHeader *lw_http1_find_field(const LwHttpHeader *fields, size_t n_fields,
                                        const char *name)
{
    for (size_t i = 0; i < n_fields; i++) {
        if (lw_http1_name_is(fields[i].name, fields[i].name_len, name))
            return &fields[i];
    }
    return NULL;
}

const LwHttpHeader *lw_http1_find_header(const LwHttpRequest *req, const char *name)
{
    return lw_http1_find_field(req->headers, req->num_headers, name);
}

bool lw_http1_is_hop_by_hop(const LwHttpHeader *fields, size_t n_fields, const char *name,
                            size_t name_len)
{
    if (NAME_IS(name, name_len, "connection") || NAME_IS(name, name_len, "keep-alive") ||
        NAME_IS(name, name_len, "proxy-connection") || NAME_IS(name, name_len, "te") ||
        NAME_IS(name, name_len, "upgrade") || NAME_IS(name, name_len, "transfer-encoding") ||
        NAME_IS(name, name_len, "trailer"))
        return true;
    if (name_len == 0)
        return false;
    for (size_t i = 0; i < n_fields; i++) {
        const LwHttpHeader *h = &fields[i];
        if (!NAME_IS(h->name, h->name_len, "connection"))
            continue;
        const char *pos = h->value, *end = h->value + h->value_len, *e;
        size_t n;
        while (list_next(&pos, end, &e, &n)) {
            if (n == name_len && ascii_case_eq(e, name, n))
                return true;
        }
    }
    return false;
}

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *lw_http1_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        if (reasons[i].status == status)
            return reasons[i].reason;
    }
    return "Unknown";
}

/* ---- Chunked decoder ----
 *
 * A byte-at-a-time state machine for the framing, with chunk data moved in
 * bulk. It never reads ahead, so any split of the input gives the same
 * result. The zero state is CH_SIZE at the start of a line. */

enum {
    CH_SIZE = 0, /* chunk-size hex digits; `remaining` accumulates the size */
    CH_SIZE_BWS, /* whitespace after the size: only ';' may follow */
    CH_EXT,      /* chunk extension, tolerated and skipped */
    CH_SIZE_LF,  /* CR ending the size line seen */
    CH_DATA,     /* `remaining` bytes of chunk data */
    CH_DATA_CR,  /* CRLF after chunk data */
    CH_DATA_LF,
    CH_TRAILER, /* start of a trailer line or of the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF, /* CR of the final CRLF seen */
    CH_DONE,
    CH_ERROR,
};

void lw_http1_chunked_init(LwChunkedDecoder *d)
{
    memset(d, 0, sizeof *d);
}

/* Advances the framing state by one byte; false if the byte is invalid. */
static bool chunked_step(LwChunkedDecoder *d, char c)
{
    switch (d->state) {
    case CH_SIZE: {
        int v = hex_value(c);
        if (v >= 0) {
            if (d->remaining > (MAX_BODY - (uint64_t)v) / 16)
                return false;
            d->remaining = d->remaining * 16 + (uint64_t)v;
            break;
        }
        if (d->line_len == 0) /* no digit yet */
            return false;
        if (c == '\r')
            d->state = CH_SIZE_LF;
        else if (c == ';')
            d->state = CH_EXT;
        else if (is_ows(c))
            d->state = CH_SIZE_BWS;
        else
            return false;
        break;
    }
    case CH_SIZE_BWS:
        if (c == ';')
            d->state = CH_EXT;
        else if (!is_ows(c))
            return false;
        break;
    case CH_EXT:
        if (c == '\r')
            d->state = CH_SIZE_LF;
        else if (!has_class(c, C_VALUE))
            return false;
        break;
    case CH_SIZE_LF:
        if (c != '\n')
            return false;
        d->line_len = 0;
        if (d->remaining == 0) {
            d->state = CH_TRAILER;
        } else {
            if (d->remaining > MAX_BODY - d->total)
                return false;
            d->state = CH_DATA;
        }
        return true;
    case CH_DATA_CR:
        if (c != '\r')
            return false;
        d->state = CH_DATA_LF;
        return true;
    case CH_DATA_LF:
        if (c != '\n')
            return false;
        d->state = CH_SIZE;
        d->remaining = 0;
        return true;
    case CH_TRAILER:
        if (c == '\r') {
            d->state = CH_END_LF;
            return true;
        }
        /* Whitespace here would be obs-fold. */
        if (!has_class(c, C_TCHAR))
            return false;
        d->state = CH_TRAILER_NAME;
        break;
    case CH_TRAILER_NAME:
        if (c == ':')
            d->state = CH_TRAILER_VALUE;
        else if (!has_class(c, C_TCHAR))
            return false;
        break;
    case CH_TRAILER_VALUE:
        if (c == '\r')
            d->state = CH_TRAILER_LF;
        else if (!has_class(c, C_VALUE))
            return false;
        break;
    case CH_TRAILER_LF:
        if (c != '\n')
            return false;
        d->state = CH_TRAILER;
        break;
    case CH_END_LF:
        if (c != '\n')
            return false;
        d->state = CH_DONE;
        return true;
    default:
        return false;
    }

    /* Bytes that reach here belong to a size line or a trailer line. */
    if (d->state >= CH_TRAILER) {
        if (++d->trailer_bytes > CHUNK_TRAILER_MAX)
            return false;
    } else if (d->state != CH_SIZE_LF) {
        if (++d->line_len > CHUNK_LINE_MAX)
            return false;
    }
    return true;
}

size_t lw_http1_chunk_head(char out[LW_HTTP1_CHUNK_HEAD_MAX], size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char digits[sizeof(size_t) * 2];
    size_t n = 0;
    do {
        digits[n++] = hex[len & 0xf];
        len >>= 4;
    } while (len > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = '\r';
    out[n + 1] = '\n';
    return n + 2;
}

ssize_t lw_http1_chunked_decode(LwChunkedDecoder *d, char *buf, size_t *len)
{
    size_t n = *len, rd = 0, wr = 0;

    if (d->state == CH_DONE) {
        *len = 0;
        return (ssize_t)n;
    }
    while (rd < n && d->state != CH_ERROR) {
        if (d->state == CH_DATA) {
            size_t take = n - rd;
            if (d->remaining < take)
                take = (size_t)d->remaining;
            if (wr != rd)
                memmove(buf + wr, buf + rd, take);
            wr += take;
            rd += take;
            d->remaining -= take;
            d->total += take;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            continue;
        }
        if (!chunked_step(d, buf[rd++])) {
            d->state = CH_ERROR;
            break;
        }
        if (d->state == CH_DONE) {
            size_t rest = n - rd;
            memmove(buf + wr, buf + rd, rest);
            *len = wr;
            return (ssize_t)rest;
        }
    }
    *len = wr;
    return d->state == CH_ERROR ? LW_HTTP1_BAD_REQUEST : LW_HTTP1_INCOMPLETE;
}
