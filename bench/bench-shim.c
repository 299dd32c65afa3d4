/* bench-shim.c - what the preload shim adds to calls it does not intercept.
 *
 * Measures connect() on a UDP socket to 127.0.0.1:9 (no listener needed, no
 * packet sent), connect() on a bad descriptor, getaddrinfo("localhost")
 * (a non-provider name) and getaddrinfo of a numeric literal. Run it
 * with and without LD_PRELOAD (bench/run-shim-bench does both) and compare:
 * the difference is the shim's cost on the hot path.
 *
 * Output, one line per benchmark: NAME MEDIAN_NS_PER_CALL
 * Each benchmark runs ROUNDS rounds of N calls; the median round is
 * reported, so a descheduled round does not skew the result.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 31

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef int (*BenchFn)(void *ctx);

/* Median over ROUNDS of the mean ns per call of `n` calls. */
static double measure(BenchFn fn, void *ctx, int n)
{
    double rounds[ROUNDS];
    for (int i = 0; i < n / 10; i++) /* warm caches and lazy bindings */
        fn(ctx);
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < n; i++) {
            if (fn(ctx) != 0) {
                fprintf(stderr, "bench-shim: call failed\n");
                exit(1);
            }
        }
        rounds[r] = (now_ns() - t0) / n;
    }
    qsort(rounds, ROUNDS, sizeof rounds[0], cmp_double);
    return rounds[ROUNDS / 2];
}

typedef struct {
    int fd;
    struct sockaddr_in addr;
} ConnectCtx;

static int bench_connect(void *p)
{
    ConnectCtx *c = p;
    return connect(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr);
}

/* connect() on a bad descriptor: the kernel fails it at once, so the
 * shim's share of the call stands out from the syscall's noise. */
static int bench_connect_badfd(void *p)
{
    ConnectCtx *c = p;
    return connect(-1, (struct sockaddr *)&c->addr, sizeof c->addr) == -1 ? 0 : 1;
}

static int bench_getaddrinfo_flags(const char *name, int flags)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = flags};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(name, "443", &hints, &res);
    if (rc == 0)
        freeaddrinfo(res);
    return rc;
}

static int bench_getaddrinfo(void *p)
{
    return bench_getaddrinfo_flags(p, 0);
}

/* A numeric name never reaches NSS: less noise than "localhost", and the
 * shim still checks it against the provider table. */
static int bench_getaddrinfo_numeric(void *p)
{
    return bench_getaddrinfo_flags(p, AI_NUMERICHOST);
}

int main(int argc, char **argv)
{
    int scale = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1;
    if (scale < 1)
        scale = 1;

    ConnectCtx c = {.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    c.addr.sin_family = AF_INET;
    c.addr.sin_port = htons(9);
    inet_pton(AF_INET, "127.0.0.1", &c.addr.sin_addr);
    if (c.fd < 0) {
        perror("bench-shim: socket");
        return 1;
    }
    printf("connect_udp_loopback %.1f\n", measure(bench_connect, &c, 20000 * scale));
    printf("connect_badfd %.1f\n", measure(bench_connect_badfd, &c, 20000 * scale));
    close(c.fd);

    printf("getaddrinfo_localhost %.1f\n",
           measure(bench_getaddrinfo, (void *)"localhost", 2000 * scale));
    printf("getaddrinfo_numeric %.1f\n",
           measure(bench_getaddrinfo_numeric, (void *)"127.0.0.1", 5000 * scale));

    /* A provider name under an active shim: the synthetic answer's cost. */
    const char *hosts = getenv("LLMWRAP_HOSTS");
    if (hosts != NULL && getenv("LD_PRELOAD") != NULL) {
        char first[256];
        size_t n = strcspn(hosts, ",");
        if (n > 0 && n < sizeof first) {
            memcpy(first, hosts, n);
            first[n] = '\0';
            printf("getaddrinfo_provider %.1f\n",
                   measure(bench_getaddrinfo, first, 2000 * scale));
        }
    }
    return 0;
}
