/* test-http1.c - request-head parser and chunked decoder.
 *
 * Every table case runs three ways: the whole input at once, the input split
 * at every byte boundary (prefix, then the whole with last_len), and fed one
 * byte at a time. A network read can end anywhere, so the result must never
 * depend on where it did. Each call gets an exact-size heap copy so that the
 * sanitizer build catches any read past `len`.
 */
#include <glib.h>
#include <string.h>

#include "http1.h"

#define DEFAULT_MAX_HEAD    8192
#define DEFAULT_MAX_HEADERS 32
#define MAX_FIELDS          16

/* Special max_head values, resolved against the case's own head length. */
#define MAX_HEAD_EXACT    ((size_t)-1)
#define MAX_HEAD_ONE_LESS ((size_t)-2)

/* Expected result of a case that parses: the length of `head`. */
#define OK 0

/* Lets a case hold bytes strlen cannot measure (NUL). */
#define HEAD_BYTES(s) .head = (s), .head_len = sizeof(s) - 1

typedef struct {
    const char *name;
    const char *head;   /* the request head, or the whole input of an error case */
    size_t head_len;    /* 0: strlen(head) */
    const char *rest;   /* bytes after the head: body, next request */
    ssize_t result;     /* OK or an LwHttp1Result */
    size_t max_head;    /* 0: DEFAULT_MAX_HEAD */
    size_t max_headers; /* 0: DEFAULT_MAX_HEADERS */
    bool zero_headers;  /* capacity 0, headers NULL */

    /* Expected request, for OK cases. */
    const char *method;
    const char *target;
    int minor;
    LwHttp1BodyKind body;
    uint64_t content_length;
    bool keep_alive;
    bool expect_continue;
    const char *host;                       /* NULL: absent */
    const char *fields[2 * MAX_FIELDS + 1]; /* name, value, ..., NULL */
} RequestCase;

/* clang-format off */
static const RequestCase request_cases[] = {
    /* ---- valid ---- */
    {
        .name = "get-1.1",
        .head = "GET /v1/models HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
        .method = "GET", .target = "/v1/models", .minor = 1, .keep_alive = true,
        .host = "api.example.com",
        .fields = {"Host", "api.example.com"},
    },
    {
        .name = "get-1.0-no-host",
        .head = "GET /index.html HTTP/1.0\r\n\r\n",
        .method = "GET", .target = "/index.html", .minor = 0, .keep_alive = false,
    },
    {
        .name = "get-1.0-keep-alive",
        .head = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h\r\n\r\n",
        .method = "GET", .target = "/", .minor = 0, .keep_alive = true, .host = "h",
        .fields = {"Connection", "Keep-Alive", "Host", "h"},
    },
    {
        .name = "get-1.0-keep-alive-in-list",
        .head = "GET / HTTP/1.0\r\nConnection: x-foo , keep-alive\r\n\r\n",
        .method = "GET", .target = "/", .minor = 0, .keep_alive = true,
        .fields = {"Connection", "x-foo , keep-alive"},
    },
    {
        .name = "get-1.0-keep-alive-and-close",
        .head = "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        .method = "GET", .target = "/", .minor = 0, .keep_alive = false,
        .fields = {"Connection", "keep-alive", "Connection", "close"},
    },
    {
        .name = "get-1.1-close",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = false, .host = "h",
        .fields = {"Host", "h", "Connection", "close"},
    },
    {
        .name = "get-1.1-close-in-list",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nconnection: Upgrade,CLOSE\r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = false, .host = "h",
        .fields = {"Host", "h", "connection", "Upgrade,CLOSE"},
    },
    {
        .name = "get-1.1-close-lookalike",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, x-close\r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "Connection", "closed, x-close"},
    },
    {
        .name = "post-content-length",
        .head = "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Type: "
                "application/json\r\nContent-Length: 7\r\n\r\n",
        .rest = "{\"a\":1}",
        .method = "POST", .target = "/v1/chat/completions", .minor = 1,
        .body = LW_HTTP1_BODY_LENGTH, .content_length = 7, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "Content-Type", "application/json", "Content-Length", "7"},
    },
    {
        .name = "post-content-length-zero",
        .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        .method = "POST", .target = "/", .minor = 1, .body = LW_HTTP1_BODY_LENGTH,
        .content_length = 0, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "Content-Length", "0"},
    },
    {
        .name = "post-content-length-repeated-identical",
        .head = "POST / HTTP/1.1\r\nContent-Length: 12\r\nHost: h\r\nContent-Length: 12\r\n\r\n",
        .rest = "hello world!",
        .method = "POST", .target = "/", .minor = 1, .body = LW_HTTP1_BODY_LENGTH,
        .content_length = 12, .keep_alive = true, .host = "h",
        .fields = {"Content-Length", "12", "Host", "h", "Content-Length", "12"},
    },
    {
        .name = "post-content-length-list-identical",
        .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3 ,3,003\r\n\r\n",
        .rest = "abc",
        .method = "POST", .target = "/", .minor = 1, .body = LW_HTTP1_BODY_LENGTH,
        .content_length = 3, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "Content-Length", "3 ,3,003"},
    },
    {
        .name = "post-content-length-at-cap",
        .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4611686018427387904\r\n\r\n",
        .method = "POST", .target = "/", .minor = 1, .body = LW_HTTP1_BODY_LENGTH,
        .content_length = (uint64_t)1 << 62, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "Content-Length", "4611686018427387904"},
    },
    {
        .name = "post-chunked",
        .head = "POST /v1/messages HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        .rest = "5\r\nhello\r\n0\r\n\r\n",
        .method = "POST", .target = "/v1/messages", .minor = 1,
        .body = LW_HTTP1_BODY_CHUNKED, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "Transfer-Encoding", "chunked"},
    },
    {
        .name = "post-chunked-mixed-case",
        .head = "POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: ChUnKeD\r\n\r\n",
        .method = "POST", .target = "/", .minor = 1, .body = LW_HTTP1_BODY_CHUNKED,
        .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "transfer-encoding", "ChUnKeD"},
    },
    {
        .name = "post-chunked-empty-list-elements",
        .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n\r\n",
        .method = "POST", .target = "/", .minor = 1, .body = LW_HTTP1_BODY_CHUNKED,
        .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "Transfer-Encoding", ", chunked ,"},
    },
    {
        .name = "expect-100-continue",
        .head = "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n",
        .method = "PUT", .target = "/f", .minor = 1, .body = LW_HTTP1_BODY_LENGTH,
        .content_length = 4, .keep_alive = true, .expect_continue = true, .host = "h",
        .fields = {"Host", "h", "Expect", "100-Continue", "Content-Length", "4"},
    },
    {
        .name = "expect-100-continue-ignored-on-1.0",
        .head = "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        .method = "PUT", .target = "/f", .minor = 0, .body = LW_HTTP1_BODY_LENGTH,
        .content_length = 4, .keep_alive = false,
        .fields = {"Expect", "100-continue", "Content-Length", "4"},
    },
    {
        .name = "expect-other",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continuation\r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "Expect", "100-continuation"},
    },
    {
        .name = "leading-empty-lines",
        .head = "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h"},
    },
    {
        .name = "value-ows-trimmed-inner-kept",
        .head = "GET / HTTP/1.1\r\nHost: \t h \t\r\nUser-Agent:  a  b\tc \r\nX-Empty:\r\n"
                "X-Blank:   \r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "User-Agent", "a  b\tc", "X-Empty", "", "X-Blank", ""},
    },
    {
        .name = "value-obs-text",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9\r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "X-Name", "caf\xc3\xa9"},
    },
    {
        /* Long runs go through the word-at-a-time skip; tabs and obs-text
         * inside them must still be accepted. */
        .name = "long-target-and-values",
        .head = "GET /v1/chat/completions?model=some-model-name&stream=true HTTP/1.1\r\n"
                "Host: api.example.com\r\nUser-Agent: aaaaaaaaaaaaaaaa\tbbbbbbbbbbbbbbbbbbb"
                "\xc3\xa9\xff\x80" "ccccccccccccccc ~~~~~~~~\r\n\r\n",
        .method = "GET", .target = "/v1/chat/completions?model=some-model-name&stream=true",
        .minor = 1, .keep_alive = true, .host = "api.example.com",
        .fields = {"Host", "api.example.com", "User-Agent",
                   "aaaaaaaaaaaaaaaa\tbbbbbbbbbbbbbbbbbbb\xc3\xa9\xff\x80" "ccccccccccccccc ~~~~~~~~"},
    },
    {
        .name = "name-all-tchars",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nX!#$%&'*+-.^_`|~09az: v\r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "X!#$%&'*+-.^_`|~09az", "v"},
    },
    {
        .name = "method-extension-and-odd-targets",
        .head = "M-SEARCH http://h:80/a/b?q=1&r=%20#x HTTP/1.1\r\nHost: h:80\r\n\r\n",
        .method = "M-SEARCH", .target = "http://h:80/a/b?q=1&r=%20#x", .minor = 1,
        .keep_alive = true, .host = "h:80",
        .fields = {"Host", "h:80"},
    },
    {
        .name = "options-asterisk",
        .head = "OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        .method = "OPTIONS", .target = "*", .minor = 1, .keep_alive = true,
        .host = "[::1]:8080",
        .fields = {"Host", "[::1]:8080"},
    },
    {
        .name = "empty-host-on-1.1",
        .head = "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "",
        .fields = {"Host", ""},
    },
    {
        .name = "pipelined-get-after-get",
        .head = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        .rest = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "GET", .target = "/a", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h"},
    },
    {
        .name = "pipelined-garbage-after-head-is-not-ours",
        .head = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        .rest = "\n\r\x01 not a request",
        .method = "GET", .target = "/a", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h"},
    },
    {
        .name = "head-exactly-max-head",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: 0123456789\r\n\r\n",
        .rest = "trailing bytes beyond max_head belong to the body",
        .max_head = MAX_HEAD_EXACT,
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "X-Pad", "0123456789"},
    },
    {
        .name = "headers-exactly-capacity",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n",
        .max_headers = 3,
        .method = "GET", .target = "/", .minor = 1, .keep_alive = true, .host = "h",
        .fields = {"Host", "h", "A", "1", "B", "2"},
    },
    {
        .name = "no-fields-zero-capacity",
        .head = "GET / HTTP/1.0\r\n\r\n",
        .zero_headers = true,
        .method = "GET", .target = "/", .minor = 0, .keep_alive = false,
    },

    /* ---- request line ---- */
    {.name = "tls-client-hello", HEAD_BYTES("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "leading-space", .head = " GET / HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "too-many-leading-empty-lines",
     .head = "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "leading-bare-lf", .head = "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "method-not-token", .head = "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "method-only", .head = "GET\r\nHost: h\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST},
    {.name = "double-space", .head = "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "tab-separator", .head = "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "target-control-char", HEAD_BYTES("GET /a\x01z HTTP/1.1\r\nHost: h\r\n\r\n"),
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "target-nul", HEAD_BYTES("GET /a\0z HTTP/1.1\r\nHost: h\r\n\r\n"),
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "target-del", .head = "GET /a\x7fz HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "target-8bit", .head = "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "long-target-control-char",
     .head = "GET /aaaaaaaaaaaaaaaaaaaa\x1f""aaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "long-target-del",
     .head = "GET /aaaaaaaaaaaaaaaaaaaa\x7f""aaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "long-target-8bit",
     .head = "GET /aaaaaaaaaaaaaaaaaaaa\x80""aaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "long-target-tab",
     .head = "GET /aaaaaaaaaaaaaaaaaaaa\taaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "http-0.9-no-version", .head = "GET /\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST},
    {.name = "version-lowercase", .head = "GET / http/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "version-trailing-space", .head = "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "version-two-digit-minor", .head = "GET / HTTP/1.10\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "version-no-minor", .head = "GET / HTTP/2\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "version-2.0", .head = "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_VERSION},
    {.name = "version-1.2", .head = "GET / HTTP/1.2\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_VERSION},
    {.name = "version-0.9", .head = "GET / HTTP/0.9\r\n\r\n", .result = LW_HTTP1_BAD_VERSION},

    /* ---- line endings ---- */
    {.name = "bare-lf-everywhere", .head = "GET / HTTP/1.1\nHost: h\n\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "bare-lf-in-fields", .head = "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "bare-lf-end-of-head", .head = "GET / HTTP/1.1\r\nHost: h\r\n\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "bare-cr-request-line", .head = "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "bare-cr-in-value", .head = "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "bare-cr-as-terminator", .head = "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "bare-cr-in-head-that-never-ends",
     .head = "GET / HTTP/1.1\r\nHost: h\rXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
     .max_head = 40, .result = LW_HTTP1_BAD_REQUEST},
    /* A bad line ending is reported as soon as it arrives, so it also wins
     * over an earlier error that waits for the end of the head. */
    {.name = "bad-version-then-bare-cr",
     .head = "GET / HTTP/2.0\r\nHost: h\r\nX: a\rb\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "too-many-headers-then-bare-lf",
     .head = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\nE: 5\r\n\r\n",
     .max_headers = 3, .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cr-cr-lf", .head = "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},

    /* ---- field syntax ---- */
    {.name = "obs-fold-space", .head = "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "obs-fold-tab", .head = "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\tc\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "obs-fold-transfer-encoding",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "whitespace-before-first-field", .head = "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "space-before-colon", .head = "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "tab-before-colon",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding\t: chunked\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "empty-field-name", .head = "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "no-colon", .head = "GET / HTTP/1.1\r\nHost: h\r\nX-A b\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "name-not-token", .head = "GET / HTTP/1.1\r\nHost: h\r\nX(A): b\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "name-8bit", .head = "GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: b\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "value-nul", HEAD_BYTES("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"),
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "value-vertical-tab", .head = "GET / HTTP/1.1\r\nHost: h\r\nX: a\x0b\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "value-del", .head = "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "long-value-control-char",
     .head = "GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaaa\x1f""aaaaaaaaaaaaaaaaaaa\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "long-value-del",
     .head = "GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaaa\x7f""aaaaaaaaaaaaaaaaaaa\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "long-value-bare-lf",
     .head = "GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaaa\naaaaaaaaaaaaaaaaaaa\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "connection-not-token", .head = "GET / HTTP/1.1\r\nHost: h\r\nConnection: a b\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},

    /* ---- Host ---- */
    {.name = "missing-host-1.1", .head = "GET / HTTP/1.1\r\nX: y\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "two-host-fields", .head = "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "two-host-fields-case", .head = "GET / HTTP/1.0\r\nHost: a\r\nhOST: b\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "host-with-space", .head = "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "host-with-userinfo", .head = "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "host-with-path", .head = "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},

    /* ---- framing: each is a known smuggling vector ---- */
    {.name = "te-and-cl",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-and-te",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-unknown-and-cl",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n"
             "Content-Length: 5\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-duplicate-different",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-list-different", .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-plus-sign", .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-minus-sign", .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-space-inside", .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-hex", .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-empty", .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-empty-list-element",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-over-cap",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4611686018427387905\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "cl-uint64-wrap",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551621\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-chunked-not-final",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-chunked-not-final-across-fields",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
             "Transfer-Encoding: gzip\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-chunked-twice",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
             "Transfer-Encoding: chunked\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-only-unknown",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-identity", .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-lookalike", .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-chunked-with-parameter",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-quoted", .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-empty", .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-on-1.0", .head = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},
    {.name = "te-unknown-coding-before-chunked",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     .result = LW_HTTP1_NOT_IMPLEMENTED},
    {.name = "te-unknown-coding-with-params-across-fields",
     .head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x-custom ; a=b\r\n"
             "Transfer-Encoding: chunked\r\n\r\n",
     .result = LW_HTTP1_NOT_IMPLEMENTED},
    {.name = "te-unknown-coding-and-missing-host",
     .head = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST},

    /* ---- limits ---- */
    {.name = "head-one-over-max-head",
     .head = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: 0123456789\r\n\r\n",
     .max_head = MAX_HEAD_ONE_LESS, .result = LW_HTTP1_HEAD_TOO_LARGE},
    {.name = "long-line-over-max-head",
     .head = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     .max_head = 48, .result = LW_HTTP1_HEAD_TOO_LARGE},
    {.name = "headers-one-over-capacity",
     .head = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
     .max_headers = 3, .result = LW_HTTP1_TOO_MANY_HEADERS},
    {.name = "headers-zero-capacity", .head = "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
     .zero_headers = true, .result = LW_HTTP1_TOO_MANY_HEADERS},
};
/* clang-format on */

static size_t case_head_len(const RequestCase *c)
{
    return c->head_len ? c->head_len : strlen(c->head);
}

static size_t case_max_head(const RequestCase *c)
{
    if (c->max_head == MAX_HEAD_EXACT)
        return case_head_len(c);
    if (c->max_head == MAX_HEAD_ONE_LESS)
        return case_head_len(c) - 1;
    return c->max_head ? c->max_head : DEFAULT_MAX_HEAD;
}

/* The bytes the case feeds: head followed by rest. */
static GBytes *case_input(const RequestCase *c)
{
    GByteArray *a = g_byte_array_new();
    g_byte_array_append(a, (const guint8 *)c->head, (guint)case_head_len(c));
    if (c->rest)
        g_byte_array_append(a, (const guint8 *)c->rest, (guint)strlen(c->rest));
    return g_byte_array_free_to_bytes(a);
}

static ssize_t case_expected(const RequestCase *c)
{
    return c->result == OK ? (ssize_t)case_head_len(c) : c->result;
}

static void assert_slice(const char *buf, size_t head, const char *p, size_t n, const char *want)
{
    g_assert_true(p >= buf && p + n <= buf + head);
    g_assert_cmpmem(p, n, want, strlen(want));
}

static void check_request(const RequestCase *c, const char *buf, size_t head,
                          const LwHttpRequest *req)
{
    assert_slice(buf, head, req->method, req->method_len, c->method);
    assert_slice(buf, head, req->target, req->target_len, c->target);
    g_assert_cmpint(req->minor_version, ==, c->minor);
    g_assert_cmpint(req->body_kind, ==, c->body);
    if (c->body == LW_HTTP1_BODY_LENGTH)
        g_assert_cmpuint(req->content_length, ==, c->content_length);
    g_assert_cmpint(req->keep_alive, ==, c->keep_alive);
    g_assert_cmpint(req->expect_continue, ==, c->expect_continue);
    if (c->host)
        assert_slice(buf, head, req->host, req->host_len, c->host);
    else
        g_assert_null(req->host);

    size_t n = 0;
    while (c->fields[2 * n])
        n++;
    g_assert_cmpuint(req->num_headers, ==, n);
    for (size_t i = 0; i < n; i++) {
        assert_slice(buf, head, req->headers[i].name, req->headers[i].name_len, c->fields[2 * i]);
        assert_slice(buf, head, req->headers[i].value, req->headers[i].value_len,
                     c->fields[2 * i + 1]);
    }
}

/* Parses an exact-size copy of raw[0..len) and, when the head is complete,
 * checks the request against the case. */
static ssize_t parse_prefix(const RequestCase *c, const char *raw, size_t len, size_t last_len)
{
    char *copy = g_malloc(len ? len : 1);
    memcpy(copy, raw, len);
    LwHttpHeader headers[DEFAULT_MAX_HEADERS];
    LwHttpRequest req = {
        .headers = c->zero_headers ? NULL : headers,
        .max_headers =
            c->zero_headers ? 0 : (c->max_headers ? c->max_headers : DEFAULT_MAX_HEADERS),
    };
    g_assert_cmpuint(req.max_headers, <=, G_N_ELEMENTS(headers));

    ssize_t r = lw_http1_parse_request(copy, len, last_len, case_max_head(c), &req);
    if (r > 0) {
        g_assert_cmpuint((size_t)r, <=, len);
        g_assert_cmpint(c->result, ==, OK);
        check_request(c, copy, (size_t)r, &req);
    }
    g_free(copy);
    return r;
}

static void test_request_case(gconstpointer data)
{
    const RequestCase *c = data;
    g_autoptr(GBytes) input = case_input(c);
    size_t len;
    const char *raw = g_bytes_get_data(input, &len);
    ssize_t want = case_expected(c);

    /* Whole. */
    g_assert_cmpint(parse_prefix(c, raw, len, 0), ==, want);

    /* Split at every boundary: the prefix yields "need more" or the final
     * answer, and the whole, resumed from the prefix, the final answer. A
     * valid head must be recognised as soon as its last byte is there. */
    for (size_t k = 0; k <= len; k++) {
        ssize_t r = parse_prefix(c, raw, k, 0);
        if (r == LW_HTTP1_INCOMPLETE) {
            g_assert_false(want > 0 && k >= (size_t)want);
            g_assert_cmpint(parse_prefix(c, raw, len, k), ==, want);
        } else {
            g_assert_cmpint(r, ==, want);
        }
    }

    /* Byte by byte, as a slow client would send it. */
    size_t last = 0, k;
    ssize_t r = LW_HTTP1_INCOMPLETE;
    for (k = 0; k <= len; k++) {
        r = parse_prefix(c, raw, k, last);
        if (r != LW_HTTP1_INCOMPLETE)
            break;
        last = k;
    }
    g_assert_cmpint(r, ==, want);
    if (want > 0)
        g_assert_cmpuint(k, ==, (size_t)want);
}

/* Growing the buffer by uneven steps moves the resume point around every
 * CRLF; the answer must not change. */
static void test_request_growing(void)
{
    static const size_t steps[] = {2, 3, 5, 7, 13, 64};
    for (size_t i = 0; i < G_N_ELEMENTS(request_cases); i++) {
        const RequestCase *c = &request_cases[i];
        g_autoptr(GBytes) input = case_input(c);
        size_t len;
        const char *raw = g_bytes_get_data(input, &len);
        ssize_t want = case_expected(c);
        for (size_t s = 0; s < G_N_ELEMENTS(steps); s++) {
            size_t last = 0, k = 0;
            ssize_t r = LW_HTTP1_INCOMPLETE;
            while (r == LW_HTTP1_INCOMPLETE && last < len) {
                k = MIN(last + steps[s], len);
                r = parse_prefix(c, raw, k, last);
                last = k;
            }
            g_assert_cmpint(r, ==, want);
        }
    }
}

/* A stale or wrong last_len may cost a rescan but never changes the answer. */
static void test_request_bad_last_len(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(request_cases); i++) {
        const RequestCase *c = &request_cases[i];
        g_autoptr(GBytes) input = case_input(c);
        size_t len;
        const char *raw = g_bytes_get_data(input, &len);
        g_assert_cmpint(parse_prefix(c, raw, len, len + 100), ==, case_expected(c));
        g_assert_cmpint(parse_prefix(c, raw, len, SIZE_MAX), ==, case_expected(c));
    }
}

/* HEAD_TOO_LARGE comes as soon as max_head bytes hold no complete head, not
 * when the client finally stops sending. */
static void test_request_too_large_early(void)
{
    const char *line = "GET /v1/chat/completions HTTP/1.1\r\nHost: h\r\nX-Long: aaaaaaaaaaaaaaa";
    size_t max_head = 40;
    LwHttpHeader headers[4];
    LwHttpRequest req = {.headers = headers, .max_headers = G_N_ELEMENTS(headers)};
    g_assert_cmpint(lw_http1_parse_request(line, max_head - 1, 0, max_head, &req), ==,
                    LW_HTTP1_INCOMPLETE);
    g_assert_cmpint(lw_http1_parse_request(line, max_head, max_head - 1, max_head, &req), ==,
                    LW_HTTP1_HEAD_TOO_LARGE);
    g_assert_cmpint(lw_http1_parse_request(line, strlen(line), 0, max_head, &req), ==,
                    LW_HTTP1_HEAD_TOO_LARGE);
}

/* The capacity check counts fields, not bytes, and the cap is exactly
 * max_headers. */
static void test_request_header_capacity(void)
{
    g_autoptr(GString) s = g_string_new("GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 1; i < 64; i++)
        g_string_append_printf(s, "X-%d: %d\r\n", i, i);
    g_string_append(s, "\r\n");
    LwHttpHeader headers[65];
    LwHttpRequest req = {.headers = headers, .max_headers = 64};
    g_assert_cmpint(lw_http1_parse_request(s->str, s->len, 0, 65536, &req), ==, (ssize_t)s->len);
    g_assert_cmpuint(req.num_headers, ==, 64);
    g_assert_true(lw_http1_name_is(headers[63].name, headers[63].name_len, "x-63"));
    req.max_headers = 63;
    g_assert_cmpint(lw_http1_parse_request(s->str, s->len, 0, 65536, &req), ==,
                    LW_HTTP1_TOO_MANY_HEADERS);
}

/* ---- helpers ---- */

static ssize_t parse_str(const char *s, LwHttpRequest *req)
{
    return lw_http1_parse_request(s, strlen(s), 0, DEFAULT_MAX_HEAD, req);
}

static void test_find_header(void)
{
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
    LwHttpHeader headers[8];
    LwHttpRequest req = {.headers = headers, .max_headers = G_N_ELEMENTS(headers)};
    g_assert_cmpint(parse_str(s, &req), ==, (ssize_t)strlen(s));
    const LwHttpHeader *h = lw_http1_find_header(&req, "X-a");
    g_assert_nonnull(h);
    g_assert_cmpmem(h->value, h->value_len, "1", 1);
    g_assert_null(lw_http1_find_header(&req, "X"));
    g_assert_null(lw_http1_find_header(&req, "X-A2"));
    g_assert_null(lw_http1_find_header(&req, ""));
}

static void test_name_is(void)
{
    g_assert_true(lw_http1_name_is("Content-Length", 14, "content-length"));
    g_assert_true(lw_http1_name_is("CONTENT-LENGTHxyz", 14, "content-length"));
    g_assert_false(lw_http1_name_is("Content-Lengt", 13, "content-length"));
    g_assert_false(lw_http1_name_is("Content-Length", 14, "content-lengthX"));
    /* '@' and '`' differ from 'A'/'a' only in the case bit. */
    g_assert_false(lw_http1_name_is("@", 1, "`"));
    g_assert_false(lw_http1_name_is("[", 1, "{"));
    g_assert_true(lw_http1_name_is("", 0, ""));
}

static bool hop(const LwHttpRequest *req, const char *name)
{
    return lw_http1_is_hop_by_hop(req != NULL ? req->headers : NULL,
                                  req != NULL ? req->num_headers : 0, name, strlen(name));
}

static void test_hop_by_hop(void)
{
    static const char *const fixed[] = {"Connection", "keep-alive",        "Proxy-Connection", "TE",
                                        "Upgrade",    "TRANSFER-ENCODING", "Trailer"};
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
        g_assert_true(hop(NULL, fixed[i]));
    g_assert_false(hop(NULL, "Content-Length"));
    g_assert_false(hop(NULL, "Authorization"));
    g_assert_false(hop(NULL, "Trailers"));
    g_assert_false(hop(NULL, "T"));
    g_assert_false(hop(NULL, ""));

    const char *s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret-Hop , keep-alive\r\n"
                    "X-Secret-Hop: 1\r\nConnection: x-other\r\nX-Kept: 2\r\n\r\n";
    LwHttpHeader headers[8];
    LwHttpRequest req = {.headers = headers, .max_headers = G_N_ELEMENTS(headers)};
    g_assert_cmpint(parse_str(s, &req), ==, (ssize_t)strlen(s));
    g_assert_true(hop(&req, "x-secret-hop"));
    g_assert_true(hop(&req, "X-OTHER"));
    g_assert_true(hop(&req, "Keep-Alive"));
    g_assert_false(hop(&req, "X-Kept"));
    g_assert_false(hop(&req, "X-Secret"));
    g_assert_false(hop(&req, "y-other"));
    g_assert_false(hop(&req, "Host"));
    g_assert_false(hop(&req, ""));
}

/* What the server routes by: the path, and an absolute URL's authority. */
static void test_path_is_normal(void)
{
    static const struct {
        const char *path;
        gboolean ok;
    } cases[] = {
        {"/v1/chat/completions", TRUE},
        {"/v1/chat/completions?x=/../y&k=%41", TRUE}, /* the query is not a path */
        {"/v1/files/file-abc.jsonl", TRUE},
        {"/v1/a..b/.c/d.", TRUE},
        {"/v1/models/a%20b%2Fc%3A", TRUE}, /* encoded, but not unreserved */
        {"/", TRUE},
        {"?x", TRUE},
        {"/v1/..", FALSE},
        {"/v1/../x", FALSE},
        {"/./v1", FALSE},
        {"/v1/.", FALSE},
        {"/v1/chat/completion%73", FALSE},
        {"/v1/%63hat", FALSE},
        {"/v1/a%2Db", FALSE},
        {"/v1/a%7e", FALSE},
        {"/v1/a%2e%2e/b", FALSE},
        {"/v1/x#frag", FALSE},
        {"/v1/x?q#frag", FALSE},
        {"/v1/%4", TRUE}, /* not an escape at all: the server's to judge */
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *p = cases[i].path;
        g_test_message("%s", p);
        g_assert_cmpint(lw_http1_path_is_normal(p, strlen(p)), ==, cases[i].ok);
    }
}

static void test_split_target(void)
{
    static const struct {
        const char *target;
        bool ok;
        const char *authority; /* NULL: none */
        const char *path;
    } cases[] = {
        {"/v1/chat/completions?x=1", true, NULL, "/v1/chat/completions?x=1"},
        {"/", true, NULL, "/"},
        {"https://api.openai.com/v1/models", true, "api.openai.com", "/v1/models"},
        {"HTTP://h:8080/a?b", true, "h:8080", "/a?b"},
        {"http://[::1]:80/", true, "[::1]:80", "/"},
        {"https://h", true, "h", ""},
        {"https://h?q=1", true, "h", "?q=1"},
        {"*", false, NULL, NULL},
        {"api.openai.com:443", false, NULL, NULL},
        {"", false, NULL, NULL},
        {"ftp://h/", false, NULL, NULL},
        {"http:/h/", false, NULL, NULL},
        {"https:///v1/models", false, NULL, NULL},
        {"https://user:pw@h/", false, NULL, NULL},
        {"https://h#frag", false, NULL, NULL},
        {"https://h\"/", false, NULL, NULL},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *t = cases[i].target;
        LwHttpTarget out;
        g_test_message("%s", t);
        g_assert_cmpint(lw_http1_split_target(t, strlen(t), &out), ==, cases[i].ok);
        if (!cases[i].ok)
            continue;
        if (cases[i].authority == NULL)
            g_assert_null(out.authority);
        else
            g_assert_cmpmem(out.authority, out.authority_len, cases[i].authority,
                            strlen(cases[i].authority));
        g_assert_cmpmem(out.path, out.path_len, cases[i].path, strlen(cases[i].path));
    }
}

static void test_reason(void)
{
    static const struct {
        int status;
        const char *reason;
    } known[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {408, "Request Timeout"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {417, "Expectation Failed"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
        g_assert_cmpstr(lw_http1_reason(known[i].status), ==, known[i].reason);
    g_assert_cmpstr(lw_http1_reason(0), ==, "Unknown");
    g_assert_cmpstr(lw_http1_reason(299), ==, "Unknown");
    g_assert_cmpstr(lw_http1_reason(-400), ==, "Unknown");
    g_assert_cmpstr(lw_http1_reason(1000), ==, "Unknown");
}

/* ---- chunked decoder ---- */

#define CHUNK_BYTES(s) .raw = (s), .raw_len = sizeof(s) - 1
#define DONE           0 /* complete: leftover must equal `leftover` */

typedef struct {
    const char *name;
    const char *raw;
    size_t raw_len;   /* 0: strlen(raw) */
    ssize_t result;   /* DONE, LW_HTTP1_INCOMPLETE or LW_HTTP1_BAD_REQUEST */
    const char *body; /* decoded bytes, up to the end or the error */
    const char *leftover;
} ChunkCase;

/* clang-format off */
static const ChunkCase chunk_cases[] = {
    {"empty-body", .raw = "0\r\n\r\n", .body = ""},
    {"one-chunk", .raw = "5\r\nhello\r\n0\r\n\r\n", .body = "hello"},
    {"two-chunks", .raw = "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n", .body = "hello, world"},
    {"hex-mixed-case", .raw = "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n",
     .body = "0123456789abcdefghij"},
    {"leading-zeros", .raw = "0000000000000000000003\r\nabc\r\n000\r\n\r\n", .body = "abc"},
    {"data-holds-crlf-and-digits", .raw = "6\r\n\r\n0\r\n\r\r\n0\r\n\r\n", .body = "\r\n0\r\n\r"},
    {"binary-data", CHUNK_BYTES("4\r\n\0\r\xff\n\r\n0\r\n\r\n"), .body = NULL},
    {"extensions", .raw = "5;name=value;q=\"a b;c\"\r\nhello\r\n0 ; last\r\n\r\n", .body = "hello"},
    {"extension-bws", .raw = "5 \t; x\r\nhello\r\n0\r\n\r\n", .body = "hello"},
    {"trailers", .raw = "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n", .body = "hello"},
    {"pipelined-next-request", .raw = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
     .body = "abc", .leftover = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
    {"leftover-after-trailers", .raw = "1\r\nx\r\n0\r\nA: b\r\n\r\nXYZ", .body = "x",
     .leftover = "XYZ"},
    {"size-at-cap-incomplete", .raw = "4000000000000000\r\nabc",
     .result = LW_HTTP1_INCOMPLETE, .body = "abc"},

    {"truncated-in-data", .raw = "5\r\nhel", .result = LW_HTTP1_INCOMPLETE, .body = "hel"},
    {"truncated-before-trailer", .raw = "5\r\nhello\r\n0\r\n", .result = LW_HTTP1_INCOMPLETE,
     .body = "hello"},
    {"truncated-in-final-crlf", .raw = "0\r\n\r", .result = LW_HTTP1_INCOMPLETE, .body = ""},
    {"empty-input", .raw = "", .result = LW_HTTP1_INCOMPLETE, .body = ""},

    {"no-size", .raw = "\r\nhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-empty-line", .raw = "\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-only-extension", .raw = ";x\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-not-hex", .raw = "g\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-0x-prefix", .raw = "0x5\r\nhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = ""},
    {"size-negative", .raw = "-1\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-plus", .raw = "+5\r\nhello\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-leading-space", .raw = " 5\r\nhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = ""},
    {"size-trailing-space", .raw = "5 \r\nhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = ""},
    {"size-space-inside", .raw = "1 0\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-over-cap", .raw = "4000000000000001\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-uint64-wrap", .raw = "10000000000000005\r\nhello\r\n0\r\n\r\n",
     .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"total-over-cap", .raw = "1\r\nx\r\n4000000000000000\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = "x"},
    {"size-bare-lf", .raw = "5\nhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"size-bare-cr", .raw = "5\rhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"extension-bare-lf", .raw = "5;a\nb\r\nhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = ""},
    {"extension-bare-cr", .raw = "5;a\rb\r\nhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = ""},
    {"extension-nul", CHUNK_BYTES("5;a\0\r\nhello\r\n0\r\n\r\n"), .result = LW_HTTP1_BAD_REQUEST,
     .body = ""},
    {"data-too-long", .raw = "5\r\nhelloX\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = "hello"},
    {"data-lf-only", .raw = "5\r\nhello\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = "hello"},
    {"data-cr-only", .raw = "5\r\nhello\r0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = "hello"},
    {"data-short", .raw = "6\r\nhello\r\n0\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = "hello\r"},
    {"last-chunk-bare-lf", .raw = "0\n\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"final-bare-lf", .raw = "0\r\n\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"trailer-obs-fold", .raw = "0\r\nA: b\r\n c\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = ""},
    {"trailer-no-colon", .raw = "0\r\nA b\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"trailer-space-before-colon", .raw = "0\r\nA : b\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST,
     .body = ""},
    {"trailer-bare-lf", .raw = "0\r\nA: b\n\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
    {"trailer-ctl", .raw = "0\r\nA: b\x01\r\n\r\n", .result = LW_HTTP1_BAD_REQUEST, .body = ""},
};
/* clang-format on */

static const char binary_body[] = "\0\r\xff\n";

static size_t chunk_raw_len(const ChunkCase *c)
{
    return c->raw_len ? c->raw_len : strlen(c->raw);
}

typedef struct {
    ssize_t result;
    GString *body;
    GString *leftover;
} ChunkRun;

/* Feeds raw[0..len) in pieces of the given sizes, the way a connection
 * would: each piece in a fresh exact-size buffer, the decoded bytes and the
 * leftover collected; once done, later pieces are leftover as well. */
static ChunkRun feed_chunks(const char *raw, size_t len, const size_t *pieces, size_t npieces)
{
    ChunkRun run = {LW_HTTP1_INCOMPLETE, g_string_new(NULL), g_string_new(NULL)};
    LwChunkedDecoder d;
    lw_http1_chunked_init(&d);
    size_t off = 0;
    for (size_t i = 0; i < npieces && run.result != LW_HTTP1_BAD_REQUEST; i++) {
        size_t n = pieces[i];
        g_assert_cmpuint(off + n, <=, len);
        if (run.result >= 0) {
            g_string_append_len(run.leftover, raw + off, (gssize)n);
            off += n;
            continue;
        }
        char *buf = g_malloc(n ? n : 1);
        memcpy(buf, raw + off, n);
        size_t out = n;
        ssize_t r = lw_http1_chunked_decode(&d, buf, &out);
        g_assert_cmpuint(out, <=, n);
        g_string_append_len(run.body, buf, (gssize)out);
        if (r >= 0) {
            g_assert_cmpuint(out + (size_t)r, <=, n);
            g_string_append_len(run.leftover, buf + out, r);
        } else {
            g_assert_true(r == LW_HTTP1_INCOMPLETE || r == LW_HTTP1_BAD_REQUEST);
        }
        run.result = r >= 0 ? DONE : r;
        g_free(buf);
        off += n;
    }
    if (run.result != LW_HTTP1_BAD_REQUEST)
        g_assert_cmpuint(lw_http1_chunked_total(&d), ==, run.body->len);
    return run;
}

static void check_chunk_run(ChunkRun *run, ssize_t result, const char *body, size_t body_len,
                            const char *leftover)
{
    g_assert_cmpint(run->result, ==, result);
    g_assert_cmpmem(run->body->str, run->body->len, body, body_len);
    if (result == DONE)
        g_assert_cmpmem(run->leftover->str, run->leftover->len, leftover, strlen(leftover));
    g_string_free(run->body, TRUE);
    g_string_free(run->leftover, TRUE);
}

/* Whole, every two-way split, and byte by byte. */
static void check_chunked_all_splits(const char *raw, size_t len, ssize_t result, const char *body,
                                     size_t body_len, const char *leftover)
{
    ChunkRun run = feed_chunks(raw, len, &len, 1);
    check_chunk_run(&run, result, body, body_len, leftover);

    for (size_t k = 0; k <= len; k++) {
        size_t pieces[2] = {k, len - k};
        run = feed_chunks(raw, len, pieces, 2);
        check_chunk_run(&run, result, body, body_len, leftover);
    }

    size_t *ones = g_new(size_t, len + 1);
    for (size_t i = 0; i < len; i++)
        ones[i] = 1;
    run = feed_chunks(raw, len, ones, len);
    check_chunk_run(&run, result, body, body_len, leftover);
    g_free(ones);
}

static void test_chunked_case(gconstpointer data)
{
    const ChunkCase *c = data;
    const char *body = c->body ? c->body : binary_body;
    size_t body_len = c->body ? strlen(c->body) : sizeof binary_body - 1;
    check_chunked_all_splits(c->raw, chunk_raw_len(c), c->result, body, body_len,
                             c->leftover ? c->leftover : "");
}

/* The size line may be 1 KiB long (extensions included), not a byte more. */
static void test_chunked_line_cap(void)
{
    for (int extra = 0; extra <= 1; extra++) {
        g_autoptr(GString) s = g_string_new("3;");
        while (s->len < 1024 + (size_t)extra)
            g_string_append_c(s, 'e');
        g_string_append(s, "\r\nabc\r\n0\r\n\r\n");
        check_chunked_all_splits(s->str, s->len, extra ? LW_HTTP1_BAD_REQUEST : DONE, "abc",
                                 extra ? 0 : 3, "");
    }
}

/* Trailer fields may take 8 KiB (their CRLFs included), not a byte more. */
static void test_chunked_trailer_cap(void)
{
    for (int extra = 0; extra <= 1; extra++) {
        g_autoptr(GString) s = g_string_new("1\r\nz\r\n0\r\n");
        /* Lines of 100 bytes ("X: " + 95 + CRLF), then one to reach the cap. */
        size_t lines = 0;
        while (lines + 100 <= 8192) {
            g_string_append(s, "X: ");
            for (int i = 0; i < 95; i++)
                g_string_append_c(s, 'v');
            g_string_append(s, "\r\n");
            lines += 100;
        }
        g_string_append(s, "Y: ");
        while (lines + 3 + 2 < 8192 + (size_t)extra) {
            g_string_append_c(s, 'w');
            lines++;
        }
        g_string_append(s, "\r\n\r\nNEXT");
        check_chunked_all_splits(s->str, s->len, extra ? LW_HTTP1_BAD_REQUEST : DONE, "z", 1,
                                 "NEXT");
    }
}

/* A finished decoder hands everything further back untouched. */
/* Chunk-size lines are what printf("%zx\r\n") writes, and decode back. */
static void test_chunk_head(void)
{
    const size_t sizes[] = {0, 1, 9, 10, 15, 16, 255, 256, 4095, 65536, 0xdeadbeef, SIZE_MAX};
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        char line[LW_HTTP1_CHUNK_HEAD_MAX];
        size_t n = lw_http1_chunk_head(line, sizes[i]);
        g_autofree char *want = g_strdup_printf("%zx\r\n", sizes[i]);
        g_assert_cmpmem(line, n, want, strlen(want));
    }
    /* A body framed with it decodes to itself. */
    const char body[] = "event one, then event two";
    g_autoptr(GString) wire = g_string_new(NULL);
    for (size_t off = 0; off < sizeof body - 1; off += 7) {
        size_t take = MIN(7, sizeof body - 1 - off);
        char line[LW_HTTP1_CHUNK_HEAD_MAX];
        g_string_append_len(wire, line, (gssize)lw_http1_chunk_head(line, take));
        g_string_append_len(wire, body + off, (gssize)take);
        g_string_append(wire, "\r\n");
    }
    g_string_append(wire, "0\r\n\r\n");
    LwChunkedDecoder d;
    lw_http1_chunked_init(&d);
    size_t len = wire->len;
    g_assert_cmpint(lw_http1_chunked_decode(&d, wire->str, &len), ==, 0);
    g_assert_cmpmem(wire->str, len, body, sizeof body - 1);
}

static void test_chunked_after_done(void)
{
    LwChunkedDecoder d;
    lw_http1_chunked_init(&d);
    char first[] = "0\r\n\r\n";
    size_t n = strlen(first);
    g_assert_cmpint(lw_http1_chunked_decode(&d, first, &n), ==, 0);
    g_assert_cmpuint(n, ==, 0);
    char more[] = "GET";
    n = 3;
    g_assert_cmpint(lw_http1_chunked_decode(&d, more, &n), ==, 3);
    g_assert_cmpuint(n, ==, 0);
    g_assert_cmpmem(more, 3, "GET", 3);
}

/* An error is sticky: a decoder that rejected the framing never resumes. */
static void test_chunked_error_sticky(void)
{
    LwChunkedDecoder d;
    lw_http1_chunked_init(&d);
    char bad[] = "z";
    size_t n = 1;
    g_assert_cmpint(lw_http1_chunked_decode(&d, bad, &n), ==, LW_HTTP1_BAD_REQUEST);
    char good[] = "0\r\n\r\n";
    n = strlen(good);
    g_assert_cmpint(lw_http1_chunked_decode(&d, good, &n), ==, LW_HTTP1_BAD_REQUEST);
}

/* ---- a connection's worth of pipelined requests ---- */

static void test_pipeline(void)
{
    const char *stream = "\r\nPOST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                         "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"
                         "GET /c HTTP/1.0\r\n\r\n"
                         "GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    static const struct {
        const char *target;
        const char *body;
        bool keep_alive;
    } want[] = {
        {"/a", "hello", true},
        {"/b", "abcde", true},
        {"/c", "", false},
        {"/d", "", false},
    };
    g_autofree char *buf = g_strdup(stream);
    size_t len = strlen(buf), off = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        LwHttpHeader headers[8];
        LwHttpRequest req = {.headers = headers, .max_headers = G_N_ELEMENTS(headers)};
        ssize_t head = lw_http1_parse_request(buf + off, len - off, 0, 1024, &req);
        g_assert_cmpint(head, >, 0);
        g_assert_cmpmem(req.target, req.target_len, want[i].target, strlen(want[i].target));
        g_assert_cmpint(req.keep_alive, ==, want[i].keep_alive);
        off += (size_t)head;
        if (req.body_kind == LW_HTTP1_BODY_LENGTH) {
            g_assert_cmpuint(req.content_length, <=, len - off);
            g_assert_cmpmem(buf + off, req.content_length, want[i].body, strlen(want[i].body));
            off += req.content_length;
        } else if (req.body_kind == LW_HTTP1_BODY_CHUNKED) {
            LwChunkedDecoder d;
            lw_http1_chunked_init(&d);
            size_t n = len - off;
            ssize_t rest = lw_http1_chunked_decode(&d, buf + off, &n);
            g_assert_cmpint(rest, >=, 0);
            g_assert_cmpmem(buf + off, n, want[i].body, strlen(want[i].body));
            /* Shift the next request to where the raw bytes were consumed
             * from, as a connection buffer would. */
            memmove(buf + off, buf + off + n, (size_t)rest);
            len = off + (size_t)rest;
        } else {
            g_assert_cmpstr(want[i].body, ==, "");
        }
    }
    g_assert_cmpuint(off, ==, len);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    for (size_t i = 0; i < G_N_ELEMENTS(request_cases); i++) {
        g_autofree char *path = g_strdup_printf("/http1/request/%s", request_cases[i].name);
        g_test_add_data_func(path, &request_cases[i], test_request_case);
    }
    g_test_add_func("/http1/request/growing-buffer", test_request_growing);
    g_test_add_func("/http1/request/bad-last-len", test_request_bad_last_len);
    g_test_add_func("/http1/request/too-large-early", test_request_too_large_early);
    g_test_add_func("/http1/request/header-capacity-64", test_request_header_capacity);
    g_test_add_func("/http1/find-header", test_find_header);
    g_test_add_func("/http1/name-is", test_name_is);
    g_test_add_func("/http1/hop-by-hop", test_hop_by_hop);
    g_test_add_func("/http1/split-target", test_split_target);
    g_test_add_func("/http1/path-is-normal", test_path_is_normal);
    g_test_add_func("/http1/reason", test_reason);

    for (size_t i = 0; i < G_N_ELEMENTS(chunk_cases); i++) {
        g_autofree char *path = g_strdup_printf("/http1/chunked/%s", chunk_cases[i].name);
        g_test_add_data_func(path, &chunk_cases[i], test_chunked_case);
    }
    g_test_add_func("/http1/chunked/line-cap", test_chunked_line_cap);
    g_test_add_func("/http1/chunked/trailer-cap", test_chunked_trailer_cap);
    g_test_add_func("/http1/chunked/after-done", test_chunked_after_done);
    g_test_add_func("/http1/chunked/head", test_chunk_head);
    g_test_add_func("/http1/chunked/error-sticky", test_chunked_error_sticky);
    g_test_add_func("/http1/pipeline", test_pipeline);

    return g_test_run();
}
