/* loadgen - an open-loop HTTP/1.1-over-TLS load generator for benchmarks.
 *
 * Three modes:
 *   latency (default)  requests at a fixed rate on a fixed schedule over C
 *                      keep-alive connections; latency is timed from each
 *                      request's SCHEDULED start, so a slow server cannot
 *                      hide its slowness by delaying the requests that would
 *                      have measured it (coordinated omission). A request
 *                      whose time has come while every connection is busy
 *                      waits in a queue and is still timed from its schedule.
 *   --ttfb             the same, and the headline is the time to the first
 *                      response BODY byte (for streamed responses).
 *   --idle N           opens N connections, makes one request on each, then
 *                      holds them idle until SIGTERM/SIGINT or EOF on stdin
 *                      (for memory measurements of the server).
 *
 * One thread, one epoll loop, non-blocking OpenSSL 3. The load generator has
 * no dependency on the code it measures: it parses responses itself
 * (Content-Length and chunked framing; nothing else is needed here).
 *
 * Output: a text report on stdout and, with --json, one JSON line after it.
 * Exit status: 0 clean run, 3 run completed with errors, 1 fatal error,
 * 2 bad usage.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Caps: every input and every table is bounded. */
#define MAX_CONNECTIONS    10000
#define MAX_RATE           200000        /* requests per second */
#define MAX_DURATION_S     3600
#define MAX_SAMPLES        (20u * 1000u * 1000u) /* recorded requests per run */
#define MAX_HEADERS        64            /* -H arguments */
#define MAX_REQUEST_BYTES  (1024 * 1024) /* request head + body */
#define HEAD_MAX           (64 * 1024)   /* response head */
#define CHUNK_LINE_MAX     256           /* chunk-size line incl. extensions */
#define MAX_HANDSHAKING    64            /* concurrent connection setups */
#define READ_BUF           (64 * 1024)
#define NS_PER_S           1000000000LL

typedef enum {
    CONN_FREE,        /* slot unused */
    CONN_CONNECTING,  /* TCP connect in progress */
    CONN_HANDSHAKE,   /* TLS handshake */
    CONN_IDLE,        /* ready for a request */
    CONN_BUSY,        /* request being sent / response being read */
} ConnState;

typedef enum {
    BODY_NONE,        /* response without a body (204, 304, HEAD) */
    BODY_LENGTH,      /* Content-Length */
    BODY_CHUNKED,
    BODY_CLOSE,       /* delimited by connection close (HTTP/1.0 style) */
} BodyMode;

typedef enum {
    CH_SIZE,          /* reading a chunk-size line */
    CH_DATA,          /* inside chunk data */
    CH_DATA_CR,       /* expecting the CRLF after chunk data */
    CH_DATA_LF,
    CH_TRAILER,       /* reading trailer lines until an empty one */
} ChunkState;

typedef enum {
    FEED_MORE,
    FEED_DONE,
    FEED_ERROR,
} FeedResult;

typedef struct {
    int fd;
    SSL *ssl;
    ConnState state;
    uint32_t events;         /* epoll interest currently registered */
    int64_t deadline_ns;     /* setup or response deadline */

    /* The request in flight. */
    int64_t sched_ns;
    int64_t sent_ns;
    int64_t first_byte_ns;   /* 0 until the first body byte */
    bool measured;
    size_t woff;             /* request bytes written so far */

    /* Response parsing. */
    bool in_head;
    char head[HEAD_MAX];
    size_t head_len;
    int status;
    bool close_after;
    BodyMode body_mode;
    int64_t remaining;       /* Content-Length left, or chunk bytes left */
    ChunkState chunk_state;
    char line[CHUNK_LINE_MAX];
    size_t line_len;
    uint64_t body_bytes;     /* decoded body bytes of this response */
} Conn;

typedef struct {
    uint64_t *v;
    size_t n, cap;
} Samples;

/* Options. */
static const char *opt_connect;
static const char *opt_sni;
static const char *opt_ca;
static const char *opt_host;
static const char *opt_method = "GET";
static const char *opt_path = "/";
static const char *opt_headers[MAX_HEADERS];
static int opt_n_headers;
static const char *opt_body;
static const char *opt_body_file;
static const char *opt_label = "";
static long opt_connections = 16;
static long opt_rate = 1000;
static double opt_duration = 10.0;
static double opt_warmup = 1.0;
static double opt_timeout = 10.0;
static long opt_idle;
static long opt_idle_parallel = 1;
static bool opt_ttfb;
static bool opt_json;

/* State. */
static struct sockaddr_in target;
static SSL_CTX *ssl_ctx;
static int epfd = -1;
static Conn *conns;
static long n_conns;
static char *request;        /* the serialised request, sent as is every time */
static size_t request_len;
static int64_t idle_stack_top;
static long *idle_stack;     /* indices of CONN_IDLE connections */
static long n_busy;          /* connections in CONN_BUSY */

static struct {
    uint64_t sent, completed, measured_completed;
    uint64_t err_status, err_connect, err_tls, err_protocol, err_timeout, err_closed;
    uint64_t dropped;        /* requests that never got a connection (backlog cap) */
    uint64_t reconnects;
    uint64_t body_min, body_max;
    int last_status;
} st = {.body_min = UINT64_MAX};

static Samples s_lat, s_ttfb, s_lag;
static unsigned setup_errors_reported; /* connection setup failures tend to come in bursts */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("loadgen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* The one place OpenSSL's error queue is turned into text. */
static const char *ssl_error_text(void)
{
    static char buf[256];
    unsigned long e = ERR_get_error();
    if (e == 0)
        return errno ? strerror(errno) : "unknown TLS error";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void samples_init(Samples *s, size_t cap)
{
    s->v = calloc(cap ? cap : 1, sizeof *s->v);
    if (s->v == NULL)
        die("out of memory for %zu samples", cap);
    s->n = 0;
    s->cap = cap;
}

static void samples_add(Samples *s, int64_t ns)
{
    if (s->n < s->cap)
        s->v[s->n++] = ns > 0 ? (uint64_t)ns : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double pct_us(const Samples *s, double p)
{
    if (s->n == 0)
        return 0.0;
    size_t rank = (size_t)((p / 100.0) * (double)s->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return (double)s->v[rank - 1] / 1000.0;
}

static double mean_us(const Samples *s)
{
    if (s->n == 0)
        return 0.0;
    long double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->v[i];
    return (double)(sum / s->n / 1000.0L);
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fputs("Usage: loadgen --connect ADDR:PORT --sni NAME --ca FILE [options]\n"
          "\n"
          "Target and request:\n"
          "  --connect ADDR:PORT   IPv4 address and port to connect to\n"
          "  --sni NAME            TLS server name (also verified against the certificate)\n"
          "  --ca FILE             PEM trust anchors for the server certificate\n"
          "  --host NAME           Host header (default: the SNI name)\n"
          "  -X, --method M        request method (default GET)\n"
          "  --path PATH           request target (default /)\n"
          "  -H, --header 'K: V'   extra request header (repeatable, up to 64)\n"
          "  --body STRING         request body (Content-Length is added)\n"
          "  --body-file FILE      request body from a file\n"
          "\n"
          "Load:\n"
          "  -c, --connections N   keep-alive connections (default 16)\n"
          "  -r, --rate R          requests per second, open loop (default 1000)\n"
          "  -d, --duration S      measured seconds (default 10)\n"
          "  --warmup S            unmeasured seconds before (default 1)\n"
          "  --timeout S           per-request and setup timeout (default 10)\n"
          "  --ttfb                headline metric is time to first body byte\n"
          "  --idle N              open N connections, one request each, hold them\n"
          "                        until SIGTERM/SIGINT or stdin EOF\n"
          "  --idle-parallel K     with --idle: requests in flight at once (default 1;\n"
          "                        a proxy may open one upstream connection per request\n"
          "                        in flight, so this decides its upstream pool size)\n"
          "\n"
          "Output:\n"
          "  --label TEXT          name of this run in the report\n"
          "  --json                also print one JSON line\n"
          "\n"
          "Exit status: 0 clean, 3 completed with errors, 1 fatal, 2 usage.\n",
          f);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("loadgen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

static long parse_long(const char *name, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        usage_error("%s: expected an integer in [%ld, %ld], got '%s'", name, min, max, s);
    return v;
}

static double parse_seconds(const char *name, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= min && v <= max))
        usage_error("%s: expected seconds in [%g, %g], got '%s'", name, min, max, s);
    return v;
}

/* A header value or name must not smuggle a line break into the request. */
static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static void parse_options(int argc, char **argv)
{
    enum { OPT_CONNECT = 256, OPT_SNI, OPT_CA, OPT_HOST, OPT_PATH, OPT_BODY, OPT_BODY_FILE, OPT_WARMUP,
           OPT_TIMEOUT, OPT_TTFB, OPT_IDLE, OPT_IDLE_PARALLEL, OPT_LABEL, OPT_JSON, OPT_HELP };
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"sni", required_argument, NULL, OPT_SNI},
        {"ca", required_argument, NULL, OPT_CA},
        {"host", required_argument, NULL, OPT_HOST},
        {"method", required_argument, NULL, 'X'},
        {"path", required_argument, NULL, OPT_PATH},
        {"header", required_argument, NULL, 'H'},
        {"body", required_argument, NULL, OPT_BODY},
        {"body-file", required_argument, NULL, OPT_BODY_FILE},
        {"connections", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"ttfb", no_argument, NULL, OPT_TTFB},
        {"idle", required_argument, NULL, OPT_IDLE},
        {"idle-parallel", required_argument, NULL, OPT_IDLE_PARALLEL},
        {"label", required_argument, NULL, OPT_LABEL},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "X:H:c:r:d:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_CONNECT: opt_connect = optarg; break;
        case OPT_SNI: opt_sni = optarg; break;
        case OPT_CA: opt_ca = optarg; break;
        case OPT_HOST: opt_host = optarg; break;
        case 'X': opt_method = optarg; break;
        case OPT_PATH: opt_path = optarg; break;
        case 'H':
            if (opt_n_headers >= MAX_HEADERS)
                usage_error("at most %d --header options", MAX_HEADERS);
            opt_headers[opt_n_headers++] = optarg;
            break;
        case OPT_BODY: opt_body = optarg; break;
        case OPT_BODY_FILE: opt_body_file = optarg; break;
        case 'c': opt_connections = parse_long("--connections", optarg, 1, MAX_CONNECTIONS); break;
        case 'r': opt_rate = parse_long("--rate", optarg, 1, MAX_RATE); break;
        case 'd': opt_duration = parse_seconds("--duration", optarg, 0.1, MAX_DURATION_S); break;
        case OPT_WARMUP: opt_warmup = parse_seconds("--warmup", optarg, 0, MAX_DURATION_S); break;
        case OPT_TIMEOUT: opt_timeout = parse_seconds("--timeout", optarg, 0.01, 600); break;
        case OPT_TTFB: opt_ttfb = true; break;
        case OPT_IDLE: opt_idle = parse_long("--idle", optarg, 1, MAX_CONNECTIONS); break;
        case OPT_IDLE_PARALLEL:
            opt_idle_parallel = parse_long("--idle-parallel", optarg, 1, MAX_CONNECTIONS);
            break;
        case OPT_LABEL: opt_label = optarg; break;
        case OPT_JSON: opt_json = true; break;
        case OPT_HELP: usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind != argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (!opt_connect || !opt_sni || !opt_ca)
        usage_error("--connect, --sni and --ca are required");
    if (opt_body && opt_body_file)
        usage_error("--body and --body-file are exclusive");
    if (has_crlf(opt_method) || has_crlf(opt_path) || has_crlf(opt_sni) ||
        (opt_host && has_crlf(opt_host)) || strchr(opt_path, ' ') || strchr(opt_method, ' '))
        usage_error("method, path, host and SNI must not contain spaces or line breaks");
    for (int i = 0; i < opt_n_headers; i++) {
        const char *colon = strchr(opt_headers[i], ':');
        if (has_crlf(opt_headers[i]) || colon == NULL || colon == opt_headers[i])
            usage_error("bad --header '%s': expected 'Name: value' on one line", opt_headers[i]);
    }
    if (opt_rate * opt_duration > MAX_SAMPLES)
        usage_error("rate x duration exceeds %u recorded requests", MAX_SAMPLES);

    /* Numeric IPv4 only: benchmarks run on loopback and must not resolve. */
    const char *colon = strrchr(opt_connect, ':');
    if (colon == NULL || colon == opt_connect)
        usage_error("--connect: expected ADDR:PORT, got '%s'", opt_connect);
    char addr[64];
    size_t alen = (size_t)(colon - opt_connect);
    if (alen >= sizeof addr)
        usage_error("--connect: address too long");
    memcpy(addr, opt_connect, alen);
    addr[alen] = '\0';
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)parse_long("--connect port", colon + 1, 1, 65535));
    if (inet_pton(AF_INET, addr, &target.sin_addr) != 1)
        usage_error("--connect: '%s' is not a numeric IPv4 address", addr);
}

/* ---- the request ---- */

static char *read_file(const char *path, size_t max, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        die("%s: not a regular file", path);
    if ((uint64_t)sb.st_size > max)
        die("%s: %lld bytes, more than the %zu allowed", path, (long long)sb.st_size, max);
    char *buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL)
        die("out of memory");
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("cannot read %s: %s", path, n < 0 ? strerror(errno) : "short read");
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *ret_len = got;
    return buf;
}

static void append(char **buf, size_t *len, size_t cap, const char *data, size_t n)
{
    if (*len + n > cap)
        die("request larger than %zu bytes", cap);
    memcpy(*buf + *len, data, n);
    *len += n;
}

static void appendf(char **buf, size_t *len, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char **buf, size_t *len, size_t cap, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        die("request line or header too long");
    append(buf, len, cap, tmp, (size_t)n);
}

static bool user_header_present(const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < opt_n_headers; i++)
        if (strncasecmp(opt_headers[i], name, n) == 0 && opt_headers[i][n] == ':')
            return true;
    return false;
}

static void build_request(void)
{
    size_t body_len = 0;
    char *body_owned = NULL;
    const char *body = NULL;
    if (opt_body_file) {
        body_owned = read_file(opt_body_file, MAX_REQUEST_BYTES / 2, &body_len);
        body = body_owned;
    } else if (opt_body) {
        body = opt_body;
        body_len = strlen(opt_body);
    }
    request = malloc(MAX_REQUEST_BYTES);
    if (request == NULL)
        die("out of memory");
    request_len = 0;
    appendf(&request, &request_len, MAX_REQUEST_BYTES, "%s %s HTTP/1.1\r\n", opt_method, opt_path);
    if (!user_header_present("host"))
        appendf(&request, &request_len, MAX_REQUEST_BYTES, "host: %s\r\n",
                opt_host ? opt_host : opt_sni);
    for (int i = 0; i < opt_n_headers; i++)
        appendf(&request, &request_len, MAX_REQUEST_BYTES, "%s\r\n", opt_headers[i]);
    if (body && !user_header_present("content-length"))
        appendf(&request, &request_len, MAX_REQUEST_BYTES, "content-length: %zu\r\n", body_len);
    append(&request, &request_len, MAX_REQUEST_BYTES, "\r\n", 2);
    if (body)
        append(&request, &request_len, MAX_REQUEST_BYTES, body, body_len);
    free(body_owned);
}

/* ---- connections ---- */

static void set_events(Conn *c, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(c - conns)};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->events = events;
}

static void push_idle(Conn *c)
{
    c->state = CONN_IDLE;
    idle_stack[idle_stack_top++] = c - conns;
}

/* Removes c from the idle stack (it is rarely anywhere but near the top). */
static void remove_idle(Conn *c)
{
    long idx = c - conns;
    for (int64_t i = idle_stack_top - 1; i >= 0; i--) {
        if (idle_stack[i] == idx) {
            idle_stack[i] = idle_stack[--idle_stack_top];
            return;
        }
    }
}

static void conn_close(Conn *c)
{
    if (c->state == CONN_FREE)
        return;
    if (c->state == CONN_IDLE)
        remove_idle(c);
    if (c->state == CONN_BUSY)
        n_busy--;
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = CONN_FREE;
    c->events = 0;
}

/* Starts a non-blocking TCP connect; the handshake follows in conn_setup_step. */
static bool conn_open(Conn *c, int64_t now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = CONN_CONNECTING;
    c->deadline_ns = now + (int64_t)(opt_timeout * NS_PER_S);
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)(c - conns)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
        if (setup_errors_reported++ < 1)
            fprintf(stderr, "loadgen: connect %s: %s\n", opt_connect, strerror(errno));
        st.err_connect++;
        conn_close(c);
        return false;
    }
    return true;
}

static bool conn_start_tls(Conn *c)
{
    c->ssl = SSL_new(ssl_ctx);
    if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd) ||
        !SSL_set_tlsext_host_name(c->ssl, opt_sni) || !SSL_set1_host(c->ssl, opt_sni)) {
        fprintf(stderr, "loadgen: TLS setup: %s\n", ssl_error_text());
        return false;
    }
    SSL_set_connect_state(c->ssl);
    c->state = CONN_HANDSHAKE;
    return true;
}

/* Advances connect + handshake. Returns false when the connection failed
 * (it is closed and counted). */
static bool conn_setup_step(Conn *c)
{
    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == EINPROGRESS)
            return true;
        if (err != 0) {
            if (setup_errors_reported++ < 1)
                fprintf(stderr, "loadgen: connect %s: %s\n", opt_connect, strerror(err));
            st.err_connect++;
            conn_close(c);
            return false;
        }
        if (!conn_start_tls(c)) {
            st.err_tls++;
            conn_close(c);
            return false;
        }
    }
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        set_events(c, EPOLLIN);
        push_idle(c);
        return true;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        set_events(c, EPOLLIN);
        return true;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        set_events(c, EPOLLOUT);
        return true;
    }
    long vr = SSL_get_verify_result(c->ssl);
    if (setup_errors_reported++ >= 1)
        ERR_clear_error();
    else if (vr != X509_V_OK)
        fprintf(stderr, "loadgen: TLS handshake with %s (SNI %s): certificate: %s\n", opt_connect,
                opt_sni, X509_verify_cert_error_string(vr));
    else
        fprintf(stderr, "loadgen: TLS handshake with %s (SNI %s): %s\n", opt_connect, opt_sni,
                ssl_error_text());
    st.err_tls++;
    conn_close(c);
    return false;
}

/* ---- response parsing ---- */

static void response_reset(Conn *c)
{
    c->in_head = true;
    c->head_len = 0;
    c->status = 0;
    c->close_after = false;
    c->body_mode = BODY_NONE;
    c->remaining = 0;
    c->chunk_state = CH_SIZE;
    c->line_len = 0;
    c->body_bytes = 0;
    c->first_byte_ns = 0;
}

static bool header_is(const char *line, size_t len, const char *name, const char **ret_value,
                      size_t *ret_vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *ret_value = v;
    *ret_vlen = (size_t)(end - v);
    return true;
}

static bool value_has_token(const char *v, size_t len, const char *token)
{
    size_t n = strlen(token);
    for (size_t i = 0; i + n <= len; i++) {
        if (strncasecmp(v + i, token, n) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + n == len || v[i + n] == ',' || v[i + n] == ' '))
            return true;
    }
    return false;
}

/* Parses the complete head c->head[0..head_len). */
static bool parse_head(Conn *c)
{
    const char *p = c->head, *end = c->head + c->head_len;
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (eol == NULL || eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
        !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
        !isdigit((unsigned char)p[11]))
        return false;
    bool http10 = p[7] == '0';
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    c->close_after = http10;
    bool have_length = false, chunked = false;
    int64_t length = 0;
    for (p = eol + 2; p < end;) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            return false;
        size_t len = (size_t)(eol - p);
        if (len == 0)
            break;
        const char *v;
        size_t vlen;
        if (header_is(p, len, "content-length", &v, &vlen)) {
            if (vlen == 0 || vlen > 15)
                return false;
            length = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (!isdigit((unsigned char)v[i]))
                    return false;
                length = length * 10 + (v[i] - '0');
            }
            have_length = true;
        } else if (header_is(p, len, "transfer-encoding", &v, &vlen)) {
            chunked = value_has_token(v, vlen, "chunked");
        } else if (header_is(p, len, "connection", &v, &vlen)) {
            if (value_has_token(v, vlen, "close"))
                c->close_after = true;
            else if (value_has_token(v, vlen, "keep-alive"))
                c->close_after = false;
        }
        p = eol + 2;
    }
    if (c->status < 200 && c->status >= 100)
        return false; /* no Expect: 100-continue is sent; nothing else is expected */
    if (c->status == 204 || c->status == 304 || strcmp(opt_method, "HEAD") == 0)
        c->body_mode = BODY_NONE;
    else if (chunked)
        c->body_mode = BODY_CHUNKED;
    else if (have_length && length > 0)
        c->body_mode = BODY_LENGTH;
    else if (have_length)
        c->body_mode = BODY_NONE;
    else
        c->body_mode = BODY_CLOSE;
    c->remaining = c->body_mode == BODY_LENGTH ? length : 0;
    if (c->body_mode == BODY_CLOSE)
        c->close_after = true;
    return true;
}

static void note_body(Conn *c, size_t n, int64_t now)
{
    if (n == 0)
        return;
    if (c->first_byte_ns == 0)
        c->first_byte_ns = now;
    c->body_bytes += n;
}

/* One chunk-size line is complete in c->line. */
static bool chunk_size_line(Conn *c)
{
    int64_t size = 0;
    size_t i = 0;
    for (; i < c->line_len && isxdigit((unsigned char)c->line[i]); i++) {
        if (size > (INT64_MAX >> 4))
            return false;
        int d = isdigit((unsigned char)c->line[i]) ? c->line[i] - '0'
                                                   : (tolower((unsigned char)c->line[i]) - 'a' + 10);
        size = size * 16 + d;
    }
    if (i == 0 || (i < c->line_len && c->line[i] != ';' && c->line[i] != ' ' && c->line[i] != '\t'))
        return false;
    c->remaining = size;
    c->chunk_state = size ? CH_DATA : CH_TRAILER;
    return true;
}

/* Feeds body bytes. *consumed tells how many were used (leftover bytes after
 * FEED_DONE are a protocol error: nothing was pipelined). */
static FeedResult feed_body(Conn *c, const char *p, size_t n, int64_t now, size_t *consumed)
{
    size_t i = 0;
    if (c->body_mode == BODY_NONE) {
        *consumed = 0;
        return FEED_DONE;
    }
    if (c->body_mode == BODY_CLOSE) {
        note_body(c, n, now);
        *consumed = n;
        return FEED_MORE;
    }
    if (c->body_mode == BODY_LENGTH) {
        size_t take = (size_t)c->remaining < n ? (size_t)c->remaining : n;
        note_body(c, take, now);
        c->remaining -= (int64_t)take;
        *consumed = take;
        return c->remaining == 0 ? FEED_DONE : FEED_MORE;
    }
    while (i < n) {
        switch (c->chunk_state) {
        case CH_SIZE:
        case CH_TRAILER:
            if (p[i] == '\n') {
                if (c->line_len && c->line[c->line_len - 1] == '\r')
                    c->line_len--;
                i++;
                if (c->chunk_state == CH_TRAILER) {
                    if (c->line_len == 0) {
                        *consumed = i;
                        return FEED_DONE;
                    }
                } else if (!chunk_size_line(c)) {
                    return FEED_ERROR;
                }
                c->line_len = 0;
            } else {
                if (c->line_len >= CHUNK_LINE_MAX)
                    return FEED_ERROR;
                c->line[c->line_len++] = p[i++];
            }
            break;
        case CH_DATA: {
            size_t take = (size_t)c->remaining < n - i ? (size_t)c->remaining : n - i;
            note_body(c, take, now);
            c->remaining -= (int64_t)take;
            i += take;
            if (c->remaining == 0)
                c->chunk_state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (p[i++] != '\r')
                return FEED_ERROR;
            c->chunk_state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (p[i++] != '\n')
                return FEED_ERROR;
            c->chunk_state = CH_SIZE;
            break;
        }
    }
    *consumed = i;
    return FEED_MORE;
}

/* Feeds bytes read from the connection: the head first, then the body. */
static FeedResult feed(Conn *c, const char *p, size_t n, int64_t now)
{
    if (c->in_head) {
        /* Search only the new bytes (and 3 before them) for the blank line. */
        size_t from = c->head_len > 3 ? c->head_len - 3 : 0;
        size_t room = HEAD_MAX - c->head_len;
        size_t take = n < room ? n : room;
        memcpy(c->head + c->head_len, p, take);
        c->head_len += take;
        const char *blank = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
        if (blank == NULL)
            return c->head_len >= HEAD_MAX ? FEED_ERROR : FEED_MORE;
        size_t head_end = (size_t)(blank - c->head) + 4;
        size_t body_start = take - (c->head_len - head_end); /* offset into p */
        c->head_len = head_end;
        c->in_head = false;
        if (!parse_head(c))
            return FEED_ERROR;
        p += body_start;
        n -= body_start;
        if (c->body_mode == BODY_NONE)
            return n ? FEED_ERROR : FEED_DONE;
    }
    size_t used;
    FeedResult r = feed_body(c, p, n, now, &used);
    if (r == FEED_DONE && used != n)
        return FEED_ERROR;
    return r;
}

/* ---- requests ---- */

static void reconnect(Conn *c, int64_t now)
{
    conn_close(c);
    st.reconnects++;
    if (st.reconnects > (uint64_t)n_conns * 10 + 100)
        die("too many reconnects (%" PRIu64 "): the server keeps closing connections",
            st.reconnects);
    conn_open(c, now);
}

/* The request on c failed: count it and replace the connection. */
static void request_failed(Conn *c, uint64_t *counter, const char *what, int64_t now)
{
    (*counter)++;
    if (*counter <= 3)
        fprintf(stderr, "loadgen: %s: %s\n", opt_label[0] ? opt_label : opt_connect, what);
    reconnect(c, now);
}

static void request_done(Conn *c, int64_t now)
{
    st.completed++;
    st.last_status = c->status;
    if (c->status < 200 || c->status >= 300) {
        st.err_status++;
        if (st.err_status <= 3)
            fprintf(stderr, "loadgen: %s: HTTP status %d\n", opt_label[0] ? opt_label : opt_connect,
                    c->status);
    } else {
        if (c->body_bytes < st.body_min)
            st.body_min = c->body_bytes;
        if (c->body_bytes > st.body_max)
            st.body_max = c->body_bytes;
        if (c->measured) {
            st.measured_completed++;
            samples_add(&s_lat, now - c->sched_ns);
            samples_add(&s_ttfb, (c->first_byte_ns ? c->first_byte_ns : now) - c->sched_ns);
            samples_add(&s_lag, c->sent_ns - c->sched_ns);
        }
    }
    if (c->close_after) {
        reconnect(c, now);
        return;
    }
    n_busy--;
    push_idle(c);
}

/* Writes what is left of the request. Returns false if the connection failed. */
static bool conn_write(Conn *c, int64_t now)
{
    while (c->woff < request_len) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, request + c->woff, (int)(request_len - c->woff));
        if (r > 0) {
            c->woff += (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return true;
        }
        if (e == SSL_ERROR_WANT_READ) {
            set_events(c, EPOLLIN);
            return true;
        }
        request_failed(c, &st.err_closed, "connection failed while sending", now);
        return false;
    }
    set_events(c, EPOLLIN);
    return true;
}

static void send_request(Conn *c, int64_t sched, bool measured, int64_t now)
{
    c->state = CONN_BUSY;
    n_busy++;
    c->sched_ns = sched;
    c->sent_ns = now;
    c->measured = measured;
    c->woff = 0;
    c->deadline_ns = now + (int64_t)(opt_timeout * NS_PER_S);
    response_reset(c);
    st.sent++;
    conn_write(c, now);
}

/* Reads and parses what arrived on a busy connection, or notices that an
 * idle one was closed by the server. */
static void conn_read(Conn *c, int64_t now)
{
    static char buf[READ_BUF];
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, buf, sizeof buf);
        if (r > 0) {
            if (c->state != CONN_BUSY) {
                request_failed(c, &st.err_protocol, "bytes from the server while idle", now);
                return;
            }
            FeedResult f = feed(c, buf, (size_t)r, now);
            if (f == FEED_ERROR) {
                request_failed(c, &st.err_protocol, "malformed response", now);
                return;
            }
            if (f == FEED_DONE) {
                if (SSL_has_pending(c->ssl)) {
                    request_failed(c, &st.err_protocol, "bytes after the response", now);
                    return;
                }
                request_done(c, now);
                return;
            }
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_WANT_WRITE) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return;
        }
        /* The server closed (cleanly or not). */
        if (c->state == CONN_BUSY && c->body_mode == BODY_CLOSE && !c->in_head) {
            request_done(c, now); /* close_after is set: it reconnects */
            return;
        }
        if (c->state == CONN_BUSY)
            request_failed(c, &st.err_closed, "connection closed before the response ended", now);
        else
            reconnect(c, now); /* idle close: nothing lost */
        return;
    }
}

static void conn_event(Conn *c, uint32_t events, int64_t now)
{
    if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE) {
        conn_setup_step(c);
        return;
    }
    if (c->state == CONN_BUSY && c->woff < request_len) {
        if (!conn_write(c, now))
            return;
        if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
            return;
    }
    conn_read(c, now);
}

/* ---- the event loop ---- */

/* Waits for events until `until_ns` (or -1: indefinitely) and dispatches them. */
static void poll_once(int64_t until_ns)
{
    struct epoll_event evs[256];
    struct timespec ts, *tsp = NULL;
    if (until_ns >= 0) {
        int64_t d = until_ns - now_ns();
        if (d < 0)
            d = 0;
        ts.tv_sec = d / NS_PER_S;
        ts.tv_nsec = d % NS_PER_S;
        tsp = &ts;
    }
    /* epoll_pwait2 takes a nanosecond timeout: a 1 ms epoll_wait granularity
     * would put every request up to 1 ms late on a 1000 req/s grid. */
    int n = epoll_pwait2(epfd, evs, 256, tsp, NULL);
    if (n < 0 && errno == ENOSYS) {
        int ms = tsp ? (int)((ts.tv_sec * NS_PER_S + ts.tv_nsec) / 1000000) : -1;
        n = epoll_wait(epfd, evs, 256, ms);
    }
    if (n < 0) {
        if (errno == EINTR)
            return;
        die("epoll_wait: %s", strerror(errno));
    }
    int64_t now = now_ns();
    for (int i = 0; i < n; i++) {
        Conn *c = &conns[evs[i].data.u64];
        if (c->state != CONN_FREE)
            conn_event(c, evs[i].events, now);
    }
}

static long count_state(ConnState s)
{
    long n = 0;
    for (long i = 0; i < n_conns; i++)
        n += conns[i].state == s;
    return n;
}

/* Expires setups and requests past their deadline. */
static void check_deadlines(int64_t now)
{
    for (long i = 0; i < n_conns; i++) {
        Conn *c = &conns[i];
        if (c->state == CONN_FREE || c->state == CONN_IDLE || c->deadline_ns > now)
            continue;
        if (c->state == CONN_BUSY) {
            request_failed(c, &st.err_timeout, "request timed out", now);
        } else {
            fprintf(stderr, "loadgen: connection setup to %s timed out\n", opt_connect);
            st.err_connect++;
            conn_close(c);
        }
    }
}

/* Opens every connection, MAX_HANDSHAKING at a time; dies if any fails. */
static void open_all(void)
{
    long opened = 0;
    int64_t deadline = now_ns() + (int64_t)(opt_timeout * NS_PER_S) +
                       (n_conns / MAX_HANDSHAKING + 1) * (int64_t)(opt_timeout * NS_PER_S);
    while (idle_stack_top < n_conns) {
        int64_t now = now_ns();
        long in_setup = count_state(CONN_CONNECTING) + count_state(CONN_HANDSHAKE);
        while (opened < n_conns && in_setup < MAX_HANDSHAKING) {
            if (!conn_open(&conns[opened++], now))
                die("cannot connect to %s", opt_connect);
            in_setup++;
        }
        if (st.err_connect || st.err_tls)
            die("cannot set up connection %ld to %s (SNI %s)", opened, opt_connect, opt_sni);
        if (now > deadline)
            die("timed out opening %ld connections to %s", n_conns, opt_connect);
        poll_once(now + 100 * 1000000LL);
        check_deadlines(now_ns());
    }
}

static void setup(void)
{
    /* Nanosecond timer slack: the default 50 us would shift every wakeup. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (ssl_ctx == NULL)
        die("SSL_CTX_new: %s", ssl_error_text());
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(ssl_ctx, opt_ca, NULL) != 1)
        die("cannot load trust anchors from %s: %s", opt_ca, ssl_error_text());
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Every connection does a full handshake: setup cost is not measured,
     * and resumption would only add a code path to the comparison. */
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    /* Read whole socket buffers, not a record header and then its body:
     * half the read() calls per response. */
    SSL_CTX_set_read_ahead(ssl_ctx, 1);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ssl_ctx, alpn, sizeof alpn - 1);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    n_conns = opt_idle ? opt_idle : opt_connections;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)n_conns + 16 > rl.rlim_cur)
        die("%ld connections need more descriptors than RLIMIT_NOFILE (%llu)", n_conns,
            (unsigned long long)rl.rlim_cur);
    conns = calloc((size_t)n_conns, sizeof *conns);
    idle_stack = calloc((size_t)n_conns, sizeof *idle_stack);
    if (conns == NULL || idle_stack == NULL)
        die("out of memory");
    for (long i = 0; i < n_conns; i++)
        conns[i].fd = -1;
}

/* ---- report ---- */

static uint64_t errors_total(void)
{
    return st.err_status + st.err_connect + st.err_tls + st.err_protocol + st.err_timeout +
           st.err_closed + st.dropped;
}

static void print_dist(const char *name, const Samples *s)
{
    printf("  %-6s us: p50 %8.1f  p90 %8.1f  p99 %8.1f  p99.9 %8.1f  max %8.1f  mean %8.1f\n", name,
           pct_us(s, 50), pct_us(s, 90), pct_us(s, 99), pct_us(s, 99.9), pct_us(s, 100),
           mean_us(s));
}

static void json_dist(const char *name, const Samples *s, bool comma)
{
    printf("\"%s\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f,"
           "\"mean\":%.1f}%s",
           name, pct_us(s, 50), pct_us(s, 90), pct_us(s, 99), pct_us(s, 99.9), pct_us(s, 100),
           mean_us(s), comma ? "," : "");
}

/* The label is printed inside a JSON string: only a safe subset passes. */
static void json_safe_label(char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; opt_label[i] && j + 1 < cap; i++) {
        unsigned char ch = (unsigned char)opt_label[i];
        out[j++] = (isalnum(ch) || strchr("-_.:/ +", ch)) ? (char)ch : '_';
    }
    out[j] = '\0';
}

static void report(double elapsed_s, double cpu_user_s, double cpu_sys_s)
{
    qsort(s_lat.v, s_lat.n, sizeof *s_lat.v, cmp_u64);
    qsort(s_ttfb.v, s_ttfb.n, sizeof *s_ttfb.v, cmp_u64);
    qsort(s_lag.v, s_lag.n, sizeof *s_lag.v, cmp_u64);
    double achieved = elapsed_s > 0 ? (double)st.measured_completed / elapsed_s : 0;
    uint64_t body_min = st.body_min == UINT64_MAX ? 0 : st.body_min;
    printf("%s%s%s%s: %ld req/s x %.1f s (+%.1f s warm-up), %ld connections\n",
           opt_label[0] ? opt_label : "loadgen", " [", opt_ttfb ? "ttfb" : "latency", "]",
           opt_rate, opt_duration, opt_warmup, opt_connections);
    printf("  requests %" PRIu64 " measured (%" PRIu64 " sent in all), achieved %.1f req/s, "
           "errors %" PRIu64 "\n",
           (uint64_t)s_lat.n, st.sent, achieved, errors_total());
    if (errors_total())
        printf("  errors: status %" PRIu64 ", connect %" PRIu64 ", tls %" PRIu64 ", protocol %" PRIu64
               ", timeout %" PRIu64 ", closed %" PRIu64 ", dropped %" PRIu64 "\n",
               st.err_status, st.err_connect, st.err_tls, st.err_protocol, st.err_timeout,
               st.err_closed, st.dropped);
    printf("  response body %" PRIu64 " bytes%s, reconnects %" PRIu64 "\n", body_min,
           body_min == st.body_max || st.body_max == 0 ? "" : " (varies)", st.reconnects);
    print_dist(opt_ttfb ? "ttfb" : "lat", opt_ttfb ? &s_ttfb : &s_lat);
    print_dist(opt_ttfb ? "total" : "ttfb", opt_ttfb ? &s_lat : &s_ttfb);
    print_dist("lag", &s_lag);
    printf("  loadgen cpu: %.2f us per request\n",
           st.sent ? (cpu_user_s + cpu_sys_s) * 1e6 / (double)st.sent : 0.0);
    if (opt_json) {
        char label[128];
        json_safe_label(label, sizeof label);
        printf("{\"label\":\"%s\",\"mode\":\"%s\",\"rate\":%ld,\"duration\":%.3f,\"warmup\":%.3f,"
               "\"connections\":%ld,\"measured\":%zu,\"sent\":%" PRIu64 ",\"achieved\":%.1f,"
               "\"errors\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"body_bytes_min\":%" PRIu64
               ",\"body_bytes_max\":%" PRIu64 ",\"status\":%d,\"loadgen_cpu_total_us\":%.3f,",
               label, opt_ttfb ? "ttfb" : "latency", opt_rate, opt_duration, opt_warmup,
               opt_connections, s_lat.n, st.sent, achieved, errors_total(), st.reconnects,
               body_min, st.body_max, st.last_status, (cpu_user_s + cpu_sys_s) * 1e6);
        json_dist("latency_us", &s_lat, true);
        json_dist("ttfb_us", &s_ttfb, true);
        json_dist("lag_us", &s_lag, false);
        printf("}\n");
    }
    fflush(stdout);
}

static void cpu_times(double *ret_user, double *ret_sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *ret_user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *ret_sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- modes ---- */

static int run_load(void)
{
    double u0, s0, u1, s1;
    cpu_times(&u0, &s0);
    const int64_t interval = NS_PER_S / opt_rate;
    const uint64_t n_warm = (uint64_t)(opt_warmup * (double)opt_rate);
    const uint64_t n_total = n_warm + (uint64_t)(opt_duration * (double)opt_rate);
    /* A backlog beyond one second of requests (or every connection twice
     * over) means the server cannot keep up: later requests are dropped
     * and counted rather than queued without bound. */
    const uint64_t max_backlog = (uint64_t)opt_rate > (uint64_t)n_conns * 2 ? (uint64_t)opt_rate
                                                                           : (uint64_t)n_conns * 2;
    samples_init(&s_lat, n_total - n_warm);
    samples_init(&s_ttfb, n_total - n_warm);
    samples_init(&s_lag, n_total - n_warm);

    const int64_t t0 = now_ns() + 1000000; /* first request 1 ms from now */
    const int64_t t_measure = t0 + (int64_t)n_warm * interval;
    const int64_t t_sched_end = t0 + (int64_t)n_total * interval;
    /* Whatever is not done this long after the schedule ends is an error. */
    const int64_t drain_deadline = t_sched_end + (int64_t)(opt_timeout * NS_PER_S);
    uint64_t next = 0; /* next request index to send; all below were sent or dropped */
    int64_t last_check = t0;
    for (;;) {
        int64_t now = now_ns();
        /* Requests whose scheduled time has passed, oldest first. */
        while (next < n_total && t0 + (int64_t)next * interval <= now) {
            uint64_t due = (uint64_t)((now - t0) / interval) + 1;
            if (due > n_total)
                due = n_total;
            if (due - next > max_backlog) {
                uint64_t drop = due - next - max_backlog;
                for (uint64_t k = 0; k < drop; k++)
                    if (next + k >= n_warm)
                        st.dropped++;
                next += drop;
                continue;
            }
            if (idle_stack_top == 0)
                break; /* queued: sent when a connection frees up, timed from schedule */
            Conn *c = &conns[idle_stack[--idle_stack_top]];
            send_request(c, t0 + (int64_t)next * interval, next >= n_warm, now);
            next++;
        }
        if (now - last_check > 10 * 1000000LL) {
            check_deadlines(now);
            last_check = now;
        }
        if (next >= n_total && n_busy == 0)
            break;
        if (now > drain_deadline) {
            /* Requests never sent count as dropped, those in flight as timeouts. */
            for (; next < n_total; next++)
                if (next >= n_warm)
                    st.dropped++;
            break;
        }
        /* Sleep until the next scheduled request (if a connection is free
         * to take it) or at most 10 ms, to keep checking deadlines. */
        int64_t wake = now + 10 * 1000000LL;
        if (next < n_total && idle_stack_top > 0) {
            int64_t t = t0 + (int64_t)next * interval;
            if (t < wake)
                wake = t;
        }
        poll_once(wake);
    }
    for (long i = 0; i < n_conns; i++)
        if (conns[i].state == CONN_BUSY && conns[i].measured)
            st.err_timeout++;
    /* From the first measured schedule slot to the last response: a server
     * that cannot keep up shows as an achieved rate below the target. */
    double window = (double)(now_ns() - t_measure) / 1e9;
    cpu_times(&u1, &s1);
    report(window, u1 - u0, s1 - s0);
    return errors_total() ? 3 : 0;
}

static int run_idle(void)
{
    samples_init(&s_lat, (size_t)n_conns);
    samples_init(&s_ttfb, (size_t)n_conns);
    samples_init(&s_lag, (size_t)n_conns);
    /* One request on each connection, opt_idle_parallel in flight at a time. */
    long next = 0;
    int64_t deadline = now_ns() + (int64_t)(opt_timeout * NS_PER_S) * (n_conns / MAX_HANDSHAKING + 2);
    while (st.completed < (uint64_t)n_conns) {
        int64_t now = now_ns();
        while (next < n_conns && n_busy < opt_idle_parallel && conns[next].state == CONN_IDLE) {
            Conn *c = &conns[next++];
            remove_idle(c);
            send_request(c, now, true, now);
        }
        if (errors_total())
            die("a request in the idle setup failed");
        if (now > deadline)
            die("timed out making one request on each of %ld connections", n_conns);
        poll_once(now + 100 * 1000000LL);
        check_deadlines(now_ns());
    }
    long open_count = count_state(CONN_IDLE);
    printf("ready %ld\n", open_count);
    fflush(stdout);

    /* Hold until told to stop. Reconnects are not wanted here: a server
     * closing idle connections is what this mode must report. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        die("signalfd: %s", strerror(errno));
    const uint64_t id_signal = UINT64_MAX, id_stdin = UINT64_MAX - 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = id_signal};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    /* stdin may be something epoll refuses (a regular file): then only
     * signals end the hold. */
    ev.data.u64 = id_stdin;
    epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
    long closed_by_peer = 0;
    bool quit = false;
    while (!quit) {
        struct epoll_event evs[64];
        int n = epoll_wait(epfd, evs, 64, 1000);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            char buf[512];
            if (evs[i].data.u64 == id_signal) {
                quit = true;
                continue;
            }
            if (evs[i].data.u64 == id_stdin) {
                ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    quit = true;
                    epoll_ctl(epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
                }
                continue;
            }
            Conn *c = &conns[evs[i].data.u64];
            if (c->state == CONN_FREE)
                continue;
            ERR_clear_error();
            int r = SSL_read(c->ssl, buf, sizeof buf);
            int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
            if (r > 0 || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)) {
                closed_by_peer++;
                conn_close(c);
            }
        }
    }
    close(sfd);
    printf("idle: held %ld connections, %ld closed by the server meanwhile\n", open_count,
           closed_by_peer);
    fflush(stdout);
    return closed_by_peer ? 3 : 0;
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    build_request();
    setup();
    open_all();
    int rc = opt_idle ? run_idle() : run_load();
    for (long i = 0; i < n_conns; i++)
        conn_close(&conns[i]);
    SSL_CTX_free(ssl_ctx);
    free(conns);
    free(idle_stack);
    free(request);
    free(s_lat.v);
    free(s_ttfb.v);
    free(s_lag.v);
    close(epfd);
    return rc;
}
