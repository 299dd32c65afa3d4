/* usage-keys.c - member-name interning (see usage-keys.h). */
#include "usage-keys.h"

#include <string.h>

typedef struct {
    const char *name;
    gsize len;
    LwKey key;
} Entry;

#define E(name, key) {name, sizeof name - 1, key}

/* Sorted by bytes, for the reader. */
static const Entry entries[] = {
    E("arguments", LW_KEY_ARGUMENTS),
    E("best_of", LW_KEY_BEST_OF),
    E("blockReason", LW_KEY_BLOCK_REASON),
    E("cache_creation", LW_KEY_CACHE_CREATION),
    E("cache_creation_input_tokens", LW_KEY_CACHE_CREATION_INPUT_TOKENS),
    E("cache_read_input_tokens", LW_KEY_CACHE_READ_INPUT_TOKENS),
    E("cache_write_tokens", LW_KEY_CACHE_WRITE_TOKENS),
    E("cachedContent", LW_KEY_CACHED_CONTENT),
    E("cachedContentTokenCount", LW_KEY_CACHED_CONTENT_TOKEN_COUNT),
    E("cached_content", LW_KEY_CACHED_CONTENT),
    E("cached_tokens", LW_KEY_CACHED_TOKENS),
    E("candidateCount", LW_KEY_CANDIDATE_COUNT),
    E("candidate_count", LW_KEY_CANDIDATE_COUNT),
    E("candidates", LW_KEY_CANDIDATES),
    E("candidatesTokenCount", LW_KEY_CANDIDATES_TOKEN_COUNT),
    E("choices", LW_KEY_CHOICES),
    E("completion_tokens", LW_KEY_COMPLETION_TOKENS),
    E("completion_tokens_details", LW_KEY_COMPLETION_TOKENS_DETAILS),
    E("content", LW_KEY_CONTENT),
    E("conversation", LW_KEY_CONVERSATION),
    E("cost", LW_KEY_COST),
    E("cost_details", LW_KEY_COST_DETAILS),
    E("cost_in_usd_ticks", LW_KEY_COST_IN_USD_TICKS),
    E("delta", LW_KEY_DELTA),
    E("ephemeral_1h_input_tokens", LW_KEY_EPHEMERAL_1H_INPUT_TOKENS),
    E("ephemeral_5m_input_tokens", LW_KEY_EPHEMERAL_5M_INPUT_TOKENS),
    E("error", LW_KEY_ERROR),
    E("finishReason", LW_KEY_FINISH_REASON),
    E("function", LW_KEY_FUNCTION),
    E("generationConfig", LW_KEY_GENERATION_CONFIG),
    E("generation_config", LW_KEY_GENERATION_CONFIG),
    E("groundingMetadata", LW_KEY_GROUNDING_METADATA),
    E("id", LW_KEY_ID),
    E("include_usage", LW_KEY_INCLUDE_USAGE),
    E("index", LW_KEY_INDEX),
    E("inference_geo", LW_KEY_INFERENCE_GEO),
    E("input_tokens", LW_KEY_INPUT_TOKENS),
    E("input_tokens_details", LW_KEY_INPUT_TOKENS_DETAILS),
    E("is_byok", LW_KEY_IS_BYOK),
    E("item", LW_KEY_ITEM),
    E("maxOutputTokens", LW_KEY_MAX_OUTPUT_TOKENS),
    E("max_completion_tokens", LW_KEY_MAX_COMPLETION_TOKENS),
    E("max_output_tokens", LW_KEY_MAX_OUTPUT_TOKENS),
    E("max_tokens", LW_KEY_MAX_TOKENS),
    E("message", LW_KEY_MESSAGE),
    E("model", LW_KEY_MODEL),
    E("modelVersion", LW_KEY_MODEL_VERSION),
    E("n", LW_KEY_N),
    E("output", LW_KEY_OUTPUT),
    E("output_tokens", LW_KEY_OUTPUT_TOKENS),
    E("output_tokens_details", LW_KEY_OUTPUT_TOKENS_DETAILS),
    E("partial_json", LW_KEY_PARTIAL_JSON),
    E("parts", LW_KEY_PARTS),
    E("previous_response_id", LW_KEY_PREVIOUS_RESPONSE_ID),
    E("prompt", LW_KEY_PROMPT),
    E("promptFeedback", LW_KEY_PROMPT_FEEDBACK),
    E("promptTokenCount", LW_KEY_PROMPT_TOKEN_COUNT),
    E("prompt_cache_hit_tokens", LW_KEY_PROMPT_CACHE_HIT_TOKENS),
    E("prompt_cache_miss_tokens", LW_KEY_PROMPT_CACHE_MISS_TOKENS),
    E("prompt_tokens", LW_KEY_PROMPT_TOKENS),
    E("prompt_tokens_details", LW_KEY_PROMPT_TOKENS_DETAILS),
    E("reasoning", LW_KEY_REASONING),
    E("reasoning_content", LW_KEY_REASONING_CONTENT),
    E("reasoning_tokens", LW_KEY_REASONING_TOKENS),
    E("refusal", LW_KEY_REFUSAL),
    E("response", LW_KEY_RESPONSE),
    E("responseId", LW_KEY_RESPONSE_ID),
    E("server_tool_use", LW_KEY_SERVER_TOOL_USE),
    E("service_tier", LW_KEY_SERVICE_TIER),
    E("speed", LW_KEY_SPEED),
    E("stream", LW_KEY_STREAM),
    E("stream_options", LW_KEY_STREAM_OPTIONS),
    E("text", LW_KEY_TEXT),
    E("thinking", LW_KEY_THINKING),
    E("thinkingBudget", LW_KEY_THINKING_BUDGET),
    E("thinkingConfig", LW_KEY_THINKING_CONFIG),
    E("thinking_budget", LW_KEY_THINKING_BUDGET),
    E("thinking_config", LW_KEY_THINKING_CONFIG),
    E("thinking_tokens", LW_KEY_THINKING_TOKENS),
    E("thought", LW_KEY_THOUGHT),
    E("thoughtsTokenCount", LW_KEY_THOUGHTS_TOKEN_COUNT),
    E("toolUsePromptTokenCount", LW_KEY_TOOL_USE_PROMPT_TOKEN_COUNT),
    E("tool_calls", LW_KEY_TOOL_CALLS),
    E("totalTokenCount", LW_KEY_TOTAL_TOKEN_COUNT),
    E("total_cost", LW_KEY_TOTAL_COST),
    E("total_tokens", LW_KEY_TOTAL_TOKENS),
    E("type", LW_KEY_TYPE),
    E("upstream_inference_cost", LW_KEY_UPSTREAM_INFERENCE_COST),
    E("usage", LW_KEY_USAGE),
    E("usageMetadata", LW_KEY_USAGE_METADATA),
    E("webSearchQueries", LW_KEY_WEB_SEARCH_QUERIES),
    E("web_search_options", LW_KEY_WEB_SEARCH_OPTIONS),
    E("web_search_requests", LW_KEY_WEB_SEARCH_REQUESTS),
    E("x_groq", LW_KEY_X_GROQ),
};

/* An open-addressing table over `entries`, built on first use: a lookup
 * runs for every member name of every parsed document, and a binary search
 * with memcmp cost ~240 instructions where this costs a probe or two. */
#define SLOTS 512 /* a power of two, > 4 x the entries: short probe runs */
G_STATIC_ASSERT(G_N_ELEMENTS(entries) * 4 < SLOTS && G_N_ELEMENTS(entries) < 255);

static guint8 slots[SLOTS]; /* entry index + 1; 0 = empty */

static guint slot_hash(const char *s, gsize len)
{
    return ((guint)len * 131u + (guchar)s[0] * 31u + (guchar)s[len - 1] +
            (guchar)s[len / 2] * 7u) & (SLOTS - 1);
}

static void build_slots(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(entries); i++) {
        guint h = slot_hash(entries[i].name, entries[i].len);
        while (slots[h] != 0)
            h = (h + 1) & (SLOTS - 1);
        slots[h] = (guint8)(i + 1);
    }
}

LwKey lw_usage_key_lookup(const char *name, gsize len)
{
    static gsize built = 0;
    if (g_once_init_enter(&built)) {
        build_slots();
        g_once_init_leave(&built, 1);
    }
    if (len == 0)
        return LW_KEY_OTHER;
    for (guint h = slot_hash(name, len); slots[h] != 0; h = (h + 1) & (SLOTS - 1)) {
        const Entry *e = &entries[slots[h] - 1];
        if (e->len == len && memcmp(e->name, name, len) == 0)
            return e->key;
    }
    return LW_KEY_OTHER;
}

const char *lw_usage_key_name(LwKey key)
{
    for (gsize i = 0; i < G_N_ELEMENTS(entries); i++) {
        if (entries[i].key == key)
            return entries[i].name;
    }
    return NULL;
}
