/* ledger-spool.c - the ledger's spool: rows appended by the collector's
 * loop, applied to SQLite by a thread of their own (see ledger-spool.h).
 *
 * Locks: `queue_lock` guards `queued` and the applier's wait; the loop
 * holds it only to copy a frame in. `apply_lock` is held by whoever
 * applies rows or holds the ledger (the applier, or the loop in
 * lw_spool_hold); it guards `pending` and the applying connection. The
 * loop's append never takes `apply_lock`, so a slow commit never delays a
 * request.
 *
 * Emptying the file: only the loop writes it, so the loop also empties it,
 * just before an append, when it has grown past TRUNCATE_BYTES and every
 * row in it is applied (applied_id, published by the applier). No lock is
 * needed and the cost (a truncate of page-cache pages) falls on one append
 * in a few thousand.
 */
#include "ledger-spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger-private.h"
#include "ledger-spool-record.h"

/* Empty the file once it is this big and wholly applied. */
#define TRUNCATE_BYTES (1 << 20)
/* The applier looks for rows this often while rows keep coming, and goes
 * to sleep until woken only after IDLE_POLLS looks found none: a wake-up
 * costs the loop a futex call (and, on a busy machine, tens of us), so
 * under load the loop never makes one. Rows gather into batches meanwhile,
 * and a commit's cost is mostly per batch: at 1,000 rows/s a 2 ms gap cost
 * the thread ~70 us of CPU per row (docs/performance.md). Readers that
 * must see every row (llmctl, budgets, summaries) apply the queue
 * themselves (lw_spool_hold), so the gap delays no one but a reader of
 * the bare SQLite file. */
#define BATCH_GAP_US 20000
#define IDLE_POLLS 5
/* After a batch failed (the ledger locked by another process for longer
 * than the busy timeout, a full disk), before trying again. */
#define RETRY_US 1000000
/* How long an apply waits for another process's write lock before it
 * gives up (the rows stay queued and in the file, and are tried again).
 * Short, because the collector's loop applies too (lw_spool_hold), and
 * waits for the thread's apply to end before its own: a sqlite3 shell in
 * an open transaction would otherwise stop the collector for the busy
 * timeout, twice. Long enough for a chunk of llmctl reprice (~25 ms) or
 * another process's small write. */
#define APPLY_BUSY_US 100000
/* For llmctl draining a spool the collector is about to open. */
#define LOCK_WAIT_US 5000000
#define LOCK_POLL_US 10000
/* A queue that grew this big in a burst is freed rather than kept. */
#define QUEUE_KEEP_BYTES 65536

struct _LwSpool {
    char *path;
    int fd; /* O_APPEND, flock(LOCK_EX) held */
    GThread *thread;

    GMutex queue_lock;
    GCond queue_cond;
    GByteArray *queued; /* frames appended, not yet taken by an applier */
    gboolean applier_waiting;
    gboolean stopping;

    GMutex apply_lock;
    LwLedger *ledger;    /* the applying connection */
    GByteArray *pending; /* frames taken; kept while applying them fails */
    gboolean failing;    /* said so once already */

    /* The loop's own. */
    GByteArray *scratch;
    gint64 next_id;
    gint64 file_bytes;
    gboolean broken; /* the file could not be repaired after a failed write */
    gint64 memory_only_id; /* the last row only memory holds (see lw_spool_append) */

    /* Every row up to this one is in the ledger: the file holds nothing
     * else once it reaches next_id - 1. */
    _Atomic gint64 applied_id;
};

/* Applies the frames in `data` (well-formed, in order) in one transaction;
 * *ret_last is then the last row's id. */
static gboolean apply_frames(LwLedger *ledger, const guint8 *data, gsize len, gint64 *ret_last,
                             GError **error)
{
    if (!lw_ledger_begin(ledger, error))
        return FALSE;
    gint64 last = 0;
    for (gsize off = 0, n = 0; off < len; off += n) {
        g_autoptr(LwSpoolRecord) rec = NULL;
        if (lw_spool_frame_check(data + off, len - off, &n) != LW_SPOOL_FRAME_OK ||
            (rec = lw_spool_record_decode(data + off, n)) == NULL) {
            g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_INVALID,
                        "a spooled row does not decode");
            lw_ledger_rollback(ledger);
            return FALSE;
        }
        if (!lw_ledger_insert_row(ledger, rec->id, &rec->row, error)) {
            lw_ledger_rollback(ledger);
            return FALSE;
        }
        last = rec->id;
    }
    if (!lw_ledger_commit(ledger, error)) {
        lw_ledger_rollback(ledger);
        return FALSE;
    }
    *ret_last = last;
    return TRUE;
}

static void reset_if_big(GByteArray **a)
{
    if ((*a)->len > QUEUE_KEEP_BYTES) {
        g_byte_array_unref(*a);
        *a = g_byte_array_new();
    } else {
        g_byte_array_set_size(*a, 0);
    }
}

/* Takes what the loop queued and applies it. Call with apply_lock held. */
static gboolean apply_queued(LwSpool *sp)
{
    g_mutex_lock(&sp->queue_lock);
    if (sp->pending->len == 0) {
        GByteArray *t = sp->pending;
        sp->pending = sp->queued;
        sp->queued = t;
    } else if (sp->queued->len > 0) {
        g_byte_array_append(sp->pending, sp->queued->data, sp->queued->len);
        reset_if_big(&sp->queued);
    }
    g_mutex_unlock(&sp->queue_lock);
    if (sp->pending->len == 0)
        return TRUE;

    g_autoptr(GError) error = NULL;
    gint64 last = 0;
    if (!apply_frames(sp->ledger, sp->pending->data, sp->pending->len, &last, &error)) {
        /* The rows are safe in the file; they are tried again. */
        if (!sp->failing)
            g_warning("ledger: cannot apply spooled rows yet (they are kept in %s): %s",
                      sp->path, error->message);
        sp->failing = TRUE;
        return FALSE;
    }
    if (sp->failing)
        g_message("ledger: spooled rows applied again");
    sp->failing = FALSE;
    reset_if_big(&sp->pending);
    atomic_store(&sp->applied_id, last);
    return TRUE;
}

static gpointer applier_main(gpointer data)
{
    LwSpool *sp = data;
    gint64 wake_at = 0; /* 0: sleep until signalled */
    int idle = IDLE_POLLS;
    g_mutex_lock(&sp->queue_lock);
    for (;;) {
        /* Wait for the next look; one comes early only to stop. */
        while (!sp->stopping && (wake_at != 0 ? g_get_monotonic_time() < wake_at
                                              : sp->queued->len == 0)) {
            if (wake_at != 0) {
                g_cond_wait_until(&sp->queue_cond, &sp->queue_lock, wake_at);
            } else {
                sp->applier_waiting = TRUE;
                g_cond_wait(&sp->queue_cond, &sp->queue_lock);
                sp->applier_waiting = FALSE;
            }
        }
        if (sp->stopping)
            break;
        gboolean any = sp->queued->len > 0;
        g_mutex_unlock(&sp->queue_lock);
        g_mutex_lock(&sp->apply_lock);
        gboolean ok = apply_queued(sp);
        g_mutex_unlock(&sp->apply_lock);
        idle = any ? 0 : idle + 1;
        if (!ok)
            wake_at = g_get_monotonic_time() + RETRY_US;
        else
            wake_at = idle < IDLE_POLLS ? g_get_monotonic_time() + BATCH_GAP_US : 0;
        g_mutex_lock(&sp->queue_lock);
    }
    g_mutex_unlock(&sp->queue_lock);
    return NULL;
}

/* Keeps the damaged part of a spool next to it, for a human to look at. */
static void keep_damaged(const char *path, const guint8 *data, gsize len)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
    g_autofree char *aside = g_strdup_printf("%s.damaged-%s", path, stamp);
    int fd = open(aside, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    gboolean ok = fd >= 0 && write(fd, data, len) == (ssize_t)len;
    if (fd >= 0)
        close(fd);
    if (ok)
        g_warning("ledger: %zu bytes of the spool %s are damaged and were not applied; they "
                  "are kept in %s",
                  len, path, aside);
    else
        g_warning("ledger: %zu bytes of the spool %s are damaged and were not applied (and "
                  "cannot be kept in %s)",
                  len, path, aside);
}

static gboolean read_all(int fd, const char *path, GByteArray *out, GError **error)
{
    guint8 buf[65536];
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)out->len);
        if (n == 0)
            return TRUE;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE, "cannot read %s: %s",
                        path, g_strerror(e));
            return FALSE;
        }
        g_byte_array_append(out, buf, (guint)n);
    }
}

/* Is there a whole, decodable frame at data[off..len)? Its length in *n. */
static gboolean frame_at(const GByteArray *data, gsize off, gsize *n)
{
    if (lw_spool_frame_check(data->data + off, data->len - off, n) != LW_SPOOL_FRAME_OK)
        return FALSE;
    g_autoptr(LwSpoolRecord) rec = lw_spool_record_decode(data->data + off, *n);
    return rec != NULL;
}

/* The next offset after `from` where a whole frame starts, or data->len. A
 * damaged byte (a bit flip in a length, say) must not cost the rows after
 * it: the scan looks for the next frame's magic and checks its CRC.
 * *budget bounds the bytes those CRCs may read over a whole replay: a file
 * of headers that each announce a long payload would otherwise cost a CRC
 * of up to 1 MiB per header (minutes for a few MiB). Once it is spent the
 * rest counts as damaged, which keeps it aside rather than lose it. */
static gsize resync(const GByteArray *data, gsize from, guint64 *budget)
{
    for (gsize off = from + 1; off < data->len && *budget > 0; off++) {
        gsize n;
        if (data->data[off] != LW_SPOOL_FRAME_MAGIC0)
            continue;
        guint64 cost = lw_spool_frame_check_cost(data->data + off, data->len - off);
        *budget -= MIN(*budget, cost);
        if (frame_at(data, off, &n))
            return off;
    }
    return data->len;
}

/* Applies what a spool file holds, then empties it. The lock is held. */
static gboolean replay(int fd, const char *path, LwLedger *ledger, GError **error)
{
    g_autoptr(GByteArray) data = g_byte_array_new();
    if (!read_all(fd, path, data, error))
        return FALSE;
    g_autoptr(GByteArray) good = g_byte_array_new();
    g_autoptr(GByteArray) damaged = g_byte_array_new();
    gsize rows = 0, torn = 0;
    guint64 budget = 16 * (guint64)data->len + (64u << 20);
    for (gsize off = 0, n = 0; off < data->len;) {
        if (frame_at(data, off, &n)) {
            g_byte_array_append(good, data->data + off, (guint)n);
            off += n;
            rows++;
            continue;
        }
        gsize next = resync(data, off, &budget);
        if (next == data->len &&
            lw_spool_frame_check(data->data + off, data->len - off, &n) == LW_SPOOL_FRAME_SHORT)
            /* The last row, cut short: its writer was killed while
             * writing it, so its client never got the answer's end. */
            torn = next - off;
        else
            g_byte_array_append(damaged, data->data + off, (guint)(next - off));
        off = next;
    }
    gint64 last = 0;
    if (good->len > 0 && !apply_frames(ledger, good->data, good->len, &last, error))
        return FALSE;
    if (torn > 0)
        g_message("ledger: dropped the spool's torn last row (%zu bytes)", torn);
    if (damaged->len > 0)
        keep_damaged(path, damaged->data, damaged->len);
    if (rows > 0)
        g_message("ledger: applied %zu spooled rows left by a collector that stopped", rows);
    if (ftruncate(fd, 0) != 0) {
        int e = errno;
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE, "cannot empty %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

/* Opens and locks the spool file; -1 with error set. `wait_us` bounds the
 * wait for another holder; 0 fails at once with LW_LEDGER_ERROR_BUSY. */
static int open_locked(const char *path, int flags, gint64 wait_us, GError **error)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | flags, 0600);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, LW_LEDGER_ERROR,
                    e == ENOENT ? LW_LEDGER_ERROR_NOT_FOUND : LW_LEDGER_ERROR_SQLITE,
                    "cannot open %s: %s", path, g_strerror(e));
        return -1;
    }
    gint64 deadline = g_get_monotonic_time() + wait_us;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != EWOULDBLOCK || g_get_monotonic_time() >= deadline) {
            g_set_error(error, LW_LEDGER_ERROR,
                        e == EWOULDBLOCK ? LW_LEDGER_ERROR_BUSY : LW_LEDGER_ERROR_SQLITE,
                        e == EWOULDBLOCK ? "%s is in use by another collector"
                                         : "cannot lock %s: %s",
                        path, g_strerror(e));
            close(fd);
            return -1;
        }
        g_usleep(LOCK_POLL_US);
    }
    return fd;
}

LwSpool *lw_spool_open(const char *path, const char *ledger_path, GError **error)
{
    g_return_val_if_fail(path != NULL && ledger_path != NULL, NULL);
    int fd = open_locked(path, O_CREAT | O_APPEND, LOCK_WAIT_US, error);
    if (fd < 0)
        return NULL;
    LwLedger *ledger = lw_ledger_open(ledger_path, FALSE, error);
    gint64 max_id = 0;
    struct stat st;
    if (ledger == NULL || !replay(fd, path, ledger, error) ||
        !lw_ledger_max_request_id(ledger, &max_id, error) || fstat(fd, &st) != 0) {
        lw_ledger_close(ledger);
        close(fd);
        return NULL;
    }
    if ((st.st_mode & 077) != 0)
        (void)fchmod(fd, 0600);
    lw_ledger_set_busy_timeout(ledger, APPLY_BUSY_US);

    LwSpool *sp = g_new0(LwSpool, 1);
    sp->path = g_strdup(path);
    sp->fd = fd;
    sp->ledger = ledger;
    g_mutex_init(&sp->queue_lock);
    g_cond_init(&sp->queue_cond);
    g_mutex_init(&sp->apply_lock);
    sp->queued = g_byte_array_new();
    sp->pending = g_byte_array_new();
    sp->scratch = g_byte_array_new();
    sp->next_id = max_id + 1;
    atomic_store(&sp->applied_id, max_id);
    /* Without the thread every append goes straight to the ledger. */
    sp->thread = g_thread_try_new("lw-spool", applier_main, sp, NULL);
    if (sp->thread == NULL)
        sp->broken = TRUE;
    return sp;
}

void lw_spool_close(LwSpool *sp)
{
    if (sp == NULL)
        return;
    if (sp->thread != NULL) {
        g_mutex_lock(&sp->queue_lock);
        sp->stopping = TRUE;
        g_cond_signal(&sp->queue_cond);
        g_mutex_unlock(&sp->queue_lock);
        g_thread_join(sp->thread);
    }
    g_mutex_lock(&sp->apply_lock);
    if (apply_queued(sp) && !sp->broken &&
        atomic_load(&sp->applied_id) >= sp->next_id - 1 && ftruncate(sp->fd, 0) != 0)
        g_warning("ledger: cannot empty %s: %s", sp->path, g_strerror(errno));
    if (atomic_load(&sp->applied_id) < sp->memory_only_id)
        g_warning("ledger: rows that neither %s nor the ledger could take are lost", sp->path);
    g_mutex_unlock(&sp->apply_lock);
    close(sp->fd);
    lw_ledger_close(sp->ledger);
    g_mutex_clear(&sp->queue_lock);
    g_cond_clear(&sp->queue_cond);
    g_mutex_clear(&sp->apply_lock);
    g_byte_array_unref(sp->queued);
    g_byte_array_unref(sp->pending);
    g_byte_array_unref(sp->scratch);
    g_free(sp->path);
    g_free(sp);
}

/* The way without the file: straight into the ledger, after what is queued. */
static gint64 insert_now(LwSpool *sp, gint64 id, const LwLedgerRequest *row, GError **error)
{
    g_mutex_lock(&sp->apply_lock);
    gboolean ok = apply_queued(sp) && lw_ledger_begin(sp->ledger, error);
    if (ok && (!lw_ledger_insert_row(sp->ledger, id, row, error) ||
               !lw_ledger_commit(sp->ledger, error))) {
        lw_ledger_rollback(sp->ledger);
        ok = FALSE;
    } else if (!ok && error != NULL && *error == NULL) {
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE,
                    "earlier rows cannot be applied either");
    }
    if (ok)
        atomic_store(&sp->applied_id, id);
    g_mutex_unlock(&sp->apply_lock);
    return ok ? id : 0;
}

/* write(2) of a whole frame; on failure the file is cut back to where it
 * was, so that no torn frame sits before later ones. */
static gboolean write_frame(LwSpool *sp, const guint8 *data, gsize len)
{
    gsize done = 0;
    while (done < len) {
        ssize_t n = write(sp->fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            g_warning("ledger: cannot write %s (%s); rows go straight to the ledger", sp->path,
                      g_strerror(e));
            if (done > 0 && ftruncate(sp->fd, sp->file_bytes) != 0)
                sp->broken = TRUE; /* the torn frame must stay the last one */
            return FALSE;
        }
        done += (gsize)n;
    }
    return TRUE;
}

/* Hands the frame in scratch to the applying thread. */
static void queue_scratch(LwSpool *sp)
{
    g_mutex_lock(&sp->queue_lock);
    g_byte_array_append(sp->queued, sp->scratch->data, sp->scratch->len);
    if (sp->applier_waiting)
        g_cond_signal(&sp->queue_cond);
    g_mutex_unlock(&sp->queue_lock);
}

gint64 lw_spool_append(LwSpool *sp, const LwLedgerRequest *row, GError **error)
{
    g_return_val_if_fail(sp != NULL && row != NULL, 0);
    gint64 id = sp->next_id++;
    g_byte_array_set_size(sp->scratch, 0);
    gboolean framed = lw_spool_frame_append(sp->scratch, id, row);
    if (framed && !sp->broken) {
        if (sp->file_bytes >= TRUNCATE_BYTES && atomic_load(&sp->applied_id) >= id - 1 &&
            ftruncate(sp->fd, 0) == 0)
            sp->file_bytes = 0;
        if (write_frame(sp, sp->scratch->data, sp->scratch->len)) {
            sp->file_bytes += sp->scratch->len;
            queue_scratch(sp);
            return id;
        }
    }
    g_autoptr(GError) local = NULL;
    gint64 done = insert_now(sp, id, row, &local);
    if (done != 0 || !framed || sp->thread == NULL) {
        if (local != NULL)
            g_propagate_error(error, g_steal_pointer(&local));
        return done;
    }
    /* Neither the file nor the ledger takes the row now (a full disk,
     * whose WAL cannot grow either): dropping it would lose an answered
     * request for good, even once space is freed. The thread applies it
     * with the rows before it when the ledger can be written again; until
     * then only memory holds it, so the collector dying first loses it. */
    g_warning("ledger: a row is kept in memory until the ledger can be written: %s",
              local->message);
    sp->memory_only_id = id;
    queue_scratch(sp);
    return id;
}

gboolean lw_spool_hold(LwSpool *sp)
{
    if (sp == NULL)
        return TRUE;
    g_mutex_lock(&sp->apply_lock);
    return apply_queued(sp); /* on failure it said so once */
}

void lw_spool_release(LwSpool *sp)
{
    if (sp != NULL)
        g_mutex_unlock(&sp->apply_lock);
}

gboolean lw_spool_drain(const char *path, const char *ledger_path, GError **error)
{
    g_autoptr(GError) local = NULL;
    int fd = open_locked(path, 0, 0, &local);
    if (fd < 0) {
        if (g_error_matches(local, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    struct stat st;
    gboolean ok = TRUE;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        g_autoptr(LwLedger) ledger = lw_ledger_open(ledger_path, FALSE, error);
        ok = ledger != NULL && replay(fd, path, ledger, error);
    }
    close(fd);
    return ok;
}
