/* loop.h - the collector's event loop: epoll for descriptors, a binary heap
 * for timers. A timer armed with delay 0 runs on the next iteration, after
 * the current batch of I/O: that is how work is deferred out of a callback.
 *
 * One loop, one thread: every callback runs on the thread that called
 * lw_loop_run(). Nothing here is thread-safe.
 *
 * Why not GMainLoop: it rebuilds a poll() array on every iteration, which is
 * O(connections) per wakeup; with hundreds of idle keep-alive connections
 * that cost lands on every request. epoll is O(ready descriptors), and
 * libcurl's multi-socket interface maps onto it directly.
 *
 * Removal is safe at any time, also from inside a callback for another
 * descriptor in the same batch: events are dispatched through a generation
 * check, so a descriptor removed (or closed and reused) earlier in a batch
 * never gets a stale callback.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/epoll.h>

typedef struct _LwLoop LwLoop;

/* `events` is a mask of EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP. */
typedef void (*LwIoFunc)(LwLoop *loop, int fd, uint32_t events, void *data);
typedef void (*LwTimerFunc)(LwLoop *loop, void *data);

/* A timer lives inside its owner's struct (no allocation per arm). Call
 * lw_timer_init() before its first use: a zeroed one looks armed. */
typedef struct {
    uint64_t deadline_ms;
    uint64_t pass; /* timer pass in which it was armed (see run_timers) */
    int heap_index; /* -1 when not armed */
    LwTimerFunc func;
    void *data;
} LwTimer;

/* Creates a loop. Returns NULL with error set if epoll cannot be created. */
LwLoop *lw_loop_new(GError **error);

/* Frees the loop. Watches and timers still registered are dropped without
 * their callbacks; descriptors are not closed. NULL is ignored. */
void lw_loop_free(LwLoop *loop);

/* Watches fd for `events`. Each fd can be watched once. Returns FALSE with
 * error set if epoll refuses it (e.g. a regular file). */
gboolean lw_loop_watch(LwLoop *loop, int fd, uint32_t events, LwIoFunc func, void *data,
                       GError **error);

/* Changes the events of a watched fd; no-op when they are unchanged. */
void lw_loop_set_events(LwLoop *loop, int fd, uint32_t events);

/* Current event mask of a watched fd (0 when unwatched). */
uint32_t lw_loop_events(LwLoop *loop, int fd);

/* Stops watching fd. Call before close(fd). Unknown fds are ignored. */
void lw_loop_unwatch(LwLoop *loop, int fd);

static inline void lw_timer_init(LwTimer *t)
{
    t->deadline_ms = 0;
    t->pass = 0;
    t->heap_index = -1;
    t->func = NULL;
    t->data = NULL;
}

static inline gboolean lw_timer_is_armed(const LwTimer *t)
{
    return t->heap_index >= 0;
}

/* Arms (or re-arms) `t` to call func(data) once, `delay_ms` from now. */
void lw_timer_start(LwLoop *loop, LwTimer *t, uint64_t delay_ms, LwTimerFunc func, void *data);

/* Disarms `t`; no-op when it is not armed. */
void lw_timer_stop(LwLoop *loop, LwTimer *t);

/* A listening socket's pause after accept4() ran out of descriptors or
 * memory: its readiness is level-triggered, so without one the loop would
 * wake at once, for ever, spinning while nothing can be accepted. */
typedef struct {
    LwTimer timer;
    LwLoop *loop;
    int fd;
} LwAcceptPause;

static inline void lw_accept_pause_init(LwAcceptPause *p)
{
    lw_timer_init(&p->timer);
    p->loop = NULL;
    p->fd = -1;
}

/* After accept4() on `fd` (watched for EPOLLIN) failed with `err`: for
 * EMFILE, ENFILE, ENOBUFS and ENOMEM stops watching fd for 100 ms, with a
 * warning naming `what`, and returns TRUE; FALSE for other errors (EAGAIN,
 * a connection that died in the queue). Call lw_accept_pause_stop()
 * before fd is unwatched. */
gboolean lw_accept_pause_on_error(LwAcceptPause *p, LwLoop *loop, int fd, int err,
                                  const char *what);
void lw_accept_pause_stop(LwAcceptPause *p);

/* Monotonic milliseconds, cached per loop iteration. */
uint64_t lw_loop_now_ms(LwLoop *loop);

/* Monotonic microseconds, read now (not cached). */
uint64_t lw_loop_now_us(void);

/* Runs the timers that are due now, once, without waiting for I/O (used
 * at shutdown so deferred frees complete). */
void lw_loop_run_due(LwLoop *loop);

/* Runs until lw_loop_quit(). */
void lw_loop_run(LwLoop *loop);

/* Makes lw_loop_run() return after the current iteration. */
void lw_loop_quit(LwLoop *loop);
