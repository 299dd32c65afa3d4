/* bench-shim.c - what the preload shim adds to calls it does not intercept.
 *
 * Benchmarks (all pass-through paths of the shim):
 *   connect_udp_loopback   connect() of a UDP socket to 127.0.0.1:9 (no
 *                          listener needed, no packet sent)
 *   connect_badfd          connect(-1, ...): the kernel fails it at once,
 *                          so the shim's share stands out of the syscall
 *   getaddrinfo_localhost  a non-provider name (NSS files)
 *   getaddrinfo_numeric    a numeric literal: no NSS, less noise
 * and, under an active shim, getaddrinfo_provider (the synthetic answer).
 *
 * Each benchmark alternates rounds of N calls through the program's normal
 * binding (the shim when preloaded) and through libc's own function (looked
 * up in libc.so.6 directly), ROUNDS times. Output, one line per benchmark:
 *   NAME SYMBOL_NS LIBC_NS ADDED_NS
 * medians of the per-round ns per call, and the median of the per-round
 * differences: the shim's added cost measured under identical conditions.
 * Without LD_PRELOAD both sides are libc and ADDED_NS is the noise floor.
 * bench/run-shim-bench runs it with and without the shim.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 41

typedef int (*ConnectFn)(int, const struct sockaddr *, socklen_t);
typedef int (*GaiFn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

typedef struct {
    ConnectFn connect;
    GaiFn getaddrinfo;
    int fd;
    struct sockaddr_in addr;
    const char *name;
    int gai_flags;
} Ctx;

typedef int (*BenchFn)(Ctx *ctx);

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

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof v[0], cmp_double);
    return v[n / 2];
}

static double round_ns(BenchFn fn, Ctx *ctx, int n)
{
    double t0 = now_ns();
    for (int i = 0; i < n; i++) {
        if (fn(ctx) != 0) {
            fprintf(stderr, "bench-shim: call failed\n");
            exit(1);
        }
    }
    return (now_ns() - t0) / n;
}

static void measure(const char *name, BenchFn fn, Ctx *sym, Ctx *libc, int n)
{
    double a[ROUNDS], b[ROUNDS], d[ROUNDS];
    for (int i = 0; i < n / 10; i++) { /* warm caches and lazy bindings */
        fn(sym);
        fn(libc);
    }
    for (int r = 0; r < ROUNDS; r++) {
        /* Alternate which side goes first so drift does not favour one. */
        if (r % 2 == 0) {
            a[r] = round_ns(fn, sym, n);
            b[r] = round_ns(fn, libc, n);
        } else {
            b[r] = round_ns(fn, libc, n);
            a[r] = round_ns(fn, sym, n);
        }
        d[r] = a[r] - b[r];
    }
    double added = median(d, ROUNDS);
    printf("%s %.1f %.1f %.1f\n", name, median(a, ROUNDS), median(b, ROUNDS), added);
}

static int bench_connect(Ctx *c)
{
    return c->connect(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr);
}

static int bench_connect_badfd(Ctx *c)
{
    return c->connect(-1, (struct sockaddr *)&c->addr, sizeof c->addr) == -1 ? 0 : 1;
}

static int bench_getaddrinfo(Ctx *c)
{
    struct addrinfo hints = {
        .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = c->gai_flags};
    struct addrinfo *res = NULL;
    int rc = c->getaddrinfo(c->name, "443", &hints, &res);
    if (rc == 0)
        freeaddrinfo(res);
    return rc;
}

int main(int argc, char **argv)
{
    int scale = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1;
    if (scale < 1)
        scale = 1;

    /* libc's own functions, bypassing any preloaded interposer. */
    void *libc_handle = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (libc_handle == NULL) {
        fprintf(stderr, "bench-shim: libc.so.6 is not loaded: %s\n", dlerror());
        return 1;
    }
    Ctx sym = {.connect = connect, .getaddrinfo = getaddrinfo};
    Ctx libc = {
        .connect = (ConnectFn)dlsym(libc_handle, "connect"),
        .getaddrinfo = (GaiFn)dlsym(libc_handle, "getaddrinfo"),
    };
    if (libc.connect == NULL || libc.getaddrinfo == NULL) {
        fprintf(stderr, "bench-shim: libc lacks connect/getaddrinfo\n");
        return 1;
    }

    sym.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sym.fd < 0) {
        perror("bench-shim: socket");
        return 1;
    }
    sym.addr.sin_family = AF_INET;
    sym.addr.sin_port = htons(9);
    inet_pton(AF_INET, "127.0.0.1", &sym.addr.sin_addr);
    libc.fd = sym.fd;
    libc.addr = sym.addr;

    measure("connect_udp_loopback", bench_connect, &sym, &libc, 5000 * scale);
    measure("connect_badfd", bench_connect_badfd, &sym, &libc, 20000 * scale);
    close(sym.fd);

    sym.name = libc.name = "localhost";
    measure("getaddrinfo_localhost", bench_getaddrinfo, &sym, &libc, 500 * scale);
    sym.name = libc.name = "127.0.0.1";
    sym.gai_flags = libc.gai_flags = AI_NUMERICHOST;
    measure("getaddrinfo_numeric", bench_getaddrinfo, &sym, &libc, 5000 * scale);

    /* A provider name under an active shim: the synthetic answer's cost,
     * against libc resolving the literal it is built from. */
    const char *hosts = getenv("LLMWRAP_HOSTS");
    if (hosts != NULL && getenv("LD_PRELOAD") != NULL) {
        char first[256];
        size_t n = strcspn(hosts, ",");
        if (n > 0 && n < sizeof first) {
            memcpy(first, hosts, n);
            first[n] = '\0';
            sym.name = first;
            sym.gai_flags = 0;
            libc.name = "127.241.0.1";
            measure("getaddrinfo_provider", bench_getaddrinfo, &sym, &libc, 5000 * scale);
        }
    }
    return 0;
}
