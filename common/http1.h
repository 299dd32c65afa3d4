/* http1.h - HTTP/1.x request-head parser and chunked body decoder.
 *
 * Shaped after picohttpparser: no allocation, no I/O, slices point into the
 * caller's buffer, and re-parsing a growing buffer is cheap (`last_len`).
 * The parser is strict about everything that matters for request smuggling
 * (RFC 9112 §6.3): conflicting framing headers, bad chunk sizes, bare CR,
 * obs-fold and whitespace before the colon are errors, not guesses.
 *
 * Thread-safety: every function is reentrant; state lives in caller structs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Result codes (negative) shared by the parser and the chunked decoder. */
typedef enum {
    LW_HTTP1_INCOMPLETE = -1,     /* need more bytes */
    LW_HTTP1_BAD_REQUEST = -2,    /* malformed: answer 400 and close */
    LW_HTTP1_HEAD_TOO_LARGE = -3, /* head exceeds max_head: answer 431 and close */
    LW_HTTP1_TOO_MANY_HEADERS = -4, /* more fields than capacity: 431 and close */
    LW_HTTP1_BAD_VERSION = -5,    /* not HTTP/1.0 or 1.1: answer 505 and close */
    LW_HTTP1_NOT_IMPLEMENTED = -6, /* unknown transfer-coding: answer 501 and close */
} LwHttp1Result;

typedef struct {
    const char *name; /* not NUL-terminated */
    size_t name_len;
    const char *value; /* leading/trailing OWS stripped */
    size_t value_len;
} LwHttpHeader;

typedef enum {
    LW_HTTP1_BODY_NONE = 0, /* no Content-Length, no Transfer-Encoding */
    LW_HTTP1_BODY_LENGTH,   /* Content-Length: content_length bytes follow */
    LW_HTTP1_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
} LwHttp1BodyKind;

typedef struct {
    /* Request line. */
    const char *method;
    size_t method_len;
    const char *target; /* request-target exactly as sent (origin-form normally) */
    size_t target_len;
    int minor_version; /* 0 or 1 */

    /* Fields, in order. `headers` is caller-owned storage of capacity
     * `max_headers`; `num_headers` is set on success. */
    LwHttpHeader *headers;
    size_t max_headers;
    size_t num_headers;

    /* Derived from the fields on success. */
    LwHttp1BodyKind body_kind;
    uint64_t content_length; /* valid when body_kind == LW_HTTP1_BODY_LENGTH */
    bool keep_alive;         /* HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive */
    bool expect_continue;    /* "Expect: 100-continue" */
    const char *host;        /* Host field value, NULL if absent (a 1.1 request without one is 400) */
    size_t host_len;
} LwHttpRequest;

/* Parses the request head at the start of buf[0..len).
 *
 * `last_len` is the length of buf at the previous call that returned
 * LW_HTTP1_INCOMPLETE for the same request (0 on the first call); the parser
 * uses it to resume the search for the end of the head cheaply.
 * `max_head` caps the head (request line + fields + CRLF).
 *
 * Returns the length of the head (> 0) when complete; req is then filled and
 * its slices point into buf (they live as long as buf is unchanged).
 * Returns a negative LwHttp1Result otherwise; req is then unspecified.
 * Leading empty lines before the request line are skipped (RFC 9112 §2.2) and
 * counted in the returned length. */
ssize_t lw_http1_parse_request(const char *buf, size_t len, size_t last_len, size_t max_head,
                               LwHttpRequest *req);

/* A request target split for routing (RFC 9112 §3.2). */
typedef struct {
    const char *authority; /* host[:port] of an absolute-form target, else NULL */
    size_t authority_len;
    const char *path; /* path and query; empty or starting with '?' when an */
    size_t path_len;  /* absolute-form URI has no path ("/" is then meant) */
} LwHttpTarget;

/* Splits a request target in origin-form ("/p?q": path = the target) or in
 * absolute-form with scheme http or https ("https://host:443/p?q"), which a
 * server must accept (RFC 9112 §3.2.2) and whose authority then stands in
 * for the Host field. Slices point into `target`. Returns false for the
 * other forms (asterisk, authority) and for an absolute-form target with
 * userinfo or an empty or invalid authority. */
bool lw_http1_split_target(const char *target, size_t len, LwHttpTarget *out);

/* Whether a path (and query) is in the one form a proxy that classifies
 * requests by path can trust: no fragment ('#' never belongs in a request
 * target, RFC 9112 §3.2), no "." or ".." segment, no percent-encoded
 * unreserved character (RFC 3986 §6.2.2: "%63hat" is "chat" to a server
 * that normalises, and to llmwrap a path it does not know). SDKs never send
 * either; forwarded as is, they would reach a path other than the one
 * judged. */
bool lw_http1_path_is_normal(const char *path, size_t len);

/* Case-insensitive lookup of the first field named `name`; NULL if absent. */
const LwHttpHeader *lw_http1_find_header(const LwHttpRequest *req, const char *name);
/* The same among any fields (a response head's, say). */
const LwHttpHeader *lw_http1_find_field(const LwHttpHeader *fields, size_t n_fields,
                                        const char *name);

/* Does `name` equal `lit` ignoring ASCII case? */
bool lw_http1_name_is(const char *name, size_t name_len, const char *lit);

/* Is this field hop-by-hop for a proxy (RFC 9110 §7.6.1): Connection,
 * Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade, Trailer
 * (Trailer describes our own framing), or a name listed in the Connection
 * field(s) among `fields` (a request's or a response's)? With no fields
 * (NULL, 0) only the fixed set counts. */
bool lw_http1_is_hop_by_hop(const LwHttpHeader *fields, size_t n_fields, const char *name,
                            size_t name_len);

/* Standard reason phrase for a status code ("Request Header Fields Too Large"),
 * or "Unknown" for codes it does not know. Static storage. */
const char *lw_http1_reason(int status);

/* ---- Chunked transfer-coding decoder (request bodies). ---- */

typedef struct {
    /* Private state; zero-initialise (or call lw_http1_chunked_init) before use. */
    uint64_t remaining; /* bytes left in the current chunk's data */
    uint64_t total;     /* decoded body bytes so far */
    int state;
    size_t line_len; /* bytes of the current size/trailer line seen (capped) */
    size_t trailer_bytes;
} LwChunkedDecoder;

void lw_http1_chunked_init(LwChunkedDecoder *d);

/* Decodes chunked data in place.
 *
 * On entry buf[0..*len) holds raw bytes that follow what was fed before. On
 * return the decoded body bytes have been moved to buf[0..*len) (the caller
 * consumes them) and:
 *   >= 0: the body is complete (last chunk and trailer section read); the
 *         value is the number of raw bytes after the end of the body, which
 *         the decoder left at buf[*len .. *len + value) (the next request on a
 *         keep-alive connection);
 *   LW_HTTP1_INCOMPLETE: all input consumed, more needed;
 *   LW_HTTP1_BAD_REQUEST: malformed (bad size, missing CRLF, chunk-size line
 *         longer than 1 KiB, trailer section longer than 8 KiB, body larger
 *         than 2^62).
 * Trailer fields are read and discarded. */
ssize_t lw_http1_chunked_decode(LwChunkedDecoder *d, char *buf, size_t *len);

/* The longest chunk-size line lw_http1_chunk_head writes. */
#define LW_HTTP1_CHUNK_HEAD_MAX (sizeof(size_t) * 2 + 2)

/* Writes the size line of a chunk of `len` bytes ("1a2f\r\n", lowercase
 * hex) to `out`; returns its length. For every chunk of a streamed answer,
 * so without printf. */
size_t lw_http1_chunk_head(char out[LW_HTTP1_CHUNK_HEAD_MAX], size_t len);

/* Decoded body bytes so far. */
static inline uint64_t lw_http1_chunked_total(const LwChunkedDecoder *d)
{
    return d->total;
}
