/* observe.c - usage out of a response as it streams to the client (see
 * observe.h).
 *
 * Three layers: the body decoding (identity, or gzip/deflate inflated for
 * parsing only), the framing (SSE units from sse.c, or one incremental JSON
 * text), and the reading of each document (usage-json.c, with the
 * usage-peek.c prefilter so a plain text delta costs a scan, not a parse).
 *
 * Emission: identity SSE bodies go out unit by unit, each with its fate
 * (pass, terminal, dropped, or with the "usage":null member cut out);
 * contiguous pass-through units of one feed are handed on in one call. The
 * pieces of an event over the framer's cap pass as they come; its fate is
 * known at its last piece, which ends with the blank line that dispatches
 * it: only that line is then terminal.
 * Identity JSON bodies go out as they arrive; the bytes from the top-level
 * value's closing bracket on are terminal. Compressed bodies go out as they
 * arrive; the bytes from the last byte of the compressed stream on are
 * terminal when the answer was complete by then. Every rule depends only on
 * the bytes, never on how they were split into feeds.
 *
 * Strip mode (the collector added stream_options.include_usage) removes
 * what that option adds and nothing else:
 *   - a chunk with "choices":[] and a usage object is dropped (its usage
 *     counted first), unless the usage is OpenRouter's (is_byok / cost),
 *     which arrives whether asked for or not;
 *   - a top-level "usage":null member is cut out of every other chunk, with
 *     one adjacent comma, so the rest is byte for byte what the provider
 *     sends without the option;
 *   - a top-level "usage":{...} member on a chunk with choices (Gemini's
 *     OpenAI endpoint, xAI's second-to-last chunk) is cut out the same way:
 *     the collector injects the option only for providers that send no
 *     usage unless asked (account.c), so any usage there is the option's;
 *   - an event with several data lines is left whole (an edit in the joined
 *     payload has no single place in the raw bytes); providers send one.
 */
#include "observe.h"

#include <string.h>
#include <zlib.h>

#include "sse.h"
#include "usage-json.h"
#include "usage-peek.h"

#define MAX_INFLATED (64 * 1024 * 1024) /* parse at most this much of a compressed body */
#define ZBUF (16 * 1024)

typedef enum {
    ENC_IDENTITY,
    ENC_GZIP,    /* inflated for parsing only, as all compressed bodies */
    ENC_DEFLATE, /* zlib-wrapped (RFC 9110) or raw, as many servers send it */
    ENC_OTHER,   /* not read: lw_observer_accept_encoding keeps it from being asked for */
} Encoding;

typedef enum {
    FATE_PASS,
    FATE_TERMINAL,
    FATE_DROP,
    FATE_CUT, /* pass without [cut_start, cut_end) of raw */
} Fate;

/* What the document of the current SSE event said that the strip decision
 * needs (usage facts are applied as the document ends). */
typedef struct {
    gboolean parsed;
    gboolean have_usage;
    gboolean usage_always_sent; /* OpenRouter's usage: there without include_usage too */
    gboolean have_choices;
    gint64 n_choices;
    gboolean usage_null;
    gsize usage_null_start, usage_null_end;
    gboolean usage_obj;
    gsize usage_obj_start, usage_obj_end;
    char type[80];
    gboolean have_type;
} EventFacts;

struct _LwObserver {
    LwFormat format; /* the dialect of the answer */
    const LwRequestInfo *req;
    gboolean ok_status; /* 2xx */
    gboolean sse;
    gboolean json_stream; /* a streamed answer that is not SSE: Gemini's JSON array */
    gboolean strip;
    LwObserverSink sink;
    void *sink_data;
    LwUsage usage;
    LwUsageFields merged; /* Anthropic: message_start's usage under message_delta's */
    guint64 finished;     /* Gemini candidates seen finishing */
    guint want_finished;
    gboolean seen_model, seen_id; /* named (non-empty): later events need no parse for them */
    GString *pending_usage;       /* Gemini: the latest event whose usage is not parsed yet */
    gboolean ending;              /* the stream ended: the unit at hand is its unterminated end */
    gint64 tools_done[LW_TOOL_COUNT];   /* Responses: built-in tool calls output_item.done
                                         * announced */
    gint64 tools_listed[LW_TOOL_COUNT]; /* ... and those the latest output array lists */

    Encoding enc;
    gboolean parse_off; /* given up on parsing; bytes still pass */
    z_stream z;
    gboolean z_ready;
    char z_head[2]; /* ENC_DEFLATE: the first bytes, until there are two to tell the kind */
    gsize z_head_len;
    guint64 inflated;
    char *zbuf;
    gboolean flag_rest; /* every further byte is terminal */

    LwSse *framer;
    LwUsageJson *uj;
    gboolean in_event; /* the document being parsed is an SSE event payload */
    EventFacts ev;
    gboolean seen_unit; /* the framer reported a unit: a BOM can no longer lead */

    /* An event over the framer's cap, read as its pieces pass. */
    LwSseFields *os_fields; /* created for the first such event */
    gboolean os_open;       /* its last piece has not come yet */
    gboolean os_parsing;    /* its document is still being read */
    gboolean os_was_complete;

    const char *feed_buf; /* current feed: emission runs may only span it */
    gsize feed_len;
    const char *run;
    gsize run_len;
    gboolean run_terminal;
    Fate last_fate; /* for a TAIL unit */
};

/* ---- emission ------------------------------------------------------------- */

static void flush_run(LwObserver *obs)
{
    if (obs->run_len > 0)
        obs->sink.emit(obs->sink_data, obs->run, obs->run_len, obs->run_terminal);
    obs->run_len = 0;
}

static void emit(LwObserver *obs, const char *p, gsize n, gboolean terminal)
{
    if (n == 0)
        return;
    guintptr at = (guintptr)p, feed = (guintptr)obs->feed_buf;
    gboolean in_feed = obs->feed_buf != NULL && at >= feed && at + n <= feed + obs->feed_len;
    if (obs->run_len > 0 && in_feed && p == obs->run + obs->run_len &&
        terminal == obs->run_terminal) {
        obs->run_len += n;
        return;
    }
    flush_run(obs);
    if (in_feed) {
        obs->run = p;
        obs->run_len = n;
        obs->run_terminal = terminal;
    } else {
        /* the framer's buffer: only valid until its next call */
        obs->sink.emit(obs->sink_data, p, n, terminal);
    }
}

/* ---- applying what a document said ---------------------------------------- */

static gboolean type_is(const EventFacts *ev, const char *want)
{
    return ev->have_type && strcmp(ev->type, want) == 0;
}

static gboolean is_text_delta_type(const char *t, gsize n)
{
#define T(lit) (n == sizeof(lit) - 1 && memcmp(t, lit, n) == 0)
    return T("response.output_text.delta") || T("response.refusal.delta") ||
           T("response.function_call_arguments.delta") || T("response.reasoning_text.delta") ||
           T("response.reasoning_summary_text.delta");
#undef T
}

/* Responses events that carry the response object (model, id, usage). */
static gboolean is_lifecycle_type(const char *t, gsize n)
{
#define T(lit) (n == sizeof(lit) - 1 && memcmp(t, lit, n) == 0)
    return T("response.created") || T("response.in_progress") || T("response.queued") ||
           T("response.completed") || T("response.incomplete") || T("response.failed");
#undef T
}

/* The first non-empty name wins: a stream's first chunk may carry "" (an
 * Azure prompt-filter chunk does), which names nothing. */
static void set_name(char **slot, const char *value)
{
    if (value != NULL && value[0] != '\0' && *slot == NULL)
        *slot = g_strdup(value);
}

static void apply_usage(LwObserver *obs, const LwDocFacts *f)
{
    const LwUsageFields *fields = &f->usage;
    gboolean anthropic_stream = f->type != NULL && (strcmp(f->type, "message_start") == 0 ||
                                                    strcmp(f->type, "message_delta") == 0);
    if (obs->format == LW_FORMAT_ANTHROPIC || anthropic_stream) {
        /* message_delta's usage is cumulative: its fields replace
         * message_start's, those it lacks stay; never summed */
        lw_usage_fields_merge(&obs->merged, &f->usage);
        fields = &obs->merged;
    } else {
        obs->merged = f->usage; /* running totals: the last object wins whole */
    }

    LwTokens tokens;
    gint64 cost;
    if (!lw_usage_fields_normalise(fields, obs->format, &tokens, &cost))
        return;
    obs->usage.tokens = tokens;
    obs->usage.have_usage = TRUE;
    obs->usage.have_provider_cost = cost >= 0;
    obs->usage.provider_cost_pusd = cost >= 0 ? cost : 0;
    g_free(obs->usage.raw_usage);
    obs->usage.raw_usage = f->raw_usage != NULL ? g_strndup(f->raw_usage, f->raw_usage_len) : NULL;
    /* cumulative in an Anthropic stream, like the rest: the latest count */
    obs->usage.web_searches = lw_usage_fields_has(fields, LW_UF_WEB_SEARCHES)
                                  ? MAX(fields->v[LW_UF_WEB_SEARCHES], 0)
                                  : 0;
}

/* Responses built-in tool calls. The answer's output array lists every
 * call (the whole body, or response.completed's response); a stream also
 * announces each as it finishes (response.output_item.done), which is all
 * there is of a stream cut before its end. The larger count of the two,
 * never their sum. */
static void count_tool_calls(LwObserver *obs, const LwDocFacts *f)
{
    if (f->item_tool < LW_TOOL_COUNT && f->type != NULL &&
        strcmp(f->type, "response.output_item.done") == 0)
        obs->tools_done[f->item_tool]++;
    if (f->have_output)
        memcpy(obs->tools_listed, f->output_tools, sizeof obs->tools_listed);
    for (int t = 0; t < LW_TOOL_COUNT; t++)
        obs->usage.tool_calls[t] = MAX(obs->tools_done[t], obs->tools_listed[t]);
}

static void on_doc(const LwDocFacts *f, void *data)
{
    LwObserver *obs = data;
    set_name(&obs->usage.model_served, f->model);
    set_name(&obs->usage.response_id, f->id);
    if (f->service_tier != NULL) /* the latest report wins */
        g_strlcpy(obs->usage.service_tier, f->service_tier, sizeof obs->usage.service_tier);
    if (f->inference_geo != NULL)
        g_strlcpy(obs->usage.inference_geo, f->inference_geo, sizeof obs->usage.inference_geo);
    count_tool_calls(obs, f);
    /* a stream may repeat the grounding metadata on later chunks: the most
     * one chunk lists, never a sum */
    obs->usage.search_queries = MAX(obs->usage.search_queries, f->search_queries);
    obs->usage.output_text_bytes += f->text_bytes;
    if (f->type != NULL && is_text_delta_type(f->type, strlen(f->type)))
        obs->usage.output_text_bytes += f->delta_bytes;
    if (f->have_usage)
        apply_usage(obs, f);
    obs->finished |= f->finished_mask;

    /* An error document inside a 2xx stream (an SSE event, or an element of
     * Gemini's JSON-array stream); a whole error body is no mid-stream error. */
    gboolean error = f->error || (f->type != NULL && (strcmp(f->type, "error") == 0 ||
                                                      strcmp(f->type, "response.failed") == 0));
    if (error && obs->ok_status && (obs->in_event || obs->json_stream))
        obs->usage.mid_stream_error = TRUE;

    if (obs->format == LW_FORMAT_GEMINI && obs->in_event &&
        ((guint)__builtin_popcountll(obs->finished) >= obs->want_finished || f->blocked))
        obs->usage.complete = TRUE;

    EventFacts *ev = &obs->ev;
    ev->parsed = TRUE;
    ev->have_usage = f->have_usage;
    ev->usage_always_sent = f->have_usage && (lw_usage_fields_has(&f->usage, LW_UF_IS_BYOK) ||
                                              lw_usage_fields_has(&f->usage, LW_UF_COST_PUSD));
    ev->have_choices = f->have_choices;
    ev->n_choices = f->n_choices;
    ev->usage_null = f->usage_null;
    ev->usage_null_start = f->usage_null_start;
    ev->usage_null_end = f->usage_null_end;
    ev->usage_obj = f->usage_obj;
    ev->usage_obj_start = f->usage_obj_start;
    ev->usage_obj_end = f->usage_obj_end;
    ev->have_type = f->type != NULL && g_strlcpy(ev->type, f->type, sizeof ev->type) < sizeof ev->type;
}

/* ---- SSE events ----------------------------------------------------------- */

static gboolean slice_is(const char *p, gsize n, const char *lit)
{
    gsize l = strlen(lit);
    return p != NULL && n == l && memcmp(p, lit, l) == 0;
}

static gboolean has_prefix(const char *p, gsize n, const char *lit)
{
    gsize l = strlen(lit);
    return p != NULL && n >= l && memcmp(p, lit, l) == 0;
}

static void parse_event(LwObserver *obs, const char *data, gsize len)
{
    memset(&obs->ev, 0, sizeof obs->ev);
    lw_usage_json_reset(obs->uj);
    obs->in_event = TRUE;
    lw_usage_json_feed(obs->uj, data, len, NULL);
    obs->in_event = FALSE;
}

/* OpenAI-format event: chat/completions chunks and Responses events. */
static Fate openai_event(LwObserver *obs, const LwSseUnit *u, const char *data, gsize len,
                         gsize *ret_cut_start, gsize *ret_cut_end)
{
    if (slice_is(u->event, u->event_len, "error") && obs->ok_status)
        obs->usage.mid_stream_error = TRUE;

    LwPeek pk;
    lw_usage_peek(data, len, &pk);
    const char *type = u->event != NULL ? u->event : pk.type;
    gsize type_len = u->event != NULL ? u->event_len : pk.type_len;
    gboolean responses = has_prefix(type, type_len, "response.");
    /* Parse what can carry usage, model, id, an error, a tool call or the
     * end; a text delta only needs its text measured. */
    gboolean slow = pk.usage_value > 0 || pk.error || pk.x_groq || pk.truncated || pk.call_item ||
                    pk.escaped_name ||
                    (pk.model && !obs->seen_model) || (pk.id && !obs->seen_id) ||
                    slice_is(type, type_len, "error") ||
                    (responses && is_lifecycle_type(type, type_len));

    gboolean cut_fast = FALSE;
    static const char tail[] = ",\"usage\":null}";
    gsize tail_len = sizeof tail - 1;
    if (obs->strip && pk.usage_null > 0 && !slow) {
        /* The common chunk ends in ,"usage":null}: in valid JSON that is
         * the top-level object's last member, so cut it without a parse. */
        gsize end = len;
        while (end > 0 && g_ascii_isspace(data[end - 1]))
            end--;
        if (pk.usage_null == 1 && u->data_in_raw && end >= tail_len + 1 &&
            memcmp(data + end - tail_len, tail, tail_len) == 0) {
            cut_fast = TRUE;
            *ret_cut_start = (gsize)(data - u->raw) + end - tail_len;
            *ret_cut_end = *ret_cut_start + tail_len - 1;
        } else {
            slow = TRUE;
        }
    }

    if (!slow) {
        if (responses) {
            if (is_text_delta_type(type, type_len))
                obs->usage.output_text_bytes += pk.text[LW_PEEK_DELTA];
        } else {
            obs->usage.output_text_bytes += pk.text[LW_PEEK_CONTENT] + pk.text[LW_PEEK_REFUSAL] +
                                            pk.text[LW_PEEK_ARGUMENTS] + pk.text[LW_PEEK_TEXT] +
                                            pk.text[LW_PEEK_REASONING];
        }
        return cut_fast ? FATE_CUT : FATE_PASS;
    }

    parse_event(obs, data, len);
    /* once named, the model and id need no parse of later events */
    obs->seen_model = obs->usage.model_served != NULL;
    obs->seen_id = obs->usage.response_id != NULL;
    const EventFacts *ev = &obs->ev;
    const char *t = u->event != NULL ? u->event : (ev->have_type ? ev->type : NULL);
    gsize tl = u->event != NULL ? u->event_len : (t != NULL ? strlen(t) : 0);
    if (slice_is(t, tl, "response.completed") || slice_is(t, tl, "response.incomplete") ||
        slice_is(t, tl, "response.failed")) {
        obs->usage.complete = TRUE;
        return FATE_TERMINAL;
    }
    if (obs->strip && ev->parsed) {
        /* the usage-only chunk include_usage added: naive clients index choices[0] */
        if (ev->have_usage && ev->have_choices && ev->n_choices == 0 && !ev->usage_always_sent)
            return FATE_DROP;
        if (ev->usage_null && u->data_in_raw) {
            *ret_cut_start = (gsize)(data - u->raw) + ev->usage_null_start;
            *ret_cut_end = (gsize)(data - u->raw) + ev->usage_null_end;
            return FATE_CUT;
        }
        /* usage packed into a content chunk (Gemini's OpenAI endpoint, xAI's
         * second-to-last chunk): only there because it was asked for */
        if (ev->have_usage && ev->usage_obj && !ev->usage_always_sent && u->data_in_raw) {
            *ret_cut_start = (gsize)(data - u->raw) + ev->usage_obj_start;
            *ret_cut_end = (gsize)(data - u->raw) + ev->usage_obj_end;
            return FATE_CUT;
        }
    }
    return FATE_PASS;
}

static Fate anthropic_event(LwObserver *obs, const LwSseUnit *u, const char *data, gsize len)
{
    LwPeek pk;
    lw_usage_peek(data, len, &pk);
    const char *type = u->event != NULL ? u->event : pk.type;
    gsize type_len = u->event != NULL ? u->event_len : pk.type_len;

    if (slice_is(type, type_len, "message_stop")) {
        obs->usage.complete = TRUE;
        return FATE_TERMINAL;
    }
    if (slice_is(type, type_len, "error") && obs->ok_status)
        obs->usage.mid_stream_error = TRUE;
    if (slice_is(type, type_len, "content_block_delta") && pk.usage_value == 0 && !pk.error) {
        obs->usage.output_text_bytes += pk.text[LW_PEEK_TEXT] + pk.text[LW_PEEK_PARTIAL_JSON] +
                                        pk.text[LW_PEEK_REASONING];
        return FATE_PASS;
    }
    if (slice_is(type, type_len, "message_start") || slice_is(type, type_len, "message_delta") ||
        slice_is(type, type_len, "error") || pk.usage_value > 0 || pk.error ||
        (pk.model && !obs->seen_model) || type == NULL) {
        parse_event(obs, data, len);
        obs->seen_model = obs->usage.model_served != NULL;
        if (u->event == NULL && type_is(&obs->ev, "message_stop")) {
            obs->usage.complete = TRUE;
            return FATE_TERMINAL;
        }
    }
    return FATE_PASS;
}

/* Gemini sends usageMetadata on every chunk, each a running total, so only
 * the latest one counts. A chunk that can neither end the answer (finish
 * or block reason, error), name the model or id, nor list grounding
 * queries is only scanned for its text, and kept whole if it carries
 * usage; that usage is parsed when someone asks for it
 * (lw_observer_usage), which settlement does once and a metered stream
 * after every read. */
static Fate gemini_event(LwObserver *obs, const char *data, gsize len)
{
    LwPeek pk;
    lw_usage_peek(data, len, &pk);
    /* An event the stream ended inside may be cut anywhere, its usage
     * unreadable: it must not take the place of the last whole report, so
     * it is parsed now rather than kept. */
    if (obs->seen_model && obs->seen_id && !pk.truncated && !pk.error && !pk.finish_reason &&
        !pk.prompt_feedback && !pk.grounding && pk.usage_value == 0 && !pk.escaped_name &&
        !obs->ending) {
        /* Parts' text, thoughts too. The scan counts every "text" member, so
         * grounding metadata's segment texts would count as well: an
         * over-estimate, on the side a metering bound can take. */
        obs->usage.output_text_bytes += pk.text[LW_PEEK_TEXT];
        if (pk.usage_metadata) {
            if (obs->pending_usage == NULL)
                obs->pending_usage = g_string_sized_new(len);
            g_string_truncate(obs->pending_usage, 0);
            g_string_append_len(obs->pending_usage, data, (gssize)len);
        }
        return FATE_PASS;
    }

    gboolean was_complete = obs->usage.complete;
    parse_event(obs, data, len);
    obs->seen_model = obs->usage.model_served != NULL;
    obs->seen_id = obs->usage.response_id != NULL;
    /* Superseded only by usage this event gave: one cut before its end
     * gave none, and the kept event is then the latest whole report. */
    if (obs->ev.have_usage && obs->pending_usage != NULL)
        g_string_truncate(obs->pending_usage, 0);
    return obs->usage.complete && !was_complete ? FATE_TERMINAL : FATE_PASS;
}

/* Parses the usage gemini_event kept. Its text was counted when it passed,
 * and it could not end the answer, so only the usage is taken from it. */
static void apply_pending_usage(LwObserver *obs)
{
    if (obs->pending_usage == NULL || obs->pending_usage->len == 0)
        return;
    gint64 text_bytes = obs->usage.output_text_bytes;
    parse_event(obs, obs->pending_usage->str, obs->pending_usage->len);
    obs->usage.output_text_bytes = text_bytes;
    g_string_truncate(obs->pending_usage, 0);
}

/* The fate of an event over the cap, once its last piece is in: what
 * event_fate decides for a kept event, from its name and its parsed
 * document. Its bytes are out already, so it is never cut or dropped. */
static Fate oversize_fate(LwObserver *obs)
{
    gsize tl = 0;
    const char *type = lw_sse_fields_event(obs->os_fields, &tl);
    if (type == NULL && obs->ev.have_type) {
        type = obs->ev.type;
        tl = strlen(type);
    }
    if (obs->format != LW_FORMAT_GEMINI && slice_is(type, tl, "error") && obs->ok_status)
        obs->usage.mid_stream_error = TRUE;
    gboolean ends = FALSE;
    switch (obs->format) {
    case LW_FORMAT_OPENAI:
        ends = slice_is(type, tl, "response.completed") ||
               slice_is(type, tl, "response.incomplete") || slice_is(type, tl, "response.failed");
        break;
    case LW_FORMAT_ANTHROPIC:
        ends = slice_is(type, tl, "message_stop");
        break;
    case LW_FORMAT_GEMINI:
        if (obs->ev.have_usage && obs->pending_usage != NULL)
            g_string_truncate(obs->pending_usage, 0); /* superseded */
        return obs->usage.complete && !obs->os_was_complete ? FATE_TERMINAL : FATE_PASS;
    }
    if (ends)
        obs->usage.complete = TRUE;
    return ends ? FATE_TERMINAL : FATE_PASS;
}

/* A piece of an event over the framer's cap (a Responses
 * response.completed repeating a 9 MiB image, a Gemini chunk with one
 * inline): never kept whole, its data is parsed as it passes, where
 * usage-json keeps long strings from yajl, so memory stays bounded and the
 * usage after the image is still read. */
static Fate oversize_piece(LwObserver *obs, const LwSseUnit *u)
{
    if (!obs->os_open) {
        if (obs->os_fields == NULL)
            obs->os_fields = lw_sse_fields_new();
        lw_sse_fields_reset(obs->os_fields, !obs->seen_unit);
        memset(&obs->ev, 0, sizeof obs->ev);
        lw_usage_json_reset(obs->uj);
        obs->os_open = TRUE;
        obs->os_parsing = TRUE;
        obs->os_was_complete = obs->usage.complete;
    }
    const char *p = u->raw, *data;
    gsize n = u->raw_len, data_len;
    while (lw_sse_fields_next(obs->os_fields, &p, &n, &data, &data_len)) {
        if (!obs->os_parsing)
            continue; /* the document ended or failed; the event name may still come */
        obs->in_event = TRUE;
        obs->os_parsing = lw_usage_json_feed(obs->uj, data, data_len, NULL) == LW_USAGE_JSON_MORE;
        obs->in_event = FALSE;
    }
    if (!u->last)
        return FATE_PASS;
    obs->os_open = FALSE;
    return oversize_fate(obs);
}

static Fate event_fate(LwObserver *obs, const LwSseUnit *u, gsize *ret_cut_start,
                       gsize *ret_cut_end)
{
    if (u->data == NULL) {
        if (obs->format != LW_FORMAT_GEMINI && slice_is(u->event, u->event_len, "error") &&
            obs->ok_status)
            obs->usage.mid_stream_error = TRUE;
        return FATE_PASS;
    }
    const char *data = u->data;
    gsize len = u->data_len;
    while (len > 0 && g_ascii_isspace(data[0])) {
        data++;
        len--;
    }
    gsize trimmed = len;
    while (trimmed > 0 && g_ascii_isspace(data[trimmed - 1]))
        trimmed--;
    if (trimmed == 0)
        return FATE_PASS;

    switch (obs->format) {
    case LW_FORMAT_OPENAI:
        if (slice_is(data, trimmed, "[DONE]")) {
            obs->usage.complete = TRUE;
            return FATE_TERMINAL;
        }
        return openai_event(obs, u, data, len, ret_cut_start, ret_cut_end);
    case LW_FORMAT_ANTHROPIC:
        return anthropic_event(obs, u, data, len);
    case LW_FORMAT_GEMINI:
        return gemini_event(obs, data, len);
    }
    return FATE_PASS;
}

/* Handles one unit; `out` FALSE when the raw bytes go out elsewhere
 * (compressed bodies). */
static void on_unit(LwObserver *obs, const LwSseUnit *u, gboolean out)
{
    Fate fate = FATE_PASS;
    gsize cut_start = 0, cut_end = 0;
    switch (u->kind) {
    case LW_SSE_EVENT:
        fate = event_fate(obs, u, &cut_start, &cut_end);
        break;
    case LW_SSE_TAIL:
        fate = obs->last_fate == FATE_CUT ? FATE_PASS : obs->last_fate;
        break;
    case LW_SSE_OVERSIZE:
        fate = oversize_piece(obs, u);
        break;
    case LW_SSE_NOISE:
        break;
    }
    obs->seen_unit = TRUE;
    if (u->kind != LW_SSE_TAIL)
        obs->last_fate = fate;
    if (!out)
        return;
    switch (fate) {
    case FATE_PASS:
        emit(obs, u->raw, u->raw_len, FALSE);
        break;
    case FATE_TERMINAL:
        if (u->kind == LW_SSE_OVERSIZE) {
            /* The earlier pieces went out, so only the blank line that
             * dispatches the event is held (its last piece ends with it):
             * the same bytes however the event was cut. */
            gsize blank = u->raw_len >= 2 && u->raw[u->raw_len - 2] == '\r' &&
                                  u->raw[u->raw_len - 1] == '\n'
                              ? 2
                              : 1;
            emit(obs, u->raw, u->raw_len - blank, FALSE);
            emit(obs, u->raw + u->raw_len - blank, blank, TRUE);
        } else {
            emit(obs, u->raw, u->raw_len, TRUE);
        }
        break;
    case FATE_DROP:
        break;
    case FATE_CUT:
        emit(obs, u->raw, cut_start, FALSE);
        emit(obs, u->raw + cut_end, u->raw_len - cut_end, FALSE);
        break;
    }
}

static void frame(LwObserver *obs, const char *buf, gsize len, gboolean out)
{
    LwSseUnit u;
    while (lw_sse_next(obs->framer, &buf, &len, &u) == LW_SSE_UNIT)
        on_unit(obs, &u, out);
}

/* ---- JSON bodies ---------------------------------------------------------- */

/* Parses plain JSON; returns the offset in buf just past the top-level
 * value when it ends here, else -1. */
static gssize parse_json(LwObserver *obs, const char *buf, gsize len)
{
    if (obs->parse_off || obs->usage.complete)
        return -1;
    gsize end = 0;
    switch (lw_usage_json_feed(obs->uj, buf, len, &end)) {
    case LW_USAGE_JSON_DONE:
        obs->usage.complete = TRUE;
        return (gssize)end;
    case LW_USAGE_JSON_FAILED:
        obs->parse_off = TRUE;
        return -1;
    case LW_USAGE_JSON_MORE:
        break;
    }
    return -1;
}

/* ---- compressed bodies ---------------------------------------------------- */

static void plain(LwObserver *obs, const char *buf, gsize len)
{
    if (obs->sse)
        frame(obs, buf, len, FALSE);
    else
        parse_json(obs, buf, len);
}

static void set_unreadable(LwObserver *obs, const char *why)
{
    if (obs->usage.unreadable[0] == '\0')
        g_strlcpy(obs->usage.unreadable, why, sizeof obs->usage.unreadable);
}

/* Inflates `len` bytes for parsing; returns the offset just past the end of
 * the compressed stream when it ends here, else -1. */
static gssize inflate_run(LwObserver *obs, const char *buf, gsize len)
{
    gssize stream_end = -1;
    obs->z.next_in = (Bytef *)buf;
    obs->z.avail_in = (uInt)len;
    while (obs->z.avail_in > 0 && !obs->parse_off) {
        obs->z.next_out = (Bytef *)obs->zbuf;
        obs->z.avail_out = ZBUF;
        int rc = inflate(&obs->z, Z_NO_FLUSH);
        gsize produced = ZBUF - obs->z.avail_out;
        if (obs->inflated + produced > MAX_INFLATED) {
            /* A bomb, or just too big to be worth it. Exactly the first
             * MAX_INFLATED bytes are parsed, however the input was cut. */
            plain(obs, obs->zbuf, MAX_INFLATED - obs->inflated);
            obs->parse_off = TRUE;
            set_unreadable(obs, "the answer inflates past 64 MiB");
            break;
        }
        obs->inflated += produced;
        plain(obs, obs->zbuf, produced);
        if (rc == Z_STREAM_END) {
            /* All output of this stream is parsed: if that completed the
             * answer, its last byte is where the terminal bytes start. */
            if (obs->usage.complete && stream_end < 0 && !obs->flag_rest)
                stream_end = (gssize)(len - obs->z.avail_in);
            if (obs->z.avail_in == 0)
                break;
            if (inflateReset(&obs->z) != Z_OK) /* another gzip member follows */
                obs->parse_off = TRUE;
        } else if (rc == Z_BUF_ERROR) {
            if (produced == 0)
                break;
        } else if (rc != Z_OK) {
            /* Said only when what inflated before the error still parsed:
             * how much of it one call produced depends on the cuts. */
            if (!obs->parse_off)
                set_unreadable(obs, "the answer's compressed data is corrupt");
            obs->parse_off = TRUE;
        }
    }
    return stream_end;
}

static void z_start(LwObserver *obs, int window_bits)
{
    if (inflateInit2(&obs->z, window_bits) == Z_OK) {
        obs->z_ready = TRUE;
        obs->zbuf = g_malloc(ZBUF);
    } else {
        obs->parse_off = TRUE;
        set_unreadable(obs, "zlib could not start");
    }
}

/* A zlib stream starts with CMF (method 8, window at most 32 KiB) and FLG,
 * which make a multiple of 31 (RFC 1950); a gzip member with 1f 8b. */
static gboolean is_zlib_or_gzip_head(const char *h)
{
    guint8 cmf = (guint8)h[0], flg = (guint8)h[1];
    if (cmf == 0x1f && flg == 0x8b)
        return TRUE;
    return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf * 256u + flg) % 31 == 0;
}

/* HTTP's "deflate" is the zlib format (RFC 9110), but servers send raw
 * deflate too, as browsers and curl accept both: the first two bytes say
 * which, so the choice does not depend on how the body was cut. */
static gssize inflate_feed(LwObserver *obs, const char *buf, gsize len)
{
    if (obs->z_ready)
        return inflate_run(obs, buf, len);
    gsize held = obs->z_head_len;
    gsize take = MIN(len, sizeof obs->z_head - held);
    memcpy(obs->z_head + held, buf, take);
    obs->z_head_len += take;
    if (obs->z_head_len < sizeof obs->z_head)
        return -1;
    /* 15 + 32: a zlib or a gzip header, whichever it is; -15: raw */
    z_start(obs, is_zlib_or_gzip_head(obs->z_head) ? 15 + 32 : -15);
    if (held > 0 && !obs->parse_off)
        inflate_run(obs, obs->z_head, held); /* the byte an earlier feed brought */
    return obs->parse_off ? -1 : inflate_run(obs, buf, len);
}

/* ---- API ------------------------------------------------------------------ */

static gboolean media_type_is(const char *value, const char *want)
{
    if (value == NULL)
        return FALSE;
    while (*value == ' ' || *value == '\t')
        value++;
    gsize n = strcspn(value, "; \t");
    return n == strlen(want) && g_ascii_strncasecmp(value, want, n) == 0;
}

static Encoding encoding_of(const char *value)
{
    if (value == NULL)
        return ENC_IDENTITY;
    g_autofree char *v = g_strstrip(g_ascii_strdown(value, -1));
    if (*v == '\0' || strcmp(v, "identity") == 0)
        return ENC_IDENTITY;
    if (strcmp(v, "gzip") == 0 || strcmp(v, "x-gzip") == 0)
        return ENC_GZIP;
    if (strcmp(v, "deflate") == 0)
        return ENC_DEFLATE;
    return ENC_OTHER; /* br, zstd, stacked codings: not parsed */
}

/* One Accept-Encoding entry: "coding *( OWS ; OWS param )". Is it one of
 * the codings inflate_feed reads, and is its q above zero? */
static gboolean is_readable_coding(const char *entry, gsize len, gboolean *ret_nonzero)
{
    gsize n = 0;
    while (n < len && entry[n] != ';' && entry[n] != ' ' && entry[n] != '\t')
        n++;
    static const char *const readable[] = {"gzip", "x-gzip", "deflate", "identity"};
    gboolean known = FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(readable); i++)
        known |= n == strlen(readable[i]) && g_ascii_strncasecmp(entry, readable[i], n) == 0;
    *ret_nonzero = TRUE;
    for (const char *p = entry + n, *end = entry + len; p < end; p++) {
        if (*p != ';')
            continue;
        const char *q = p + 1;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (end - q >= 2 && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
            /* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
            gboolean zero = q + 2 < end && q[2] == '0';
            for (q += 3; zero && q < end && *q != ';' && *q != ' ' && *q != '\t'; q++)
                zero = *q == '.' || *q == '0';
            *ret_nonzero = !zero;
        }
    }
    return known;
}

char *lw_observer_accept_encoding(const char *accept)
{
    GString *out = g_string_new(NULL);
    gboolean any_nonzero = FALSE;
    for (const char *p = accept; p != NULL && *p != '\0';) {
        gsize len = strcspn(p, ",");
        const char *e = p, *end = p + len;
        while (e < end && (*e == ' ' || *e == '\t'))
            e++;
        while (end > e && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        gboolean nonzero;
        if (end > e && is_readable_coding(e, (gsize)(end - e), &nonzero)) {
            if (out->len > 0)
                g_string_append(out, ", ");
            g_string_append_len(out, e, end - e);
            any_nonzero |= nonzero;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (!any_nonzero)
        g_string_assign(out, "identity");
    return g_string_free(out, FALSE);
}

/* The dialect of the answer: the endpoint's when known (Gemini's OpenAI
 * compatible endpoint answers in OpenAI's format on Gemini's host). */
static LwFormat answer_format(LwFormat format, const LwRequestInfo *req)
{
    return req != NULL ? lw_endpoint_format(req->endpoint, format) : format;
}

LwObserver *lw_observer_new(LwFormat format, const LwRequestInfo *req, int status,
                            const char *content_type, const char *content_encoding,
                            gboolean strip_injected_usage, const LwObserverSink *sink,
                            void *sink_data)
{
    g_return_val_if_fail(sink != NULL && sink->emit != NULL, NULL);
    LwObserver *obs = g_new0(LwObserver, 1);
    obs->format = answer_format(format, req);
    obs->req = req;
    obs->ok_status = status >= 200 && status < 300;
    if (content_type != NULL)
        obs->sse = media_type_is(content_type, "text/event-stream");
    else
        obs->sse = req != NULL && req->sse;
    obs->json_stream = !obs->sse && req != NULL && req->stream;
    obs->enc = encoding_of(content_encoding);
    obs->strip = strip_injected_usage && obs->sse && obs->enc == ENC_IDENTITY &&
                 obs->format == LW_FORMAT_OPENAI && obs->ok_status;
    obs->sink = *sink;
    obs->sink_data = sink_data;
    obs->want_finished = req != NULL ? (guint)CLAMP(req->choices, 1, 64) : 1;
    lw_usage_fields_reset(&obs->merged);
    obs->uj = lw_usage_json_new(obs->format, on_doc, obs);
    if (obs->sse)
        obs->framer = lw_sse_new(LW_SSE_MAX_EVENT);
    if (obs->enc == ENC_GZIP) {
        /* 15 + 32: a zlib or a gzip header, whichever the body has */
        z_start(obs, 15 + 32);
    } else if (obs->enc == ENC_OTHER) {
        /* Asked for by no request the collector sent (the provider chose it
         * anyway): said so on the row, since its usage is then unknown. */
        obs->parse_off = TRUE;
        /* The provider's bytes go on the row: printable ASCII only, and
         * at most 24 of them, so no UTF-8 sequence is cut. */
        char coding[25];
        gsize n = 0;
        for (const char *p = content_encoding; *p != '\0' && n < sizeof coding - 1; p++)
            coding[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
        coding[n] = '\0';
        g_autofree char *why =
            g_strdup_printf("the answer is encoded as '%s', which llmwrap cannot read", coding);
        set_unreadable(obs, why);
    }
    return obs;
}

void lw_usage_clear(LwUsage *usage)
{
    if (usage == NULL)
        return;
    g_free(usage->model_served);
    g_free(usage->raw_usage);
    g_free(usage->response_id);
    memset(usage, 0, sizeof *usage);
}

void lw_observer_free(LwObserver *obs)
{
    if (obs == NULL)
        return;
    lw_usage_clear(&obs->usage);
    lw_sse_free(obs->framer);
    lw_sse_fields_free(obs->os_fields);
    lw_usage_json_free(obs->uj);
    if (obs->z_ready)
        inflateEnd(&obs->z);
    g_free(obs->zbuf);
    if (obs->pending_usage != NULL)
        g_string_free(obs->pending_usage, TRUE);
    g_free(obs);
}

void lw_observer_feed(LwObserver *obs, const char *buf, gsize len)
{
    g_return_if_fail(obs != NULL);
    if (len == 0)
        return;
    obs->feed_buf = buf;
    obs->feed_len = len;

    if (obs->enc == ENC_IDENTITY && obs->sse) {
        frame(obs, buf, len, TRUE);
    } else if (obs->enc == ENC_IDENTITY) {
        gssize end = parse_json(obs, buf, len);
        if (end > 0) {
            /* the closing bracket ends the answer */
            emit(obs, buf, (gsize)end - 1, FALSE);
            emit(obs, buf + end - 1, len - (gsize)end + 1, TRUE);
            obs->flag_rest = TRUE;
        } else {
            emit(obs, buf, len, obs->flag_rest);
        }
    } else {
        gssize end = -1;
        if (!obs->parse_off)
            end = inflate_feed(obs, buf, len);
        if (end > 0) {
            emit(obs, buf, (gsize)end - 1, FALSE);
            emit(obs, buf + end - 1, len - (gsize)end + 1, TRUE);
            obs->flag_rest = TRUE;
        } else {
            emit(obs, buf, len, obs->flag_rest);
        }
    }
    flush_run(obs);
    obs->feed_buf = NULL;
    obs->feed_len = 0;
}

void lw_observer_finish(LwObserver *obs)
{
    g_return_if_fail(obs != NULL);
    if (obs->framer == NULL)
        return;
    LwSseUnit u;
    if (lw_sse_finish(obs->framer, &u)) {
        obs->ending = TRUE;
        on_unit(obs, &u, obs->enc == ENC_IDENTITY);
        obs->ending = FALSE;
    } else if (obs->os_open) {
        /* the stream ended inside an event over the cap: its bytes are
         * out, and what it said counts, as for an unterminated kept one */
        lw_sse_fields_end(obs->os_fields);
        LwSseUnit none = {.kind = LW_SSE_OVERSIZE, .raw = "", .last = TRUE};
        oversize_piece(obs, &none);
    }
    flush_run(obs);
}

const LwUsage *lw_observer_usage(LwObserver *obs)
{
    g_return_val_if_fail(obs != NULL, NULL);
    apply_pending_usage(obs);
    return &obs->usage;
}

gboolean lw_observer_rewrites(const LwObserver *obs)
{
    g_return_val_if_fail(obs != NULL, FALSE);
    return obs->strip;
}
