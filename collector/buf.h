/* buf.h - a byte queue for socket I/O: append at the back, consume from the
 * front, compact lazily. The cap is the caller's: every user checks
 * lw_buf_len() against its own limit before appending (see conn.c).
 *
 * Not thread-safe; header-only because every function is a few lines on the
 * hot path.
 */
#pragma once

#include <glib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last byte */
    size_t cap;   /* allocated size */
} LwBuf;

static inline size_t lw_buf_len(const LwBuf *b)
{
    return b->end - b->start;
}

static inline const char *lw_buf_head(const LwBuf *b)
{
    return b->data + b->start;
}

static inline char *lw_buf_head_mut(LwBuf *b)
{
    return b->data + b->start;
}

/* Makes room for `want` more bytes at the back and returns where they go;
 * commit them with lw_buf_commit(). Moves data to the front first when that
 * is enough, so a steadily consumed buffer does not grow. */
static inline char *lw_buf_reserve(LwBuf *b, size_t want)
{
    if (b->cap - b->end >= want)
        return b->data + b->end;
    size_t len = lw_buf_len(b);
    if (b->start > 0 && b->cap - len >= want) {
        memmove(b->data, b->data + b->start, len);
    } else {
        size_t cap = MAX(b->cap * 2, len + want);
        cap = MAX(cap, (size_t)4096);
        char *data = g_malloc(cap);
        if (len > 0)
            memcpy(data, b->data + b->start, len);
        g_free(b->data);
        b->data = data;
        b->cap = cap;
    }
    b->start = 0;
    b->end = len;
    return b->data + b->end;
}

static inline void lw_buf_commit(LwBuf *b, size_t n)
{
    b->end += n;
}

static inline void lw_buf_append(LwBuf *b, const void *p, size_t n)
{
    memcpy(lw_buf_reserve(b, n), p, n);
    b->end += n;
}

static inline void lw_buf_consume(LwBuf *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/* Keeps the first `n` unconsumed bytes and drops the rest. */
static inline void lw_buf_truncate(LwBuf *b, size_t n)
{
    if (n < lw_buf_len(b))
        b->end = b->start + n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/* Drops everything, keeps the allocation unless it grew large (so one big
 * request does not pin memory on an idle keep-alive connection). */
static inline void lw_buf_reset(LwBuf *b)
{
    b->start = b->end = 0;
    if (b->cap > 64 * 1024) {
        g_free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}

static inline void lw_buf_clear(LwBuf *b)
{
    g_free(b->data);
    memset(b, 0, sizeof *b);
}
