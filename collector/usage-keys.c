/* usage-keys.c - member-name interning (see usage-keys.h). */
#include "usage-keys.h"

#include <string.h>

typedef struct {
    const char *name;
    LwKey key;
} Entry;

/* Sorted by bytes (memcmp order), as the binary search needs; the unit
 * test checks the order. */
static const Entry entries[] = {
    {"arguments", LW_KEY_ARGUMENTS},
    {"best_of", LW_KEY_BEST_OF},
    {"blockReason", LW_KEY_BLOCK_REASON},
    {"cache_creation", LW_KEY_CACHE_CREATION},
    {"cache_creation_input_tokens", LW_KEY_CACHE_CREATION_INPUT_TOKENS},
    {"cache_read_input_tokens", LW_KEY_CACHE_READ_INPUT_TOKENS},
    {"cache_write_tokens", LW_KEY_CACHE_WRITE_TOKENS},
    {"cachedContentTokenCount", LW_KEY_CACHED_CONTENT_TOKEN_COUNT},
    {"cached_tokens", LW_KEY_CACHED_TOKENS},
    {"candidateCount", LW_KEY_CANDIDATE_COUNT},
    {"candidate_count", LW_KEY_CANDIDATE_COUNT},
    {"candidates", LW_KEY_CANDIDATES},
    {"candidatesTokenCount", LW_KEY_CANDIDATES_TOKEN_COUNT},
    {"choices", LW_KEY_CHOICES},
    {"completion_tokens", LW_KEY_COMPLETION_TOKENS},
    {"completion_tokens_details", LW_KEY_COMPLETION_TOKENS_DETAILS},
    {"content", LW_KEY_CONTENT},
    {"conversation", LW_KEY_CONVERSATION},
    {"cost", LW_KEY_COST},
    {"cost_details", LW_KEY_COST_DETAILS},
    {"cost_in_usd_ticks", LW_KEY_COST_IN_USD_TICKS},
    {"delta", LW_KEY_DELTA},
    {"ephemeral_1h_input_tokens", LW_KEY_EPHEMERAL_1H_INPUT_TOKENS},
    {"ephemeral_5m_input_tokens", LW_KEY_EPHEMERAL_5M_INPUT_TOKENS},
    {"error", LW_KEY_ERROR},
    {"finishReason", LW_KEY_FINISH_REASON},
    {"function", LW_KEY_FUNCTION},
    {"generationConfig", LW_KEY_GENERATION_CONFIG},
    {"generation_config", LW_KEY_GENERATION_CONFIG},
    {"id", LW_KEY_ID},
    {"include_usage", LW_KEY_INCLUDE_USAGE},
    {"index", LW_KEY_INDEX},
    {"input_tokens", LW_KEY_INPUT_TOKENS},
    {"input_tokens_details", LW_KEY_INPUT_TOKENS_DETAILS},
    {"is_byok", LW_KEY_IS_BYOK},
    {"maxOutputTokens", LW_KEY_MAX_OUTPUT_TOKENS},
    {"max_completion_tokens", LW_KEY_MAX_COMPLETION_TOKENS},
    {"max_output_tokens", LW_KEY_MAX_OUTPUT_TOKENS},
    {"max_tokens", LW_KEY_MAX_TOKENS},
    {"message", LW_KEY_MESSAGE},
    {"model", LW_KEY_MODEL},
    {"modelVersion", LW_KEY_MODEL_VERSION},
    {"n", LW_KEY_N},
    {"output", LW_KEY_OUTPUT},
    {"output_tokens", LW_KEY_OUTPUT_TOKENS},
    {"output_tokens_details", LW_KEY_OUTPUT_TOKENS_DETAILS},
    {"partial_json", LW_KEY_PARTIAL_JSON},
    {"parts", LW_KEY_PARTS},
    {"previous_response_id", LW_KEY_PREVIOUS_RESPONSE_ID},
    {"promptFeedback", LW_KEY_PROMPT_FEEDBACK},
    {"promptTokenCount", LW_KEY_PROMPT_TOKEN_COUNT},
    {"prompt_cache_hit_tokens", LW_KEY_PROMPT_CACHE_HIT_TOKENS},
    {"prompt_cache_miss_tokens", LW_KEY_PROMPT_CACHE_MISS_TOKENS},
    {"prompt_tokens", LW_KEY_PROMPT_TOKENS},
    {"prompt_tokens_details", LW_KEY_PROMPT_TOKENS_DETAILS},
    {"reasoning", LW_KEY_REASONING},
    {"reasoning_content", LW_KEY_REASONING_CONTENT},
    {"reasoning_tokens", LW_KEY_REASONING_TOKENS},
    {"refusal", LW_KEY_REFUSAL},
    {"response", LW_KEY_RESPONSE},
    {"responseId", LW_KEY_RESPONSE_ID},
    {"stream", LW_KEY_STREAM},
    {"stream_options", LW_KEY_STREAM_OPTIONS},
    {"text", LW_KEY_TEXT},
    {"thinking", LW_KEY_THINKING},
    {"thinkingBudget", LW_KEY_THINKING_BUDGET},
    {"thinkingConfig", LW_KEY_THINKING_CONFIG},
    {"thinking_budget", LW_KEY_THINKING_BUDGET},
    {"thinking_config", LW_KEY_THINKING_CONFIG},
    {"thinking_tokens", LW_KEY_THINKING_TOKENS},
    {"thought", LW_KEY_THOUGHT},
    {"thoughtsTokenCount", LW_KEY_THOUGHTS_TOKEN_COUNT},
    {"toolUsePromptTokenCount", LW_KEY_TOOL_USE_PROMPT_TOKEN_COUNT},
    {"tool_calls", LW_KEY_TOOL_CALLS},
    {"totalTokenCount", LW_KEY_TOTAL_TOKEN_COUNT},
    {"total_cost", LW_KEY_TOTAL_COST},
    {"total_tokens", LW_KEY_TOTAL_TOKENS},
    {"type", LW_KEY_TYPE},
    {"upstream_inference_cost", LW_KEY_UPSTREAM_INFERENCE_COST},
    {"usage", LW_KEY_USAGE},
    {"usageMetadata", LW_KEY_USAGE_METADATA},
    {"x_groq", LW_KEY_X_GROQ},
};

static int compare(const char *a, gsize alen, const char *b)
{
    gsize blen = strlen(b);
    int r = memcmp(a, b, MIN(alen, blen));
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

LwKey lw_usage_key_lookup(const char *name, gsize len)
{
    gsize lo = 0, hi = G_N_ELEMENTS(entries);
    while (lo < hi) {
        gsize mid = lo + (hi - lo) / 2;
        int r = compare(name, len, entries[mid].name);
        if (r == 0)
            return entries[mid].key;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
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
