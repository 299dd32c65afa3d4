/* test-ledger-spool.c - the ledger's spool: its frames, rows reaching the
 * ledger (through the applier, a hold, a close), what a killed writer
 * left applied exactly once, torn and damaged files, and the lock. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ledger-fixture.h"
#include "ledger-spool-record.h"
#include "ledger-spool.h"

/* Bounds every wait for the applier thread. */
#define WAIT_US (10 * G_USEC_PER_SEC)

/* Warnings the spool logged (structured logging bypasses
 * g_test_expect_message): kept here instead of aborting the test. */
static GPtrArray *warnings;
G_LOCK_DEFINE_STATIC(warnings);

static GLogWriterOutput keep_warnings(GLogLevelFlags level, const GLogField *fields,
                                      gsize n_fields, gpointer data)
{
    if ((level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL)) == 0)
        return g_log_writer_default(level, fields, n_fields, data);
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0) {
            G_LOCK(warnings);
            g_ptr_array_add(warnings, g_strdup(fields[i].value));
            G_UNLOCK(warnings);
        }
    }
    return G_LOG_WRITER_HANDLED;
}

/* The warnings logged since the last call, joined by newlines. */
static char *take_warnings(void)
{
    G_LOCK(warnings);
    g_ptr_array_add(warnings, NULL);
    char *all = g_strjoinv("\n", (char **)warnings->pdata);
    g_ptr_array_set_size(warnings, 0);
    G_UNLOCK(warnings);
    return all;
}

typedef struct {
    Fixture f;
    char *spool;
} SpoolFixture;

static void setup(SpoolFixture *sf, gconstpointer data)
{
    fixture_setup(&sf->f, data);
    sf->spool = g_build_filename(sf->f.dir, "ledger.spool", NULL);
    lw_ledger_close(open_rw(&sf->f)); /* created and migrated, as the collector does */
}

static void teardown(SpoolFixture *sf, gconstpointer data)
{
    g_autofree char *unexpected = take_warnings();
    g_assert_cmpstr(unexpected, ==, "");
    g_free(sf->spool);
    fixture_teardown(&sf->f, data);
}

static LwSpool *open_spool(const SpoolFixture *sf)
{
    GError *error = NULL;
    LwSpool *sp = lw_spool_open(sf->spool, sf->f.path, &error);
    g_assert_no_error(error);
    g_assert_nonnull(sp);
    return sp;
}

/* Through a connection of its own, as llmctl would read. */
static gint64 count(const SpoolFixture *sf, const char *sql)
{
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open_v2(sf->f.path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &st, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    gint64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static gint64 rows(const SpoolFixture *sf)
{
    return count(sf, "SELECT COUNT(*) FROM requests");
}

/* What the usage rollup counts, to catch a row counted twice. */
static gint64 rolled_up(const SpoolFixture *sf)
{
    return count(sf, "SELECT COALESCE(SUM(requests), 0) FROM usage_hourly WHERE dim = 0");
}

static gint64 file_size(const char *path)
{
    struct stat st;
    return g_stat(path, &st) == 0 ? st.st_size : -1;
}

static LwLedgerRequest numbered_row(int i)
{
    LwLedgerRequest r = fixture_full_row();
    r.input_tokens = 1000 + i;
    return r;
}

/* n frames for rows 1..n, as the collector writes them. */
static GByteArray *frames(int n)
{
    GByteArray *out = g_byte_array_new();
    for (int i = 1; i <= n; i++) {
        LwLedgerRequest r = numbered_row(i);
        g_assert_true(lw_spool_frame_append(out, i, &r));
    }
    return out;
}

static void write_file(const char *path, const guint8 *data, gsize len)
{
    GError *error = NULL;
    g_file_set_contents(path, (const char *)data, (gssize)len, &error);
    g_assert_no_error(error);
}

/* ---- frames ---- */

static void test_frame_round_trip(void)
{
    LwLedgerRequest full = fixture_full_row();
    /* Unknown cost and first-byte time, NULL strings, run 0 (no llmwrap):
     * each must come back as such, not as 0 or "". */
    LwLedgerRequest sparse = {.time_ms = -5, .status = 502, .ttft_ms = -1, .provider = ""};
    const LwLedgerRequest *cases[] = {&full, &sparse};
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_assert_true(lw_spool_frame_append(out, 41 + i, cases[i]));
        gsize n = 0;
        g_assert_cmpint(lw_spool_frame_check(out->data, out->len, &n), ==, LW_SPOOL_FRAME_OK);
        g_assert_cmpuint(n, ==, out->len);
        g_autoptr(LwSpoolRecord) rec = lw_spool_record_decode(out->data, n);
        g_assert_nonnull(rec);
        g_assert_cmpint(rec->id, ==, 41 + i);
        fixture_assert_same_row(&rec->row, cases[i]);
        g_assert_cmpstr(rec->row.tags_json, ==, cases[i]->tags_json);
        g_assert_cmpstr(rec->row.raw_usage, ==, cases[i]->raw_usage);
    }
}

static void test_frame_torn_and_damaged(void)
{
    g_autoptr(GByteArray) f = frames(1);
    gsize n = 0;
    /* Every prefix is what a writer killed mid-write leaves: short. */
    for (gsize cut = 1; cut < f->len; cut++)
        g_assert_cmpint(lw_spool_frame_check(f->data, cut, &n), ==, LW_SPOOL_FRAME_SHORT);
    /* Any changed byte of a complete frame is damage. */
    for (gsize i = 0; i < f->len; i++) {
        g_autoptr(GByteArray) bad = g_byte_array_new();
        g_byte_array_append(bad, f->data, f->len);
        bad->data[i] ^= 0x20;
        LwSpoolFrameResult res = lw_spool_frame_check(bad->data, bad->len, &n);
        /* A changed length may also make it look longer than the file. */
        if (i >= 4 && i < 8 && res == LW_SPOOL_FRAME_SHORT)
            continue;
        g_assert_cmpint(res, ==, LW_SPOOL_FRAME_BAD);
    }
    /* A frame that checks but is not a row (no id) does not decode. */
    g_autoptr(GByteArray) empty = g_byte_array_new();
    guint8 header[LW_SPOOL_FRAME_HEADER] = {'L', 'W', 'S', '1', 0, 0, 0, 0, 0, 0, 0, 0};
    g_byte_array_append(empty, header, sizeof header);
    g_assert_cmpint(lw_spool_frame_check(empty->data, empty->len, &n), ==, LW_SPOOL_FRAME_OK);
    g_assert_null(lw_spool_record_decode(empty->data, n));
}

/* ---- the live spool ---- */

static void test_hold_shows_every_appended_row(SpoolFixture *sf, gconstpointer data)
{
    GError *error = NULL;
    LwSpool *sp = open_spool(sf);
    for (int i = 1; i <= 3; i++) {
        LwLedgerRequest r = numbered_row(i);
        g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, i);
        g_assert_no_error(error);
    }
    lw_spool_hold(sp);
    g_assert_cmpint(rows(sf), ==, 3);
    g_assert_cmpint(count(sf, "SELECT SUM(input_tokens) FROM requests"), ==, 1001 + 1002 + 1003);
    lw_spool_release(sp);
    lw_spool_close(sp);
    /* Emptied once applied; ids go on after the last row. */
    g_assert_cmpint(file_size(sf->spool), ==, 0);
    sp = open_spool(sf);
    LwLedgerRequest r = numbered_row(4);
    g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, 4);
    lw_spool_close(sp);
    g_assert_cmpint(rows(sf), ==, 4);
    g_assert_cmpint(rolled_up(sf), ==, 4);
}

static void test_applier_needs_no_hold(SpoolFixture *sf, gconstpointer data)
{
    GError *error = NULL;
    LwSpool *sp = open_spool(sf);
    LwLedgerRequest r = numbered_row(1);
    g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, 1);
    gint64 deadline = g_get_monotonic_time() + WAIT_US;
    while (rows(sf) < 1 && g_get_monotonic_time() < deadline)
        g_usleep(1000);
    g_assert_cmpint(rows(sf), ==, 1);
    lw_spool_close(sp);
}

/* The file is emptied while it is being written, once all of it is
 * applied: it stays near TRUNCATE_BYTES (1 MiB) and loses nothing. */
static void test_file_stays_small(SpoolFixture *sf, gconstpointer data)
{
    GError *error = NULL;
    LwSpool *sp = open_spool(sf);
    g_autoptr(GByteArray) one = frames(1);
    int n = (3 << 20) / (int)one->len; /* three times the limit */
    gint64 biggest = 0;
    for (int i = 1; i <= n; i++) {
        LwLedgerRequest r = numbered_row(i);
        g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, i);
        if (i % 100 == 0) {
            lw_spool_hold(sp); /* as a reader would; also lets the file be emptied */
            lw_spool_release(sp);
        }
        biggest = MAX(biggest, file_size(sf->spool));
    }
    g_assert_cmpint(biggest, <, (1 << 20) + 101 * (gint64)one->len);
    lw_spool_close(sp);
    g_assert_cmpint(rows(sf), ==, n);
    g_assert_cmpint(rolled_up(sf), ==, n);
}

/* ---- what a killed writer leaves ---- */

/* Holds the ledger's write lock, as another process (a sqlite3 shell) may:
 * the spool's rows then cannot reach the ledger. */
static sqlite3 *lock_ledger(const SpoolFixture *sf)
{
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(sf->f.path, &db), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
    return db;
}

static void test_kill_9_then_replay(SpoolFixture *sf, gconstpointer data)
{
    const int n = 50;
    int ready[2];
    g_assert_cmpint(pipe(ready), ==, 0);
    sqlite3 *lock = lock_ledger(sf);
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        LwSpool *sp = lw_spool_open(sf->spool, sf->f.path, NULL);
        for (int i = 1; sp != NULL && i <= n; i++) {
            LwLedgerRequest r = numbered_row(i);
            if (lw_spool_append(sp, &r, NULL) != i)
                _exit(2);
        }
        /* Told the parent; now killed with every row only in the spool. */
        (void)!write(ready[1], sp != NULL ? "y" : "n", 1);
        pause();
        _exit(3);
    }
    close(ready[1]);
    char c = 0;
    g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
    g_assert_cmpint(c, ==, 'y');
    close(ready[0]);
    kill(pid, SIGKILL);
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
    sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(lock);

    g_assert_cmpint(rows(sf), ==, 0);
    g_assert_cmpint(file_size(sf->spool), >, 0);
    LwSpool *sp = open_spool(sf); /* as the next collector */
    g_assert_cmpint(rows(sf), ==, n);
    g_assert_cmpint(count(sf, "SELECT SUM(input_tokens) FROM requests"),
                    ==, n * 1000 + n * (n + 1) / 2);
    g_assert_cmpint(file_size(sf->spool), ==, 0);
    GError *error = NULL;
    LwLedgerRequest r = numbered_row(n + 1);
    g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, n + 1);
    lw_spool_close(sp);
}

/* Another process holding the ledger's write lock (a sqlite3 shell in an
 * open transaction) must not stop the caller of lw_spool_hold, the
 * collector's loop, for the 5 s busy timeout (twice: the spool thread's
 * try, then its own): the hold gives up after a short wait, the row stays
 * queued, and it is applied once the lock is gone. */
static void test_hold_gives_up_on_a_held_lock(SpoolFixture *sf, gconstpointer data)
{
    GError *error = NULL;
    LwSpool *sp = open_spool(sf);
    sqlite3 *lock = lock_ledger(sf);
    LwLedgerRequest r = numbered_row(1);
    g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, 1);
    for (int i = 0; i < 3; i++) {
        gint64 start = g_get_monotonic_time();
        g_assert_false(lw_spool_hold(sp));
        lw_spool_release(sp);
        g_assert_cmpint(g_get_monotonic_time() - start, <, 2500000);
    }
    g_autofree char *said = take_warnings();
    g_assert_nonnull(strstr(said, "cannot apply spooled rows yet"));
    g_assert_cmpint(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
    sqlite3_close(lock);
    g_assert_true(lw_spool_hold(sp));
    lw_spool_release(sp);
    g_assert_cmpint(rows(sf), ==, 1);
    lw_spool_close(sp);
}

/* A full disk: neither the spool nor the ledger takes a row (a file size
 * limit at the spool's size stands in for it, which stops the WAL from
 * growing too). The row is not dropped: it is applied, after the rows
 * before it, once the ledger can be written again. */
static void test_row_outlives_a_full_disk(SpoolFixture *sf, gconstpointer data)
{
    GError *error = NULL;
    LwSpool *sp = open_spool(sf);
    LwLedgerRequest r = numbered_row(1);
    g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, 1);
    g_assert_true(lw_spool_hold(sp)); /* the WAL is as big as it gets below */
    lw_spool_release(sp);

    struct rlimit was, full;
    g_assert_cmpint(getrlimit(RLIMIT_FSIZE, &was), ==, 0);
    full = was;
    full.rlim_cur = (rlim_t)file_size(sf->spool);
    void (*xfsz)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead */
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &full), ==, 0);
    for (int i = 2; i <= 3; i++) {
        r = numbered_row(i);
        g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, i);
        g_assert_no_error(error);
    }
    g_assert_false(lw_spool_hold(sp));
    lw_spool_release(sp);
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &was), ==, 0);
    signal(SIGXFSZ, xfsz);
    g_autofree char *said = take_warnings();
    g_assert_nonnull(strstr(said, "a row is kept in memory until the ledger can be written"));

    g_assert_true(lw_spool_hold(sp));
    lw_spool_release(sp);
    g_assert_cmpint(rows(sf), ==, 3);
    g_assert_cmpint(count(sf, "SELECT SUM(input_tokens) FROM requests"), ==, 1001 + 1002 + 1003);
    r = numbered_row(4);
    g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, 4);
    lw_spool_close(sp);
    g_assert_cmpint(rows(sf), ==, 4);
    g_assert_cmpint(rolled_up(sf), ==, 4);
    g_free(take_warnings()); /* "spooled rows applied again" */
}

/* Killed after a batch committed but before the file was emptied: the
 * rows are applied again, which must change nothing. */
static void test_replay_is_idempotent(SpoolFixture *sf, gconstpointer data)
{
    g_autoptr(GByteArray) f = frames(5);
    write_file(sf->spool, f->data, f->len);
    GError *error = NULL;
    g_assert_true(lw_spool_drain(sf->spool, sf->f.path, &error));
    g_assert_no_error(error);
    g_assert_cmpint(rows(sf), ==, 5);
    write_file(sf->spool, f->data, f->len);
    lw_spool_close(open_spool(sf));
    g_assert_cmpint(rows(sf), ==, 5);
    g_assert_cmpint(rolled_up(sf), ==, 5);
}

static void test_torn_tail_is_dropped(SpoolFixture *sf, gconstpointer data)
{
    g_autoptr(GByteArray) f = frames(3);
    g_autoptr(GByteArray) two = frames(2);
    write_file(sf->spool, f->data, two->len + (f->len - two->len) / 2);
    GError *error = NULL;
    g_assert_true(lw_spool_drain(sf->spool, sf->f.path, &error));
    g_assert_no_error(error);
    g_assert_cmpint(rows(sf), ==, 2);
    g_assert_cmpint(file_size(sf->spool), ==, 0);
    /* Nothing kept aside: a torn write is not damage. */
    g_autoptr(GDir) dir = g_dir_open(sf->f.dir, 0, NULL);
    for (const char *name; (name = g_dir_read_name(dir)) != NULL;)
        g_assert_null(strstr(name, "damaged"));
}

/* The kept-aside file's content, NULL if there is none. */
static GBytes *kept_aside(SpoolFixture *sf)
{
    g_autoptr(GDir) dir = g_dir_open(sf->f.dir, 0, NULL);
    for (const char *name; (name = g_dir_read_name(dir)) != NULL;) {
        if (strstr(name, "ledger.spool.damaged-") != name)
            continue;
        g_autofree char *path = g_build_filename(sf->f.dir, name, NULL);
        char *content = NULL;
        gsize len = 0;
        g_assert_true(g_file_get_contents(path, &content, &len, NULL));
        g_assert_cmpint(unlink(path), ==, 0);
        return g_bytes_new_take(content, len);
    }
    return NULL;
}

/* Damage in the middle row of three, wherever it falls (its length field
 * too, which can make it look longer than the rest of the file): the rows
 * around it are applied, and exactly its bytes are kept aside. */
typedef struct {
    const char *name;
    guint offset; /* into the second frame */
    guint8 xor;
} DamageCase;

static const DamageCase damage_cases[] = {
    {"payload", LW_SPOOL_FRAME_HEADER + 3, 0x01},
    {"crc", 9, 0x10},
    {"magic", 1, 0x20},
    {"length-past-the-end-of-the-file", 6, 0x10},
    {"length-past-the-largest-row", 4, 0x40},
    {"length-shorter", 7, 0x08},
};

static void test_damage_is_kept_aside(SpoolFixture *sf, gconstpointer data)
{
    const DamageCase *c = data;
    g_autoptr(GByteArray) f = frames(3);
    g_autoptr(GByteArray) one = frames(1);
    g_autoptr(GByteArray) two = frames(2);
    f->data[one->len + c->offset] ^= c->xor;
    write_file(sf->spool, f->data, f->len);
    GError *error = NULL;
    g_assert_true(lw_spool_drain(sf->spool, sf->f.path, &error));
    g_assert_no_error(error);
    g_autofree char *said = take_warnings();
    g_autofree char *size = g_strdup_printf("%u bytes of the spool", two->len - one->len);
    g_assert_nonnull(strstr(said, size));
    g_assert_nonnull(strstr(said, "are damaged and were not applied; they are kept in"));
    g_assert_cmpint(count(sf, "SELECT COUNT(*) FROM requests WHERE id IN (1, 3)"), ==, 2);
    g_assert_cmpint(rows(sf), ==, 2);
    g_assert_cmpint(file_size(sf->spool), ==, 0);
    g_autoptr(GBytes) kept = kept_aside(sf);
    g_assert_nonnull(kept);
    gsize len;
    const void *content = g_bytes_get_data(kept, &len);
    g_assert_cmpmem(content, len, f->data + one->len, two->len - one->len);
}

/* Damage shaped like frame headers, each announcing a long payload: each
 * would cost a CRC over up to 1 MiB, minutes in all for a few MiB. The
 * scan's work is bounded; what it cannot vouch for is kept aside, whole. */
static void test_header_storm_is_bounded(SpoolFixture *sf, gconstpointer data)
{
    g_autoptr(GByteArray) f = frames(1);
    gsize good = f->len;
    static const guint8 header[LW_SPOOL_FRAME_HEADER] = {'L', 'W', 'S', '1', 0x00, 0x0f,
                                                         0xff, 0xff, 0, 0, 0, 0};
    while (f->len < good + (4u << 20))
        g_byte_array_append(f, header, sizeof header);
    write_file(sf->spool, f->data, f->len);
    alarm(60); /* a regression takes minutes: fail instead of waiting */
    GError *error = NULL;
    g_assert_true(lw_spool_drain(sf->spool, sf->f.path, &error));
    alarm(0);
    g_assert_no_error(error);
    g_free(take_warnings());
    g_assert_cmpint(rows(sf), ==, 1);
    g_autoptr(GBytes) kept = kept_aside(sf);
    g_assert_nonnull(kept);
    gsize len;
    const void *content = g_bytes_get_data(kept, &len);
    g_assert_cmpmem(content, len, f->data + good, f->len - good);
}

static void test_one_writer_at_a_time(SpoolFixture *sf, gconstpointer data)
{
    LwSpool *sp = open_spool(sf);
    GError *error = NULL;
    LwLedgerRequest r = numbered_row(1);
    g_assert_cmpint(lw_spool_append(sp, &r, &error), ==, 1);
    /* llmctl must ask the collector instead. */
    g_assert_false(lw_spool_drain(sf->spool, sf->f.path, &error));
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_BUSY);
    g_clear_error(&error);
    lw_spool_close(sp);
    g_assert_true(lw_spool_drain(sf->spool, sf->f.path, &error));
    g_assert_cmpint(rows(sf), ==, 1);
}

static void test_missing_spool_drains_to_nothing(SpoolFixture *sf, gconstpointer data)
{
    GError *error = NULL;
    g_assert_true(lw_spool_drain(sf->spool, sf->f.path, &error));
    g_assert_no_error(error);
    g_assert_false(g_file_test(sf->spool, G_FILE_TEST_EXISTS));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    warnings = g_ptr_array_new_with_free_func(g_free);
    g_log_set_writer_func(keep_warnings, NULL, NULL);
    g_test_add_func("/spool/frame/round-trip", test_frame_round_trip);
    g_test_add_func("/spool/frame/torn-and-damaged", test_frame_torn_and_damaged);
#define ADD(path, fn) g_test_add(path, SpoolFixture, NULL, setup, fn, teardown)
    ADD("/spool/hold-shows-every-appended-row", test_hold_shows_every_appended_row);
    ADD("/spool/applier-needs-no-hold", test_applier_needs_no_hold);
    ADD("/spool/file-stays-small", test_file_stays_small);
    ADD("/spool/kill-9-then-replay", test_kill_9_then_replay);
    ADD("/spool/hold-gives-up-on-a-held-lock", test_hold_gives_up_on_a_held_lock);
    ADD("/spool/row-outlives-a-full-disk", test_row_outlives_a_full_disk);
    ADD("/spool/replay-is-idempotent", test_replay_is_idempotent);
    ADD("/spool/torn-tail-is-dropped", test_torn_tail_is_dropped);
    for (guint i = 0; i < G_N_ELEMENTS(damage_cases); i++) {
        g_autofree char *path = g_strdup_printf("/spool/damage-is-kept-aside/%s",
                                                damage_cases[i].name);
        g_test_add(path, SpoolFixture, &damage_cases[i], setup, test_damage_is_kept_aside,
                   teardown);
    }
    ADD("/spool/header-storm-is-bounded", test_header_storm_is_bounded);
    ADD("/spool/one-writer-at-a-time", test_one_writer_at_a_time);
    ADD("/spool/missing-spool-drains-to-nothing", test_missing_spool_drains_to_nothing);
#undef ADD
    return g_test_run();
}
