/* run-summary.h - what one llmwrap run spent, by provider and model.
 *
 * Filled from the ledger in the collector (ledger-runs.h) and carried to
 * llmwrap over IPC (lw_ipc_client_run_summary), so llmwrap itself never
 * opens the database: that keeps SQLite and libcrypto out of a wrapped
 * program's start-up.
 */
#pragma once

#include <glib.h>

typedef struct {
    char *provider;
    char *model; /* served, else requested */
    gint64 requests;
    gint64 input_tokens;
    gint64 cached_input_tokens;
    gint64 output_tokens;
    gint64 reasoning_tokens;
    gint64 cost_pusd; /* sum of known costs */
    gint64 unpriced;  /* requests whose cost is unknown */
} LwRunModelSpend;

typedef struct {
    GPtrArray *models;    /* LwRunModelSpend*, by cost descending */
    gint64 requests;
    gint64 cost_pusd;
    gint64 unpriced;
    gint64 partial;
    gint64 refused;
    GPtrArray *refused_by; /* char*: distinct budget/guard names that refused */
    GPtrArray *warnings;   /* char*: distinct warnings (unknown prices) */
} LwRunSummary;

/* Frees an LwRunModelSpend* (the models array's free function). */
void lw_run_model_spend_free(gpointer spend);
void lw_run_summary_clear(LwRunSummary *summary);
