/* pricing.h - what a request cost: the shipped price table, the user's
 * overrides, and the provider rules that turn usage into USD.
 *
 * Prices come from data/prices.json (a dated file installed with llmwrap;
 * see data/README.md for its format and sources), overridden per model by
 * config.ini [price.MODEL] groups. Amounts are exact integers: a price is
 * micro-USD per 1M tokens, which is the same number as pico-USD per token,
 * so cost = tokens x price in pico-USD with no rounding.
 *
 * Lookup is by (provider, model). A dated snapshot ("gpt-4o-2024-08-06")
 * falls back to its family ("gpt-4o") only when the data file lists that
 * snapshot as priced like the family; anything else unknown has no price
 * (cost unknown, never a guess).
 *
 * Thread-safety: an LwPricing is immutable once loaded.
 */
#pragma once

#include <glib.h>

#include "config.h"

#define LW_PRICING_ERROR (lw_pricing_error_quark())
GQuark lw_pricing_error_quark(void);

typedef enum {
    LW_PRICING_ERROR_PARSE, /* the data file is not what it should be; the message says where */
} LwPricingError;

/* Rates in micro-USD per 1M tokens (== pico-USD per token); -1 = not listed. */
typedef struct {
    gint64 input;
    gint64 output;
    gint64 cached_input;   /* cache read */
    gint64 cache_write;    /* 5-minute TTL write (Anthropic), or the only write rate */
    gint64 cache_write_1h; /* 1-hour TTL write (Anthropic) */
} LwRates;

/* A long-context tier: the whole request is priced at `rates` when its
 * input tokens exceed `above_input_tokens`. */
typedef struct {
    gint64 above_input_tokens;
    LwRates rates;
} LwPriceTier;

typedef struct {
    const char *provider;  /* "openai", "anthropic", ... */
    const char *model;     /* key in the table */
    LwRates rates;
    const LwPriceTier *tiers; /* ascending thresholds */
    guint n_tiers;
    gint64 max_output_tokens; /* the model's output limit (worst-case budgets); -1 unknown */
    gint64 max_input_tokens;  /* context window; -1 unknown */
    gboolean overridden;      /* rates come (partly) from config.ini */
} LwPrice;

/* Usage in the normalised "of which" convention (see ledger.h):
 *   input_tokens            every input token the request consumed
 *     cached_input_tokens     of which read from the provider's cache
 *     cache_write_tokens      of which written to the cache (all TTLs)
 *       cache_write_1h_tokens   of which with the 1-hour TTL (the rest is 5-minute)
 *   output_tokens           every output token billed, reasoning included
 *     reasoning_tokens        of which reasoning/thinking */
typedef struct {
    gint64 input_tokens;
    gint64 cached_input_tokens;
    gint64 cache_write_tokens;
    gint64 cache_write_1h_tokens;
    gint64 output_tokens;
    gint64 reasoning_tokens;
} LwTokens;

typedef struct _LwPricing LwPricing;

/* Loads the table from `data_file` (NULL: the installed one, or the source
 * tree's data/prices.json when running from a build directory) and applies
 * `config`'s [price.MODEL] overrides (may be NULL). Transfer full. Errors:
 * LW_PRICING_ERROR for the data file; LW_CONFIG_ERROR, naming config.ini's
 * file, line and key, for an override of a model the table does not have
 * that lacks 'input' or 'output' (a bad configuration, exit status 2). */
LwPricing *lw_pricing_load(const char *data_file, const LwConfig *config, GError **error);
/* Another reference to `pricing`, returned. A table is never changed once
 * loaded: a holder keeps prices that a reload has since replaced (the
 * collector prices a request by the table it was admitted under). */
LwPricing *lw_pricing_ref(LwPricing *pricing);
/* Drops a reference: the one lw_pricing_load returned, or one from
 * lw_pricing_ref. The last frees the table. Accepts NULL. */
void lw_pricing_free(LwPricing *pricing);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwPricing, lw_pricing_free)

/* "2026-07-24": the date of the shipped table. Borrowed. */
const char *lw_pricing_version(const LwPricing *pricing);

/* The price for (provider, model) after fallbacks and overrides, or NULL
 * when unknown. Borrowed; lives as long as `pricing`. */
const LwPrice *lw_pricing_lookup(const LwPricing *pricing, const char *provider,
                                 const char *model);

/* The price of an answer: the model that answered (`served`), else, when
 * that one has no price (a dated snapshot the table does not list yet), the
 * model the request was sent for (`sent`), as providers.md 1.2 says. Sets
 * *ret_model (unless NULL) to the name priced, or (no price) served, else
 * sent. Either name may be NULL. Borrowed, as lw_pricing_lookup. */
/* The note a row carries about its price, or NULL: "no price for PROVIDER
 * model MODEL" when `price` is NULL, "no price for SERVED: priced as MODEL"
 * when the answer's model had none and `model` (as *ret_model of
 * lw_pricing_lookup_answer gave it) was priced instead. Such a note begins
 * with LW_PRICING_NOTE_PREFIX and comes first in the row's warning. */
#define LW_PRICING_NOTE_PREFIX "no price for "
char *lw_pricing_note(const LwPrice *price, const char *provider, const char *served,
                      const char *model);

const LwPrice *lw_pricing_lookup_answer(const LwPricing *pricing, const char *provider,
                                        const char *served, const char *sent,
                                        const char **ret_model);

/* The rates that apply to a request with `input_tokens` input tokens: the
 * highest tier it exceeds over the base rates, with every rate resolved
 * (an unlisted cache rate is the input rate; an unlisted 1-hour write rate
 * the write rate). The rates lw_pricing_cost() bills at. */
LwRates lw_pricing_rates(const LwPrice *price, gint64 input_tokens);

/* Saturating pico-USD arithmetic: a runaway count never wraps a cost. */
static inline gint64 lw_pusd_mul(gint64 tokens, gint64 rate)
{
    if (tokens <= 0 || rate <= 0)
        return 0;
    return tokens > G_MAXINT64 / rate ? G_MAXINT64 : tokens * rate;
}

static inline gint64 lw_pusd_add(gint64 a, gint64 b)
{
    return a > G_MAXINT64 - b ? G_MAXINT64 : a + b;
}

/* Cost of `tokens` at `price`, choosing the tier by input_tokens:
 *   (input - cached - cache_write) x input
 *   + cached x cached_input
 *   + (cache_write - cache_write_1h) x cache_write + cache_write_1h x cache_write_1h rate
 *   + output x output                     (reasoning is part of output)
 * A rate the table does not list falls back as data/README.md documents.
 * Returns pico-USD (never negative). */
gint64 lw_pricing_cost(const LwPrice *price, const LwTokens *tokens);

/* Every price, sorted by provider then model (for `llmctl pricing list`).
 * Transfer container. */
GPtrArray *lw_pricing_list(const LwPricing *pricing);
