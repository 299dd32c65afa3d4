/* hook-connect.c - connect(), and sendto()/sendmsg() with MSG_FASTOPEN.
 *
 * A stream connection to a synthetic address 127.X.0.i (or ::ffff:127.X.0.i)
 * keeps its address and gets the collector's port; the collector learns the
 * provider from the accepted socket's local address. One to a listen
 * address of the collector (a base URL pointed at it) keeps its port too.
 * Both kinds are then attributed to the process's run. Nothing else about
 * the call changes: same socket, same flags, the real connect's result and
 * errno; only a Fast Open send becomes a connect and a send (fast_open_send).
 * Every other destination costs one inline classification and a compare of
 * its port with the listen addresses'.
 */

/* With _GNU_SOURCE, glibc declares connect() and sendto() with a transparent
 * union argument that a definition cannot match. */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1

#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Before the constructor ran, reach the kernel directly: dlsym may allocate,
 * and the caller may be an allocator's own constructor. */
static int raw_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    return (int)syscall(SYS_connect, fd, sa, len);
}

static ssize_t raw_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
                          socklen_t len)
{
    return syscall(SYS_sendto, fd, buf, n, flags, sa, len);
}

static inline int real_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    return lw_real.connect != NULL ? lw_real.connect(fd, sa, len) : raw_connect(fd, sa, len);
}

static inline ssize_t real_sendto(int fd, const void *buf, size_t n, int flags,
                                  const struct sockaddr *sa, socklen_t len)
{
    return lw_real.sendto != NULL ? lw_real.sendto(fd, buf, n, flags, sa, len)
                                  : raw_sendto(fd, buf, n, flags, sa, len);
}

static inline ssize_t real_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return lw_real.sendmsg != NULL ? lw_real.sendmsg(fd, msg, flags)
                                   : syscall(SYS_sendmsg, fd, msg, flags);
}

/* How the application is establishing the connection, so a retry against
 * the real provider (fail-open) repeats the same call. */
typedef struct {
    enum { OP_CONNECT, OP_SENDTO, OP_SENDMSG } kind;
    const void *buf;
    size_t len;
    const struct msghdr *msg;
    int flags;
} Op;

static ssize_t run_op(int fd, const Op *op, const struct sockaddr *sa, socklen_t len)
{
    switch (op->kind) {
    case OP_SENDTO:
        return real_sendto(fd, op->buf, op->len, op->flags, sa, len);
    case OP_SENDMSG: {
        struct msghdr m = *op->msg;
        m.msg_name = (void *)sa;
        m.msg_namelen = len;
        return real_sendmsg(fd, &m, op->flags);
    }
    case OP_CONNECT:
    default:
        return real_connect(fd, sa, len);
    }
}

static void set_port(struct sockaddr_storage *ss, uint16_t port_be)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = port_be;
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = port_be;
}

static uint16_t get_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_port;
    if (ss->ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)ss)->sin6_port;
    return 0;
}

/* Tells the collector who opened `fd`, connected to `remote`: one message
 * on a fresh AF_UNIX SOCK_SEQPACKET connection. A connection, not a
 * datagram: the kernel queues at most net.unix.max_dgram_qlen (10)
 * datagrams for a receiver, so a program opening dozens of connections at
 * once would lose most of them, while a listening socket's backlog holds
 * thousands. Both calls are non-blocking; nothing here ever waits. Returns
 * whether the message was handed to the collector (true when there is
 * nothing to send); false too when the socket's own address is unknown,
 * since the collector matches a message to its connection by both ends.
 * *ret_err is why it was not sent, when socket() said (else 0). */
static bool send_attribution(int fd, const struct sockaddr *remote, socklen_t remote_len,
                             int *ret_err)
{
    *ret_err = 0;
    /* No socket to deliver to: nothing is sent, which under
     * LLMWRAP_ATTRIB_REQUIRED refuses the connection. */
    if (!lw_cfg.has_attrib)
        return false;
    int saved = errno;
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    LwShimAttrib a = {
        .version = LW_SHIM_ATTRIB_VERSION,
        .run_id = lw_cfg.run_id,
        .pid = (uint32_t)getpid(),
        .ppid = (uint32_t)getppid(),
        .exe = lw_exe,
        .exe_len = lw_exe_len,
    };
    bool sent = false;
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0 &&
        lw_shim_attrib_set_ends(&a, (struct sockaddr *)&local, local_len, remote, remote_len)) {
        uint8_t buf[LW_SHIM_ATTRIB_MAX];
        size_t n = lw_shim_attrib_encode(&a, buf, sizeof buf);
        int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s >= 0) {
            if (real_connect(s, (const struct sockaddr *)&lw_cfg.attrib_addr,
                             lw_cfg.attrib_addr_len) == 0)
                sent = real_sendto(s, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0) == (ssize_t)n;
            close(s);
        } else {
            *ret_err = errno;
        }
    }
    errno = saved;
    return sent;
}

/* Whether a connect() on `fd` can start a connection: its TCP state is
 * CLOSE (new, or a failed attempt). A connect() on a socket already
 * connecting or connected only reports on that connection (a second
 * connect() after a non-blocking one returns 0 once it is up: Perl's
 * IO::Socket with a Timeout, Ruby's connect_nonblock), which must not send
 * a second message. A stream socket that is not TCP counts as new, as
 * before this check. */
static bool starts_connection(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || len < 1)
        return true;
    return ti.tcpi_state == TCP_CLOSE;
}

static pid_t attribution_said;

/* The connection reached the collector but cannot be attributed: with
 * LLMWRAP_ATTRIB_REQUIRED, fail it rather than let a request escape its
 * run's budget. The socket is shut down; the program sees a refused
 * connection (which SDKs retry) and closes it. */
static ssize_t unattributed(int fd, unsigned slot, int err)
{
    const char *host = slot != 0 ? lw_shim_slot_host(&lw_cfg, slot) : "its listen address";
    if (lw_shim_first_in_process(&attribution_said)) {
        /* The message takes a descriptor of its own: a program at its
         * limit of open files has none left, which is not the collector's
         * doing. */
        if (err == EMFILE || err == ENFILE)
            lw_shim_say("cannot tell the llmwrap collector which run a connection to %s "
                        "belongs to: the program is at its limit of open files (%s) and the "
                        "message needs one more; the connection is refused so that no request "
                        "escapes the run's budget (raise the limit: ulimit -n)",
                        host, err == EMFILE ? "EMFILE" : "ENFILE");
        else
            lw_shim_say("cannot tell the llmwrap collector which run a connection to %s "
                        "belongs to (its attribution socket does not accept it); the "
                        "connection is refused so that no request escapes the run's budget",
                        host);
    }
    shutdown(fd, SHUT_RDWR);
    errno = ECONNREFUSED;
    return -1;
}

/* A non-blocking connect to loopback usually learns the refusal before
 * connect() returns EINPROGRESS (the RST is processed inline). A second
 * connect() then reports it synchronously and resets the socket, which
 * lets a refused collector be handled the same way for both kinds of
 * socket. Returns true with errno set when the connect has already failed. */
static bool failed_already(int fd, const struct sockaddr *sa, socklen_t len)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 0) != 1 || (p.revents & (POLLERR | POLLHUP)) == 0)
        return false;
    return real_connect(fd, sa, len) != 0 && errno != EINPROGRESS && errno != EALREADY;
}

/* Fail-open: the same socket, the same call, towards the provider's real
 * address (the synthetic table hides it, so resolve it with libc's own
 * getaddrinfo). Returns the last attempt's result. */
static ssize_t retry_real(int fd, const Op *op, int family, uint16_t port_be, const char *host)
{
    if (lw_cfg.has_test_real_addr) {
        struct sockaddr_storage ss = {0};
        socklen_t len;
        if (family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = lw_cfg.test_real_addr.sin_port;
            sin6->sin6_addr.s6_addr[10] = 0xff;
            sin6->sin6_addr.s6_addr[11] = 0xff;
            memcpy(&sin6->sin6_addr.s6_addr[12], &lw_cfg.test_real_addr.sin_addr, 4);
            len = sizeof *sin6;
        } else {
            memcpy(&ss, &lw_cfg.test_real_addr, sizeof lw_cfg.test_real_addr);
            len = sizeof lw_cfg.test_real_addr;
        }
        return run_op(fd, op, (struct sockaddr *)&ss, len);
    }

    struct addrinfo hints = {
        .ai_family = family,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = family == AF_INET6 ? AI_V4MAPPED | AI_ALL : 0,
    };
    struct addrinfo *res = NULL;
    int (*gai)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        LW_REAL(getaddrinfo);
    if (gai == NULL || gai(host, NULL, &hints, &res) != 0 || res == NULL) {
        errno = ECONNREFUSED;
        return -1;
    }
    ssize_t rc = -1;
    int err = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        struct sockaddr_storage ss;
        if (ai->ai_addrlen > sizeof ss)
            continue;
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        set_port(&ss, port_be);
        rc = run_op(fd, op, (struct sockaddr *)&ss, ai->ai_addrlen);
        err = errno;
        if (rc >= 0 || err == EINPROGRESS)
            break;
        if (err != ECONNREFUSED && err != ENETUNREACH && err != EHOSTUNREACH && err != ETIMEDOUT &&
            err != EADDRNOTAVAIL)
            break;
    }
    freeaddrinfo(res);
    errno = err;
    return rc;
}

static pid_t refused_said;
static pid_t fail_open_said;

static ssize_t collector_refused(int fd, const Op *op, const struct sockaddr_storage *orig,
                                 unsigned slot)
{
    const char *host = lw_shim_slot_host(&lw_cfg, slot);
    if (!lw_cfg.fail_open) {
        if (lw_shim_first_in_process(&refused_said))
            lw_shim_say("cannot connect to %s: the llmwrap collector is unreachable (nothing "
                        "listens on port %u); connections to LLM providers fail until it runs "
                        "(LLMWRAP_FAIL_OPEN=1 connects directly instead, unmetered)",
                        host, (unsigned)lw_cfg.port);
        errno = ECONNREFUSED;
        return -1;
    }
    if (lw_shim_first_in_process(&fail_open_said))
        lw_shim_say("warning: the llmwrap collector is unreachable; connecting to %s directly: "
                    "this traffic is unmetered",
                    host);
    return retry_real(fd, op, orig->ss_family, get_port(orig), host);
}

/* A Fast Open send (sendto/sendmsg with MSG_FASTOPEN) to the collector
 * would carry the program's first bytes with the connect, before the
 * attribution message can go: a plain HTTP request (a base URL at a listen
 * address, http:// to a provider host) then reached the collector with no
 * run, past the run's budget, and was sent even when the connection was
 * then refused as unattributable. So the connection is made first (with
 * MSG_DONTWAIT, without blocking), attributed, and only then are the bytes
 * sent. On loopback Fast Open saves nothing. The results are the kernel's
 * for Fast Open without a cookie: a blocking socket connects and sends; a
 * non-blocking one reports EINPROGRESS with nothing sent, and the program
 * sends once connected. */
static int fast_open_connect(int fd, const Op *op, const struct sockaddr *sa, socklen_t len)
{
    int fl = (op->flags & MSG_DONTWAIT) != 0 ? fcntl(fd, F_GETFL) : -1;
    bool set = fl >= 0 && (fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
    int rc = real_connect(fd, sa, len);
    if (set) {
        int e = errno;
        fcntl(fd, F_SETFL, fl);
        errno = e;
    }
    return rc;
}

static ssize_t fast_open_send(int fd, const Op *op)
{
    int flags = op->flags & ~MSG_FASTOPEN;
    if (op->kind == OP_SENDTO)
        return real_sendto(fd, op->buf, op->len, flags, NULL, 0);
    struct msghdr m = *op->msg;
    m.msg_name = NULL;
    m.msg_namelen = 0;
    return real_sendmsg(fd, &m, flags);
}

/* A connection the collector serves: to a provider's synthetic address
 * (slot i), redirected to the collector's port, or to one of the
 * collector's listen addresses (slot 0), left as it is. Either way the
 * collector is told which run it belongs to, at the same point. */
static ssize_t to_collector(int fd, const Op *op, const struct sockaddr *sa, socklen_t len,
                            unsigned slot)
{
    int saved = errno;
    int type = 0;
    socklen_t type_len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0 || type != SOCK_STREAM ||
        len > sizeof(struct sockaddr_storage)) {
        errno = saved;
        return run_op(fd, op, sa, len);
    }

    struct sockaddr_storage orig, ss;
    memcpy(&orig, sa, len);
    memcpy(&ss, sa, len);
    if (slot != 0)
        set_port(&ss, htons(lw_cfg.port));
    /* Asked only on this path: other destinations pay nothing for it. */
    bool starts = starts_connection(fd);
    bool fast_open = starts && op->kind != OP_CONNECT;
    errno = saved;
    ssize_t rc = fast_open ? fast_open_connect(fd, op, (struct sockaddr *)&ss, len)
                           : run_op(fd, op, (struct sockaddr *)&ss, len);
    /* A blocking connect() a signal interrupted (EINTR) goes on in the
     * background, like a non-blocking one: the retry the program makes
     * finds the socket connecting or connected and sends nothing, so the
     * message goes now. */
    if (rc >= 0 || errno == EINPROGRESS || errno == EINTR) {
        int e = errno;
        if (rc >= 0 || !failed_already(fd, (struct sockaddr *)&ss, len)) {
            int why = 0;
            if (starts && !send_attribution(fd, (struct sockaddr *)&ss, len, &why) &&
                lw_cfg.attrib_required)
                return unattributed(fd, slot, why);
            if (fast_open && rc == 0)
                return fast_open_send(fd, op);
            errno = e;
            return rc;
        }
        rc = -1; /* errno: the refusal, reported now */
    }
    /* Nothing listening on a listen address is the program's own error:
     * there is no provider to fail open to. */
    if (errno == ECONNREFUSED && slot != 0)
        return collector_refused(fd, op, &orig, slot);
    return rc;
}

LW_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    unsigned slot = lw_shim_sockaddr_slot(&lw_cfg.net, sa, len);
    if (__builtin_expect(slot == 0, 1) &&
        __builtin_expect(!lw_shim_sockaddr_is_listen(&lw_cfg.listen, sa, len), 1))
        return real_connect(fd, sa, len);
    Op op = {.kind = OP_CONNECT};
    return (int)to_collector(fd, &op, sa, len, slot);
}

LW_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
                         socklen_t len)
{
    if (__builtin_expect((flags & MSG_FASTOPEN) == 0, 1))
        return real_sendto(fd, buf, n, flags, sa, len);
    unsigned slot = lw_shim_sockaddr_slot(&lw_cfg.net, sa, len);
    if (slot == 0 && !lw_shim_sockaddr_is_listen(&lw_cfg.listen, sa, len))
        return real_sendto(fd, buf, n, flags, sa, len);
    Op op = {.kind = OP_SENDTO, .buf = buf, .len = n, .flags = flags};
    return to_collector(fd, &op, sa, len, slot);
}

LW_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (__builtin_expect((flags & MSG_FASTOPEN) == 0, 1) || msg == NULL)
        return real_sendmsg(fd, msg, flags);
    unsigned slot = lw_shim_sockaddr_slot(&lw_cfg.net, msg->msg_name, msg->msg_namelen);
    if (slot == 0 && !lw_shim_sockaddr_is_listen(&lw_cfg.listen, msg->msg_name, msg->msg_namelen))
        return real_sendmsg(fd, msg, flags);
    Op op = {.kind = OP_SENDMSG, .msg = msg, .flags = flags};
    return to_collector(fd, &op, msg->msg_name, msg->msg_namelen, slot);
}
