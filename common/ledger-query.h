/* ledger-query.h - what llmctl asks the ledger: usage sums grouped by one
 * key, and request and run listings (repricing: ledger-reprice.h).
 *
 * Times are Unix milliseconds, UTC. A range is [since_ms, until_ms):
 * since inclusive, until exclusive; LW_LEDGER_NO_SINCE / LW_LEDGER_NO_UNTIL
 * leave that side open.
 *
 * Usage sums read the hourly rollups the ledger keeps next to the request
 * rows (see ledger.c), plus the raw rows of the partial hours at the edges
 * of the range, so their cost grows with the number of hours times the
 * distinct keys per hour (provider and model, tag sets, runs), not with
 * the number of requests.
 *
 * Thread-safety: as for LwLedger (one thread at a time per ledger).
 */
#pragma once

#include <glib.h>

#include "ledger.h"

#define LW_LEDGER_NO_SINCE G_MININT64
#define LW_LEDGER_NO_UNTIL G_MAXINT64

/* ---- usage ---- */

typedef enum {
    LW_USAGE_BY_MODEL,    /* model served, else sent, else requested */
    LW_USAGE_BY_PROVIDER,
    LW_USAGE_BY_RUN,      /* run id; requests outside llmwrap have no key */
    LW_USAGE_BY_DAY,      /* UTC date "2026-11-21" */
    LW_USAGE_BY_HOUR,     /* UTC hour "2026-11-21T13:00Z" */
    LW_USAGE_BY_TAG,      /* the value of one tag; requests without it have no key */
} LwUsageGroup;

typedef struct {
    LwUsageGroup by;
    const char *tag_key; /* for LW_USAGE_BY_TAG: any string without '"' */
    gint64 since_ms;
    gint64 until_ms;
} LwUsageQuery;

typedef struct {
    char *key; /* NULL: the rows that have no value for the key */
    gint64 requests;
    gint64 input_tokens;
    gint64 output_tokens;
    gint64 cached_input_tokens;
    gint64 cache_write_tokens;
    gint64 cache_write_1h_tokens;
    gint64 reasoning_tokens;
    gint64 cost_pusd; /* sum of the known costs */
    gint64 unpriced;  /* requests whose cost is unknown */
    gint64 partial;   /* requests cut short */
} LwUsageRow;

typedef struct {
    /* LwUsageRow*. Order: by run id, day or hour ascending for those keys;
     * else by cost, then requests, descending, then key. */
    GPtrArray *rows;
    LwUsageRow total;          /* key NULL */
    /* Of total.unpriced: requests to a model without a price, and calls
     * llmwrap cannot price (LW_LEDGER_ENDPOINT_UNPRICED). */
    GPtrArray *unpriced_models; /* char*: the models of the first, distinct, sorted */
    gint64 unpriced_calls;      /* how many of the second */
    GPtrArray *unpriced_paths;  /* char*: their paths, distinct, sorted (none: unknown) */
} LwUsageReport;

/* Sums usage over the range, grouped by `query->by`. An unknown or
 * malformed `tag_key` is LW_LEDGER_ERROR_INVALID. Transfer full. */
LwUsageReport *lw_ledger_usage(LwLedger *ledger, const LwUsageQuery *query, GError **error);
void lw_usage_report_free(LwUsageReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwUsageReport, lw_usage_report_free)

/* Parses "model", "provider", "run", "day", "hour" or "tag:KEY" (KEY
 * borrowed from `s`, returned in *ret_tag_key). FALSE for anything else. */
gboolean lw_usage_group_parse(const char *s, LwUsageGroup *ret_by, const char **ret_tag_key);

/* ---- requests ---- */

typedef struct {
    gint64 since_ms;
    gint64 until_ms;
    gint64 run_id;         /* -1 any, 0 only requests outside llmwrap, else that run */
    const char *provider;  /* NULL any */
    const char *model;     /* NULL any; matches the served, sent or requested model */
    const char *tag_key;   /* NULL any; with tag_value: the tag has that value */
    const char *tag_value;
    int status_min;        /* status in [min, max]; 0 and 0 for any */
    int status_max;
    int partial;           /* -1 any, 0 complete only, 1 partial only */
    gint64 limit;          /* -1 none */
} LwRequestFilter;

/* The default filter: everything, no limit. */
void lw_request_filter_init(LwRequestFilter *filter);

/* One stored request. Strings are borrowed from the ledger and live only
 * until the callback returns; tags_json and raw_usage are normalised JSON
 * text (NULL if absent or not valid JSON). row.cost.known is FALSE when
 * the cost is unknown; row.ttft_ms is -1 when unknown. */
typedef struct {
    gint64 id;
    LwLedgerRequest row;
} LwRequestRecord;

/* Return FALSE to stop early. */
typedef gboolean (*LwRequestFunc)(const LwRequestRecord *record, gpointer user_data);

/* Calls `func` for each request matching `filter`, newest first (time,
 * then id, descending), streaming: nothing is collected. */
gboolean lw_ledger_foreach_request(LwLedger *ledger, const LwRequestFilter *filter,
                                   LwRequestFunc func, gpointer user_data, GError **error);

/* ---- runs ---- */

typedef struct {
    guint64 id;
    guint64 parent_id;   /* 0 = top level */
    gint64 started_ms;
    gint64 ended_ms;     /* -1 while running (or if llmwrap died) */
    gboolean has_exit_status;
    int exit_status;
    char **argv;         /* NULL-terminated, never NULL */
    char *cwd;
    guint32 pid;
    char *tags_json;     /* normalised JSON object, NULL = none */
    gint64 budget_pusd;  /* -1 = none */
    gint64 requests;     /* this run's own requests (not nested runs') */
    gint64 cost_pusd;    /* sum of their known costs */
    gint64 unpriced;
} LwRunRecord;

/* The newest `limit` runs (-1: all), newest first. Transfer full: a
 * GPtrArray of LwRunRecord* that frees its elements. */
GPtrArray *lw_ledger_list_runs(LwLedger *ledger, gint64 limit, GError **error);

