/* ledger.c - the spend ledger: schema, migrations, the request insert and
 * run bookkeeping.
 *
 * Durability: WAL with synchronous=NORMAL. A commit appends the
 * transaction's pages to the WAL with write(2) before COMMIT returns, so
 * the row survives the process being killed (kill -9, a crash) at any
 * later instant: the kernel holds the data. Only checkpoints fsync. FULL
 * would add an fsync of the WAL to every commit — milliseconds on real
 * disks against a 50 us budget per request — and buys durability only
 * against power loss or a kernel crash, where losing the last requests of
 * a metering ledger is acceptable.
 *
 * Rollups: `usage_hourly` holds per-hour sums by (provider, model), by
 * tag set and by run, the three dimensions `llmctl usage` groups by; each
 * dimension is keyed separately because a combined key multiplies (models
 * x tag sets x runs per hour) and stops compressing. A plain
 * GROUP BY over a million request rows takes seconds (measured: ~2.5 s by
 * model, ~0.45 s for a bare scan), far above the 200 ms target. The
 * rollups are updated in the same transaction as the insert, so they are
 * never out of step with the rows; reprice moves them with the costs it
 * changes, in the same transaction too.
 * bench/bench-ledger.c measures both sides.
 *
 * Checkpoints: SQLite's automatic checkpoint runs inside the COMMIT that
 * crosses the threshold and fsyncs there — milliseconds inside a commit
 * (the collector's loop commits too, for runs and alerts). A writer
 * instead hands checkpoints to a helper thread with its own connection
 * (started on first need), which runs PASSIVE checkpoints: they never
 * block the writer or readers. The WAL restarts only once a checkpoint
 * has caught up with the writer, which under steady writes may never
 * happen by itself, so above a cap the writer checkpoints inline; the
 * helper keeps chasing the writer meanwhile, so that inline checkpoint
 * finds only the last few milliseconds of frames to copy and sync.
 * Readers are never blocked, so one holding an old snapshot lets the WAL
 * grow until it lets go (SQLite cannot restart a WAL a reader still
 * uses); journal_size_limit then cuts the file back.
 * The LwLedger itself is still used by one thread at a time.
 *
 * Salt: the credential-hash salt is a meta row of the database itself, so
 * it has the database's permissions (0600) and travels with it; a cache
 * keyed by credential hash is then never valid for a different ledger.
 */
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "ledger-private.h"
#include "ledger-rollup.h"
#include "ledger-runs.h"

G_DEFINE_QUARK(lw-ledger-error-quark, lw_ledger_error)

#define SALT_LEN 32
#define HASH_HEX_LEN 16
/* Long enough for a checkpoint or a chunk of a reprice by another process
 * to finish, short enough that a stuck peer is reported rather than
 * waited on. A waiter looks for the lock every BUSY_POLL_US. */
#define BUSY_TIMEOUT_US 5000000
#define BUSY_POLL_US 1000
/* WAL frames between background checkpoints (SQLite's own default), and
 * the size at which the writer stops waiting for the helper (~16 MiB with
 * 4 KiB pages; an inline checkpoint of that size takes tens of ms). */
#define CHECKPOINT_FRAMES 1000
#define INLINE_CHECKPOINT_FRAMES 4000
/* The writer's page cache, in KiB as a negative cache_size: an insert
 * touches the last pages of a few B-trees, so SQLite's default (2 MiB,
 * filled after a few thousand requests) holds mostly pages it will not
 * touch again; that memory is the collector's when it is otherwise idle. */
#define WRITER_CACHE_KIB -256
/* Between the passes of a checkpoint that has not caught up yet. */
#define CHECKPOINT_PAUSE_US 100000
/* A reader holding an old snapshot keeps any checkpoint from finishing, so
 * the WAL can grow past the cap meanwhile; when it next restarts it is cut
 * back to this (about the cap, in bytes) rather than keep its peak size. */
#define WAL_SIZE_LIMIT 16777216

/* Schema steps, in order: step i takes user_version i to i + 1. Later
 * versions append steps; a step never changes once released. */
static const char *const schema_steps[] = {
    /* 1 */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES ('created', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));"

    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT," /* run ids travel in environments: never reused */
    "  parent_id INTEGER,"                    /* NULL = top level */
    "  started_ms INTEGER NOT NULL,"
    "  ended_ms INTEGER,"                     /* NULL while running */
    "  exit_status INTEGER,"
    "  argv TEXT NOT NULL,"                   /* JSON array of strings */
    "  cwd TEXT,"
    "  pid INTEGER,"
    "  tags TEXT,"                            /* JSON object, NULL = none */
    "  budget_pusd INTEGER"                   /* NULL = none */
    ");"
    "CREATE INDEX runs_parent ON runs(parent_id) WHERE parent_id IS NOT NULL;"

    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  run_id INTEGER,"                       /* NULL = not under llmwrap */
    "  pid INTEGER,"
    "  exe TEXT,"
    "  tags TEXT,"
    "  provider TEXT,"
    "  host TEXT,"
    "  endpoint TEXT,"
    "  model_requested TEXT,"
    "  model_served TEXT,"
    "  stream INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  input_tokens INTEGER NOT NULL,"
    "  cached_input_tokens INTEGER NOT NULL,"
    "  cache_write_tokens INTEGER NOT NULL,"
    "  cache_write_1h_tokens INTEGER NOT NULL,"
    "  output_tokens INTEGER NOT NULL,"
    "  reasoning_tokens INTEGER NOT NULL,"
    "  cost_pusd INTEGER,"                    /* NULL = unknown */
    "  cost_source TEXT,"
    "  latency_ms INTEGER,"
    "  ttft_ms INTEGER,"                      /* NULL = unknown */
    "  bytes_in INTEGER,"
    "  bytes_out INTEGER,"
    "  cache_hit INTEGER NOT NULL,"
    "  partial INTEGER NOT NULL,"
    "  upstream_request_id TEXT,"
    "  credential TEXT,"
    "  raw_usage TEXT,"
    "  refused_by TEXT,"
    "  warning TEXT"
    ");"
    /* Time: listings (newest first, --since/--until) and the rollups'
     * partial hours. Run: run summaries and budgets. Provider and model
     * filters ride on the time order; an index each would cost every
     * insert for a rarely selective filter. */
    "CREATE INDEX requests_time ON requests(time_ms);"
    "CREATE INDEX requests_run ON requests(run_id, cost_pusd) WHERE run_id IS NOT NULL;"

    /* The rollups of every dimension share one table, keyed hour first:
     * the rows one insert updates then sit together, usually on one page
     * (one WAL frame per commit instead of one per dimension). */
    "CREATE TABLE usage_hourly ("
    "  hour INTEGER NOT NULL,"                /* UTC hours since the epoch */
    "  dim INTEGER NOT NULL,"                 /* LW_LEDGER_DIM_* */
    "  k1 NOT NULL,"                          /* provider ('' none) | tags ('' none) | run (0 none) */
    "  k2 NOT NULL,"                          /* model: LW_LEDGER_MODEL_SQL | '' */
    "  requests INTEGER NOT NULL,"
    "  input_tokens INTEGER NOT NULL,"
    "  output_tokens INTEGER NOT NULL,"
    "  cached_input_tokens INTEGER NOT NULL,"
    "  cache_write_tokens INTEGER NOT NULL,"
    "  cache_write_1h_tokens INTEGER NOT NULL,"
    "  reasoning_tokens INTEGER NOT NULL,"
    "  cost_pusd INTEGER NOT NULL,"           /* sum of known costs */
    "  unpriced INTEGER NOT NULL,"            /* rows with unknown cost */
    "  partial INTEGER NOT NULL,"
    "  PRIMARY KEY (hour, dim, k1, k2)"
    ") WITHOUT ROWID;",

    /* 2: budgets and guards defined with llmctl (ledger-budgets.c). Text
     * columns hold the syntax of budget-def.h. Spend is not stored: it is
     * always summed from the request rows. */
    "CREATE TABLE budgets ("
    "  name TEXT PRIMARY KEY,"
    "  limit_pusd INTEGER NOT NULL,"
    "  period TEXT NOT NULL,"                 /* hour | day | month | run | request */
    "  scope TEXT NOT NULL,"                  /* global | provider | model | tag */
    "  scope_key TEXT,"                       /* provider, model or tag key */
    "  scope_value TEXT,"                     /* tag value */
    "  action TEXT NOT NULL,"                 /* block | warn | downgrade | clamp */
    "  action_model TEXT,"                    /* downgrade target */
    "  alerts TEXT NOT NULL DEFAULT '',"      /* percents: '50,80,95' */
    "  alert_command TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  reset_ms INTEGER NOT NULL DEFAULT 0"   /* spend before this does not count */
    ") WITHOUT ROWID;"
    "CREATE TABLE guards ("
    "  name TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"                   /* loop | rate | spend-rate | size | growth */
    "  threshold INTEGER NOT NULL,"
    "  window_ms INTEGER NOT NULL DEFAULT 0,"
    "  block INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    /* An alert fires once per budget, window (the run id for run budgets)
     * and threshold, across collector restarts. */
    "CREATE TABLE budget_alerts ("
    "  budget TEXT NOT NULL,"
    "  window_start_ms INTEGER NOT NULL,"
    "  threshold INTEGER NOT NULL,"
    "  fired_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (budget, window_start_ms, threshold)"
    ") WITHOUT ROWID;"
    /* Refused rows by time. Budget spend once took them out of the
     * rollups; it counts every row's cost now (a stream a budget ended was
     * charged), so nothing reads this. Kept because dropping it needs a
     * schema version, and only refused rows enter it: inserts of
     * forwarded requests do not pay for it. */
    "CREATE INDEX requests_refused ON requests(time_ms) WHERE refused_by IS NOT NULL;",

    /* 3: the path of a call llmwrap cannot price, which the listings name
     * (it was in the row's warning only, taken from there for older rows),
     * and those calls by time: they are few, and a usage report tells
     * them apart from requests to a model without a price. */
    "ALTER TABLE requests ADD COLUMN unpriced_path TEXT;"
    "CREATE INDEX requests_unpriced_calls ON requests(time_ms) "
    "  WHERE endpoint = '" LW_LEDGER_ENDPOINT_UNPRICED "';"
    "UPDATE requests SET unpriced_path = substr(warning, 27, "
    "    instr(warning, ': cost unknown') - 27) "
    "  WHERE endpoint = '" LW_LEDGER_ENDPOINT_UNPRICED "' "
    "  AND warning LIKE 'llmwrap cannot price POST %: cost unknown%';",

    /* 4: the model a budget's downgrade sent in place of the one requested,
     * which the row is priced (and counted) by when no answer names one.
     * Older rows did not keep it: a downgraded request that got no answer
     * stays under its requested model. */
    "ALTER TABLE requests ADD COLUMN model_sent TEXT;",

    /* 5: when `llmctl kill` stopped a run (NULL = never), so that a
     * collector that restarts (and the llmwrap restarting it) does not
     * serve the killed run, or the runs nested in it, again. */
    "ALTER TABLE runs ADD COLUMN killed_ms INTEGER;",
};

#define SUM_COLUMNS                                                                               \
    "requests, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, "            \
    "cache_write_1h_tokens, reasoning_tokens, cost_pusd, unpriced, partial"
#define SUM_UPDATES                                                                               \
    "requests = requests + excluded.requests, "                                                   \
    "input_tokens = input_tokens + excluded.input_tokens, "                                       \
    "output_tokens = output_tokens + excluded.output_tokens, "                                    \
    "cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens, "                  \
    "cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens, "                     \
    "cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens, "            \
    "reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, "                           \
    "cost_pusd = cost_pusd + excluded.cost_pusd, "                                                \
    "unpriced = unpriced + excluded.unpriced, "                                                   \
    "partial = partial + excluded.partial"

static const char insert_sql[] =
    "INSERT INTO requests (time_ms, run_id, pid, exe, tags, provider, host, endpoint, "
    "model_requested, model_served, stream, status, input_tokens, cached_input_tokens, "
    "cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, cost_pusd, "
    "cost_source, latency_ms, ttft_ms, bytes_in, bytes_out, cache_hit, partial, "
    "upstream_request_id, credential, raw_usage, refused_by, warning, id, unpriced_path, "
    "model_sent) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34) "
    "ON CONFLICT (id) DO NOTHING";

/* One statement updates every dimension with the sums of one key's rows
 * (ledger-rollup.h): ?1 hour, ?2 provider, ?3 model, ?4 tags, ?5 run, ?6..
 * the sums, ?15 the rows. The queries (ledger-query.c) expect these keys:
 * the model is LW_LEDGER_MODEL_SQL, a missing text key '', a missing run 0. */
#define ROW_SUM_VALUES "?15, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14"
static const char rollup_sql[] =
    "INSERT INTO usage_hourly (hour, dim, k1, k2, " SUM_COLUMNS ") VALUES "
    "(?1, " LW_LEDGER_DIM_MODEL ", ?2, ?3, " ROW_SUM_VALUES "), "
    "(?1, " LW_LEDGER_DIM_TAGS ", ?4, '', " ROW_SUM_VALUES "), "
    "(?1, " LW_LEDGER_DIM_RUN ", ?5, '', " ROW_SUM_VALUES ") "
    "ON CONFLICT (hour, dim, k1, k2) DO UPDATE SET " SUM_UPDATES;

typedef struct {
    GThread *thread;
    GMutex mutex;
    GCond cond;
    gboolean requested, stopping;
    char *path;
} Checkpointer;

/* Recent credentials and their hashes, in memory only: a program sends the
 * same key with every request, and an HMAC costs more than the lookup. */
#define CREDENTIAL_SLOTS 16
typedef struct {
    char *secret; /* NULL = empty */
    gsize len;
    char hash[HASH_HEX_LEN + 1];
} CredentialSlot;

/* How long a connection waits for another's lock (on_busy). */
typedef struct {
    gint64 since;
    gint64 limit_us; /* 0: BUSY_TIMEOUT_US */
} BusyWait;

struct _LwLedger {
    sqlite3 *db;
    gboolean readonly;
    char *path;
    Checkpointer *checkpointer; /* NULL until the first checkpoint is due */
    gboolean checkpointer_failed;
    int wal_mark;               /* WAL frames when the last checkpoint was asked for */
    gboolean have_salt;
    guint8 salt[SALT_LEN];
    EVP_MAC_CTX *hmac; /* keyed with the salt; NULL until the first hash */
    CredentialSlot credentials[CREDENTIAL_SLOTS];
    /* Cached statements, prepared on first use. */
    sqlite3_stmt *begin, *commit, *rollback;
    sqlite3_stmt *insert, *rollup;
    sqlite3_stmt *run_start, *run_end, *recost;
    BusyWait busy; /* for on_busy */
    /* Rollups of the rows inserted or repriced in the open transaction,
     * written at commit. */
    LwRollupBatch *rollups;
};

static void slot_clear(CredentialSlot *slot)
{
    if (slot->secret == NULL)
        return;
    OPENSSL_cleanse(slot->secret, slot->len);
    g_free(slot->secret);
    slot->secret = NULL;
}

gboolean lw_ledger_sqlite_error(GError **error, sqlite3 *db, const char *what)
{
    g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE, "%s: %s", what,
                db != NULL ? sqlite3_errmsg(db) : "out of memory");
    return FALSE;
}

sqlite3_stmt *lw_ledger_prepare(LwLedger *ledger, const char *sql, GError **error)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ledger->db, sql, -1, &st, NULL) != SQLITE_OK) {
        lw_ledger_sqlite_error(error, ledger->db, "ledger query");
        return NULL;
    }
    return st;
}

/* Returns the cached statement for `sql`, preparing it the first time. */
static sqlite3_stmt *cached(LwLedger *ledger, sqlite3_stmt **slot, const char *sql,
                            GError **error)
{
    if (*slot == NULL &&
        sqlite3_prepare_v3(ledger->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) !=
            SQLITE_OK) {
        lw_ledger_sqlite_error(error, ledger->db, "ledger statement");
        *slot = NULL;
        return NULL;
    }
    return *slot;
}

/* Runs a statement that returns no rows to completion and resets it. */
static gboolean step_done(LwLedger *ledger, sqlite3_stmt *st, const char *what, GError **error)
{
    int rc = sqlite3_step(st);
    gboolean ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
    if (!ok)
        lw_ledger_sqlite_error(error, ledger->db, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ok;
}

static gboolean exec(LwLedger *ledger, const char *sql, const char *what, GError **error)
{
    if (sqlite3_exec(ledger->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return lw_ledger_sqlite_error(error, ledger->db, what);
    return TRUE;
}

gboolean lw_ledger_begin(LwLedger *ledger, GError **error)
{
    lw_rollup_batch_clear(ledger->rollups);
    /* IMMEDIATE takes the write lock up front, so the busy timeout applies
     * instead of a deadlock error when a reader would upgrade. */
    sqlite3_stmt *st = cached(ledger, &ledger->begin, "BEGIN IMMEDIATE", error);
    return st != NULL && step_done(ledger, st, "begin", error);
}

static gboolean write_rollups(LwLedger *ledger, GError **error);

gboolean lw_ledger_commit(LwLedger *ledger, GError **error)
{
    if (!write_rollups(ledger, error))
        return FALSE;
    sqlite3_stmt *st = cached(ledger, &ledger->commit, "COMMIT", error);
    return st != NULL && step_done(ledger, st, "commit", error);
}

void lw_ledger_rollback(LwLedger *ledger)
{
    lw_rollup_batch_clear(ledger->rollups);
    if (sqlite3_get_autocommit(ledger->db))
        return;
    sqlite3_stmt *st = cached(ledger, &ledger->rollback, "ROLLBACK", NULL);
    if (st != NULL)
        step_done(ledger, st, "rollback", NULL);
}

static gboolean query_int(LwLedger *ledger, const char *sql, gint64 *ret, GError **error)
{
    sqlite3_stmt *st = lw_ledger_prepare(ledger, sql, error);
    if (st == NULL)
        return FALSE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(st, 0);
    else
        lw_ledger_sqlite_error(error, ledger->db, "ledger query");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW;
}

int lw_ledger_schema_version(void)
{
    return (int)G_N_ELEMENTS(schema_steps);
}

static gboolean check_version(gint64 version, const char *path, GError **error)
{
    if (version > lw_ledger_schema_version()) {
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_TOO_NEW,
                    "%s has schema version %" G_GINT64_FORMAT
                    " but this llmwrap knows only up to %d; use a newer llmwrap",
                    path, version, lw_ledger_schema_version());
        return FALSE;
    }
    return TRUE;
}

static gboolean migrate(LwLedger *ledger, const char *path, GError **error)
{
    gint64 version = 0;
    if (!query_int(ledger, "PRAGMA user_version", &version, error) ||
        !check_version(version, path, error))
        return FALSE;
    if (version == lw_ledger_schema_version())
        return TRUE;
    if (!lw_ledger_begin(ledger, error))
        return FALSE;
    /* Another process may have migrated while we waited for the lock. */
    if (!query_int(ledger, "PRAGMA user_version", &version, error) ||
        !check_version(version, path, error)) {
        lw_ledger_rollback(ledger);
        return FALSE;
    }
    for (gint64 v = version; v < lw_ledger_schema_version(); v++) {
        if (!exec(ledger, schema_steps[v], "schema migration", error)) {
            lw_ledger_rollback(ledger);
            return FALSE;
        }
    }
    g_autofree char *set =
        g_strdup_printf("PRAGMA user_version = %d", lw_ledger_schema_version());
    if (!exec(ledger, set, "schema migration", error) || !lw_ledger_commit(ledger, error)) {
        lw_ledger_rollback(ledger);
        return FALSE;
    }
    return TRUE;
}

static gboolean read_salt(LwLedger *ledger, GError **error)
{
    sqlite3_stmt *st =
        lw_ledger_prepare(ledger, "SELECT value FROM meta WHERE key = 'salt'", error);
    if (st == NULL)
        return FALSE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(st, 0);
        if (hex != NULL && strlen(hex) == 2 * SALT_LEN) {
            gboolean ok = TRUE;
            for (int i = 0; i < SALT_LEN && ok; i++) {
                int hi = g_ascii_xdigit_value(hex[2 * i]);
                int lo = g_ascii_xdigit_value(hex[2 * i + 1]);
                ok = hi >= 0 && lo >= 0;
                ledger->salt[i] = (guint8)(hi << 4 | lo);
            }
            ledger->have_salt = ok;
        }
    } else if (rc != SQLITE_DONE) {
        lw_ledger_sqlite_error(error, ledger->db, "reading the salt");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

static gboolean ensure_salt(LwLedger *ledger, GError **error)
{
    if (!read_salt(ledger, error))
        return FALSE;
    if (ledger->have_salt)
        return TRUE;
    guint8 salt[SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1) {
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE,
                    "no random bytes for the credential salt");
        return FALSE;
    }
    char hex[2 * SALT_LEN + 1];
    for (int i = 0; i < SALT_LEN; i++)
        g_snprintf(hex + 2 * i, 3, "%02x", salt[i]);
    /* OR IGNORE: a concurrent opener may have won; everyone then reads the
     * winner's salt back. */
    sqlite3_stmt *st = lw_ledger_prepare(
        ledger, "INSERT OR IGNORE INTO meta(key, value) VALUES ('salt', ?1)", error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    OPENSSL_cleanse(salt, sizeof salt);
    if (rc != SQLITE_DONE)
        return lw_ledger_sqlite_error(error, ledger->db, "storing the salt");
    if (!read_salt(ledger, error))
        return FALSE;
    if (!ledger->have_salt) {
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE, "the ledger's salt is malformed");
        return FALSE;
    }
    return TRUE;
}

/* The busy handler of every connection. SQLite's own busy timeout sleeps
 * longer and longer between looks, up to 100 ms, so a waiter could miss
 * every gap that a writer working in chunks (ledger-reprice.c) leaves and
 * time out; this one looks every millisecond. */
static int on_busy(void *data, int count)
{
    BusyWait *w = data;
    gint64 now = g_get_monotonic_time();
    if (count == 0)
        w->since = now;
    if (now - w->since >= (w->limit_us > 0 ? w->limit_us : BUSY_TIMEOUT_US))
        return 0;
    g_usleep(BUSY_POLL_US);
    return 1;
}

void lw_ledger_set_busy_timeout(LwLedger *ledger, gint64 limit_us)
{
    ledger->busy.limit_us = limit_us;
}

/* Checkpoints while the writer keeps writing, then sleeps until asked
 * again. A pass copies the frames that were in the WAL when it began, and
 * under steady writes more arrive while it syncs, so it goes on (after a
 * short pause that lets a few milliseconds of frames gather for one sync)
 * until a pass finds the WAL as it left it: the writer has stopped, or a
 * reader pins an old snapshot. The writer's inline checkpoint at the cap
 * then finds only the last few milliseconds of frames left to copy. */
static gpointer checkpointer_main(gpointer data)
{
    Checkpointer *c = data;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        /* The writer's inline cap still bounds the WAL. */
        sqlite3_close(db);
        return NULL;
    }
    /* A connection learns that the database is in WAL mode when it first
     * reads it; until then a checkpoint is a silent no-op (log = -1). */
    BusyWait busy = {0};
    sqlite3_busy_handler(db, on_busy, &busy);
    /* A checkpoint copies pages through its own buffer, not the cache. */
    sqlite3_exec(db, "PRAGMA cache_size = -64", NULL, NULL, NULL);
    sqlite3_exec(db, "SELECT 1 FROM sqlite_schema LIMIT 1", NULL, NULL, NULL);
    int last_log = -1;
    g_mutex_lock(&c->mutex);
    for (;;) {
        while (!c->requested && !c->stopping)
            g_cond_wait(&c->cond, &c->mutex);
        if (c->stopping)
            break;
        c->requested = FALSE;
        g_mutex_unlock(&c->mutex);
        int log = -1, done = -1;
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        g_mutex_lock(&c->mutex);
        if (rc == SQLITE_OK && log > 0 && log != last_log) {
            /* No pause once the WAL is half-way to the writer's cap: at
             * thousands of commits a second it would get there first. */
            gint64 until = g_get_monotonic_time() + CHECKPOINT_PAUSE_US;
            while (log < INLINE_CHECKPOINT_FRAMES / 2 && !c->stopping &&
                   g_cond_wait_until(&c->cond, &c->mutex, until))
                ;
            c->requested = TRUE;
        }
        last_log = log;
    }
    g_mutex_unlock(&c->mutex);
    sqlite3_close(db);
    return NULL;
}

static void checkpointer_stop(Checkpointer *c)
{
    if (c == NULL)
        return;
    g_mutex_lock(&c->mutex);
    c->stopping = TRUE;
    g_cond_signal(&c->cond);
    g_mutex_unlock(&c->mutex);
    g_thread_join(c->thread);
    g_mutex_clear(&c->mutex);
    g_cond_clear(&c->cond);
    g_free(c->path);
    g_free(c);
}

/* FALSE when no helper thread can run (the caller checkpoints inline). */
static gboolean checkpointer_request(LwLedger *ledger)
{
    if (ledger->checkpointer == NULL && !ledger->checkpointer_failed) {
        Checkpointer *c = g_new0(Checkpointer, 1);
        g_mutex_init(&c->mutex);
        g_cond_init(&c->cond);
        c->path = g_strdup(ledger->path);
        c->thread = g_thread_try_new("lw-checkpoint", checkpointer_main, c, NULL);
        if (c->thread == NULL) {
            g_mutex_clear(&c->mutex);
            g_cond_clear(&c->cond);
            g_free(c->path);
            g_free(c);
            ledger->checkpointer_failed = TRUE;
        } else {
            ledger->checkpointer = c;
        }
    }
    Checkpointer *c = ledger->checkpointer;
    if (c == NULL)
        return FALSE;
    g_mutex_lock(&c->mutex);
    c->requested = TRUE;
    g_cond_signal(&c->cond);
    g_mutex_unlock(&c->mutex);
    return TRUE;
}

/* Runs in the writer after each commit, with the WAL's size in frames. */
static int on_wal_commit(void *data, sqlite3 *db, const char *schema, int frames)
{
    LwLedger *ledger = data;
    if (frames < ledger->wal_mark)
        ledger->wal_mark = 0; /* the WAL was restarted from its beginning */
    if (frames < INLINE_CHECKPOINT_FRAMES) {
        if (frames - ledger->wal_mark < CHECKPOINT_FRAMES)
            return SQLITE_OK;
        if (checkpointer_request(ledger)) {
            ledger->wal_mark = frames;
            return SQLITE_OK;
        }
    }
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    ledger->wal_mark = 0;
    return SQLITE_OK;
}

/* Creates the file 0600 before SQLite sees it: SQLite would create it with
 * its default mode, and gives the -wal and -shm files the mode of the
 * database file.
 *
 * An existing file is never open(2)ed here: closing any descriptor of a
 * file drops every POSIX lock the process holds on it, SQLite's own for
 * another connection of this process among them. Another process closing
 * its connection would then think itself the last user and delete the WAL
 * under the feet of this one, whose later commits nobody else sees. */
static gboolean create_private(const char *path, GError **error)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if ((st.st_mode & 077) != 0 && st.st_uid == geteuid())
            (void)chmod(path, 0600);
        return TRUE;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
        int e = errno;
        g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE, "cannot create %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    if (fd >= 0)
        close(fd); /* new and empty: no connection has it open */
    return TRUE;
}

LwLedger *lw_ledger_open(const char *path, gboolean readonly, GError **error)
{
    g_return_val_if_fail(path != NULL, NULL);
    if (readonly) {
        struct stat st;
        if (stat(path, &st) != 0) {
            int e = errno;
            g_set_error(error, LW_LEDGER_ERROR,
                        e == ENOENT ? LW_LEDGER_ERROR_NOT_FOUND : LW_LEDGER_ERROR_SQLITE,
                        "cannot open %s: %s", path, g_strerror(e));
            return NULL;
        }
    } else if (!create_private(path, error)) {
        return NULL;
    }

    g_autoptr(LwLedger) ledger = g_new0(LwLedger, 1);
    ledger->readonly = readonly;
    ledger->rollups = lw_rollup_batch_new();
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &ledger->db, flags, NULL) != SQLITE_OK) {
        g_autofree char *what = g_strdup_printf("cannot open %s", path);
        lw_ledger_sqlite_error(error, ledger->db, what);
        return NULL;
    }
    sqlite3_extended_result_codes(ledger->db, 1);
    sqlite3_busy_handler(ledger->db, on_busy, &ledger->busy);

    /* Before anything writes (even the journal mode): a newer ledger is
     * refused untouched. */
    gint64 version = 0;
    if (!query_int(ledger, "PRAGMA user_version", &version, error) ||
        !check_version(version, path, error))
        return NULL;
    if (readonly) {
        if (version == 0) {
            /* Created but never initialised: no data, same as no file. */
            g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND,
                        "%s is not initialised yet", path);
            return NULL;
        }
        if (version < lw_ledger_schema_version()) {
            g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_SQLITE,
                        "%s has the older schema version %" G_GINT64_FORMAT
                        "; it is upgraded when the collector next opens it",
                        path, version);
            return NULL;
        }
        if (!read_salt(ledger, error))
            return NULL;
        return g_steal_pointer(&ledger);
    }

    if (!exec(ledger, "PRAGMA journal_mode = WAL", "setting WAL mode", error) ||
        !exec(ledger, "PRAGMA synchronous = NORMAL", "setting synchronous", error) ||
        !exec(ledger, "PRAGMA cache_size = " G_STRINGIFY(WRITER_CACHE_KIB), "sizing the cache",
              error) ||
        !exec(ledger, "PRAGMA journal_size_limit = " G_STRINGIFY(WAL_SIZE_LIMIT),
              "setting the WAL size limit", error) ||
        !migrate(ledger, path, error) || !ensure_salt(ledger, error))
        return NULL;
    /* Replaces SQLite's automatic checkpoint (see the top of this file). */
    ledger->path = g_strdup(path);
    sqlite3_wal_hook(ledger->db, on_wal_commit, ledger);
    return g_steal_pointer(&ledger);
}

void lw_ledger_close(LwLedger *ledger)
{
    if (ledger == NULL)
        return;
    /* Before the writer closes: the last connection to close checkpoints
     * the whole WAL and removes it. */
    checkpointer_stop(ledger->checkpointer);
    sqlite3_stmt *stmts[] = {ledger->begin,  ledger->commit, ledger->rollback, ledger->insert,
                             ledger->rollup, ledger->run_start, ledger->run_end,
                             ledger->recost};
    for (guint i = 0; i < G_N_ELEMENTS(stmts); i++)
        sqlite3_finalize(stmts[i]);
    sqlite3_close_v2(ledger->db);
    OPENSSL_cleanse(ledger->salt, sizeof ledger->salt);
    EVP_MAC_CTX_free(ledger->hmac);
    for (guint i = 0; i < CREDENTIAL_SLOTS; i++)
        slot_clear(&ledger->credentials[i]);
    lw_rollup_batch_free(ledger->rollups);
    g_free(ledger->path);
    g_free(ledger);
}

struct sqlite3 *lw_ledger_db(LwLedger *ledger)
{
    return ledger->db;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

typedef struct {
    LwLedger *ledger;
    sqlite3_stmt *st;
    GError **error;
} RollupWrite;

/* Adds one entry's sums to its rows of usage_hourly (see rollup_sql). */
static gboolean write_rollup(const LwRollupEntry *e, void *data)
{
    RollupWrite *w = data;
    sqlite3_stmt *st = w->st;
    sqlite3_bind_int64(st, 1, e->hour);
    sqlite3_bind_text(st, 2, e->provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->tags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)e->run_id);
    const LwUsageRow *sum = &e->sums;
    sqlite3_bind_int64(st, 6, sum->input_tokens);
    sqlite3_bind_int64(st, 7, sum->output_tokens);
    sqlite3_bind_int64(st, 8, sum->cached_input_tokens);
    sqlite3_bind_int64(st, 9, sum->cache_write_tokens);
    sqlite3_bind_int64(st, 10, sum->cache_write_1h_tokens);
    sqlite3_bind_int64(st, 11, sum->reasoning_tokens);
    sqlite3_bind_int64(st, 12, sum->cost_pusd);
    sqlite3_bind_int64(st, 13, sum->unpriced);
    sqlite3_bind_int64(st, 14, sum->partial);
    sqlite3_bind_int64(st, 15, sum->requests);
    return step_done(w->ledger, st, "updating the hourly usage", w->error);
}

/* Writes the rollups of the rows inserted or repriced in this transaction. */
static gboolean write_rollups(LwLedger *ledger, GError **error)
{
    if (lw_rollup_batch_is_empty(ledger->rollups))
        return TRUE;
    RollupWrite w = {ledger, cached(ledger, &ledger->rollup, rollup_sql, error), error};
    if (w.st == NULL || !lw_rollup_batch_foreach(ledger->rollups, write_rollup, &w))
        return FALSE;
    lw_rollup_batch_clear(ledger->rollups);
    return TRUE;
}

/* Inserts `r` (with `id`, or the next free one when 0) in the current
 * transaction; its rollups are written at commit. Returns the row id; 0
 * with error set. */
static gint64 insert_row(LwLedger *ledger, gint64 id, const LwLedgerRequest *r, GError **error)
{
    sqlite3_stmt *ins = cached(ledger, &ledger->insert, insert_sql, error);
    if (ins == NULL)
        return 0;

    sqlite3_bind_int64(ins, 1, r->time_ms);
    if (r->run_id != 0)
        sqlite3_bind_int64(ins, 2, (sqlite3_int64)r->run_id);
    sqlite3_bind_int64(ins, 3, r->pid);
    bind_text(ins, 4, r->exe);
    bind_text(ins, 5, r->tags_json);
    bind_text(ins, 6, r->provider);
    bind_text(ins, 7, r->host);
    bind_text(ins, 8, r->endpoint);
    bind_text(ins, 9, r->model_requested);
    bind_text(ins, 10, r->model_served);
    sqlite3_bind_int(ins, 11, r->stream ? 1 : 0);
    sqlite3_bind_int(ins, 12, r->status);
    sqlite3_bind_int64(ins, 13, r->input_tokens);
    sqlite3_bind_int64(ins, 14, r->cached_input_tokens);
    sqlite3_bind_int64(ins, 15, r->cache_write_tokens);
    sqlite3_bind_int64(ins, 16, r->cache_write_1h_tokens);
    sqlite3_bind_int64(ins, 17, r->output_tokens);
    sqlite3_bind_int64(ins, 18, r->reasoning_tokens);
    if (r->cost.known)
        sqlite3_bind_int64(ins, 19, r->cost.pusd);
    bind_text(ins, 20, r->cost_source);
    sqlite3_bind_int64(ins, 21, r->latency_ms);
    if (r->ttft_ms >= 0)
        sqlite3_bind_int64(ins, 22, r->ttft_ms);
    sqlite3_bind_int64(ins, 23, r->bytes_in);
    sqlite3_bind_int64(ins, 24, r->bytes_out);
    sqlite3_bind_int(ins, 25, r->cache_hit ? 1 : 0);
    sqlite3_bind_int(ins, 26, r->partial ? 1 : 0);
    bind_text(ins, 27, r->upstream_request_id);
    bind_text(ins, 28, r->credential);
    bind_text(ins, 29, r->raw_usage);
    bind_text(ins, 30, r->refused_by);
    bind_text(ins, 31, r->warning);
    if (id > 0)
        sqlite3_bind_int64(ins, 32, id);
    bind_text(ins, 33, r->unpriced_path);
    bind_text(ins, 34, r->model_sent);
    if (!step_done(ledger, ins, "inserting a request", error))
        return 0;
    if (sqlite3_changes(ledger->db) == 0)
        return id; /* there already: its rollups counted it then */
    if (id <= 0)
        id = sqlite3_last_insert_rowid(ledger->db);

    lw_rollup_batch_add(ledger->rollups, r);
    return id;
}

gint64 lw_ledger_insert(LwLedger *ledger, const LwLedgerRequest *r, GError **error)
{
    g_return_val_if_fail(ledger != NULL && r != NULL, 0);
    if (!lw_ledger_begin(ledger, error))
        return 0;
    gint64 id = insert_row(ledger, 0, r, error);
    if (id == 0 || !lw_ledger_commit(ledger, error)) {
        lw_ledger_rollback(ledger);
        return 0;
    }
    return id;
}

gboolean lw_ledger_insert_row(LwLedger *ledger, gint64 id, const LwLedgerRequest *r,
                              GError **error)
{
    g_return_val_if_fail(ledger != NULL && r != NULL && id > 0, FALSE);
    return insert_row(ledger, id, r, error) != 0;
}

gboolean lw_ledger_max_request_id(LwLedger *ledger, gint64 *ret_id, GError **error)
{
    return query_int(ledger, "SELECT COALESCE(MAX(id), 0) FROM requests", ret_id, error);
}

gboolean lw_ledger_recost_row(LwLedger *ledger, gint64 id, const LwLedgerRequest *row,
                              LwCost old, GError **error)
{
    sqlite3_stmt *st = cached(ledger, &ledger->recost,
                              "UPDATE requests SET cost_pusd = ?2, cost_source = ?3, warning = ?4 "
                              "WHERE id = ?1",
                              error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 4, row->warning);
    if (row->cost.known) {
        sqlite3_bind_int64(st, 2, row->cost.pusd);
        sqlite3_bind_text(st, 3, "price", -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, 2);
        sqlite3_bind_null(st, 3);
    }
    if (!step_done(ledger, st, "repricing a row", error))
        return FALSE;
    if (sqlite3_changes(ledger->db) > 0)
        lw_rollup_batch_recost(ledger->rollups, row, old);
    return TRUE;
}

guint64 lw_ledger_run_start(LwLedger *ledger, const LwLedgerRun *run, GError **error)
{
    g_return_val_if_fail(ledger != NULL && run != NULL, 0);
    sqlite3_stmt *st = cached(ledger, &ledger->run_start,
                              "INSERT INTO runs (parent_id, started_ms, argv, cwd, pid, tags, "
                              "budget_pusd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                              error);
    if (st == NULL)
        return 0;
    g_autoptr(GString) argv = g_string_new("[");
    for (char **a = run->argv; a != NULL && *a != NULL; a++) {
        if (a != run->argv)
            g_string_append_c(argv, ',');
        lw_json_append_string(argv, *a, -1);
    }
    g_string_append_c(argv, ']');
    if (run->parent_id != 0)
        sqlite3_bind_int64(st, 1, (sqlite3_int64)run->parent_id);
    sqlite3_bind_int64(st, 2, run->started_ms);
    sqlite3_bind_text(st, 3, argv->str, (int)argv->len, SQLITE_STATIC);
    bind_text(st, 4, run->cwd);
    sqlite3_bind_int64(st, 5, run->pid);
    bind_text(st, 6, run->tags_json);
    if (run->budget_pusd >= 0)
        sqlite3_bind_int64(st, 7, run->budget_pusd);
    if (!step_done(ledger, st, "recording a run", error))
        return 0;
    return (guint64)sqlite3_last_insert_rowid(ledger->db);
}

gboolean lw_ledger_run_end(LwLedger *ledger, guint64 run_id, gint64 ended_ms, int exit_status,
                           GError **error)
{
    g_return_val_if_fail(ledger != NULL, FALSE);
    sqlite3_stmt *st = cached(ledger, &ledger->run_end,
                              "UPDATE runs SET ended_ms = ?2, exit_status = ?3 "
                              "WHERE id = ?1 AND exit_status IS NULL",
                              error);
    if (st == NULL)
        return FALSE;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)run_id);
    sqlite3_bind_int64(st, 2, ended_ms);
    if (exit_status >= 0)
        sqlite3_bind_int(st, 3, exit_status);
    else
        sqlite3_bind_null(st, 3);
    if (!step_done(ledger, st, "ending a run", error))
        return FALSE;
    if (sqlite3_changes(ledger->db) > 0)
        return TRUE;
    LwLedgerRunInfo info;
    if (!lw_ledger_run_get(ledger, run_id, &info, error))
        return FALSE;
    lw_ledger_run_info_clear(&info);
    g_set_error(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_INVALID,
                "run %" G_GUINT64_FORMAT " has already ended", run_id);
    return FALSE;
}

/* The HMAC keyed with the salt, made once: fetching the algorithms and
 * keying cost more than hashing one header (OpenSSL 3 looks them up on
 * every HMAC() call). Each hash works on a copy. */
static EVP_MAC_CTX *keyed_hmac(LwLedger *ledger)
{
    if (ledger->hmac != NULL)
        return ledger->hmac;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (ctx == NULL || !EVP_MAC_init(ctx, ledger->salt, SALT_LEN, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    ledger->hmac = ctx;
    return ctx;
}

static char *compute_hash(LwLedger *ledger, const char *secret, gsize len)
{
    EVP_MAC_CTX *keyed = keyed_hmac(ledger);
    EVP_MAC_CTX *ctx = keyed != NULL ? EVP_MAC_CTX_dup(keyed) : NULL;
    guint8 md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;
    gboolean ok = ctx != NULL && EVP_MAC_update(ctx, (const guint8 *)secret, len) &&
                  EVP_MAC_final(ctx, md, &md_len, sizeof md) && md_len >= HASH_HEX_LEN / 2;
    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return NULL;
    static const char digits[] = "0123456789abcdef";
    char *hex = g_malloc(HASH_HEX_LEN + 1);
    for (int i = 0; i < HASH_HEX_LEN / 2; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0xf];
    }
    hex[HASH_HEX_LEN] = '\0';
    OPENSSL_cleanse(md, sizeof md);
    return hex;
}

char *lw_ledger_credential_hash(LwLedger *ledger, const char *secret, gsize len)
{
    g_return_val_if_fail(ledger != NULL && secret != NULL, NULL);
    g_return_val_if_fail(ledger->have_salt, NULL);
    guint h = 5381;
    for (gsize i = 0; i < len; i++)
        h = h * 33 + (guchar)secret[i];
    CredentialSlot *slot = &ledger->credentials[h % CREDENTIAL_SLOTS];
    if (slot->secret != NULL && slot->len == len && memcmp(slot->secret, secret, len) == 0)
        return g_strdup(slot->hash);
    char *hex = compute_hash(ledger, secret, len);
    if (hex == NULL)
        return NULL;
    slot_clear(slot);
    slot->secret = g_memdup2(secret, len);
    slot->len = len;
    memcpy(slot->hash, hex, sizeof slot->hash);
    return hex;
}
