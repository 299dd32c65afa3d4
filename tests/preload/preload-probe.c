/* preload-probe.c - a program that exercises the hooked calls and prints
 * what it observed as "key=value" lines. tests/preload/test-preload.py runs
 * it under the shim and is the oracle: the probe itself asserts nothing.
 *
 *   preload-probe resolve
 *   preload-probe connect HOST PORT [nonblock] [v6] [udp] [count=N] [again] [eintr] [send]
 *       again: once connected, connect() twice more (0, then EISCONN after
 *       a non-blocking connect), as Perl's IO::Socket with a Timeout does;
 *       eintr: a signal 200 ms in interrupts a blocking connect(), which is
 *       called again while it fails with EINTR, as most programs do
 *   preload-probe fork-connect HOST PORT
 *   preload-probe fastopen HOST PORT [sendmsg]
 *   preload-probe exec MODE [connect]   (MODE: execve-empty, execve-custom,
 *       fexecve-empty, fexecve-custom, execveat-empty, execveat-custom,
 *       execv, execvp, execvpe, execl, execlp, execle, posix_spawn,
 *       posix_spawnp); the child runs "report"
 *   preload-probe report [connect]
 *   preload-probe threads HOST...       (concurrent lookups, one host each)
 *
 * Names are resolved with getaddrinfo only when they are provider hosts under
 * an active shim or numeric literals, so the probe never queries DNS.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* When built with ASan, children that get the shim back through the exec
 * hooks preload it ahead of the sanitizer runtime; allow that. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "verify_asan_link_order=0:detect_leaks=0";
}

static const char *errno_name(int e)
{
    switch (e) {
    case 0:
        return "0";
    case ECONNREFUSED:
        return "ECONNREFUSED";
    case EINPROGRESS:
        return "EINPROGRESS";
    case EOPNOTSUPP:
        return "EOPNOTSUPP";
    case ENETUNREACH:
        return "ENETUNREACH";
    case EDOM:
        return "EDOM";
    case ERANGE:
        return "ERANGE";
    case EAFNOSUPPORT:
        return "EAFNOSUPPORT";
    case EISCONN:
        return "EISCONN";
    case EALREADY:
        return "EALREADY";
    default:
        return strerror(e);
    }
}

static const char *gai_name(int rc)
{
    switch (rc) {
    case 0:
        return "0";
    case EAI_NONAME:
        return "EAI_NONAME";
    case EAI_FAMILY:
        return "EAI_FAMILY";
    case EAI_SERVICE:
        return "EAI_SERVICE";
    case EAI_OVERFLOW:
        return "EAI_OVERFLOW";
    case EAI_SOCKTYPE:
        return "EAI_SOCKTYPE";
    case EAI_AGAIN:
        return "EAI_AGAIN";
    default:
        return gai_strerror(rc);
    }
}

static void print_sockaddr(const char *key, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
    }
    printf("%s=%s:%u\n", key, host, port);
}

static const char *socktype_name(int t)
{
    return t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : t == SOCK_RAW ? "raw" : "?";
}

/* key=rc;family/addr/port/socktype,...;canon */
static void gai(const char *key, const char *node, const char *service,
                const struct addrinfo *hints)
{
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(node, service, hints, &res);
    printf("%s=%s", key, gai_name(rc));
    for (struct addrinfo *ai = res; rc == 0 && ai != NULL; ai = ai->ai_next) {
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (ai->ai_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
            port = ntohs(sin->sin_port);
        } else if (ai->ai_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ai->ai_addr;
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
            port = ntohs(sin6->sin6_port);
        }
        printf("%s%s/%s/%u/%s", ai == res ? ";" : ",", ai->ai_family == AF_INET ? "inet" : "inet6",
               host, port, socktype_name(ai->ai_socktype));
    }
    if (rc == 0 && res->ai_canonname != NULL)
        printf(";canon=%s", res->ai_canonname);
    printf("\n");
    if (rc == 0)
        freeaddrinfo(res);
}

static void print_hostent(const char *key, const struct hostent *he)
{
    if (he == NULL) {
        printf("%s=NULL\n", key);
        return;
    }
    char addr[INET6_ADDRSTRLEN] = "?";
    inet_ntop(he->h_addrtype, he->h_addr_list[0], addr, sizeof addr);
    printf("%s=%s;%s;%d;%s;aliases=%d\n", key, he->h_name,
           he->h_addrtype == AF_INET ? "inet" : "inet6", he->h_length, addr,
           he->h_aliases[0] != NULL);
}

static int cmd_resolve(void)
{
    struct addrinfo h = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    gai("gai_unspec", "api.openai.com", "8443", &h);
    h.ai_family = AF_INET;
    gai("gai_inet", "api.openai.com", "8443", &h);
    h.ai_family = AF_INET6;
    gai("gai_inet6", "api.openai.com", "8443", &h);
    h.ai_flags = AI_V4MAPPED;
    gai("gai_inet6_v4mapped", "api.openai.com", "8443", &h);
    h.ai_flags = AI_V4MAPPED | AI_ALL;
    gai("gai_inet6_all", "api.openai.com", "8443", &h);
    gai("gai_null_hints", "api.openai.com", NULL, NULL);
    struct addrinfo canon = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME};
    gai("gai_canon", "API.OpenAI.com.", "443", &canon);
    struct addrinfo addrconfig = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    gai("gai_addrconfig", "api.openai.com", "443", &addrconfig);
    struct addrinfo numeric = {.ai_family = AF_UNSPEC, .ai_flags = AI_NUMERICHOST};
    gai("gai_numerichost", "api.openai.com", "443", &numeric);
    struct addrinfo numserv = {
        .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    gai("gai_numericserv_bad", "api.openai.com", "https", &numserv);
    struct addrinfo dgram = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM};
    gai("gai_dgram", "api.openai.com", "443", &dgram);
    gai("gai_last", "api.perplexity.ai", "1", &dgram);
    gai("gai_literal", "127.0.0.1", "80", &dgram);

    print_hostent("ghbn", gethostbyname("api.anthropic.com"));
    print_hostent("ghbn2_inet", gethostbyname2("api.openai.com", AF_INET));
    print_hostent("ghbn2_inet6", gethostbyname2("api.openai.com", AF_INET6));

    struct hostent he, *result = NULL;
    char buf[1024];
    int herr = -1;
    int rc = gethostbyname_r("API.X.AI", &he, buf, sizeof buf, &result, &herr);
    printf("ghbn_r_rc=%d;herr=%d\n", rc, herr);
    print_hostent("ghbn_r", result);
    rc = gethostbyname2_r("api.x.ai", AF_INET6, &he, buf, sizeof buf, &result, &herr);
    printf("ghbn2_r_rc=%d;herr=%d\n", rc, herr);
    print_hostent("ghbn2_r", result);
    errno = 0;
    rc = gethostbyname_r("api.x.ai", &he, buf, 8, &result, &herr);
    printf("ghbn_r_small=%s;errno=%s;herr=%d;result=%s\n", errno_name(rc), errno_name(errno), herr,
           result == NULL ? "NULL" : "set");

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(443)};
    inet_pton(AF_INET, "127.241.0.2", &sin.sin_addr);
    char host[256], serv[32];
    rc = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, serv, sizeof serv,
                     NI_NUMERICSERV);
    printf("gni=%s;%s;%s\n", gai_name(rc), rc == 0 ? host : "", rc == 0 ? serv : "");
    rc = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, NULL, 0, NI_NAMEREQD);
    printf("gni_namereqd=%s;%s\n", gai_name(rc), rc == 0 ? host : "");
    rc = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, serv, sizeof serv,
                     NI_NUMERICHOST | NI_NUMERICSERV);
    printf("gni_numeric=%s;%s;%s\n", gai_name(rc), rc == 0 ? host : "", rc == 0 ? serv : "");
    rc = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, 5, NULL, 0, 0);
    printf("gni_small=%s\n", gai_name(rc));
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(8443)};
    inet_pton(AF_INET6, "::ffff:127.241.0.2", &sin6.sin6_addr);
    rc = getnameinfo((struct sockaddr *)&sin6, sizeof sin6, host, sizeof host, serv, sizeof serv,
                     NI_NUMERICSERV);
    printf("gni_v6=%s;%s;%s\n", gai_name(rc), rc == 0 ? host : "", rc == 0 ? serv : "");

    print_hostent("ghba", gethostbyaddr(&sin.sin_addr, 4, AF_INET));
    print_hostent("ghba_v6", gethostbyaddr(&sin6.sin6_addr, 16, AF_INET6));
    rc = gethostbyaddr_r(&sin.sin_addr, 4, AF_INET, &he, buf, sizeof buf, &result, &herr);
    printf("ghba_r_rc=%d\n", rc);
    print_hostent("ghba_r", result);
    return 0;
}

typedef struct {
    bool nonblock, v6, udp, send, again, eintr;
    int count;
} ConnectOpts;

static void on_alarm(int sig)
{
    (void)sig;
}

/* Resolves HOST:PORT for a stream (or datagram) socket of the family. */
static int resolve(const char *host, const char *port, int family, int socktype,
                   struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = family,
                             .ai_socktype = socktype,
                             .ai_flags = family == AF_INET6 ? AI_V4MAPPED : 0};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        printf("resolve=%s\n", gai_name(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int wait_connected(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLOUT}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    int n = epoll_wait(ep, &out, 1, 10000);
    close(ep);
    printf("epoll=%d;events=%s\n", n, n == 1 && (out.events & EPOLLOUT) ? "out" : "other");
    int err = -1;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    printf("so_error=%s\n", errno_name(err));
    return err;
}

static int one_connect(const char *host, const char *port, const ConnectOpts *o)
{
    int family = o->v6 ? AF_INET6 : AF_INET;
    int type = o->udp ? SOCK_DGRAM : SOCK_STREAM;
    struct sockaddr_storage ss;
    socklen_t len;
    if (resolve(host, port, family, type, &ss, &len) != 0)
        return 1;
    print_sockaddr("target", (struct sockaddr *)&ss);
    int fd = socket(family, type | SOCK_CLOEXEC | (o->nonblock ? SOCK_NONBLOCK : 0), 0);
    if (o->eintr) {
        struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {.it_value = {.tv_usec = 200000}};
        setitimer(ITIMER_REAL, &it, NULL);
    }
    errno = EDOM; /* a successful connect leaves errno alone */
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    int interrupted = 0;
    while (o->eintr && rc != 0 && errno == EINTR) {
        interrupted++;
        rc = connect(fd, (struct sockaddr *)&ss, len);
    }
    if (o->eintr)
        printf("interrupted=%d\n", interrupted);
    int e = errno;
    printf("connect_rc=%d\nerrno=%s\n", rc,
           rc == 0 ? (e == EDOM ? "kept" : errno_name(e)) : errno_name(e));
    if (rc != 0 && e == EINPROGRESS)
        rc = wait_connected(fd) == 0 ? 0 : -1;
    for (int i = 0; o->again && rc == 0 && i < 2; i++) {
        int again = connect(fd, (struct sockaddr *)&ss, len);
        printf("again_rc=%d\nagain_errno=%s\n", again, again == 0 ? "0" : errno_name(errno));
    }
    if (o->nonblock)
        printf("nonblock_kept=%d\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    if (rc == 0) {
        struct sockaddr_storage local, peer;
        socklen_t ll = sizeof local, pl = sizeof peer;
        getsockname(fd, (struct sockaddr *)&local, &ll);
        getpeername(fd, (struct sockaddr *)&peer, &pl);
        print_sockaddr("local", (struct sockaddr *)&local);
        print_sockaddr("peer", (struct sockaddr *)&peer);
        if (o->send) {
            char line[64];
            int n = snprintf(line, sizeof line, "probe %d\n", (int)getpid());
            if (o->nonblock) {
                int fl = fcntl(fd, F_GETFL);
                fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
            }
            printf("sent=%zd\n", send(fd, line, (size_t)n, MSG_NOSIGNAL));
        }
    }
    close(fd);
    fflush(stdout);
    return 0;
}

static int cmd_connect(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    ConnectOpts o = {.count = 1};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "nonblock") == 0)
            o.nonblock = true;
        else if (strcmp(argv[i], "v6") == 0)
            o.v6 = true;
        else if (strcmp(argv[i], "udp") == 0)
            o.udp = true;
        else if (strcmp(argv[i], "send") == 0)
            o.send = true;
        else if (strcmp(argv[i], "again") == 0)
            o.again = true;
        else if (strcmp(argv[i], "eintr") == 0)
            o.eintr = true;
        else if (strncmp(argv[i], "count=", 6) == 0)
            o.count = (int)strtol(argv[i] + 6, NULL, 10);
    }
    printf("pid=%d\nppid=%d\n", (int)getpid(), (int)getppid());
    for (int i = 0; i < o.count; i++) {
        if (one_connect(argv[0], argv[1], &o) != 0)
            return 1;
    }
    return 0;
}

static int cmd_fork_connect(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child_pid=%d\n", (int)getpid());
        ConnectOpts o = {.count = 1, .send = true};
        _exit(one_connect(argv[0], argv[1], &o));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

static int cmd_fastopen(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    bool use_sendmsg = argc > 2 && strcmp(argv[2], "sendmsg") == 0;
    struct sockaddr_storage ss;
    socklen_t len;
    if (resolve(argv[0], argv[1], AF_INET, SOCK_STREAM, &ss, &len) != 0)
        return 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    static char data[] = "tfo-hello\n";
    ssize_t rc;
    if (use_sendmsg) {
        struct iovec iov = {.iov_base = data, .iov_len = strlen(data)};
        struct msghdr m = {.msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
        rc = sendmsg(fd, &m, MSG_FASTOPEN | MSG_NOSIGNAL);
    } else {
        rc = sendto(fd, data, strlen(data), MSG_FASTOPEN | MSG_NOSIGNAL, (struct sockaddr *)&ss,
                    len);
    }
    printf("fastopen_rc=%zd\nerrno=%s\n", rc, rc >= 0 ? "0" : errno_name(errno));
    if (rc >= 0) {
        struct sockaddr_storage peer, local;
        socklen_t pl = sizeof peer, ll = sizeof local;
        getpeername(fd, (struct sockaddr *)&peer, &pl);
        print_sockaddr("peer", (struct sockaddr *)&peer);
        getsockname(fd, (struct sockaddr *)&local, &ll);
        print_sockaddr("local", (struct sockaddr *)&local);
    }
    close(fd);
    return 0;
}

/* Whether libllmwrap-preload.so is mapped into this process. */
static bool shim_loaded(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[1024];
    bool found = false;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, "libllmwrap-preload.so") != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

static int cmd_report(int argc, char **argv)
{
    static const char *const vars[] = {
        "LD_PRELOAD",    "LLMWRAP_HOSTS", "LLMWRAP_PORT",        "LLMWRAP_PRELOAD",
        "SSL_CERT_FILE", "GODEBUG",       "NODE_EXTRA_CA_CERTS", "FOO"};
    bool loaded = shim_loaded();
    printf("report_pid=%d\nshim_loaded=%d\n", (int)getpid(), loaded);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        printf("env_%s=%s\n", vars[i], v != NULL ? v : "<unset>");
    }
    /* Only ask for a provider name when an active shim answers it: no DNS. */
    const char *sentinel = getenv("LLMWRAP_COLLECTOR");
    if (loaded && getenv("LLMWRAP_HOSTS") != NULL && (sentinel == NULL || strcmp(sentinel, "1"))) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
        gai("resolved", "api.openai.com", "443", &hints);
        if (argc > 0 && strcmp(argv[0], "connect") == 0) {
            ConnectOpts o = {.count = 1, .send = true};
            one_connect("api.openai.com", "443", &o);
        }
    }
    return 0;
}

typedef struct {
    const char *host;
    char expect[INET6_ADDRSTRLEN];
    int mismatches;
} ThreadArg;

/* Resolves one host over and over, with the non-reentrant calls too: each
 * thread must always see its own answer. */
static void *lookup_loop(void *p)
{
    ThreadArg *a = p;
    for (int i = 0; i < 2000; i++) {
        char addr[INET6_ADDRSTRLEN] = "";
        struct hostent *he = gethostbyname(a->host);
        if (he != NULL)
            inet_ntop(AF_INET, he->h_addr_list[0], addr, sizeof addr);
        if (he == NULL || strcmp(addr, a->expect) != 0 || strcmp(he->h_name, a->host) != 0)
            a->mismatches++;
        /* AF_UNSPEC: the answer joins two lists, freed as one. */
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        if (getaddrinfo(a->host, "443", &hints, &res) != 0) {
            a->mismatches++;
            continue;
        }
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, addr, sizeof addr);
        if (strcmp(addr, a->expect) != 0)
            a->mismatches++;
        freeaddrinfo(res);
    }
    return NULL;
}

static int cmd_threads(int argc, char **argv)
{
    if (argc < 1 || argc > 16)
        return 2;
    ThreadArg args[16];
    pthread_t threads[16];
    for (int i = 0; i < argc; i++) {
        args[i] = (ThreadArg){.host = argv[i]};
        struct hostent *he = gethostbyname(argv[i]);
        if (he == NULL)
            return 1;
        inet_ntop(AF_INET, he->h_addr_list[0], args[i].expect, sizeof args[i].expect);
    }
    for (int i = 0; i < argc; i++)
        pthread_create(&threads[i], NULL, lookup_loop, &args[i]);
    int mismatches = 0;
    for (int i = 0; i < argc; i++) {
        pthread_join(threads[i], NULL);
        mismatches += args[i].mismatches;
        printf("thread_%d=%s\n", i, args[i].expect);
    }
    printf("mismatches=%d\n", mismatches);
    return 0;
}

extern char **environ;

static int cmd_exec(int argc, char **argv, const char *self)
{
    if (argc < 1)
        return 2;
    const char *mode = argv[0];
    char *connect_arg = argc > 1 ? argv[1] : NULL;
    char *child_argv[] = {"preload-probe", "report", connect_arg, NULL};
    char *empty[] = {NULL};
    char *custom[] = {"FOO=bar", "SSL_CERT_FILE=/custom.pem", "LD_PRELOAD=/nonexistent/other.so",
                      NULL};
    fflush(stdout);

    if (strcmp(mode, "execve-empty") == 0) {
        execve(self, child_argv, empty);
    } else if (strcmp(mode, "execve-custom") == 0) {
        execve(self, child_argv, custom);
    } else if (strncmp(mode, "fexecve-", 8) == 0) {
        int fd = open(self, O_RDONLY | O_CLOEXEC);
        fexecve(fd, child_argv, strcmp(mode + 8, "empty") == 0 ? empty : custom);
    } else if (strncmp(mode, "execveat-", 9) == 0) {
        /* A directory descriptor and a name relative to it. */
        const char *slash = strrchr(self, '/');
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - self), self);
        int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        execveat(dirfd, slash + 1, child_argv, strcmp(mode + 9, "empty") == 0 ? empty : custom,
                 0);
    } else if (strcmp(mode, "execv") == 0) {
        clearenv();
        execv(self, child_argv);
    } else if (strcmp(mode, "execvp") == 0) {
        clearenv();
        execvp(self, child_argv);
    } else if (strcmp(mode, "execvpe") == 0) {
        execvpe(self, child_argv, custom);
    } else if (strcmp(mode, "execl") == 0) {
        clearenv();
        execl(self, "preload-probe", "report", connect_arg, (char *)NULL);
    } else if (strcmp(mode, "execlp") == 0) {
        clearenv();
        execlp(self, "preload-probe", "report", connect_arg, (char *)NULL);
    } else if (strcmp(mode, "execle") == 0) {
        execle(self, "preload-probe", "report", connect_arg, (char *)NULL, custom);
    } else if (strcmp(mode, "posix_spawn") == 0 || strcmp(mode, "posix_spawnp") == 0) {
        pid_t pid;
        int rc = strcmp(mode, "posix_spawn") == 0
                     ? posix_spawn(&pid, self, NULL, NULL, child_argv, custom)
                     : posix_spawnp(&pid, self, NULL, NULL, child_argv, empty);
        printf("spawn_rc=%d\n", rc);
        fflush(stdout);
        if (rc != 0)
            return 1;
        int status = 0;
        waitpid(pid, &status, 0);
        printf("child_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 0;
    } else {
        return 2;
    }
    printf("exec_failed=%s\n", strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: preload-probe COMMAND ARGS...\n");
        return 2;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';

    const char *cmd = argv[1];
    if (strcmp(cmd, "resolve") == 0)
        return cmd_resolve();
    if (strcmp(cmd, "connect") == 0)
        return cmd_connect(argc - 2, argv + 2);
    if (strcmp(cmd, "fork-connect") == 0)
        return cmd_fork_connect(argc - 2, argv + 2);
    if (strcmp(cmd, "fastopen") == 0)
        return cmd_fastopen(argc - 2, argv + 2);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(argc - 2, argv + 2);
    if (strcmp(cmd, "threads") == 0)
        return cmd_threads(argc - 2, argv + 2);
    if (strcmp(cmd, "exec") == 0)
        return cmd_exec(argc - 2, argv + 2, self);
    fprintf(stderr, "preload-probe: unknown command %s\n", cmd);
    return 2;
}
