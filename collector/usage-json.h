/* usage-json.h - incremental extraction of what a response document says
 * about usage, model, id, text and errors, with yajl's SAX parser.
 *
 * One extractor reads one JSON text, fed in pieces of any size: a whole
 * non-streamed body, a Gemini JSON-array stream (each element of a
 * top-level array is a document), or one SSE event's payload. It keeps the
 * path from the document root as interned keys and the facts of the
 * document being read; when a document ends it calls `on_doc` with them.
 * Nothing is buffered but yajl's own partial token, which is capped: a
 * string longer than LW_USAGE_JSON_MAX_STRING is not given to yajl whole
 * (a base64 image in a 9 MiB answer), only its length is read, so what
 * follows it is still read, in bounded memory and linear time.
 *
 * Paths it knows, relative to a document (ARR = any array element):
 *   OpenAI     usage | x_groq.usage | response.usage; model, id, service_tier
 *              (also under response); type; error; choices (count); text from
 *              choices.ARR.{delta,message}.{content,refusal,
 *              tool_calls.ARR.function.arguments}, choices.ARR.text,
 *              output.ARR.content.ARR.{text,refusal}, output.ARR.arguments;
 *              a top-level string "delta" separately; built-in tool calls
 *              from output.ARR.type (also under response) and item.type
 *   Anthropic  usage | message.usage (with service_tier, inference_geo);
 *              model, id (also under message); type; error; text from
 *              content.ARR.text, delta.{text,partial_json}
 *   Gemini     usageMetadata; modelVersion; responseId; error; text from
 *              candidates.ARR.content.parts.ARR.text unless the part is a
 *              thought; candidates with a finishReason;
 *              promptFeedback.blockReason;
 *              candidates.ARR.groundingMetadata.webSearchQueries (count)
 *
 * Thread-safety: an extractor is used by one thread at a time.
 */
#pragma once

#include <glib.h>

#include "providers.h"
#include "usage-fields.h"

#define LW_USAGE_JSON_MAX_NAME 256         /* longest model / id kept */
#define LW_USAGE_JSON_MAX_RAW (8 * 1024)   /* longest raw usage object kept */
#define LW_USAGE_JSON_MAX_DEPTH 256        /* deeper nesting stops the parse */
#define LW_USAGE_JSON_MAX_TOKEN (8 * 1024 * 1024) /* input without a parse event */
#define LW_USAGE_JSON_MAX_STRING (16 * 1024)      /* string bytes given to yajl; the rest
                                                   * of a longer string is only counted */

/* The Responses API's built-in tools, billed per call or session outside
 * `usage` (wire-format reference 1.3): an output item of the tool's call
 * type says it ran. */
typedef enum {
    LW_TOOL_WEB_SEARCH,       /* web_search_call */
    LW_TOOL_FILE_SEARCH,      /* file_search_call */
    LW_TOOL_CODE_INTERPRETER, /* code_interpreter_call */
    LW_TOOL_IMAGE_GENERATION, /* image_generation_call */
    LW_TOOL_MCP,              /* mcp_call */
    LW_TOOL_COUNT,
} LwTool;

/* The output item type that says `tool` ran ("web_search_call"). Static. */
const char *lw_usage_json_tool_item(LwTool tool);

typedef struct {
    gboolean have_usage; /* a usage object was read (the last one in the document wins) */
    LwUsageFields usage;
    const char *raw_usage; /* its text as received, NUL-terminated; NULL if over the cap */
    gsize raw_usage_len;
    const char *model; /* NULL when absent or longer than LW_USAGE_JSON_MAX_NAME */
    const char *id;
    const char *type; /* top-level "type" string, NULL when none */
    const char *service_tier; /* the tier that served it: top-level or response.service_tier
                               * (OpenAI), usage.service_tier (Anthropic); NULL when none */
    const char *inference_geo; /* Anthropic usage.inference_geo; NULL when none */
    gint64 text_bytes;  /* visible output text (a long string's raw bytes beyond
                         * LW_USAGE_JSON_MAX_STRING count as they are, escapes and all) */
    gint64 delta_bytes; /* top-level string "delta" (its meaning depends on type) */
    gboolean error;     /* top-level "error" that is not null/false/""/0 */
    gboolean have_choices;
    gint64 n_choices;
    /* A top-level "usage":null member and the bytes to delete to remove it
     * (with one adjacent comma), as offsets in the buffer given to the
     * feed call that parsed it; only set when that buffer holds the whole
     * member (always so for a document fed in one call). */
    gboolean usage_null;
    gsize usage_null_start, usage_null_end;
    /* a top-level "usage":{...} member: where it is, with one adjacent comma */
    gboolean usage_obj;
    gsize usage_obj_start, usage_obj_end;
    guint64 finished_mask; /* Gemini: bit i for candidate i with a finishReason (63: any i >= 63) */
    gboolean blocked;   /* Gemini promptFeedback.blockReason */
    /* Charges outside usage: */
    gboolean have_output;               /* a Responses output array (top-level or under
                                         * response) was read */
    gint64 output_tools[LW_TOOL_COUNT]; /* ... its items of each tool's call type */
    LwTool item_tool;                   /* the tool item.type names (an output_item event);
                                         * LW_TOOL_COUNT when none */
    gint64 search_queries; /* Gemini webSearchQueries, summed over the candidates */
} LwDocFacts;

typedef void (*LwDocFunc)(const LwDocFacts *facts, void *data);

typedef enum {
    LW_USAGE_JSON_MORE = 0, /* fine so far; feed more */
    LW_USAGE_JSON_DONE,     /* the top-level value ended (trailing bytes are ignored) */
    LW_USAGE_JSON_FAILED,   /* not JSON, or over a cap: stop feeding */
} LwUsageJsonResult;

typedef struct _LwUsageJson LwUsageJson;

/* `on_doc` is called from inside feed for each document that ends, with
 * facts valid for the duration of the call. Transfer full. */
LwUsageJson *lw_usage_json_new(LwFormat format, LwDocFunc on_doc, void *data);
void lw_usage_json_free(LwUsageJson *uj);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwUsageJson, lw_usage_json_free)

/* Starts over for a new JSON text (the next SSE event). */
void lw_usage_json_reset(LwUsageJson *uj);

/* Parses the next `len` bytes. On LW_USAGE_JSON_DONE, *ret_end (may be
 * NULL) is the offset in `buf` just past the top-level value. After DONE or
 * FAILED further input is ignored until a reset. */
LwUsageJsonResult lw_usage_json_feed(LwUsageJson *uj, const char *buf, gsize len,
                                     gsize *ret_end);

/* Total bytes fed since the last reset (those kept from yajl too). */
guint64 lw_usage_json_fed(const LwUsageJson *uj);
