/* ledger.h - the spend ledger: one SQLite database (WAL) in the state
 * directory with a row per request and a row per llmwrap run.
 *
 * The collector is the only writer of request rows. It appends each row to
 * the spool (ledger-spool.h) before the last byte of that request's answer
 * goes to the client, so a request a client saw complete is recorded even
 * if the collector is killed right after; the spool's thread moves rows
 * into this database with lw_ledger_insert_row. llmctl opens the same file
 * to read (and to reprice, and to edit budgets), whether or not a collector
 * runs, after the spool has been applied; SQLite's locking and a busy
 * timeout keep the processes apart.
 *
 * Costs are integers in pico-USD (1e-12 USD): exact sums, no float drift.
 * Token counts follow the normalised "of which" convention:
 *   input_tokens            every input token the request consumed
 *     cached_input_tokens     of which read from the provider's cache
 *     cache_write_tokens      of which written to the cache (all TTLs)
 *       cache_write_1h_tokens   of which with the 1-hour TTL (the rest: 5-minute)
 *   output_tokens           every output token billed, reasoning included
 *     reasoning_tokens        of which reasoning/thinking
 * No secret is ever stored: credentials appear only as a salted hash.
 *
 * The schema is versioned (PRAGMA user_version) and migrated forward on
 * open; a database from a newer llmwrap is refused, never rewritten.
 *
 * Keep all SQL behind this interface, so a shared store (PostgreSQL) can
 * back it later.
 *
 * Thread-safety: an LwLedger is used by one thread at a time.
 */
#pragma once

#include <glib.h>

#define LW_LEDGER_ERROR (lw_ledger_error_quark())
GQuark lw_ledger_error_quark(void);

typedef enum {
    LW_LEDGER_ERROR_SQLITE,    /* SQLite failed; the message has its text */
    LW_LEDGER_ERROR_TOO_NEW,   /* written by a newer schema version */
    LW_LEDGER_ERROR_NOT_FOUND, /* no such run / budget */
    LW_LEDGER_ERROR_INVALID,   /* a malformed query argument */
    LW_LEDGER_ERROR_BUSY,      /* the spool is in use by another writer */
} LwLedgerError;

/* The endpoint of a call llmwrap cannot price (images, audio, batches,
 * ...: the collector's LW_ENDPOINT_UNPRICED). Its cost stays unknown
 * whatever the price table holds: such calls are not billed at the
 * table's token rates, and their tokens are only the collector's guess
 * from the body's size. */
#define LW_LEDGER_ENDPOINT_UNPRICED "unpriced"

/* A cost that may be unknown (unknown model, no price): known == FALSE. */
typedef struct {
    gboolean known;
    gint64 pusd;
} LwCost;

/* One finished (or cut) request. Strings are borrowed by lw_ledger_insert
 * and may be NULL. */
typedef struct {
    gint64 time_ms;        /* wall clock at request start, Unix ms */
    guint64 run_id;        /* 0 = not under llmwrap */
    guint32 pid;
    const char *exe;
    const char *tags_json; /* the run's tags, a JSON object; NULL = none */
    const char *provider;
    const char *host;
    const char *endpoint;  /* "chat", "responses", "messages", "generate", ...,
                            * LW_LEDGER_ENDPOINT_UNPRICED */
    const char *unpriced_path; /* of an "unpriced" call: its path, without the query */
    const char *model_requested; /* what the program asked for */
    const char *model_sent;      /* what the collector sent instead (a budget's
                                  * downgrade); NULL: model_requested */
    const char *model_served;    /* what the answer names */
    gboolean stream;
    int status;            /* HTTP status the client received */
    gint64 input_tokens;
    gint64 cached_input_tokens;
    gint64 cache_write_tokens;
    gint64 cache_write_1h_tokens;
    gint64 output_tokens;
    gint64 reasoning_tokens;
    LwCost cost;
    const char *cost_source; /* "price", "provider" (reported by the provider), NULL */
    gint64 latency_ms;
    gint64 ttft_ms;          /* time to first body byte, -1 unknown */
    gint64 bytes_in;         /* request body bytes */
    gint64 bytes_out;        /* response body bytes */
    gboolean cache_hit;
    gboolean partial;        /* cut short: tokens include an estimate */
    const char *upstream_request_id;
    const char *credential;  /* salted hash, never the secret */
    const char *raw_usage;   /* the provider's usage object as received (JSON) */
    const char *refused_by;  /* budget/guard that refused it, NULL if forwarded */
    const char *warning;     /* e.g. "no price for model X" */
} LwLedgerRequest;

typedef struct {
    guint64 parent_id;    /* 0 = top level */
    gint64 started_ms;
    char **argv;          /* NULL-terminated */
    const char *cwd;
    guint32 pid;
    const char *tags_json; /* JSON object, NULL = none */
    gint64 budget_pusd;   /* -1 = none */
} LwLedgerRun;

typedef struct _LwLedger LwLedger;

/* Opens (creating and migrating as needed) the ledger at `path`.
 * `readonly` opens without creating or migrating (llmctl queries); a
 * missing file is then LW_LEDGER_ERROR_NOT_FOUND. Transfer full. */
LwLedger *lw_ledger_open(const char *path, gboolean readonly, GError **error);
void lw_ledger_close(LwLedger *ledger);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwLedger, lw_ledger_close)

/* Schema version this build writes. */
int lw_ledger_schema_version(void);

/* Appends one request row and commits it (durable against a process crash
 * when this returns). Returns the row id, or 0 with error set. The
 * collector goes through the spool instead (lw_spool_append). */
gint64 lw_ledger_insert(LwLedger *ledger, const LwLedgerRequest *row, GError **error);

/* Records the start of a run; returns its id (> 0) or 0 with error set. */
guint64 lw_ledger_run_start(LwLedger *ledger, const LwLedgerRun *run, GError **error);

/* Records the end of a run; a negative exit_status is stored as unknown
 * (NULL). A run that ended with a known exit status keeps it: ending it
 * again is LW_LEDGER_ERROR_INVALID. One that ended unknown (its llmwrap
 * went away) takes the later end, which its llmwrap knows better. */
gboolean lw_ledger_run_end(LwLedger *ledger, guint64 run_id, gint64 ended_ms, int exit_status,
                           GError **error);

/* The salted hash that identifies a credential (a header value or a key=
 * query parameter) without storing it: 16 hex chars of HMAC-SHA256 with a
 * per-installation salt kept in the ledger directory (0600). Transfer full. */
char *lw_ledger_credential_hash(LwLedger *ledger, const char *secret, gsize len);

/* Direct access for query helpers living next to the ledger (ledger-query.c).
 * Not for other modules. */
struct sqlite3 *lw_ledger_db(LwLedger *ledger);
