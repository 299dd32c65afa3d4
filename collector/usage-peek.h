/* usage-peek.h - a one-pass look at an SSE event's JSON payload, to decide
 * whether it needs a real parse.
 *
 * Most events of a stream are text deltas that carry nothing the ledger
 * needs but their text length. A full SAX parse costs a few microseconds
 * per event; this scan jumps from string to string with memchr, notes the
 * member names that matter (usage, error, model, ...) and measures the
 * decoded length of text strings. It relies on one property of valid JSON:
 * outside strings there are no quote characters, and inside them every
 * quote is escaped, so each unescaped quote opens or closes a string and a
 * string followed by ':' is a member name. The scan never decides what a
 * document means: anything beyond counting text sends the event to the
 * full parser.
 *
 * Thread-safety: pure; any thread.
 */
#pragma once

#include <glib.h>

typedef enum {
    LW_PEEK_CONTENT,      /* "content": "..." */
    LW_PEEK_TEXT,         /* "text": "..." */
    LW_PEEK_REFUSAL,      /* "refusal": "..." */
    LW_PEEK_ARGUMENTS,    /* "arguments": "..." */
    LW_PEEK_DELTA,        /* "delta": "..." (Responses text deltas) */
    LW_PEEK_PARTIAL_JSON, /* "partial_json": "..." (Anthropic tool input) */
    LW_PEEK_REASONING,    /* "reasoning", "reasoning_content", "thinking": "..." */
    LW_PEEK_TEXT_COUNT,
} LwPeekText;

typedef struct {
    guint usage_null;   /* "usage": null members, at any depth */
    guint usage_value;  /* "usage" members with any other value */
    gboolean error;     /* an "error" member whose value is not null or false */
    gboolean x_groq;
    gboolean usage_metadata;  /* Gemini */
    gboolean finish_reason;   /* Gemini: "finishReason", a candidate may have ended */
    gboolean prompt_feedback; /* Gemini: "promptFeedback" or "blockReason" */
    gboolean model;           /* "model" or Gemini's "modelVersion" */
    gboolean id;              /* "id" or Gemini's "responseId" */
    gboolean call_item;       /* a "type" string ending in "_call": a Responses tool call
                               * item, which may be a built-in tool's, charged per call */
    gboolean grounding;       /* Gemini "webSearchQueries": grounding, charged per query */
    const char *type;   /* raw value of the first "type" member that is a string, or NULL */
    gsize type_len;
    gint64 text[LW_PEEK_TEXT_COUNT]; /* decoded UTF-8 bytes of string values, per member name */
    gboolean truncated; /* the payload ends inside a string */
    gboolean escaped_name; /* a member name with an escape ("us\u0061ge"): which member it
                            * is takes a parse, so the scan cannot say what it misses */
} LwPeek;

/* Scans `len` bytes of JSON text. */
void lw_usage_peek(const char *json, gsize len, LwPeek *ret);
