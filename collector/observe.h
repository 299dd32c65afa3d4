/* observe.h - reading usage out of a response as it streams to the client.
 *
 * An observer sits between the upstream and the client. It sees every
 * response body byte once, in order, and hands the bytes on to a sink:
 *   - SSE answers are handed on one complete event at a time (an event is
 *     useless to a client before its blank line anyway), so the observer
 *     can flag the event that ends the answer ([DONE], message_stop,
 *     response.completed, the Gemini chunk with finishReason) as terminal:
 *     the exchange holds terminal bytes until the ledger row is committed.
 *     An event over the framer's 8 MiB cap (a response.completed that
 *     repeats a base64 image) is handed on in pieces as they arrive and
 *     read as it passes, never kept whole; if it ends the answer, its
 *     dispatching blank line is the terminal part.
 *   - With `strip_injected_usage` (the collector added
 *     stream_options.include_usage), it drops the usage-only chunk and the
 *     "usage":null members that option caused, so the client receives
 *     exactly what it would have without the collector.
 *   - JSON answers are handed on as they arrive and parsed incrementally
 *     (no whole-body buffering); gzip/deflate bodies (deflate zlib-wrapped
 *     or raw) are inflated for parsing only, the client gets the original
 *     bytes. Other codings are not read (see lw_observer_accept_encoding).
 * Work is O(bytes): each event is scanned once; JSON is parsed only for
 * events that can carry what we need.
 *
 * Usage is normalised to the "of which" convention of ledger.h, per the
 * provider rules in the wire-format reference: OpenAI prompt_tokens includes
 * cached tokens; Anthropic input_tokens excludes cache reads and writes;
 * Gemini candidatesTokenCount excludes thoughts; xAI reports reasoning on
 * top of completion_tokens; DeepSeek splits cache hits and misses.
 *
 * Thread: one observer per exchange, on the loop thread.
 */
#pragma once

#include <glib.h>

#include "inspect.h"
#include "pricing.h"
#include "usage-json.h"

typedef struct {
    LwTokens tokens;          /* normalised counts (valid when have_usage) */
    gboolean have_usage;      /* the provider reported usage */
    gboolean complete;        /* the answer's terminal event (or the whole JSON body) was seen */
    gboolean mid_stream_error; /* an error event/chunk arrived in a 2xx stream */
    char *model_served;       /* the model the response names, NULL if none */
    gboolean have_provider_cost;
    gint64 provider_cost_pusd; /* OpenRouter usage.cost, xAI cost_in_usd_ticks, Perplexity total_cost */
    char *raw_usage;          /* the last usage object as received (JSON text), NULL if none */
    char *response_id;        /* the body's id (chatcmpl-..., msg_..., responseId) */
    gint64 output_text_bytes; /* output text seen so far, answer and streamed reasoning
                               * alike: a bound on output tokens (no tokeniser makes more
                               * tokens than bytes) for estimates and budget metering */
    char unreadable[96];      /* why the body could not be read ("" when it could), so a
                               * missing usage is reported as unread, not just absent */
    /* Charges beyond the tokens that the price table cannot express, so the
     * row can say its cost leaves them out: */
    char service_tier[24];    /* the tier the provider says served it ("" when none) */
    gint64 web_searches;      /* Anthropic server_tool_use.web_search_requests */
    char inference_geo[24];   /* Anthropic usage.inference_geo ("" when none) */
    gint64 tool_calls[LW_TOOL_COUNT]; /* Responses built-in tool calls: the output the answer
                                       * lists, or (a stream cut before it) the calls its
                                       * output_item.done events announced */
    gint64 search_queries;    /* Gemini grounding: the most webSearchQueries one chunk lists */
} LwUsage;

typedef struct {
    /* Bytes for the client. terminal: they end the answer (hold them until
     * the ledger commit). Called zero or more times per feed/finish. */
    void (*emit)(void *data, const char *buf, gsize len, gboolean terminal);
} LwObserverSink;

typedef struct _LwObserver LwObserver;

/* Creates an observer for a response with HTTP `status` to the request
 * described by `req` (borrowed, must outlive the observer).
 * `content_type` and `content_encoding` are the response's header values
 * (NULL if absent). */
LwObserver *lw_observer_new(LwFormat format, const LwRequestInfo *req, int status,
                            const char *content_type, const char *content_encoding,
                            gboolean strip_injected_usage, const LwObserverSink *sink,
                            void *sink_data);
void lw_observer_free(LwObserver *obs);

/* Feeds upstream body bytes; emits what the client should get. */
void lw_observer_feed(LwObserver *obs, const char *buf, gsize len);

/* The upstream body ended (cleanly or not): emits anything still buffered
 * (an unterminated last event is passed on as it was). */
void lw_observer_finish(LwObserver *obs);

/* What is known so far. Borrowed; valid until the next feed/finish/free.
 * Not const: a Gemini stream's latest running usage is kept unparsed
 * until it is asked for, and parsed here. */
const LwUsage *lw_observer_usage(LwObserver *obs);

/* Will the observer rewrite bytes (so the exchange must not promise the
 * upstream's Content-Length to the client)? */
gboolean lw_observer_rewrites(const LwObserver *obs);

void lw_usage_clear(LwUsage *usage);

/* The Accept-Encoding to send upstream for a client that sent `accept`
 * (its Accept-Encoding values joined with ","; NULL when it sent none): the
 * client's entries for the codings an observer reads (gzip, x-gzip,
 * deflate, identity), in its order and with its parameters, so the answer
 * is still one the client accepts and one whose usage can be read; just
 * "identity" when no entry with a non-zero q is left. Transfer full. Pure;
 * any thread. */
char *lw_observer_accept_encoding(const char *accept);
