/* loop.c - epoll + timer heap. */
#include "loop.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

typedef struct {
    LwIoFunc func;
    void *data;
    uint32_t events;
    uint32_t generation; /* 0 = slot unused */
} Watch;

struct _LwLoop {
    int epfd;
    Watch *watches; /* indexed by fd */
    size_t n_watches;
    uint32_t next_generation;
    LwTimer **heap;
    size_t heap_len, heap_cap;
    uint64_t now_ms;
    uint64_t timer_pass;
    gboolean quit;
};

uint64_t lw_loop_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t monotonic_ms(void)
{
    return lw_loop_now_us() / 1000u;
}

LwLoop *lw_loop_new(GError **error)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "epoll_create1: %s",
                    g_strerror(e));
        return NULL;
    }
    LwLoop *loop = g_new0(LwLoop, 1);
    loop->epfd = epfd;
    loop->next_generation = 1;
    loop->now_ms = monotonic_ms();
    return loop;
}

void lw_loop_free(LwLoop *loop)
{
    if (loop == NULL)
        return;
    for (size_t i = 0; i < loop->heap_len; i++)
        loop->heap[i]->heap_index = -1;
    close(loop->epfd);
    g_free(loop->watches);
    g_free(loop->heap);
    g_free(loop);
}

static Watch *watch_for(LwLoop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->n_watches || loop->watches[fd].generation == 0)
        return NULL;
    return &loop->watches[fd];
}

gboolean lw_loop_watch(LwLoop *loop, int fd, uint32_t events, LwIoFunc func, void *data,
                       GError **error)
{
    g_return_val_if_fail(fd >= 0 && func != NULL, FALSE);
    g_return_val_if_fail(watch_for(loop, fd) == NULL, FALSE);

    if ((size_t)fd >= loop->n_watches) {
        size_t n = MAX((size_t)fd + 1, loop->n_watches * 2);
        n = MAX(n, 64);
        loop->watches = g_renew(Watch, loop->watches, n);
        memset(loop->watches + loop->n_watches, 0, (n - loop->n_watches) * sizeof(Watch));
        loop->n_watches = n;
    }
    uint32_t gen = loop->next_generation++;
    if (loop->next_generation == 0)
        loop->next_generation = 1;

    struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)gen << 32) | (uint32_t)fd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "epoll_ctl(ADD, %d): %s", fd,
                    g_strerror(e));
        return FALSE;
    }
    loop->watches[fd] = (Watch){func, data, events, gen};
    return TRUE;
}

void lw_loop_set_events(LwLoop *loop, int fd, uint32_t events)
{
    Watch *w = watch_for(loop, fd);
    g_return_if_fail(w != NULL);
    if (w->events == events)
        return;
    struct epoll_event ev = {.events = events,
                             .data.u64 = ((uint64_t)w->generation << 32) | (uint32_t)fd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
        w->events = events;
    else
        g_warning("epoll_ctl(MOD, %d): %s", fd, g_strerror(errno));
}

uint32_t lw_loop_events(LwLoop *loop, int fd)
{
    Watch *w = watch_for(loop, fd);
    return w != NULL ? w->events : 0;
}

void lw_loop_unwatch(LwLoop *loop, int fd)
{
    Watch *w = watch_for(loop, fd);
    if (w == NULL)
        return;
    /* Fails harmlessly with EBADF/ENOENT if the fd is already closed. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    memset(w, 0, sizeof *w);
}

/* ---- timer heap (min-heap on deadline) ---- */

static void heap_swap(LwLoop *loop, size_t a, size_t b)
{
    LwTimer *t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_index = (int)a;
    loop->heap[b]->heap_index = (int)b;
}

static void heap_up(LwLoop *loop, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->deadline_ms <= loop->heap[i]->deadline_ms)
            break;
        heap_swap(loop, i, parent);
        i = parent;
    }
}

static void heap_down(LwLoop *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len && loop->heap[l]->deadline_ms < loop->heap[m]->deadline_ms)
            m = l;
        if (r < loop->heap_len && loop->heap[r]->deadline_ms < loop->heap[m]->deadline_ms)
            m = r;
        if (m == i)
            break;
        heap_swap(loop, i, m);
        i = m;
    }
}

void lw_timer_stop(LwLoop *loop, LwTimer *t)
{
    if (t->heap_index < 0)
        return;
    size_t i = (size_t)t->heap_index;
    size_t last = loop->heap_len - 1;
    if (i != last) {
        heap_swap(loop, i, last);
        loop->heap_len--;
        heap_down(loop, i);
        heap_up(loop, i);
    } else {
        loop->heap_len--;
    }
    t->heap_index = -1;
}

void lw_timer_start(LwLoop *loop, LwTimer *t, uint64_t delay_ms, LwTimerFunc func, void *data)
{
    lw_timer_stop(loop, t);
    t->deadline_ms = loop->now_ms + delay_ms;
    t->pass = loop->timer_pass;
    t->func = func;
    t->data = data;
    if (loop->heap_len == loop->heap_cap) {
        loop->heap_cap = MAX(64, loop->heap_cap * 2);
        loop->heap = g_renew(LwTimer *, loop->heap, loop->heap_cap);
    }
    loop->heap[loop->heap_len] = t;
    t->heap_index = (int)loop->heap_len;
    loop->heap_len++;
    heap_up(loop, loop->heap_len - 1);
}

#define ACCEPT_PAUSE_MS 100

static void on_accept_pause_over(LwLoop *loop, void *data)
{
    LwAcceptPause *p = data;
    lw_loop_set_events(loop, p->fd, EPOLLIN);
}

gboolean lw_accept_pause_on_error(LwAcceptPause *p, LwLoop *loop, int fd, int err,
                                  const char *what)
{
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return FALSE;
    g_warning("%s: accept: %s; pausing for %d ms", what, g_strerror(err), ACCEPT_PAUSE_MS);
    p->loop = loop;
    p->fd = fd;
    lw_loop_set_events(loop, fd, 0);
    lw_timer_start(loop, &p->timer, ACCEPT_PAUSE_MS, on_accept_pause_over, p);
    return TRUE;
}

void lw_accept_pause_stop(LwAcceptPause *p)
{
    if (p->loop != NULL)
        lw_timer_stop(p->loop, &p->timer);
}

uint64_t lw_loop_now_ms(LwLoop *loop)
{
    return loop->now_ms;
}

static void run_timers(LwLoop *loop)
{
    /* A timer armed by a timer callback of this pass waits for the next
     * iteration, so a callback re-arming itself with delay 0 cannot starve
     * I/O; one armed by an I/O callback of this iteration runs now. */
    uint64_t now = loop->now_ms;
    loop->timer_pass++;
    while (loop->heap_len > 0 && loop->heap[0]->deadline_ms <= now &&
           loop->heap[0]->pass < loop->timer_pass) {
        LwTimer *t = loop->heap[0];
        lw_timer_stop(loop, t);
        t->func(loop, t->data);
        if (loop->quit)
            return;
    }
}

static int next_timeout_ms(LwLoop *loop)
{
    if (loop->heap_len == 0)
        return 1000;
    uint64_t deadline = loop->heap[0]->deadline_ms;
    uint64_t now = monotonic_ms();
    if (deadline <= now)
        return 0;
    return (int)MIN(deadline - now, 1000u);
}

void lw_loop_run_due(LwLoop *loop)
{
    loop->now_ms = monotonic_ms();
    for (int i = 0; i < 16 && loop->heap_len > 0 && loop->heap[0]->deadline_ms <= loop->now_ms;
         i++) {
        loop->quit = FALSE;
        run_timers(loop);
    }
}

void lw_loop_quit(LwLoop *loop)
{
    loop->quit = TRUE;
}

void lw_loop_run(LwLoop *loop)
{
    struct epoll_event events[MAX_EVENTS];
    loop->quit = FALSE;
    while (!loop->quit) {
        int n = epoll_wait(loop->epfd, events, MAX_EVENTS, next_timeout_ms(loop));
        if (n < 0 && errno != EINTR) {
            g_critical("epoll_wait: %s", g_strerror(errno));
            return;
        }
        loop->now_ms = monotonic_ms();
        for (int i = 0; i < n && !loop->quit; i++) {
            int fd = (int)(uint32_t)events[i].data.u64;
            uint32_t gen = (uint32_t)(events[i].data.u64 >> 32);
            Watch *w = watch_for(loop, fd);
            if (w == NULL || w->generation != gen)
                continue;
            w->func(loop, fd, events[i].events, w->data);
        }
        if (!loop->quit)
            run_timers(loop);
    }
}
