/* server.h - the collector's shared state: what every module of one running
 * collector reaches through one pointer.
 *
 * There is exactly one LwServer per process, created by main.c. Fields are
 * read and written on the loop thread only.
 */
#pragma once

#include <glib.h>

#include "config.h"
#include "loop.h"
#include "paths.h"

typedef struct _LwTls LwTls;
typedef struct _LwUpstream LwUpstream;
typedef struct _LwAttrib LwAttrib;
typedef struct _LwIpcServer LwIpcServer;
typedef struct _LwListeners LwListeners;
typedef struct _LwConn LwConn;
typedef struct _LwLedger LwLedger;
typedef struct _LwSpool LwSpool;
typedef struct _LwPricing LwPricing;
typedef struct _LwRuns LwRuns;
typedef struct _LwBudgets LwBudgets;
typedef struct _LwGuards LwGuards;

/* Counters reported by `llmctl status`. Monotonic unless noted. */
typedef struct {
    guint64 connections_accepted;
    guint64 connections_active; /* gauge */
    guint64 connections_rejected;
    guint64 requests_total;
    guint64 requests_active; /* gauge */
    guint64 requests_bad;
    guint64 upstream_errors;
    guint64 bytes_in;
    guint64 bytes_out;
    guint64 ipc_bad_frames;
    guint64 refused;
} LwCounters;

typedef struct {
    LwLoop *loop;
    LwConfig *config; /* current configuration; SIGHUP replaces it */
    /* The provider table of the configuration the collector started with.
     * Its host set (and so the listeners and the CA) is fixed for the
     * process lifetime; SIGHUP updates upstreams and formats in place. */
    LwProviderTable *providers;
    LwPaths *paths;
    LwTls *tls;
    LwUpstream *upstream;
    LwAttrib *attrib;
    LwIpcServer *ipc;
    LwListeners *listeners;
    /* The spend ledger (one writer: this process). Request rows go to the
     * spool, which applies them off the loop; any other use of `ledger`
     * that reads request rows or writes sits between lw_spool_hold and
     * lw_spool_release (ledger-spool.h). */
    LwLedger *ledger;
    LwSpool *spool;
    LwPricing *pricing; /* prices + config overrides; SIGHUP reloads */
    LwRuns *runs;       /* llmwrap runs */
    LwBudgets *budgets; /* spend limits: reserve, then settle */
    LwGuards *guards;   /* runaway-program guards */
    LwCounters counters;
    GQueue conns;          /* LwConn*, for draining and shutdown */
    gboolean draining;     /* SIGTERM received: finish in-flight work, accept nothing new */
    guint64 drain_ends_us; /* draining: when what is left is closed (monotonic) */
    guint64 started_us;    /* monotonic start time */
    char *ca_root_file;    /* root certificate path clients trust */
    LwTimer trim_timer;    /* heap-trim.c: armed while requests come */
    guint64 trim_seen;     /* heap-trim.c: activity at the last check */
} LwServer;

/* Called when a connection closes; main.c uses it to finish a drain. */
void lw_server_conn_closed(LwServer *server);
