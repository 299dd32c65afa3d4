/* inspect.h - what a request asks for, and the few edits policy makes to it.
 *
 * lw_inspect_request() reads the endpoint from the path and the fields that
 * matter for accounting and budgets from the JSON body (model, stream flag,
 * max-tokens field, choice count). It parses the body once with yajl, and
 * never changes it. The rewrite functions return a new body that differs
 * from the original only in the edited field(s), byte for byte elsewhere,
 * so the provider's prompt caching keeps working.
 *
 * Thread-safety: pure functions; any thread.
 */
#pragma once

#include <glib.h>

#include "providers.h"

typedef enum {
    LW_ENDPOINT_OTHER = 0,    /* free: every GET, DELETE, ...; POSTs to files, uploads,
                               * moderations, vector stores, assistants, threads (not
                               * runs), conversations, and any .../cancel */
    LW_ENDPOINT_CHAT,         /* OpenAI-format /chat/completions (any provider) */
    LW_ENDPOINT_RESPONSES,    /* OpenAI /responses */
    LW_ENDPOINT_EMBEDDINGS,   /* OpenAI-format /embeddings */
    LW_ENDPOINT_COMPLETIONS,  /* legacy /completions */
    LW_ENDPOINT_MESSAGES,     /* Anthropic /v1/messages */
    LW_ENDPOINT_COUNT_TOKENS, /* Anthropic count_tokens, Gemini countTokens: free */
    LW_ENDPOINT_GENERATE,     /* Gemini :generateContent */
    LW_ENDPOINT_STREAM_GENERATE, /* Gemini :streamGenerateContent */
    LW_ENDPOINT_EMBED_CONTENT,   /* Gemini :embedContent / :batchEmbedContents */
    LW_ENDPOINT_UNPRICED, /* a POST that may cost and llmwrap cannot price (images, audio,
                           * batches, Gemini :predict, ...): hard budgets refuse it */
} LwEndpoint;

/* A request path fit for logs and messages: without its query (Gemini
 * keys travel in "?key="), even one percent-encoded into the path
 * ("%3Fkey="), at most 200 bytes. Transfer full. */
char *lw_path_for_display(const char *path);

/* Short stable name ("chat", "responses", "messages", ...) for the ledger. */
const char *lw_endpoint_name(LwEndpoint endpoint);

/* The dialect an endpoint speaks, whatever the provider's native one
 * (Gemini's OpenAI-compatible endpoint speaks OpenAI); `fallback` for
 * endpoints that do not say (other, count_tokens). */
LwFormat lw_endpoint_format(LwEndpoint endpoint, LwFormat fallback);

/* The endpoint a request's method and path name (its body plays no
 * part). */
LwEndpoint lw_inspect_endpoint(const char *method, const char *path);

typedef struct {
    LwEndpoint endpoint;
    char *model;          /* requested model, NULL when absent (Gemini: from the path) */
    gboolean stream;      /* the client asked for a streamed answer */
    gboolean sse;         /* the answer will be SSE (Gemini: only with alt=sse) */
    gint64 max_output;    /* max_tokens / max_completion_tokens / max_output_tokens /
                           * generationConfig.maxOutputTokens; -1 when absent */
    gint64 choices;       /* n / candidateCount / max(n, best_of); 1 when absent */
    gint64 thinking_budget; /* Gemini thinkingConfig.thinkingBudget; -1 when absent */
    gboolean include_usage; /* stream_options.include_usage is true */
    gboolean server_state;  /* previous_response_id, conversation, a stored prompt, Gemini
                             * cachedContent: input not in the body */
    /* Asked-for charges the price table cannot express: */
    gboolean fast_mode;  /* Anthropic speed: "fast" (beta), priced above standard rates */
    gboolean long_context; /* Anthropic's 1M-token context beta asked for (a header:
                            * set by the caller, not from the body) */
    gboolean web_search; /* a chat request with web_search_options, or to a search-preview
                          * model (which always searches): a fee per call */
    gint64 body_bytes;    /* with body_unread: the declared length (0 when chunked) */
    gboolean body_unread; /* the body streamed to the provider unread (exchange.h) */
} LwRequestInfo;

/* Fills `ret` for a request. Never fails: a body that is not JSON (or not
 * the expected shape) just leaves the body fields at their defaults.
 * Free with lw_request_info_clear(). */
void lw_inspect_request(LwFormat format, const char *method, const char *path, const char *body,
                        gsize body_len, LwRequestInfo *ret);
void lw_request_info_clear(LwRequestInfo *info);

/* lw_inspect_request(), and, from the same parse, for an OpenAI-format
 * chat or completions stream that does not ask for usage: the body as
 * lw_rewrite_include_usage() makes it. NULL when there is nothing to add
 * (or the body is not a JSON object). */
GBytes *lw_inspect_request_adding_usage(LwFormat format, const char *method, const char *path,
                                        const char *body, gsize body_len, LwRequestInfo *ret);

/* Adds "stream_options":{"include_usage":true} to an OpenAI-format
 * streaming request (or sets include_usage inside an existing
 * stream_options). Returns NULL when the body is not a JSON object. */
GBytes *lw_rewrite_include_usage(const char *body, gsize len);

/* Replaces the top-level "model" value. NULL when there is none. */
GBytes *lw_rewrite_model(const char *body, gsize len, const char *model);

/* Sets the request's max-tokens field (the one `info` found, or the
 * format's usual one when absent) to `max`. NULL when not possible. */
GBytes *lw_rewrite_max_output(const char *body, gsize len, LwFormat format,
                              const LwRequestInfo *info, gint64 max);
