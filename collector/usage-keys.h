/* usage-keys.h - the JSON member names request inspection and usage
 * extraction look for, interned to small integers.
 *
 * A SAX parser sees every member name of a document; comparing each against
 * a list of strings at every depth is the hot path of a parse. Interning
 * once per name lets the extractors keep a path as a few bytes and match it
 * with integer compares. Gemini accepts camelCase and snake_case spellings:
 * both intern to the same key.
 *
 * Thread-safety: pure; any thread.
 */
#pragma once

#include <glib.h>

typedef enum {
    LW_KEY_OTHER = 0, /* a name nobody here cares about */
    LW_KEY_ID,
    LW_KEY_MODEL,
    LW_KEY_TYPE,
    LW_KEY_ERROR,
    LW_KEY_USAGE,
    LW_KEY_X_GROQ,
    LW_KEY_RESPONSE,
    LW_KEY_CHOICES,
    LW_KEY_MESSAGE,
    LW_KEY_DELTA,
    LW_KEY_CONTENT,
    LW_KEY_REFUSAL,
    LW_KEY_TOOL_CALLS,
    LW_KEY_FUNCTION,
    LW_KEY_ARGUMENTS,
    LW_KEY_TEXT,
    LW_KEY_OUTPUT,
    LW_KEY_PARTIAL_JSON,
    LW_KEY_REASONING,         /* OpenRouter delta.reasoning */
    LW_KEY_REASONING_CONTENT, /* DeepSeek delta.reasoning_content */
    LW_KEY_THINKING,          /* Anthropic thinking_delta.thinking */
    LW_KEY_CANDIDATES,
    LW_KEY_PARTS,
    LW_KEY_THOUGHT,
    LW_KEY_FINISH_REASON,
    LW_KEY_INDEX,
    LW_KEY_USAGE_METADATA,
    LW_KEY_MODEL_VERSION,
    LW_KEY_RESPONSE_ID,
    LW_KEY_PROMPT_FEEDBACK,
    LW_KEY_BLOCK_REASON,
    LW_KEY_PROMPT_TOKENS,
    LW_KEY_COMPLETION_TOKENS,
    LW_KEY_TOTAL_TOKENS,
    LW_KEY_INPUT_TOKENS,
    LW_KEY_OUTPUT_TOKENS,
    LW_KEY_PROMPT_TOKENS_DETAILS,
    LW_KEY_COMPLETION_TOKENS_DETAILS,
    LW_KEY_INPUT_TOKENS_DETAILS,
    LW_KEY_OUTPUT_TOKENS_DETAILS,
    LW_KEY_CACHED_TOKENS,
    LW_KEY_CACHE_WRITE_TOKENS,
    LW_KEY_REASONING_TOKENS,
    LW_KEY_THINKING_TOKENS,
    LW_KEY_PROMPT_CACHE_HIT_TOKENS,
    LW_KEY_PROMPT_CACHE_MISS_TOKENS,
    LW_KEY_CACHE_READ_INPUT_TOKENS,
    LW_KEY_CACHE_CREATION_INPUT_TOKENS,
    LW_KEY_CACHE_CREATION,
    LW_KEY_EPHEMERAL_5M_INPUT_TOKENS,
    LW_KEY_EPHEMERAL_1H_INPUT_TOKENS,
    LW_KEY_COST,
    LW_KEY_TOTAL_COST,
    LW_KEY_COST_IN_USD_TICKS,
    LW_KEY_IS_BYOK,
    LW_KEY_SERVICE_TIER,            /* priced differently, and not in the table */
    LW_KEY_SERVER_TOOL_USE,         /* Anthropic usage.server_tool_use */
    LW_KEY_WEB_SEARCH_REQUESTS,     /* ... charged per search */
    LW_KEY_INFERENCE_GEO,           /* Anthropic usage.inference_geo: regional rates */
    LW_KEY_ITEM,                    /* Responses output_item events' item */
    LW_KEY_GROUNDING_METADATA,      /* Gemini candidates.ARR.groundingMetadata */
    LW_KEY_WEB_SEARCH_QUERIES,      /* ... its queries, charged per query */
    LW_KEY_COST_DETAILS,
    LW_KEY_UPSTREAM_INFERENCE_COST,
    LW_KEY_PROMPT_TOKEN_COUNT,
    LW_KEY_CACHED_CONTENT_TOKEN_COUNT,
    LW_KEY_CANDIDATES_TOKEN_COUNT,
    LW_KEY_THOUGHTS_TOKEN_COUNT,
    LW_KEY_TOOL_USE_PROMPT_TOKEN_COUNT,
    LW_KEY_TOTAL_TOKEN_COUNT,
    LW_KEY_STREAM,
    LW_KEY_STREAM_OPTIONS,
    LW_KEY_INCLUDE_USAGE,
    LW_KEY_MAX_TOKENS,
    LW_KEY_MAX_COMPLETION_TOKENS,
    LW_KEY_MAX_OUTPUT_TOKENS,
    LW_KEY_N,
    LW_KEY_BEST_OF,
    LW_KEY_PREVIOUS_RESPONSE_ID,
    LW_KEY_CONVERSATION,
    LW_KEY_CACHED_CONTENT,
    LW_KEY_PROMPT,
    LW_KEY_GENERATION_CONFIG,
    LW_KEY_CANDIDATE_COUNT,
    LW_KEY_THINKING_CONFIG,
    LW_KEY_THINKING_BUDGET,
    LW_KEY_SPEED,              /* Anthropic speed: "fast" (beta), priced higher */
    LW_KEY_WEB_SEARCH_OPTIONS, /* Chat Completions: a web search, charged per call */
    LW_KEY_COUNT,
} LwKey;

/* The key for the member name `name` (`len` bytes, not NUL-terminated). */
LwKey lw_usage_key_lookup(const char *name, gsize len);

/* The first spelling of `key` in the table, for tests and messages. */
const char *lw_usage_key_name(LwKey key);
