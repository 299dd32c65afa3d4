/* test-ledger.c - the ledger: schema and migrations, every stored field,
 * the credential hash, file permissions, durability across kill -9, and
 * the usage sums checked against sums computed here from the rows. */
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ledger-fixture.h"
#include "ledger-private.h"
#include "ledger-query.h"
#include "ledger-reprice.h"
#include "ledger-runs.h"
#include "ledger.h"

#define HOUR_MS G_GINT64_CONSTANT(3600000)
#define DAY_MS (24 * HOUR_MS)
/* 2026-11-21T00:00:00Z */
#define BASE_MS G_GINT64_CONSTANT(1795219200000)

static gint64 sql_int(LwLedger *l, const char *sql)
{
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(lw_ledger_db(l), sql, -1, &st, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    gint64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static gboolean collect_record(const LwRequestRecord *rec, gpointer data)
{
    GPtrArray *out = data;
    LwRequestRecord *copy = g_new(LwRequestRecord, 1);
    *copy = *rec;
    /* Strings are borrowed only for the callback: keep copies. */
    const char **fields[] = {&copy->row.exe, &copy->row.tags_json, &copy->row.provider,
                             &copy->row.host, &copy->row.endpoint, &copy->row.model_requested,
                             &copy->row.model_served, &copy->row.cost_source,
                             &copy->row.upstream_request_id, &copy->row.credential,
                             &copy->row.raw_usage, &copy->row.refused_by, &copy->row.warning,
                             &copy->row.unpriced_path, &copy->row.model_sent};
    for (guint i = 0; i < G_N_ELEMENTS(fields); i++)
        *fields[i] = g_strdup(*fields[i]);
    g_ptr_array_add(out, copy);
    return TRUE;
}

static void record_free(gpointer p)
{
    LwRequestRecord *r = p;
    g_free((char *)r->row.exe);
    g_free((char *)r->row.tags_json);
    g_free((char *)r->row.provider);
    g_free((char *)r->row.host);
    g_free((char *)r->row.endpoint);
    g_free((char *)r->row.model_requested);
    g_free((char *)r->row.model_served);
    g_free((char *)r->row.cost_source);
    g_free((char *)r->row.upstream_request_id);
    g_free((char *)r->row.credential);
    g_free((char *)r->row.raw_usage);
    g_free((char *)r->row.refused_by);
    g_free((char *)r->row.warning);
    g_free((char *)r->row.unpriced_path);
    g_free((char *)r->row.model_sent);
    g_free(r);
}

static GPtrArray *list_requests(LwLedger *l, const LwRequestFilter *filter)
{
    GError *error = NULL;
    GPtrArray *out = g_ptr_array_new_with_free_func(record_free);
    LwRequestFilter all;
    lw_request_filter_init(&all);
    g_assert_true(lw_ledger_foreach_request(l, filter != NULL ? filter : &all, collect_record,
                                            out, &error));
    g_assert_no_error(error);
    return out;
}

/* ---- schema ---- */

static void test_create_reopen(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *l = open_rw(f);
    g_assert_cmpint(lw_ledger_schema_version(), >=, 1);
    g_assert_cmpint(sql_int(l, "PRAGMA user_version"), ==, lw_ledger_schema_version());
    /* WAL is what lets llmctl read while the collector writes. */
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(lw_ledger_db(l), "PRAGMA journal_mode", -1, &st, NULL);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    g_assert_cmpstr((const char *)sqlite3_column_text(st, 0), ==, "wal");
    sqlite3_finalize(st);
    LwLedgerRequest r = fixture_full_row();
    g_assert_cmpint(lw_ledger_insert(l, &r, &error), ==, 1);
    lw_ledger_close(l);

    /* Reopening keeps the rows and does not migrate again. */
    l = open_rw(f);
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM requests"), ==, 1);
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM meta WHERE key = 'created'"), ==, 1);
    g_assert_cmpint(lw_ledger_insert(l, &r, &error), ==, 2);
    lw_ledger_close(l);

    LwLedger *ro = lw_ledger_open(f->path, TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpint(sql_int(ro, "SELECT COUNT(*) FROM requests"), ==, 2);
    lw_ledger_close(ro);
}

/* An empty file (as if created and never initialised) is migrated from
 * version 0 by a writer, and is "no ledger" to a reader. */
static void test_migrate_empty_file(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    g_assert_true(g_file_set_contents(f->path, "", 0, &error));
    LwLedger *ro = lw_ledger_open(f->path, TRUE, &error);
    g_assert_null(ro);
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND);
    g_clear_error(&error);

    LwLedger *l = open_rw(f);
    g_assert_cmpint(sql_int(l, "PRAGMA user_version"), ==, lw_ledger_schema_version());
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM runs"), ==, 0);
    lw_ledger_close(l);
}

static void test_refuse_newer(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    lw_ledger_close(open_rw(f));
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(f->path, &db), ==, SQLITE_OK);
    g_autofree char *sql =
        g_strdup_printf("PRAGMA user_version = %d", lw_ledger_schema_version() + 1);
    g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
    sqlite3_close(db);

    for (int readonly = 0; readonly <= 1; readonly++) {
        LwLedger *l = lw_ledger_open(f->path, readonly, &error);
        g_assert_null(l);
        g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_TOO_NEW);
        g_assert_nonnull(strstr(error->message, "newer"));
        g_clear_error(&error);
    }
    /* Refused, never rewritten. */
    g_assert_cmpint(sqlite3_open(f->path, &db), ==, SQLITE_OK);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    g_assert_cmpint(sqlite3_column_int(st, 0), ==, lw_ledger_schema_version() + 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_readonly_missing(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *l = lw_ledger_open(f->path, TRUE, &error);
    g_assert_null(l);
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
}

static void test_file_mode(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    mode_t old = umask(022);
    LwLedger *l = open_rw(f);
    LwLedgerRequest r = fixture_full_row();
    g_assert_cmpint(lw_ledger_insert(l, &r, &error), >, 0);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        g_autofree char *p = g_strconcat(f->path, suffixes[i], NULL);
        struct stat st;
        g_assert_cmpint(stat(p, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    }
    lw_ledger_close(l);
    umask(old);
}

/* Two connections of one process (the collector's loop and its spool),
 * then another process (llmctl) opening and closing one of its own: it
 * must not take itself for the last user and delete the WAL, which the
 * second open once made it do by dropping the first's POSIX locks. */
static void test_two_connections_keep_the_wal(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *first = open_rw(f);
    LwLedger *second = open_rw(f);
    /* A process of its own (a forked child would share this one's SQLite
     * state): this test program again, told to open and close. */
    const char *argv[] = {"/proc/self/exe", "--open-and-close", f->path, NULL};
    int status = -1;
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status,
                 &error);
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_autofree char *wal = g_strconcat(f->path, "-wal", NULL);
    g_assert_true(g_file_test(wal, G_FILE_TEST_EXISTS));
    /* And a row one connection commits is there for a newcomer. */
    LwLedgerRequest r = fixture_full_row();
    g_assert_cmpint(lw_ledger_insert(second, &r, &error), ==, 1);
    g_autoptr(LwLedger) reader = lw_ledger_open(f->path, TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpint(sql_int(reader, "SELECT COUNT(*) FROM requests"), ==, 1);
    lw_ledger_close(second);
    lw_ledger_close(first);
}

/* ---- rows ---- */

static void test_roundtrip(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *l = open_rw(f);
    LwLedgerRequest full = fixture_full_row();
    /* The other extreme: every string NULL, cost and ttft unknown. */
    LwLedgerRequest sparse = {.time_ms = BASE_MS, .status = 502, .ttft_ms = -1,
                              .cost = {FALSE, 999}};
    g_assert_cmpint(lw_ledger_insert(l, &full, &error), ==, 1);
    g_assert_no_error(error);
    g_assert_cmpint(lw_ledger_insert(l, &sparse, &error), ==, 2);
    g_assert_cmpint(sql_int(l, "SELECT cost_pusd IS NULL FROM requests WHERE id = 2"), ==, 1);
    g_assert_cmpint(sql_int(l, "SELECT run_id IS NULL FROM requests WHERE id = 2"), ==, 1);
    lw_ledger_close(l);

    LwLedger *ro = lw_ledger_open(f->path, TRUE, &error);
    g_assert_no_error(error);
    g_autoptr(GPtrArray) rows = list_requests(ro, NULL);
    g_assert_cmpuint(rows->len, ==, 2);
    /* Newest first. */
    const LwRequestRecord *a = g_ptr_array_index(rows, 0), *b = g_ptr_array_index(rows, 1);
    g_assert_cmpint(a->id, ==, 1);
    fixture_assert_same_row(&a->row, &full);
    /* JSON is handed back normalised, not necessarily byte for byte. */
    g_assert_cmpstr(a->row.tags_json, ==, "{\"team\":\"search\",\"job\":\"nightly \\\"quoted\\\"\"}");
    g_assert_cmpstr(a->row.raw_usage, ==, full.raw_usage);
    g_assert_cmpint(b->id, ==, 2);
    sparse.cost.known = FALSE;
    fixture_assert_same_row(&b->row, &sparse);
    g_assert_null(b->row.tags_json);
    g_assert_null(b->row.raw_usage);
    lw_ledger_close(ro);
}

static gboolean is_lower_hex(const char *s, gsize len)
{
    if (s == NULL || strlen(s) != len)
        return FALSE;
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isxdigit(s[i]) || g_ascii_isupper(s[i]))
            return FALSE;
    return TRUE;
}

static void test_credential_hash(Fixture *f, gconstpointer data)
{
    const char *secret = "sk-test-0123456789abcdef";
    const char *hexy = "0123456789abcdef"; /* looks like a hash already */
    LwLedger *l = open_rw(f);
    g_autofree char *h1 = lw_ledger_credential_hash(l, secret, strlen(secret));
    g_autofree char *h2 = lw_ledger_credential_hash(l, secret, strlen(secret));
    g_autofree char *other = lw_ledger_credential_hash(l, "sk-test-other", 13);
    g_autofree char *prefix = lw_ledger_credential_hash(l, secret, 10);
    g_autofree char *h_hexy = lw_ledger_credential_hash(l, hexy, strlen(hexy));
    g_assert_true(is_lower_hex(h1, 16));
    g_assert_cmpstr(h1, ==, h2);
    g_assert_cmpstr(h1, !=, other);
    g_assert_cmpstr(h1, !=, prefix);
    g_assert_null(strstr(secret, h1));
    g_assert_cmpstr(h_hexy, !=, hexy);
    /* Many keys in turn (more than the ledger remembers): each keeps its
     * own hash, whether it comes from the cache or is computed again. */
    char *first[40];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 40; i++) {
            g_autofree char *key = g_strdup_printf("sk-rotating-%d", i);
            char *h = lw_ledger_credential_hash(l, key, strlen(key));
            g_assert_true(is_lower_hex(h, 16));
            if (round == 0) {
                for (int j = 0; j < i; j++)
                    g_assert_cmpstr(h, !=, first[j]);
                first[i] = h;
            } else {
                g_assert_cmpstr(h, ==, first[i]);
                g_free(h);
            }
        }
    }
    for (int i = 0; i < 40; i++)
        g_free(first[i]);
    lw_ledger_close(l);

    /* It is HMAC-SHA256 keyed with the stored salt (checked against GLib's
     * own HMAC), so a hash made elsewhere with the same salt matches. */
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'salt'", -1, &st,
                                       NULL),
                    ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    const char *salt_hex = (const char *)sqlite3_column_text(st, 0);
    g_assert_cmpuint(strlen(salt_hex), ==, 64);
    guint8 salt[32];
    for (int i = 0; i < 32; i++)
        salt[i] = (guint8)(g_ascii_xdigit_value(salt_hex[2 * i]) << 4 |
                           g_ascii_xdigit_value(salt_hex[2 * i + 1]));
    sqlite3_finalize(st);
    sqlite3_close(db);
    GHmac *hmac = g_hmac_new(G_CHECKSUM_SHA256, salt, sizeof salt);
    g_hmac_update(hmac, (const guchar *)secret, (gssize)strlen(secret));
    g_autofree char *expected = g_strndup(g_hmac_get_string(hmac), 16);
    g_hmac_unref(hmac);
    g_assert_cmpstr(h1, ==, expected);

    /* Stable across reopening: the salt is stored. */
    l = open_rw(f);
    g_autofree char *h3 = lw_ledger_credential_hash(l, secret, strlen(secret));
    g_assert_cmpstr(h1, ==, h3);
    lw_ledger_close(l);

    /* Another installation has another salt. */
    g_autofree char *path2 = g_build_filename(f->dir, "other.db", NULL);
    GError *error = NULL;
    LwLedger *l2 = lw_ledger_open(path2, FALSE, &error);
    g_assert_no_error(error);
    g_autofree char *h4 = lw_ledger_credential_hash(l2, secret, strlen(secret));
    g_assert_true(is_lower_hex(h4, 16));
    g_assert_cmpstr(h1, !=, h4);
    lw_ledger_close(l2);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        g_autofree char *p = g_strconcat(path2, suffixes[i], NULL);
        g_unlink(p);
    }
}

/* ---- runs ---- */

/* A ledger whose runs form a loop of parents (the collector refuses to
 * make one now; an older one, or a hand edit, may hold it): the run-tree
 * queries still end, counting each run once. */
static void test_run_loop_ends(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *l = open_rw(f);
    char *argv[] = {"x", NULL};
    LwLedgerRun run = {.started_ms = BASE_MS, .argv = argv, .budget_pusd = -1};
    guint64 a = lw_ledger_run_start(l, &run, &error);
    run.parent_id = a;
    guint64 b = lw_ledger_run_start(l, &run, &error);
    g_assert_no_error(error);
    g_autofree char *loop =
        g_strdup_printf("UPDATE runs SET parent_id = %" G_GUINT64_FORMAT " WHERE id = %"
                        G_GUINT64_FORMAT, b, a);
    g_assert_cmpint(sqlite3_exec(lw_ledger_db(l), loop, NULL, NULL, NULL), ==, SQLITE_OK);
    LwLedgerRequest r = fixture_full_row();
    r.run_id = b;
    r.cost = (LwCost){TRUE, 5};
    lw_ledger_insert(l, &r, &error);
    g_assert_no_error(error);
    alarm(60); /* a recursion that never ends fails here rather than hang the suite */
    g_assert_cmpint(lw_ledger_run_spent(l, a, &error), ==, 5);
    g_assert_no_error(error);
    LwRunSummary s;
    g_assert_true(lw_ledger_run_summary(l, a, &s, &error));
    alarm(0);
    g_assert_cmpint(s.requests, ==, 1);
    lw_run_summary_clear(&s);
    lw_ledger_close(l);
}

static void test_runs(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *l = open_rw(f);
    char *argv1[] = {"python3", "agent.py", "--task", "it's \"quoted\"", NULL};
    LwLedgerRun run = {.started_ms = BASE_MS, .argv = argv1, .cwd = "/home/u/p", .pid = 100,
                       .tags_json = "{\"team\":\"a\"}", .budget_pusd = 5000000000000};
    guint64 id1 = lw_ledger_run_start(l, &run, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(id1, >, 0);
    char *argv2[] = {"child", NULL};
    LwLedgerRun nested = {.parent_id = id1, .started_ms = BASE_MS + 1000, .argv = argv2,
                          .pid = 101, .budget_pusd = -1};
    guint64 id2 = lw_ledger_run_start(l, &nested, &error);
    g_assert_cmpuint(id2, >, id1);
    g_assert_true(lw_ledger_run_end(l, id1, BASE_MS + 61000, 3, &error));
    g_assert_no_error(error);
    g_assert_false(lw_ledger_run_end(l, 9999, BASE_MS, 0, &error));
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND);
    g_clear_error(&error);

    LwLedgerRequest r = fixture_full_row();
    r.run_id = id1;
    lw_ledger_insert(l, &r, &error);
    r.cost.known = FALSE;
    lw_ledger_insert(l, &r, &error);
    r.run_id = id2;
    r.cost = (LwCost){TRUE, 7};
    lw_ledger_insert(l, &r, &error);
    g_assert_no_error(error);

    g_autoptr(GPtrArray) runs = lw_ledger_list_runs(l, -1, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(runs->len, ==, 2);
    const LwRunRecord *n = g_ptr_array_index(runs, 0), *t = g_ptr_array_index(runs, 1);
    g_assert_cmpuint(n->id, ==, id2);
    g_assert_cmpuint(n->parent_id, ==, id1);
    g_assert_cmpint(n->ended_ms, ==, -1);
    g_assert_false(n->has_exit_status);
    g_assert_cmpint(n->budget_pusd, ==, -1);
    g_assert_null(n->tags_json);
    g_assert_cmpint(n->requests, ==, 1);
    g_assert_cmpint(n->cost_pusd, ==, 7);
    g_assert_cmpuint(t->id, ==, id1);
    g_assert_cmpuint(t->parent_id, ==, 0);
    g_assert_cmpint(t->started_ms, ==, BASE_MS);
    g_assert_cmpint(t->ended_ms, ==, BASE_MS + 61000);
    g_assert_true(t->has_exit_status);
    g_assert_cmpint(t->exit_status, ==, 3);
    g_assert_cmpuint(g_strv_length(t->argv), ==, 4);
    for (guint i = 0; i < 4; i++)
        g_assert_cmpstr(t->argv[i], ==, argv1[i]);
    g_assert_cmpstr(t->cwd, ==, "/home/u/p");
    g_assert_cmpuint(t->pid, ==, 100);
    g_assert_cmpstr(t->tags_json, ==, "{\"team\":\"a\"}");
    g_assert_cmpint(t->budget_pusd, ==, 5000000000000);
    g_assert_cmpint(t->requests, ==, 2);
    g_assert_cmpint(t->cost_pusd, ==, 123456789012);
    g_assert_cmpint(t->unpriced, ==, 1);

    g_autoptr(GPtrArray) newest = lw_ledger_list_runs(l, 1, &error);
    g_assert_cmpuint(newest->len, ==, 1);

    /* A known exit status is final; an unknown one (its llmwrap went away)
     * takes the later end. */
    g_assert_false(lw_ledger_run_end(l, id1, BASE_MS + 99000, -1, &error));
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_true(lw_ledger_run_end(l, id2, BASE_MS + 1000, -1, &error));
    g_assert_true(lw_ledger_run_end(l, id2, BASE_MS + 2000, 0, &error));
    g_assert_no_error(error);
    g_autoptr(GPtrArray) ended = lw_ledger_list_runs(l, -1, &error);
    t = g_ptr_array_index(ended, 1);
    g_assert_cmpint(t->ended_ms, ==, BASE_MS + 61000);
    g_assert_cmpint(t->exit_status, ==, 3);
    n = g_ptr_array_index(ended, 0);
    g_assert_cmpint(n->ended_ms, ==, BASE_MS + 2000);
    g_assert_cmpint(n->exit_status, ==, 0);
    lw_ledger_close(l);
}

/* ---- durability ---- */

static void crash_child(const char *path, int wfd)
{
    GError *error = NULL;
    LwLedger *l = lw_ledger_open(path, FALSE, &error);
    if (l == NULL)
        _exit(2);
    for (guint32 k = 1; k <= 100000; k++) {
        LwLedgerRequest r = fixture_full_row();
        r.pid = k;
        r.time_ms = BASE_MS + k;
        if (lw_ledger_insert(l, &r, &error) == 0)
            _exit(3);
        if (write(wfd, &k, sizeof k) != sizeof k)
            _exit(4);
    }
    _exit(5);
}

static void test_crash(Fixture *f, gconstpointer data)
{
    const guint32 kill_after[] = {1, 7, 64, 300};
    gint64 seen_before = 0;
    for (guint t = 0; t < G_N_ELEMENTS(kill_after); t++) {
        guint32 K = kill_after[t];
        int fds[2];
        g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
        pid_t pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(f->path, fds[1]);
        }
        close(fds[1]);
        /* The child keeps inserting; kill it the moment it reports row K
         * committed, wherever it is in row K + 1. */
        guint32 k = 0;
        while (k < K) {
            ssize_t n = read(fds[0], &k, sizeof k);
            g_assert_cmpint(n, ==, sizeof k);
        }
        kill(pid, SIGKILL);
        int status = 0;
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFSIGNALED(status));
        close(fds[0]);

        GError *error = NULL;
        LwLedger *l = lw_ledger_open(f->path, TRUE, &error);
        g_assert_no_error(error);
        /* pids 1..K of this round are all there, exactly once. */
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(lw_ledger_db(l),
                           "SELECT COUNT(DISTINCT pid), COUNT(*), MAX(pid) FROM requests "
                           "WHERE id > ?1 AND pid <= ?2",
                           -1, &st, NULL);
        sqlite3_bind_int64(st, 1, seen_before);
        sqlite3_bind_int64(st, 2, K);
        g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
        g_assert_cmpint(sqlite3_column_int64(st, 0), ==, K);
        g_assert_cmpint(sqlite3_column_int64(st, 1), ==, K);
        sqlite3_finalize(st);
        /* The rollups commit with the rows or not at all. */
        for (int dim = 0; dim < 3; dim++) {
            g_autofree char *sum = g_strdup_printf(
                "SELECT SUM(requests) FROM usage_hourly WHERE dim = %d", dim);
            g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM requests"), ==, sql_int(l, sum));
        }
        seen_before = sql_int(l, "SELECT MAX(id) FROM requests");
        lw_ledger_close(l);
    }
}

/* ---- usage sums ---- */

typedef struct {
    gint64 t;
    const char *provider, *model_req, *model_served, *tags;
    guint64 run;
    gint64 in, out, cost; /* cost < 0: unknown */
    gboolean partial;
} Spec;

/* Rows straddling hour and day boundaries, so every range below has
 * rollup hours and partial edge hours. */
static const Spec specs[] = {
    {BASE_MS - 1, "openai", "gpt-4o", "gpt-4o-2024-08-06", "{\"team\":\"a\"}", 1, 100, 10, 1000,
     FALSE},
    {BASE_MS, "openai", "gpt-4o", NULL, "{\"team\":\"a\"}", 1, 200, 20, 2000, FALSE},
    /* The same keys as the row above: one rollup entry sums both. */
    {BASE_MS + 10, "openai", "gpt-4o", NULL, "{\"team\":\"a\"}", 1, 250, 25, 2500, TRUE},
    {BASE_MS + 30 * 60000, "anthropic", "claude", "claude", "{\"team\":\"b\"}", 2, 300, 30, -1,
     TRUE},
    {BASE_MS + HOUR_MS - 1, "anthropic", "claude", NULL, NULL, 0, 400, 40, 4000, FALSE},
    {BASE_MS + HOUR_MS, "openai", "mystery", NULL, "{\"team\":\"b\",\"x\":1}", 2, 500, 50, -1,
     FALSE},
    {BASE_MS + 2 * HOUR_MS + 17, "gemini", "flash", NULL, "{\"other\":\"z\"}", 3, 600, 60, 6000,
     FALSE},
    {BASE_MS + 5 * HOUR_MS + 59 * 60000, "openai", "gpt-4o", NULL, "{\"team\":\"a\"}", 3, 700,
     70, 7000, TRUE},
    {BASE_MS + DAY_MS + 1, "openai", "gpt-4o", "gpt-4o", "{\"team\":\"a\"}", 4, 800, 80, 8000,
     FALSE},
    {BASE_MS + 3 * DAY_MS + 7 * HOUR_MS, NULL, NULL, NULL, "not json", 4, 900, 90, 9000, FALSE},
};

static LwLedgerRequest spec_row(const Spec *s)
{
    return (LwLedgerRequest){.time_ms = s->t, .provider = s->provider,
                             .model_requested = s->model_req, .model_served = s->model_served,
                             .tags_json = s->tags, .run_id = s->run, .input_tokens = s->in,
                             .output_tokens = s->out, .cached_input_tokens = s->in / 10,
                             .cache_write_tokens = s->in / 5, .cache_write_1h_tokens = s->in / 20,
                             .reasoning_tokens = s->out / 2, .cost = {s->cost >= 0, s->cost},
                             .cost_source = s->cost >= 0 ? "price" : NULL,
                             .partial = s->partial, .status = 200, .ttft_ms = -1};
}

static void insert_specs(LwLedger *l)
{
    GError *error = NULL;
    for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
        LwLedgerRequest r = spec_row(&specs[i]);
        g_assert_cmpint(lw_ledger_insert(l, &r, &error), >, 0);
        g_assert_no_error(error);
    }
}

/* The way the spool applies rows: many in one transaction, whose rollups
 * are summed per key and written at commit. Before that, a transaction
 * that rolls back (its rollups must not reach a later commit), and inside
 * it a replayed id (not counted twice). */
static void insert_specs_batched(LwLedger *l)
{
    GError *error = NULL;
    g_assert_true(lw_ledger_begin(l, &error));
    for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
        LwLedgerRequest r = spec_row(&specs[i]);
        g_assert_true(lw_ledger_insert_row(l, 1000 + i, &r, &error));
    }
    lw_ledger_rollback(l);

    g_assert_true(lw_ledger_begin(l, &error));
    for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
        LwLedgerRequest r = spec_row(&specs[i]);
        g_assert_true(lw_ledger_insert_row(l, 1 + i, &r, &error));
        g_assert_true(lw_ledger_insert_row(l, 1 + i, &r, &error));
    }
    g_assert_true(lw_ledger_commit(l, &error));
    g_assert_no_error(error);
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM requests"), ==, G_N_ELEMENTS(specs));
}

/* The key a spec row falls under, computed independently of the ledger. */
static char *spec_key(const Spec *s, LwUsageGroup by, const char *tag)
{
    switch (by) {
    case LW_USAGE_BY_MODEL: {
        const char *m = s->model_served != NULL ? s->model_served : s->model_req;
        return g_strdup(m);
    }
    case LW_USAGE_BY_PROVIDER:
        return g_strdup(s->provider);
    case LW_USAGE_BY_RUN:
        return s->run != 0 ? g_strdup_printf("%" G_GUINT64_FORMAT, s->run) : NULL;
    case LW_USAGE_BY_DAY:
    case LW_USAGE_BY_HOUR: {
        g_autoptr(GDateTime) d = g_date_time_new_from_unix_utc(s->t / 1000);
        return g_date_time_format(d, by == LW_USAGE_BY_DAY ? "%Y-%m-%d" : "%Y-%m-%dT%H:00Z");
    }
    case LW_USAGE_BY_TAG: {
        if (s->tags == NULL || s->tags[0] != '{')
            return NULL;
        g_autofree char *needle = g_strdup_printf("\"%s\":", tag);
        const char *p = strstr(s->tags, needle);
        if (p == NULL)
            return NULL;
        p += strlen(needle);
        if (*p == '"')
            return g_strndup(p + 1, strchr(p + 1, '"') - (p + 1));
        return g_strndup(p, strcspn(p, ",}"));
    }
    }
    return NULL;
}

typedef struct {
    gint64 since, until;
} Range;

static const Range ranges[] = {
    {LW_LEDGER_NO_SINCE, LW_LEDGER_NO_UNTIL},
    {BASE_MS, LW_LEDGER_NO_UNTIL},                              /* on an hour boundary */
    {BASE_MS + 1, LW_LEDGER_NO_UNTIL},                          /* just after one */
    {LW_LEDGER_NO_SINCE, BASE_MS + HOUR_MS},                    /* until is exclusive */
    {BASE_MS + 30 * 60000, BASE_MS + 2 * HOUR_MS + 18},         /* partial hours both ends */
    {BASE_MS + 30 * 60000, BASE_MS + 30 * 60000 + 1},           /* inside one hour */
    {BASE_MS + 10 * 60000, BASE_MS + 20 * 60000},               /* nothing there */
    {BASE_MS - HOUR_MS + 1, BASE_MS + 6 * HOUR_MS - 1},
    {BASE_MS - 1, BASE_MS + HOUR_MS + 30 * 60000},              /* rows on both edges */
    {BASE_MS + 2 * DAY_MS, BASE_MS},                            /* empty range */
};

static void check_usage(LwLedger *l, LwUsageGroup by, const char *tag, const Range *rg)
{
    GError *error = NULL;
    LwUsageQuery q = {.by = by, .tag_key = tag, .since_ms = rg->since, .until_ms = rg->until};
    g_autoptr(LwUsageReport) rep = lw_ledger_usage(l, &q, &error);
    g_assert_no_error(error);

    g_autoptr(GHashTable) expect =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    gint64 total_req = 0, total_cost = 0, total_unpriced = 0;
    g_autoptr(GHashTable) unpriced_models = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
        const Spec *s = &specs[i];
        if (s->t < rg->since || s->t >= rg->until)
            continue;
        char *key = spec_key(s, by, tag);
        g_autofree char *k = g_strdup(key != NULL ? key : "(null)");
        g_free(key);
        LwUsageRow *e = g_hash_table_lookup(expect, k);
        if (e == NULL) {
            e = g_new0(LwUsageRow, 1);
            g_hash_table_insert(expect, g_strdup(k), e);
        }
        e->requests++;
        e->input_tokens += s->in;
        e->output_tokens += s->out;
        e->cached_input_tokens += s->in / 10;
        e->cache_write_tokens += s->in / 5;
        e->cache_write_1h_tokens += s->in / 20;
        e->reasoning_tokens += s->out / 2;
        e->cost_pusd += MAX(s->cost, 0);
        e->unpriced += s->cost < 0;
        e->partial += s->partial;
        total_req++;
        total_cost += MAX(s->cost, 0);
        total_unpriced += s->cost < 0;
        if (s->cost < 0)
            g_hash_table_add(unpriced_models,
                             (gpointer)(s->model_served != NULL ? s->model_served : s->model_req));
    }
    g_assert_cmpuint(rep->rows->len, ==, g_hash_table_size(expect));
    for (guint i = 0; i < rep->rows->len; i++) {
        const LwUsageRow *r = g_ptr_array_index(rep->rows, i);
        const LwUsageRow *e = g_hash_table_lookup(expect, r->key != NULL ? r->key : "(null)");
        g_assert_nonnull(e);
        g_assert_cmpint(r->requests, ==, e->requests);
        g_assert_cmpint(r->input_tokens, ==, e->input_tokens);
        g_assert_cmpint(r->output_tokens, ==, e->output_tokens);
        g_assert_cmpint(r->cached_input_tokens, ==, e->cached_input_tokens);
        g_assert_cmpint(r->cache_write_tokens, ==, e->cache_write_tokens);
        g_assert_cmpint(r->cache_write_1h_tokens, ==, e->cache_write_1h_tokens);
        g_assert_cmpint(r->reasoning_tokens, ==, e->reasoning_tokens);
        g_assert_cmpint(r->cost_pusd, ==, e->cost_pusd);
        g_assert_cmpint(r->unpriced, ==, e->unpriced);
        g_assert_cmpint(r->partial, ==, e->partial);
    }
    g_assert_cmpint(rep->total.requests, ==, total_req);
    g_assert_cmpint(rep->total.cost_pusd, ==, total_cost);
    g_assert_cmpint(rep->total.unpriced, ==, total_unpriced);
    g_assert_cmpuint(rep->unpriced_models->len, ==, g_hash_table_size(unpriced_models));
    for (guint i = 0; i < rep->unpriced_models->len; i++)
        g_assert_true(g_hash_table_contains(unpriced_models,
                                            g_ptr_array_index(rep->unpriced_models, i)));
}

static void test_usage(Fixture *f, gconstpointer data)
{
    LwLedger *l = open_rw(f);
    if (data != NULL)
        insert_specs_batched(l);
    else
        insert_specs(l);
    const struct {
        LwUsageGroup by;
        const char *tag;
    } groups[] = {
        {LW_USAGE_BY_MODEL, NULL}, {LW_USAGE_BY_PROVIDER, NULL}, {LW_USAGE_BY_RUN, NULL},
        {LW_USAGE_BY_DAY, NULL},   {LW_USAGE_BY_HOUR, NULL},     {LW_USAGE_BY_TAG, "team"},
        {LW_USAGE_BY_TAG, "x"},    {LW_USAGE_BY_TAG, "absent"},
    };
    for (guint g = 0; g < G_N_ELEMENTS(groups); g++)
        for (guint r = 0; r < G_N_ELEMENTS(ranges); r++)
            check_usage(l, groups[g].by, groups[g].tag, &ranges[r]);
    lw_ledger_close(l);
}

static void test_usage_order(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *l = open_rw(f);
    insert_specs(l);
    LwUsageQuery q = {.by = LW_USAGE_BY_DAY, .since_ms = LW_LEDGER_NO_SINCE,
                      .until_ms = LW_LEDGER_NO_UNTIL};
    g_autoptr(LwUsageReport) days = lw_ledger_usage(l, &q, &error);
    g_assert_cmpuint(days->rows->len, ==, 4);
    const char *want[] = {"2026-11-20", "2026-11-21", "2026-11-22", "2026-11-24"};
    for (guint i = 0; i < 4; i++)
        g_assert_cmpstr(((LwUsageRow *)g_ptr_array_index(days->rows, i))->key, ==, want[i]);

    q.by = LW_USAGE_BY_MODEL;
    g_autoptr(LwUsageReport) models = lw_ledger_usage(l, &q, &error);
    for (guint i = 1; i < models->rows->len; i++) {
        const LwUsageRow *a = g_ptr_array_index(models->rows, i - 1);
        const LwUsageRow *b = g_ptr_array_index(models->rows, i);
        g_assert_cmpint(a->cost_pusd, >=, b->cost_pusd);
    }
    g_assert_cmpuint(models->unpriced_models->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(models->unpriced_models, 0), ==, "claude");
    g_assert_cmpstr(g_ptr_array_index(models->unpriced_models, 1), ==, "mystery");

    q.by = LW_USAGE_BY_TAG;
    q.tag_key = "bad\"key";
    g_assert_null(lw_ledger_usage(l, &q, &error));
    g_assert_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_INVALID);
    g_clear_error(&error);
    lw_ledger_close(l);
}

static void test_group_parse(void)
{
    LwUsageGroup by;
    const char *tag = NULL;
    g_assert_true(lw_usage_group_parse("day", &by, &tag));
    g_assert_cmpint(by, ==, LW_USAGE_BY_DAY);
    g_assert_true(lw_usage_group_parse("tag:team", &by, &tag));
    g_assert_cmpint(by, ==, LW_USAGE_BY_TAG);
    g_assert_cmpstr(tag, ==, "team");
    g_assert_false(lw_usage_group_parse("tag:", &by, &tag));
    g_assert_false(lw_usage_group_parse("models", &by, &tag));
    g_assert_false(lw_usage_group_parse("", &by, &tag));
}

/* ---- request filters ---- */

static guint count_matching(LwLedger *l, const LwRequestFilter *filter)
{
    g_autoptr(GPtrArray) rows = list_requests(l, filter);
    for (guint i = 1; i < rows->len; i++) {
        const LwRequestRecord *a = g_ptr_array_index(rows, i - 1);
        const LwRequestRecord *b = g_ptr_array_index(rows, i);
        g_assert_cmpint(a->row.time_ms, >=, b->row.time_ms);
    }
    return rows->len;
}

static void test_request_filters(Fixture *f, gconstpointer data)
{
    LwLedger *l = open_rw(f);
    insert_specs(l);
    LwRequestFilter flt;
    lw_request_filter_init(&flt);
    g_assert_cmpuint(count_matching(l, &flt), ==, G_N_ELEMENTS(specs));
    flt.limit = 3;
    g_assert_cmpuint(count_matching(l, &flt), ==, 3);
    flt.limit = 0;
    g_assert_cmpuint(count_matching(l, &flt), ==, 0);

    lw_request_filter_init(&flt);
    flt.since_ms = BASE_MS;
    flt.until_ms = BASE_MS + HOUR_MS;
    g_assert_cmpuint(count_matching(l, &flt), ==, 4);

    lw_request_filter_init(&flt);
    flt.run_id = 0;
    g_assert_cmpuint(count_matching(l, &flt), ==, 1);
    flt.run_id = 2;
    g_assert_cmpuint(count_matching(l, &flt), ==, 2);

    lw_request_filter_init(&flt);
    flt.provider = "openai";
    g_assert_cmpuint(count_matching(l, &flt), ==, 6);
    flt.model = "gpt-4o"; /* requested or served */
    g_assert_cmpuint(count_matching(l, &flt), ==, 5);
    flt.model = "gpt-4o-2024-08-06";
    g_assert_cmpuint(count_matching(l, &flt), ==, 1);

    lw_request_filter_init(&flt);
    flt.tag_key = "team";
    flt.tag_value = "a";
    g_assert_cmpuint(count_matching(l, &flt), ==, 5);
    flt.tag_value = NULL;
    g_assert_cmpuint(count_matching(l, &flt), ==, 7);
    flt.tag_key = "x";
    flt.tag_value = "1";
    g_assert_cmpuint(count_matching(l, &flt), ==, 1);

    lw_request_filter_init(&flt);
    flt.partial = 1;
    g_assert_cmpuint(count_matching(l, &flt), ==, 3);
    flt.partial = 0;
    g_assert_cmpuint(count_matching(l, &flt), ==, G_N_ELEMENTS(specs) - 3);

    lw_request_filter_init(&flt);
    flt.status_min = 400;
    flt.status_max = 599;
    g_assert_cmpuint(count_matching(l, &flt), ==, 0);
    flt.status_min = 200;
    flt.status_max = 200;
    g_assert_cmpuint(count_matching(l, &flt), ==, G_N_ELEMENTS(specs));
    lw_ledger_close(l);
}

/* ---- reprice ---- */

/* Asserts that every rollup row holds exactly the sums of the request rows
 * of its hour and keys, in every dimension: the rows counted, their cost
 * and how many have none. */
static void assert_rollups_match_rows(LwLedger *l)
{
#define SUMS "COUNT(*), COALESCE(SUM(cost_pusd), 0), SUM(cost_pusd IS NULL)"
    const char *sql =
        "WITH expect AS ("
        " SELECT time_ms / 3600000, " LW_LEDGER_DIM_MODEL ", COALESCE(provider, ''), "
        LW_LEDGER_MODEL_SQL ", " SUMS " FROM requests GROUP BY 1, 3, 4"
        " UNION ALL SELECT time_ms / 3600000, " LW_LEDGER_DIM_TAGS ", COALESCE(tags, ''), '', "
        SUMS " FROM requests GROUP BY 1, 3"
        " UNION ALL SELECT time_ms / 3600000, " LW_LEDGER_DIM_RUN ", COALESCE(run_id, 0), '', "
        SUMS " FROM requests GROUP BY 1, 3),"
        " have AS (SELECT hour, dim, k1, k2, requests, cost_pusd, unpriced FROM usage_hourly)"
        " SELECT (SELECT COUNT(*) FROM (SELECT * FROM expect EXCEPT SELECT * FROM have))"
        " + (SELECT COUNT(*) FROM (SELECT * FROM have EXCEPT SELECT * FROM expect))";
#undef SUMS
    g_assert_cmpint(sql_int(l, sql), ==, 0);
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM usage_hourly"), >, 0);
}

/* A price table with two OpenAI models, in the fixture's directory. */
static LwPricing *reprice_table(Fixture *f)
{
    GError *error = NULL;
    g_autofree char *prices = g_build_filename(f->dir, "prices.json", NULL);
    const char *table =
        "{\"version\": \"2026-01-01\", \"source\": \"test\", \"unit\": \"USD per 1M tokens\","
        " \"providers\": {\"openai\": {\"gpt-4o\": {\"input\": 2.5, \"output\": 10},"
        " \"mystery\": {\"input\": 1, \"output\": 2}}}}";
    g_assert_true(g_file_set_contents(prices, table, -1, &error));
    LwPricing *pricing = lw_pricing_load(prices, NULL, &error);
    g_assert_no_error(error);
    return pricing;
}

static void test_reprice(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwPricing *pricing = reprice_table(f);

    LwLedger *l = open_rw(f);
    insert_specs(l);
    /* A provider-reported cost and a cache hit are never repriced. */
    LwLedgerRequest kept = {.time_ms = BASE_MS + 5, .provider = "openai",
                            .model_requested = "gpt-4o", .input_tokens = 1000000,
                            .cost = {TRUE, 42}, .cost_source = "provider", .ttft_ms = -1};
    lw_ledger_insert(l, &kept, &error);
    LwLedgerRequest hit = kept;
    hit.cost_source = NULL;
    hit.cost.pusd = 0;
    hit.cache_hit = TRUE;
    lw_ledger_insert(l, &hit, &error);
    g_assert_no_error(error);

    LwRepriceResult res;
    g_assert_true(lw_ledger_reprice(l, pricing, BASE_MS, NULL, NULL, &res, &error));
    g_assert_no_error(error);
    /* From BASE_MS: specs 1..9 plus kept and hit; kept and hit skipped. */
    g_assert_cmpint(res.examined, ==, 9);
    /* Priced rows cost what the price table says; rows of models it does
     * not list lose their cost rather than keep a stale one. */
    g_autoptr(GPtrArray) rows = list_requests(l, NULL);
    for (guint i = 0; i < rows->len; i++) {
        const LwRequestRecord *r = g_ptr_array_index(rows, i);
        const LwLedgerRequest *q = &r->row;
        const LwPrice *price = lw_pricing_lookup(
            pricing, q->provider, q->model_served != NULL ? q->model_served : q->model_requested);
        LwTokens tokens = {q->input_tokens,  q->cached_input_tokens, q->cache_write_tokens,
                           q->cache_write_1h_tokens, q->output_tokens, q->reasoning_tokens};
        if (g_strcmp0(q->cost_source, "provider") == 0) {
            g_assert_cmpint(q->cost.pusd, ==, 42);
        } else if (q->cache_hit) {
            g_assert_cmpint(q->cost.pusd, ==, 0);
        } else if (q->time_ms < BASE_MS) {
            g_assert_cmpint(q->cost.pusd, ==, 1000); /* before since: untouched */
        } else if (price != NULL) {
            g_assert_true(q->cost.known);
            g_assert_cmpint(q->cost.pusd, ==, lw_pricing_cost(price, &tokens));
            g_assert_cmpint(q->cost.pusd, >, 0);
            g_assert_cmpstr(q->cost_source, ==, "price");
        } else {
            g_assert_false(q->cost.known);
            g_assert_null(q->cost_source);
        }
    }
    assert_rollups_match_rows(l);
    gint64 before_sum = 2000 + 2500 + 4000 + 6000 + 7000 + 8000 + 9000;
    g_autofree char *after_sql = g_strdup_printf(
        "SELECT SUM(cost_pusd) FROM requests WHERE time_ms >= %" G_GINT64_FORMAT
        " AND cost_source IS NOT 'provider'",
        BASE_MS);
    gint64 after_sum = sql_int(l, after_sql);
    g_assert_cmpint(res.delta_pusd, ==, after_sum - before_sum);
    /* All but the claude row that had no cost and still has none. */
    g_assert_cmpint(res.changed, ==, 8);
    g_assert_cmpint(res.now_unpriced, ==, 4);

    /* Again: nothing left to change. */
    g_assert_true(lw_ledger_reprice(l, pricing, LW_LEDGER_NO_SINCE, NULL, NULL, &res, &error));
    g_assert_cmpint(res.examined, ==, 10);
    g_assert_cmpint(res.changed, ==, 1); /* the row before BASE_MS */
    g_assert_true(lw_ledger_reprice(l, pricing, LW_LEDGER_NO_SINCE, NULL, NULL, &res, &error));
    g_assert_cmpint(res.changed, ==, 0);
    g_assert_cmpint(res.delta_pusd, ==, 0);
    lw_ledger_close(l);
    lw_pricing_free(pricing);
}

/* What the price table makes of `r`, as reprice computes it. */
static LwCost priced(const LwPricing *pricing, const LwLedgerRequest *r)
{
    const LwPrice *price = lw_pricing_lookup(
        pricing, r->provider, r->model_served != NULL ? r->model_served : r->model_requested);
    LwTokens tokens = {.input_tokens = r->input_tokens, .output_tokens = r->output_tokens};
    return (LwCost){price != NULL, price != NULL ? lw_pricing_cost(price, &tokens) : 0};
}

typedef struct {
    LwLedger *other; /* a second writer, as the collector is to llmctl */
    const LwPricing *pricing;
    guint chunks;
    gint64 examined;
} RepriceWatch;

static void on_reprice_chunk(const LwRepriceResult *so_far, void *data)
{
    RepriceWatch *w = data;
    GError *error = NULL;
    w->chunks++;
    g_assert_cmpint(so_far->examined, >, w->examined);
    w->examined = so_far->examined;
    /* Each chunk is committed, rows and rollups together... */
    assert_rollups_match_rows(w->other);
    /* ...and the write lock is free: another connection writes at once.
     * (Were it still held, by this very thread, the insert would wait
     * out the busy timeout and fail.) Its row is priced already. */
    LwLedgerRequest r = {.time_ms = BASE_MS + 2 * HOUR_MS, .provider = "openai",
                         .model_requested = "gpt-4o", .input_tokens = 1000,
                         .cost_source = "price", .status = 200, .ttft_ms = -1};
    r.cost = priced(w->pricing, &r);
    g_assert_cmpint(lw_ledger_insert(w->other, &r, &error), >, 0);
    g_assert_no_error(error);
}

/* A reprice of more rows than one chunk holds (llmctl reprice of a large
 * ledger beside a running collector): it commits chunk by chunk, lets
 * another writer in between chunks, and ends with the same costs and
 * rollups as one big transaction would. */
/* A row whose served model the table does not list (a dated snapshot) is
 * priced as the model it was requested as, as the collector prices it. */
static void test_reprice_served_unlisted(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwPricing *pricing = reprice_table(f);
    LwLedger *l = open_rw(f);
    LwLedgerRequest r = {.time_ms = BASE_MS, .provider = "openai", .model_requested = "gpt-4o",
                         .model_served = "gpt-4o-2099-01-01", .input_tokens = 1000,
                         .output_tokens = 100, .cost = {TRUE, 1}, .cost_source = "price",
                         .ttft_ms = -1};
    lw_ledger_insert(l, &r, &error);
    g_assert_no_error(error);
    LwRepriceResult res;
    g_assert_true(lw_ledger_reprice(l, pricing, LW_LEDGER_NO_SINCE, NULL, NULL, &res, &error));
    g_assert_no_error(error);
    g_assert_cmpint(res.changed, ==, 1);
    g_assert_cmpint(res.now_unpriced, ==, 0);
    /* gpt-4o: 2.50 in, 10.00 out */
    g_assert_cmpint(sql_int(l, "SELECT cost_pusd FROM requests"), ==,
                    G_GINT64_CONSTANT(1000) * 2500000 + 100 * 10000000);
    lw_ledger_close(l);
    lw_pricing_free(pricing);
}

/* A row's price note follows its new price, and the rest of its warning
 * stays: dropped once the model is priced, added once it is not, and
 * "priced as" when a dated name is priced as the name sent. */
static void test_reprice_warning(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwPricing *pricing = reprice_table(f);
    LwLedger *l = open_rw(f);
    LwLedgerRequest now_priced = {.time_ms = BASE_MS,
                                  .provider = "openai",
                                  .model_requested = "mystery",
                                  .model_served = "mystery",
                                  .input_tokens = 1000,
                                  .output_tokens = 100,
                                  .warning = "no price for openai model mystery; billed at "
                                             "the flex tier",
                                  .ttft_ms = -1};
    LwLedgerRequest now_unpriced = {.time_ms = BASE_MS,
                                    .provider = "openai",
                                    .model_requested = "gone",
                                    .model_served = "gone",
                                    .input_tokens = 1000,
                                    .cost = {TRUE, 5},
                                    .cost_source = "price",
                                    .ttft_ms = -1};
    LwLedgerRequest priced_as = {.time_ms = BASE_MS,
                                 .provider = "openai",
                                 .model_requested = "gpt-4o",
                                 .model_served = "gpt-4o-2099-01-01",
                                 .input_tokens = 1000,
                                 .output_tokens = 100,
                                 .warning = "no price for openai model gpt-4o-2099-01-01",
                                 .ttft_ms = -1};
    g_assert_cmpint(lw_ledger_insert(l, &now_priced, &error), ==, 1);
    g_assert_cmpint(lw_ledger_insert(l, &now_unpriced, &error), ==, 2);
    g_assert_cmpint(lw_ledger_insert(l, &priced_as, &error), ==, 3);
    g_assert_no_error(error);
    LwRepriceResult res;
    g_assert_true(lw_ledger_reprice(l, pricing, LW_LEDGER_NO_SINCE, NULL, NULL, &res, &error));
    g_assert_no_error(error);
    g_assert_cmpint(res.changed, ==, 3);
    g_autoptr(GPtrArray) rows = list_requests(l, NULL);
    g_assert_cmpuint(rows->len, ==, 3);
    for (guint i = 0; i < rows->len; i++) {
        const LwLedgerRequest *r = &((const LwRequestRecord *)g_ptr_array_index(rows, i))->row;
        if (g_strcmp0(r->model_requested, "mystery") == 0) {
            g_assert_true(r->cost.known);
            g_assert_cmpstr(r->warning, ==, "billed at the flex tier");
        } else if (g_strcmp0(r->model_requested, "gone") == 0) {
            g_assert_false(r->cost.known);
            g_assert_cmpstr(r->warning, ==, "no price for openai model gone");
        } else {
            g_assert_true(r->cost.known);
            g_assert_cmpstr(r->warning, ==, "no price for gpt-4o-2099-01-01: priced as gpt-4o");
        }
    }
    lw_ledger_close(l);
    lw_pricing_free(pricing);
}

/* A request a budget downgraded is priced, and counted, as the model sent,
 * as the collector priced it: when no answer names a model (it never
 * came), and when the one named has no price of its own. What the program
 * asked for stays on the row. */
static void test_reprice_downgraded(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwPricing *pricing = reprice_table(f);
    LwLedger *l = open_rw(f);
    /* mystery: 1.00 in, 2.00 out (gpt-4o, asked for: 2.50 and 10.00) */
    const gint64 cost = 1000 * G_GINT64_CONSTANT(1000000) + 100 * 2000000;
    LwLedgerRequest unanswered = {.time_ms = BASE_MS, .provider = "openai",
                                  .model_requested = "gpt-4o", .model_sent = "mystery",
                                  .input_tokens = 1000, .output_tokens = 100,
                                  .cost = {TRUE, cost}, .cost_source = "price",
                                  .partial = TRUE, .ttft_ms = -1};
    LwLedgerRequest unlisted = unanswered;
    unlisted.model_served = "mystery-2099-01-01";
    unlisted.partial = FALSE;
    g_assert_cmpint(lw_ledger_insert(l, &unanswered, &error), ==, 1);
    g_assert_cmpint(lw_ledger_insert(l, &unlisted, &error), ==, 2);
    g_assert_no_error(error);
    LwRepriceResult res;
    g_assert_true(lw_ledger_reprice(l, pricing, LW_LEDGER_NO_SINCE, NULL, NULL, &res, &error));
    g_assert_no_error(error);
    g_assert_cmpint(res.examined, ==, 2);
    g_assert_cmpint(res.changed, ==, 0);
    g_assert_cmpint(sql_int(l, "SELECT SUM(cost_pusd) FROM requests"), ==, 2 * cost);

    LwUsageQuery q = {.by = LW_USAGE_BY_MODEL, .since_ms = LW_LEDGER_NO_SINCE,
                      .until_ms = LW_LEDGER_NO_UNTIL};
    g_autoptr(LwUsageReport) rep = lw_ledger_usage(l, &q, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(rep->rows->len, ==, 2);
    const char *keys[2];
    for (guint i = 0; i < 2; i++)
        keys[i] = ((const LwUsageRow *)g_ptr_array_index(rep->rows, i))->key;
    g_assert_true(g_strcmp0(keys[0], "mystery") == 0 || g_strcmp0(keys[1], "mystery") == 0);
    g_assert_true(g_strcmp0(keys[0], "mystery-2099-01-01") == 0 ||
                  g_strcmp0(keys[1], "mystery-2099-01-01") == 0);
    LwRequestFilter flt;
    lw_request_filter_init(&flt);
    flt.model = "mystery";
    g_autoptr(GPtrArray) sent = list_requests(l, &flt);
    g_assert_cmpuint(sent->len, ==, 2);
    g_assert_cmpstr(((LwRequestRecord *)g_ptr_array_index(sent, 0))->row.model_requested, ==,
                    "gpt-4o");
    lw_ledger_close(l);
    lw_pricing_free(pricing);
}

/* A call llmwrap cannot price keeps its unknown cost whatever the table
 * holds for its model (the collector left it unknown on purpose), and one
 * an older llmctl priced is set back to unknown. Usage tells such calls
 * apart from requests to a model without a price. */
static void test_reprice_unpriced_call(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwPricing *pricing = reprice_table(f);
    LwLedger *l = open_rw(f);
    LwLedgerRequest call = {.time_ms = BASE_MS, .provider = "openai",
                            .endpoint = LW_LEDGER_ENDPOINT_UNPRICED,
                            .unpriced_path = "/v1/batches", .model_requested = "gpt-4o",
                            .input_tokens = 100000, .status = 200, .partial = TRUE,
                            .ttft_ms = -1};
    g_assert_cmpint(lw_ledger_insert(l, &call, &error), ==, 1);
    LwLedgerRequest priced_call = call;
    priced_call.unpriced_path = "/v1/images/generations";
    priced_call.cost = (LwCost){TRUE, 250000000};
    priced_call.cost_source = "price";
    g_assert_cmpint(lw_ledger_insert(l, &priced_call, &error), ==, 2);
    LwLedgerRequest unknown_model = {.time_ms = BASE_MS, .provider = "openai",
                                     .endpoint = "chat", .model_requested = "nobody-prices-me",
                                     .input_tokens = 10, .status = 200, .ttft_ms = -1};
    g_assert_cmpint(lw_ledger_insert(l, &unknown_model, &error), ==, 3);
    g_assert_no_error(error);

    LwRepriceResult res;
    g_assert_true(lw_ledger_reprice(l, pricing, LW_LEDGER_NO_SINCE, NULL, NULL, &res, &error));
    g_assert_no_error(error);
    g_assert_cmpint(res.examined, ==, 2); /* the call priced before, the chat request */
    g_assert_cmpint(res.changed, ==, 1);
    g_assert_cmpint(res.now_unpriced, ==, 1);
    g_assert_cmpint(res.delta_pusd, ==, -250000000);
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM requests WHERE cost_pusd IS NULL "
                               "AND cost_source IS NULL"),
                    ==, 3);
    assert_rollups_match_rows(l);
    g_assert_true(lw_ledger_reprice(l, pricing, LW_LEDGER_NO_SINCE, NULL, NULL, &res, &error));
    g_assert_cmpint(res.changed, ==, 0);

    LwUsageQuery q = {.by = LW_USAGE_BY_MODEL, .since_ms = LW_LEDGER_NO_SINCE,
                      .until_ms = LW_LEDGER_NO_UNTIL};
    /* From the rollups (whole hours) and from the rows (a partial hour). */
    gint64 since[] = {LW_LEDGER_NO_SINCE, BASE_MS - 1};
    for (guint i = 0; i < G_N_ELEMENTS(since); i++) {
        q.since_ms = since[i];
        g_autoptr(LwUsageReport) rep = lw_ledger_usage(l, &q, &error);
        g_assert_no_error(error);
        g_assert_cmpint(rep->total.unpriced, ==, 3);
        g_assert_cmpint(rep->unpriced_calls, ==, 2);
        g_assert_cmpuint(rep->unpriced_models->len, ==, 1);
        g_assert_cmpstr(g_ptr_array_index(rep->unpriced_models, 0), ==, "nobody-prices-me");
        g_assert_cmpuint(rep->unpriced_paths->len, ==, 2);
        g_assert_cmpstr(g_ptr_array_index(rep->unpriced_paths, 0), ==, "/v1/batches");
        g_assert_cmpstr(g_ptr_array_index(rep->unpriced_paths, 1), ==, "/v1/images/generations");
    }
    lw_ledger_close(l);
    lw_pricing_free(pricing);
}

/* Version 3 keeps the path of a call llmwrap cannot price in its own
 * column; the rows of a version-2 ledger get it from their warning. */
static void test_migrate_unpriced_path(Fixture *f, gconstpointer data)
{
    LwLedger *l = open_rw(f);
    sqlite3 *db = lw_ledger_db(l);
    g_assert_cmpint(sqlite3_exec(db,
                                 "DROP INDEX requests_unpriced_calls;"
                                 "ALTER TABLE requests DROP COLUMN unpriced_path;"
                                 "ALTER TABLE requests DROP COLUMN model_sent;"
                                 "ALTER TABLE runs DROP COLUMN killed_ms;"
                                 "PRAGMA user_version = 2;",
                                 NULL, NULL, NULL),
                    ==, SQLITE_OK);
    const char *rows[][2] = {
        {"unpriced", "llmwrap cannot price POST /v1beta/models/gemini-2.5-flash:predict: cost "
                     "unknown; usage not read: gzip; tokens estimated"},
        {"unpriced", "something else"},
        {"chat", "llmwrap cannot price POST /v1/chat/completions: cost unknown"},
    };
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autofree char *sql = g_strdup_printf(
            "INSERT INTO requests (time_ms, endpoint, warning, stream, status, input_tokens, "
            "cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, "
            "reasoning_tokens, cache_hit, partial) VALUES (%u, '%s', '%s', 0, 200, 0, 0, 0, 0, "
            "0, 0, 0, 0)",
            i + 1, rows[i][0], rows[i][1]);
        g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
    }
    lw_ledger_close(l);

    l = open_rw(f);
    g_assert_cmpint(sql_int(l, "PRAGMA user_version"), ==, lw_ledger_schema_version());
    g_autoptr(GPtrArray) got = list_requests(l, NULL);
    g_assert_cmpuint(got->len, ==, 3);
    for (guint i = 0; i < got->len; i++) {
        const LwRequestRecord *r = g_ptr_array_index(got, i);
        g_assert_cmpstr(r->row.unpriced_path, ==,
                        r->row.time_ms == 1 ? "/v1beta/models/gemini-2.5-flash:predict" : NULL);
    }
    lw_ledger_close(l);
}

static void test_reprice_chunks(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwPricing *pricing = reprice_table(f);
    LwLedger *l = open_rw(f);
    static const char *const models[] = {"gpt-4o", "mystery", "no-such-model"};
    static const char *const tags[] = {NULL, "{\"team\":\"a\"}", "{\"team\":\"b\"}"};
    const gint64 rows = 4500, since = BASE_MS + HOUR_MS;
    gint64 expect_examined = 0, expect_changed = 0, expect_delta = 0;
    g_assert_true(lw_ledger_begin(l, &error));
    for (gint64 i = 1; i <= rows; i++) {
        LwLedgerRequest r = {
            /* 50 hours, not in id order (a row's id follows its end) */
            .time_ms = BASE_MS + (i * 7919 % 50) * HOUR_MS + i % 1000,
            .provider = "openai",
            .model_requested = models[i % 3],
            .tags_json = tags[i % 5 % 3],
            .run_id = (guint64)(i % 4),
            .input_tokens = 100 + i,
            .output_tokens = i % 300,
            .cost = {i % 7 != 0, i * 11},
            .status = 200,
            .ttft_ms = -1,
        };
        r.cost_source = r.cost.known ? "price" : NULL;
        /* Kept whatever the table says. */
        if (i % 13 == 0)
            r.cost_source = "provider";
        if (i % 17 == 0)
            r.cache_hit = TRUE;
        if (i % 19 == 0) { /* refused, or failed: nobody bills it */
            r.refused_by = i % 2 == 0 ? "budget ci" : NULL;
            r.status = i % 2 == 0 ? 429 : 500;
            r.cost = (LwCost){TRUE, 0};
            r.cost_source = NULL;
        }
        if (i % 23 == 0) /* a stream the budget ended: priced like the rest */
            r.refused_by = "budget ci";
        gboolean kept = g_strcmp0(r.cost_source, "provider") == 0 || r.cache_hit ||
                        (r.cost_source == NULL && r.cost.known);
        if (r.time_ms >= since && !kept) {
            LwCost now = priced(pricing, &r);
            expect_examined++;
            if (now.known != r.cost.known || (now.known && now.pusd != r.cost.pusd)) {
                expect_changed++;
                expect_delta += (now.known ? now.pusd : 0) - (r.cost.known ? r.cost.pusd : 0);
            }
        }
        g_assert_true(lw_ledger_insert_row(l, i, &r, &error));
    }
    g_assert_true(lw_ledger_commit(l, &error));
    g_assert_no_error(error);
    g_autofree char *before_sql = g_strdup_printf(
        "SELECT COALESCE(SUM(COALESCE(cost_pusd, -1)), 0) FROM requests WHERE time_ms < %" G_GINT64_FORMAT
        " OR cost_source = 'provider' OR cache_hit OR (cost_source IS NULL AND cost_pusd IS NOT "
        "NULL)",
        since);
    gint64 untouched = sql_int(l, before_sql);

    RepriceWatch w = {.pricing = pricing};
    w.other = lw_ledger_open(f->path, FALSE, &error);
    g_assert_no_error(error);
    LwRepriceResult res;
    g_assert_true(lw_ledger_reprice(l, pricing, since, on_reprice_chunk, &w, &res, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(w.chunks, >=, 2);
    /* The rows the other writer added were priced already. */
    g_assert_cmpint(res.examined, ==, expect_examined + w.chunks - 1);
    g_assert_cmpint(res.changed, ==, expect_changed);
    g_assert_cmpint(res.delta_pusd, ==, expect_delta);
    g_assert_cmpint(sql_int(l, before_sql), ==, untouched);
    assert_rollups_match_rows(l);
    /* Every repriced row costs what the table says. */
    g_autoptr(GPtrArray) all = list_requests(l, NULL);
    g_assert_cmpuint(all->len, ==, rows + w.chunks);
    for (guint i = 0; i < all->len; i++) {
        const LwLedgerRequest *q = &((const LwRequestRecord *)g_ptr_array_index(all, i))->row;
        if (q->time_ms < since || g_strcmp0(q->cost_source, "provider") == 0 || q->cache_hit ||
            (q->cost_source == NULL && q->cost.known))
            continue;
        LwCost now = priced(pricing, q);
        g_assert_cmpint(q->cost.known, ==, now.known);
        g_assert_cmpint(q->cost.pusd, ==, now.known ? now.pusd : 0);
    }
    lw_ledger_close(w.other);
    lw_ledger_close(l);
    lw_pricing_free(pricing);
}

/* Checkpoints run off the writer's path; a reader pinning an old snapshot
 * lets the WAL grow (no checkpoint can finish under it), and once it lets
 * go the WAL is checkpointed and cut back to the size limit. Readers see
 * consistent snapshots throughout. */
static void test_wal_bounded(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *l = open_rw(f);
    g_autofree char *wal = g_strconcat(f->path, "-wal", NULL);
    const gint64 limit = 16777216 + 64 * (4096 + 24); /* journal_size_limit, a commit's slack */
    LwLedgerRequest r = fixture_full_row();
    gint64 n = 0;
    struct stat st;
    for (; n < 1000; n++) {
        r.time_ms = BASE_MS + n;
        g_assert_cmpint(lw_ledger_insert(l, &r, &error), >, 0);
    }
    LwLedger *reader = lw_ledger_open(f->path, TRUE, &error);
    g_assert_no_error(error);
    sqlite3_exec(lw_ledger_db(reader), "BEGIN", NULL, NULL, NULL);
    g_assert_cmpint(sql_int(reader, "SELECT COUNT(*) FROM requests"), ==, n);
    /* 6000 commits of 4 frames: well past the 4000-frame inline cap. */
    for (; n < 7000; n++) {
        r.time_ms = BASE_MS + n;
        g_assert_cmpint(lw_ledger_insert(l, &r, &error), >, 0);
    }
    g_assert_cmpint(sql_int(reader, "SELECT COUNT(*) FROM requests"), ==, 1000);
    g_assert_cmpint(stat(wal, &st), ==, 0);
    g_assert_cmpint(st.st_size, >, limit);
    sqlite3_exec(lw_ledger_db(reader), "COMMIT", NULL, NULL, NULL);
    lw_ledger_close(reader);

    /* Bounded: the next checkpoints succeed and the WAL restarts small. */
    gboolean shrunk = FALSE;
    for (int k = 0; k < 20000 && !shrunk; k++, n++) {
        r.time_ms = BASE_MS + n;
        g_assert_cmpint(lw_ledger_insert(l, &r, &error), >, 0);
        shrunk = stat(wal, &st) == 0 && st.st_size <= limit;
    }
    g_assert_true(shrunk);
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM requests"), ==, n);
    lw_ledger_close(l);
    /* Closing the last connection folds the WAL into the database. */
    g_assert_true(stat(wal, &st) != 0 || st.st_size == 0);
    LwLedger *ro = lw_ledger_open(f->path, TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpint(sql_int(ro, "SELECT COUNT(*) FROM requests"), ==, n);
    sqlite3_stmt *check = NULL;
    sqlite3_prepare_v2(lw_ledger_db(ro), "PRAGMA integrity_check", -1, &check, NULL);
    g_assert_cmpint(sqlite3_step(check), ==, SQLITE_ROW);
    g_assert_cmpstr((const char *)sqlite3_column_text(check, 0), ==, "ok");
    sqlite3_finalize(check);
    lw_ledger_close(ro);
}

/* Checkpoints happen off the writer's thread: once the WAL passes the
 * helper's threshold (1000 frames) and well before the writer's own
 * inline cap (4000), the pages reach the database file while the writer
 * does nothing more. A helper that never checkpoints leaves the database
 * file as it was, and the writer then pays for the whole WAL inline. */
static void test_background_checkpoint(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *l = open_rw(f);
    LwLedgerRequest r = fixture_full_row();
    g_assert_cmpint(lw_ledger_insert(l, &r, &error), >, 0);
    struct stat st;
    g_assert_cmpint(stat(f->path, &st), ==, 0);
    gint64 before = st.st_size;
    /* 400 commits of about 4 frames: past 1000 frames, short of 4000. */
    for (int n = 1; n < 400; n++) {
        r.time_ms = BASE_MS + n;
        g_assert_cmpint(lw_ledger_insert(l, &r, &error), >, 0);
    }
    g_autofree char *wal = g_strconcat(f->path, "-wal", NULL);
    g_assert_cmpint(stat(wal, &st), ==, 0);
    g_assert_cmpint(st.st_size, >, 1000 * (4096 + 24));
    g_assert_cmpint(st.st_size, <, 4000 * (4096 + 24));
    gint64 after = before;
    for (int i = 0; i < 1000 && after < before + 200 * 1024; i++) {
        g_usleep(10000);
        g_assert_cmpint(stat(f->path, &st), ==, 0);
        after = st.st_size;
    }
    g_assert_cmpint(after, >=, before + 200 * 1024);
    g_assert_cmpint(sql_int(l, "SELECT COUNT(*) FROM requests"), ==, 400);
    lw_ledger_close(l);
}

/* A reader sees what a concurrent writer committed. */
static void test_concurrent_reader(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    LwLedger *w = open_rw(f);
    LwLedger *r = lw_ledger_open(f->path, TRUE, &error);
    g_assert_no_error(error);
    LwLedgerRequest row = fixture_full_row();
    for (int i = 1; i <= 5; i++) {
        lw_ledger_insert(w, &row, &error);
        g_assert_cmpint(sql_int(r, "SELECT COUNT(*) FROM requests"), ==, i);
    }
    lw_ledger_close(r);
    lw_ledger_close(w);
}

/* The other process of test_two_connections_keep_the_wal. */
static int open_and_close(const char *path)
{
    sqlite3 *db = NULL;
    int ok = sqlite3_open(path, &db) == SQLITE_OK &&
             sqlite3_exec(db, "SELECT COUNT(*) FROM requests", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--open-and-close") == 0)
        return open_and_close(argv[2]);
    g_test_init(&argc, &argv, NULL);
#define ADD(name, func) g_test_add("/ledger/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)
    ADD("create-reopen", test_create_reopen);
    ADD("migrate-empty-file", test_migrate_empty_file);
    ADD("refuse-newer", test_refuse_newer);
    ADD("readonly-missing", test_readonly_missing);
    ADD("file-mode", test_file_mode);
    ADD("two-connections-keep-the-wal", test_two_connections_keep_the_wal);
    ADD("roundtrip", test_roundtrip);
    ADD("credential-hash", test_credential_hash);
    ADD("runs", test_runs);
    ADD("run-loop-ends", test_run_loop_ends);
    ADD("crash", test_crash);
    ADD("usage", test_usage);
    g_test_add("/ledger/usage-batched", Fixture, "batched", fixture_setup, test_usage,
               fixture_teardown);
    ADD("usage-order", test_usage_order);
    ADD("request-filters", test_request_filters);
    ADD("reprice", test_reprice);
    ADD("reprice-chunks", test_reprice_chunks);
    ADD("reprice-served-unlisted", test_reprice_served_unlisted);
    ADD("reprice-unpriced-call", test_reprice_unpriced_call);
    ADD("reprice-downgraded", test_reprice_downgraded);
    ADD("reprice-warning", test_reprice_warning);
    ADD("migrate-unpriced-path", test_migrate_unpriced_path);
    ADD("concurrent-reader", test_concurrent_reader);
    ADD("background-checkpoint", test_background_checkpoint);
    ADD("wal-bounded", test_wal_bounded);
#undef ADD
    g_test_add_func("/ledger/group-parse", test_group_parse);
    return g_test_run();
}
