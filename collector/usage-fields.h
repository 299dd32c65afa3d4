/* usage-fields.h - a provider's usage object as reported, and the rules that
 * turn it into normalised tokens and a provider-reported cost.
 *
 * The extractor records the numbers a usage object carries under their
 * provider names (LwUsageFields); normalisation then applies the rules of
 * the wire-format reference, choosing the flavour from the fields
 * themselves, since one format is spoken by many providers:
 *   - promptTokenCount...      Gemini: thoughts and tool-use prompt are on top
 *   - prompt_tokens...         OpenAI-shaped chat: cached is a subset; DeepSeek's
 *                              prompt_cache_hit_tokens wins when present; output is
 *                              max(completion, total - prompt), which catches xAI's
 *                              additive reasoning and compat layers that leave
 *                              thinking out of completion_tokens
 *   - input_tokens + top-level cache_*_input_tokens, or the Anthropic format:
 *                              Anthropic: cache reads and writes are on top;
 *                              cache_creation gives the 1-hour part of the writes,
 *                              a larger total (a stream's newer message_delta)
 *                              wins, the rest billed at the 5-minute rate
 *   - input_tokens otherwise   OpenAI Responses: cached is a subset
 * Provider cost: xAI cost_in_usd_ticks, else Perplexity cost.total_cost, else
 * OpenRouter cost (plus cost_details.upstream_inference_cost with BYOK).
 * Counts are clamped so no "of which" part exceeds its total and nothing is
 * negative, whatever a provider sends.
 *
 * Thread-safety: pure; any thread.
 */
#pragma once

#include <glib.h>

#include "pricing.h"
#include "providers.h"
#include "usage-keys.h"

typedef enum {
    LW_UF_PROMPT_TOKENS,
    LW_UF_COMPLETION_TOKENS,
    LW_UF_TOTAL_TOKENS,
    LW_UF_INPUT_TOKENS,
    LW_UF_OUTPUT_TOKENS,
    LW_UF_CACHED_TOKENS,       /* *_tokens_details.cached_tokens */
    LW_UF_CACHE_WRITE_TOKENS,  /* *_tokens_details.cache_write_tokens */
    LW_UF_REASONING_TOKENS,    /* *_tokens_details.reasoning_tokens */
    LW_UF_REASONING_TOP,       /* top-level reasoning_tokens (Perplexity) */
    LW_UF_THINKING_TOKENS,     /* output_tokens_details.thinking_tokens (Anthropic) */
    LW_UF_CACHE_HIT,           /* prompt_cache_hit_tokens (DeepSeek) */
    LW_UF_CACHE_MISS,          /* prompt_cache_miss_tokens */
    LW_UF_CACHE_READ_INPUT,    /* top-level cache_read_input_tokens (Anthropic) */
    LW_UF_CACHE_CREATION_INPUT, /* top-level cache_creation_input_tokens */
    LW_UF_DETAIL_CACHE_READ,   /* input_tokens_details.cache_read_input_tokens (Perplexity) */
    LW_UF_DETAIL_CACHE_CREATION,
    LW_UF_EPHEMERAL_5M,        /* cache_creation.ephemeral_5m_input_tokens */
    LW_UF_EPHEMERAL_1H,
    LW_UF_G_PROMPT,            /* Gemini usageMetadata */
    LW_UF_G_CACHED,
    LW_UF_G_CANDIDATES,
    LW_UF_G_THOUGHTS,
    LW_UF_G_TOOL_USE_PROMPT,
    LW_UF_G_TOTAL,
    LW_UF_COST_PUSD,           /* OpenRouter usage.cost, in pico-USD */
    LW_UF_TOTAL_COST_PUSD,     /* Perplexity usage.cost.total_cost */
    LW_UF_UPSTREAM_COST_PUSD,  /* OpenRouter cost_details.upstream_inference_cost */
    LW_UF_TICKS_PUSD,          /* xAI cost_in_usd_ticks x 100 */
    LW_UF_IS_BYOK,             /* 0/1 */
    LW_UF_WEB_SEARCHES,        /* server_tool_use.web_search_requests (Anthropic): a charge
                                * per search that no price in the table covers */
    LW_UF_COUNT,
} LwUsageField;

typedef struct {
    guint64 present; /* bit (1 << field) set when the field was reported */
    gint64 v[LW_UF_COUNT];
} LwUsageFields;

G_STATIC_ASSERT(LW_UF_COUNT <= 64);

void lw_usage_fields_reset(LwUsageFields *f);

/* Was `field` reported? */
gboolean lw_usage_fields_has(const LwUsageFields *f, LwUsageField field);

/* Records the value of the member `key` inside `parent` (LW_KEY_OTHER for
 * a direct member of the usage object) from its JSON number text. Numbers
 * the rules do not know are ignored. Returns TRUE when the value was kept. */
gboolean lw_usage_fields_set_number(LwUsageFields *f, LwKey parent, LwKey key, const char *text,
                                    gsize len);
/* The same for a boolean member. */
void lw_usage_fields_set_bool(LwUsageFields *f, LwKey parent, LwKey key, gboolean value);

/* Overwrites in `into` every field present in `from` (Anthropic streams:
 * message_delta's cumulative usage over message_start's). */
void lw_usage_fields_merge(LwUsageFields *into, const LwUsageFields *from);

/* Normalises `f` (see the file comment). `format` breaks the tie between
 * Anthropic and Responses when no cache field says which. Returns FALSE
 * when `f` holds no token count at all. ret_cost_pusd is -1 when the
 * provider reported no cost. */
gboolean lw_usage_fields_normalise(const LwUsageFields *f, LwFormat format, LwTokens *ret_tokens,
                                   gint64 *ret_cost_pusd);

/* Parses JSON number text as an exact decimal and returns it times
 * 10^scale, rounded half away from zero when digits remain (never through
 * a double, so "0.000574" USD is exactly 574000000 pico-USD at scale 12).
 * Returns FALSE on text that is not a number or a result beyond gint64. */
gboolean lw_usage_fields_decimal(const char *text, gsize len, int scale, gint64 *ret);
