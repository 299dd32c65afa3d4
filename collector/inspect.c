/* inspect.c - what a request asks for, and byte-exact edits to it (see
 * inspect.h).
 *
 * One SAX pass over the body (it is in memory already: the request is
 * forwarded whole) records the fields that matter and, for the rewrites,
 * where their values and the enclosing objects' closing braces are. An
 * edit splices new text at those offsets and copies every other byte, so
 * the provider sees the client's body with one field changed.
 */
#include "inspect.h"

#include <string.h>
#include <yajl/yajl_parse.h>

#include "json.h"
#include "usage-fields.h"
#include "usage-keys.h"

#define MAX_DEPTH 256      /* deeper bodies are not inspected (yajl's stack grows per level) */
#define MAX_MODEL_NAME 256 /* longer "model" values are not kept */
#define TRACK_DEPTH 3      /* keys tracked down to generationConfig.thinkingConfig.x */

typedef struct {
    gssize start, end; /* [start, end) of a value in the body; start < 0: absent */
} Span;

typedef struct {
    Span value;
    gboolean is_map;
    gsize close;    /* offset of its closing brace, when is_map */
    guint members;  /* members it has, when is_map */
    gboolean snake; /* spelled in snake_case (Gemini accepts both) */
} Obj;

typedef struct {
    const char *body;
    gsize len;
    yajl_handle yh;
    gboolean object;      /* the top level is an object */
    gboolean complete;    /* ... and it parsed to its end */
    int depth;
    LwKey key[TRACK_DEPTH + 1];
    gsize key_end[TRACK_DEPTH + 1]; /* offset just past the member name */
    gboolean key_snake[TRACK_DEPTH + 1];

    /* fields */
    char *model;
    gboolean stream, include_usage, server_state;
    gboolean speed_fast, web_search_options;
    gint64 max_tokens, max_completion_tokens, max_output_tokens, n, best_of;
    gint64 g_max_output, g_candidates, g_thinking_budget;

    /* positions */
    Obj top;
    Span model_at;
    Obj stream_options;
    Span include_usage_at;
    Span max_tokens_at, max_completion_tokens_at, max_output_tokens_at;
    Obj generation_config;
    Span g_max_output_at;
} Scan;

const char *lw_endpoint_name(LwEndpoint endpoint)
{
    switch (endpoint) {
    case LW_ENDPOINT_OTHER: return "other";
    case LW_ENDPOINT_CHAT: return "chat";
    case LW_ENDPOINT_RESPONSES: return "responses";
    case LW_ENDPOINT_EMBEDDINGS: return "embeddings";
    case LW_ENDPOINT_COMPLETIONS: return "completions";
    case LW_ENDPOINT_MESSAGES: return "messages";
    case LW_ENDPOINT_COUNT_TOKENS: return "count_tokens";
    case LW_ENDPOINT_GENERATE: return "generate";
    case LW_ENDPOINT_STREAM_GENERATE: return "stream_generate";
    case LW_ENDPOINT_EMBED_CONTENT: return "embed_content";
    case LW_ENDPOINT_UNPRICED: return "unpriced";
    }
    return "other";
}

/* ---- the path --------------------------------------------------------------- */

char *lw_path_for_display(const char *path)
{
    /* A query percent-encoded into the path ("...:generateContent%3Fkey=..."
     * from a client that encoded its whole URL) reaches no provider as a
     * query, but its key= is the caller's key all the same: cut there too. */
    gsize n = 0;
    while (path[n] != '\0' && path[n] != '?' && path[n] != '#' &&
           !(path[n] == '%' && (g_ascii_strncasecmp(path + n, "%3F", 3) == 0 ||
                                strncmp(path + n, "%23", 3) == 0)))
        n++;
    return g_strndup(path, MIN(n, 200));
}

static gboolean ends_with(const char *p, gsize n, const char *suffix)
{
    gsize l = strlen(suffix);
    return n >= l && memcmp(p + n - l, suffix, l) == 0;
}

/* Is `param` (e.g. "alt=sse") one of the query's parameters? Nothing of
 * the query is kept: it may hold key=SECRET. */
static gboolean query_has(const char *query, const char *param)
{
    gsize l = strlen(param);
    for (const char *p = query; p != NULL && *p != '\0' && *p != '#';) {
        gsize n = strcspn(p, "&#");
        if (n == l && memcmp(p, param, l) == 0)
            return TRUE;
        p += n;
        if (*p == '&')
            p++;
    }
    return FALSE;
}

static LwEndpoint gemini_method(const char *m, gsize n)
{
#define M(lit) (n == sizeof(lit) - 1 && memcmp(m, lit, n) == 0)
    if (M("generateContent"))
        return LW_ENDPOINT_GENERATE;
    if (M("streamGenerateContent"))
        return LW_ENDPOINT_STREAM_GENERATE;
    if (M("countTokens"))
        return LW_ENDPOINT_COUNT_TOKENS;
    if (M("embedContent") || M("batchEmbedContents"))
        return LW_ENDPOINT_EMBED_CONTENT;
#undef M
    /* batchGenerateContent, predict (Imagen), predictLongRunning (Veo), ... */
    return LW_ENDPOINT_UNPRICED;
}

/* Is a POST to path[0..n) one that costs nothing per call? Objects are
 * created, uploaded or cancelled; what they cost later (storage) is not a
 * request's. Anything else that is not a call llmwrap prices may cost. */
static gboolean is_free_post(const char *path, gsize n)
{
    static const char *const free_segments[] = {
        "files", "uploads", "moderations", "vector_stores", "assistants", "conversations",
    };
    gboolean threads = FALSE, runs = FALSE, stored = FALSE;
    const char *last = NULL;
    gsize last_len = 0;
    for (gsize i = 0; i < n;) {
        gsize j = i;
        while (j < n && path[j] != '/')
            j++;
        const char *seg = path + i;
        gsize len = j - i;
        for (guint k = 0; k < G_N_ELEMENTS(free_segments); k++) {
            if (len == strlen(free_segments[k]) && memcmp(seg, free_segments[k], len) == 0)
                return TRUE;
        }
        threads |= len == 7 && memcmp(seg, "threads", 7) == 0;
        runs |= len == 4 && memcmp(seg, "runs", 4) == 0;
        /* .../chat/completions/{id}, .../responses/{id}/...: a stored
         * answer's metadata, not a new answer */
        stored |= j < n && ((len == 11 && memcmp(seg, "completions", 11) == 0) ||
                            (len == 9 && memcmp(seg, "responses", 9) == 0));
        if (len > 0) {
            last = seg;
            last_len = len;
        }
        i = j + 1;
    }
    if (stored || (last_len == 6 && memcmp(last, "cancel", 6) == 0))
        return TRUE;
    return threads && !runs; /* a thread's runs are billed, its messages are not */
}

/* Gemini: .../models/{model}:method or .../tunedModels/{model}:method. */
static gboolean gemini_path(const char *p, gsize n, LwEndpoint *ret_endpoint, char **ret_model)
{
    const char *slash = g_strrstr_len(p, (gssize)n, "/");
    if (slash == NULL)
        return FALSE;
    const char *seg = slash + 1;
    gsize seg_len = n - (gsize)(seg - p);
    const char *colon = memchr(seg, ':', seg_len);
    if (colon == NULL || colon == seg)
        return FALSE;
    gsize parent_len = (gsize)(slash - p);
    const char *prefix;
    if (ends_with(p, parent_len, "/models"))
        prefix = "";
    else if (ends_with(p, parent_len, "/tunedModels"))
        prefix = "tunedModels/";
    else
        return FALSE;
    gsize name_len = (gsize)(colon - seg);
    *ret_endpoint = gemini_method(colon + 1, seg_len - name_len - 1);
    if (name_len <= MAX_MODEL_NAME) {
        g_autofree char *name = g_strndup(seg, name_len);
        *ret_model = g_strconcat(prefix, name, NULL);
    }
    return TRUE;
}

static LwEndpoint endpoint_of(const char *method, const char *path, char **ret_model,
                              gboolean *ret_alt_sse)
{
    gsize n = strcspn(path, "?#");
    const char *query = path[n] == '?' ? path + n + 1 : NULL;
    *ret_alt_sse = query_has(query, "alt=sse");
    if (n > 1 && path[n - 1] == '/')
        n--;
    if (method != NULL && g_ascii_strcasecmp(method, "POST") != 0)
        return LW_ENDPOINT_OTHER; /* billable calls are all POSTs; GET /responses/{id} is not */

    LwEndpoint e = LW_ENDPOINT_OTHER;
    if (gemini_path(path, n, &e, ret_model))
        return e;
    if (ends_with(path, n, "/chat/completions"))
        return LW_ENDPOINT_CHAT;
    if (ends_with(path, n, "/completions"))
        return LW_ENDPOINT_COMPLETIONS;
    if (ends_with(path, n, "/embeddings"))
        return LW_ENDPOINT_EMBEDDINGS;
    /* Perplexity's Agent API speaks Responses; compaction answers a
     * response object with its usage. */
    if (ends_with(path, n, "/responses") || ends_with(path, n, "/responses/compact") ||
        ends_with(path, n, "/v1/agent"))
        return LW_ENDPOINT_RESPONSES;
    if (ends_with(path, n, "/responses/input_tokens"))
        return LW_ENDPOINT_COUNT_TOKENS;
    if (ends_with(path, n, "/v1/messages"))
        return LW_ENDPOINT_MESSAGES;
    if (ends_with(path, n, "/v1/messages/count_tokens"))
        return LW_ENDPOINT_COUNT_TOKENS;
    return is_free_post(path, n) ? LW_ENDPOINT_OTHER : LW_ENDPOINT_UNPRICED;
}

LwEndpoint lw_inspect_endpoint(const char *method, const char *path)
{
    g_autofree char *model = NULL;
    gboolean alt_sse;
    return endpoint_of(method, path, &model, &alt_sse);
}

/* The dialect a body is written in: the endpoint's, else the provider's. */
LwFormat lw_endpoint_format(LwEndpoint endpoint, LwFormat format)
{
    switch (endpoint) {
    case LW_ENDPOINT_CHAT:
    case LW_ENDPOINT_RESPONSES:
    case LW_ENDPOINT_EMBEDDINGS:
    case LW_ENDPOINT_COMPLETIONS:
        return LW_FORMAT_OPENAI;
    case LW_ENDPOINT_MESSAGES:
        return LW_FORMAT_ANTHROPIC;
    case LW_ENDPOINT_GENERATE:
    case LW_ENDPOINT_STREAM_GENERATE:
    case LW_ENDPOINT_EMBED_CONTENT:
        return LW_FORMAT_GEMINI;
    case LW_ENDPOINT_COUNT_TOKENS:
    case LW_ENDPOINT_OTHER:
    case LW_ENDPOINT_UNPRICED:
        break;
    }
    return format;
}

/* ---- the body ----------------------------------------------------------- */

static gsize consumed(const Scan *s)
{
    return yajl_get_bytes_consumed(s->yh);
}

/* What yajl skips as whitespace: the JSON four, and \v and \f too, which
 * g_ascii_isspace() does not all take. */
static gboolean is_yajl_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Where the value of the member whose name ended at `key_end` starts. */
static gssize value_start(const Scan *s, gsize key_end)
{
    gsize p = key_end;
    while (p < s->len && is_yajl_space(s->body[p]))
        p++;
    if (p < s->len && s->body[p] == ':')
        p++;
    while (p < s->len && is_yajl_space(s->body[p]))
        p++;
    return (gssize)p;
}

/* The member key at `depth` (LW_KEY_OTHER beyond what is tracked). */
static LwKey key_at(const Scan *s, int depth)
{
    return depth >= 1 && depth <= TRACK_DEPTH ? s->key[depth] : LW_KEY_OTHER;
}

static gboolean is_gen_config(const Scan *s)
{
    return key_at(s, 1) == LW_KEY_GENERATION_CONFIG;
}

/* The span slot for a scalar or container value at the current member, or NULL. */
static Span *span_for(Scan *s)
{
    if (s->depth == 1) {
        switch (s->key[1]) {
        case LW_KEY_MODEL: return &s->model_at;
        case LW_KEY_STREAM_OPTIONS: return &s->stream_options.value;
        case LW_KEY_MAX_TOKENS: return &s->max_tokens_at;
        case LW_KEY_MAX_COMPLETION_TOKENS: return &s->max_completion_tokens_at;
        case LW_KEY_MAX_OUTPUT_TOKENS: return &s->max_output_tokens_at;
        case LW_KEY_GENERATION_CONFIG: return &s->generation_config.value;
        default: return NULL;
        }
    }
    if (s->depth == 2 && key_at(s, 1) == LW_KEY_STREAM_OPTIONS && s->key[2] == LW_KEY_INCLUDE_USAGE)
        return &s->include_usage_at;
    if (s->depth == 2 && is_gen_config(s) && s->key[2] == LW_KEY_MAX_OUTPUT_TOKENS)
        return &s->g_max_output_at;
    return NULL;
}

/* A new value for stream_options or generationConfig: forget what the
 * previous one (a duplicate member) held. */
static void new_value(Scan *s, Span *span, gboolean map)
{
    if (span == &s->stream_options.value) {
        s->stream_options.is_map = map;
        s->stream_options.members = 0;
        s->include_usage_at.start = s->include_usage_at.end = -1;
    } else if (span == &s->generation_config.value) {
        s->generation_config.is_map = map;
        s->generation_config.members = 0;
        s->generation_config.snake = s->key_snake[1];
        s->g_max_output_at.start = s->g_max_output_at.end = -1;
    }
}

static void scalar_at(Scan *s)
{
    Span *span = span_for(s);
    if (span != NULL) {
        span->start = value_start(s, s->key_end[s->depth]);
        span->end = (gssize)consumed(s);
        new_value(s, span, FALSE);
    }
}

/* A non-negative integer from JSON number text, or -1. */
static gint64 integer(const char *text, gsize len)
{
    gint64 v;
    if (memchr(text, '.', len) != NULL || memchr(text, 'e', len) != NULL ||
        memchr(text, 'E', len) != NULL || !lw_usage_fields_decimal(text, len, 0, &v) || v < 0)
        return -1;
    return v;
}

static int on_null(void *ctx)
{
    Scan *s = ctx;
    if (s->depth == 0)
        return 0;
    scalar_at(s);
    return 1;
}

static int on_boolean(void *ctx, int value)
{
    Scan *s = ctx;
    if (s->depth == 0)
        return 0;
    scalar_at(s);
    if (s->depth == 1 && s->key[1] == LW_KEY_STREAM)
        s->stream = value != 0;
    else if (s->depth == 2 && key_at(s, 1) == LW_KEY_STREAM_OPTIONS &&
             s->key[2] == LW_KEY_INCLUDE_USAGE)
        s->include_usage = value != 0;
    return 1;
}

static int on_number(void *ctx, const char *text, size_t len)
{
    Scan *s = ctx;
    if (s->depth == 0)
        return 0;
    scalar_at(s);
    gint64 v = integer(text, len);
    if (s->depth == 1) {
        switch (s->key[1]) {
        case LW_KEY_MAX_TOKENS: s->max_tokens = v; break;
        case LW_KEY_MAX_COMPLETION_TOKENS: s->max_completion_tokens = v; break;
        case LW_KEY_MAX_OUTPUT_TOKENS: s->max_output_tokens = v; break;
        case LW_KEY_N: s->n = v; break;
        case LW_KEY_BEST_OF: s->best_of = v; break;
        default: break;
        }
    } else if (s->depth == 2 && is_gen_config(s)) {
        if (s->key[2] == LW_KEY_MAX_OUTPUT_TOKENS)
            s->g_max_output = v;
        else if (s->key[2] == LW_KEY_CANDIDATE_COUNT)
            s->g_candidates = v;
    } else if (s->depth == 3 && is_gen_config(s) && s->key[2] == LW_KEY_THINKING_CONFIG &&
               s->key[3] == LW_KEY_THINKING_BUDGET) {
        /* -1 (dynamic thinking) reads as "absent", which is what it means */
        s->g_thinking_budget = v;
    }
    return 1;
}

static int on_string(void *ctx, const unsigned char *text, size_t len)
{
    Scan *s = ctx;
    if (s->depth == 0)
        return 0;
    scalar_at(s);
    if (s->depth != 1)
        return 1;
    if (s->key[1] == LW_KEY_MODEL) {
        g_free(s->model);
        s->model = len <= MAX_MODEL_NAME ? g_strndup((const char *)text, len) : NULL;
    } else if (s->key[1] == LW_KEY_PREVIOUS_RESPONSE_ID || s->key[1] == LW_KEY_CONVERSATION ||
               s->key[1] == LW_KEY_CACHED_CONTENT) {
        s->server_state |= len > 0;
    } else if (s->key[1] == LW_KEY_SPEED) {
        s->speed_fast = len == 4 && memcmp(text, "fast", 4) == 0; /* the last one counts */
    }
    return 1;
}

static int on_map_key(void *ctx, const unsigned char *text, size_t len)
{
    Scan *s = ctx;
    if (s->depth > TRACK_DEPTH)
        return 1;
    s->key[s->depth] = lw_usage_key_lookup((const char *)text, len);
    s->key_end[s->depth] = consumed(s);
    s->key_snake[s->depth] = memchr(text, '_', len) != NULL;
    if (s->depth == 1)
        s->top.members++;
    else if (s->depth == 2 && key_at(s, 1) == LW_KEY_STREAM_OPTIONS)
        s->stream_options.members++;
    else if (s->depth == 2 && is_gen_config(s))
        s->generation_config.members++;
    return 1;
}

static int container_start(Scan *s, gboolean map)
{
    if (s->depth >= MAX_DEPTH)
        return 0;
    if (s->depth == 0) {
        if (!map)
            return 0; /* not an object: nothing to inspect or edit */
        s->object = TRUE;
    } else {
        Span *span = span_for(s);
        if (span != NULL) {
            span->start = (gssize)consumed(s) - 1;
            span->end = -1;
            new_value(s, span, map);
        }
        /* A conversation object, or a stored prompt ({"id": "pmpt_..."};
         * a string "prompt" is text in the body). */
        if (s->depth == 1 && (s->key[1] == LW_KEY_CONVERSATION || s->key[1] == LW_KEY_PROMPT))
            s->server_state = TRUE;
        /* an object asks for a search; null or anything else does not */
        if (s->depth == 1 && s->key[1] == LW_KEY_WEB_SEARCH_OPTIONS)
            s->web_search_options = map;
    }
    s->depth++;
    if (s->depth <= TRACK_DEPTH)
        s->key[s->depth] = LW_KEY_OTHER;
    return 1;
}

static int container_end(Scan *s)
{
    s->depth--;
    gsize end = consumed(s);
    if (s->depth == 0) {
        s->top.close = end - 1;
        s->complete = TRUE;
        return 1;
    }
    Span *span = span_for(s);
    if (span != NULL)
        span->end = (gssize)end;
    if (s->depth == 1 && s->key[1] == LW_KEY_STREAM_OPTIONS)
        s->stream_options.close = end - 1;
    else if (s->depth == 1 && s->key[1] == LW_KEY_GENERATION_CONFIG)
        s->generation_config.close = end - 1;
    return 1;
}

static int on_start_map(void *ctx)
{
    return container_start(ctx, TRUE);
}

static int on_start_array(void *ctx)
{
    return container_start(ctx, FALSE);
}

static int on_end(void *ctx)
{
    return container_end(ctx);
}

static const yajl_callbacks scan_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

static void scan_clear(Scan *s)
{
    g_free(s->model);
    s->model = NULL;
}

/* Returns TRUE when the body is one complete JSON object (fields are kept
 * as far as the parse got either way). */
static gboolean scan_body(const char *body, gsize len, Scan *s)
{
    memset(s, 0, sizeof *s);
    s->body = body;
    s->len = len;
    s->max_tokens = s->max_completion_tokens = s->max_output_tokens = -1;
    s->n = s->best_of = -1;
    s->g_max_output = s->g_candidates = s->g_thinking_budget = -1;
    Span *spans[] = {&s->top.value, &s->model_at, &s->stream_options.value, &s->include_usage_at,
                     &s->max_tokens_at, &s->max_completion_tokens_at, &s->max_output_tokens_at,
                     &s->generation_config.value, &s->g_max_output_at};
    for (gsize i = 0; i < G_N_ELEMENTS(spans); i++)
        spans[i]->start = spans[i]->end = -1;
    if (body == NULL || len == 0)
        return FALSE;

    s->yh = yajl_alloc(&scan_callbacks, NULL, s);
    yajl_config(s->yh, yajl_dont_validate_strings, 1);
    gboolean ok = yajl_parse(s->yh, (const unsigned char *)body, len) == yajl_status_ok &&
                  yajl_complete_parse(s->yh) == yajl_status_ok;
    yajl_free(s->yh);
    s->yh = NULL;
    return ok && s->object && s->complete;
}

/* ---- inspection ----------------------------------------------------------- */

/* OpenAI's search-preview chat models search the web on every request
 * (wire-format reference 1.2: they add tool costs). */
static gboolean is_search_model(const char *model)
{
    return model != NULL && strstr(model, "search-preview") != NULL;
}

/* lw_inspect_request, leaving the parse in `s` (its model taken) for an
 * edit; returns scan_body's verdict. */
static gboolean inspect(LwFormat format, const char *method, const char *path, const char *body,
                        gsize body_len, LwRequestInfo *ret, Scan *s)
{
    memset(ret, 0, sizeof *ret);
    ret->max_output = -1;
    ret->choices = 1;
    ret->thinking_budget = -1;
    ret->body_bytes = (gint64)body_len;

    char *path_model = NULL;
    gboolean alt_sse = FALSE;
    ret->endpoint = endpoint_of(method, path != NULL ? path : "", &path_model, &alt_sse);

    gboolean ok = scan_body(body, body_len, s);
    switch (lw_endpoint_format(ret->endpoint, format)) {
    case LW_FORMAT_OPENAI:
        ret->max_output = s->max_completion_tokens >= 0 ? s->max_completion_tokens
                          : s->max_tokens >= 0          ? s->max_tokens
                                                        : s->max_output_tokens;
        /* best_of candidates are all generated and billed */
        ret->choices = MAX(1, MAX(s->n, s->best_of));
        ret->stream = ret->sse = s->stream;
        ret->include_usage = s->include_usage;
        ret->server_state = s->server_state;
        break;
    case LW_FORMAT_ANTHROPIC:
        ret->max_output = s->max_tokens;
        ret->stream = ret->sse = s->stream;
        ret->fast_mode = s->speed_fast;
        break;
    case LW_FORMAT_GEMINI:
        ret->max_output = s->g_max_output;
        ret->choices = MAX(1, s->g_candidates);
        ret->thinking_budget = s->g_thinking_budget;
        ret->stream = ret->endpoint == LW_ENDPOINT_STREAM_GENERATE;
        ret->sse = ret->stream && alt_sse;
        ret->server_state = s->server_state; /* cachedContent */
        break;
    }
    if (path_model != NULL) {
        ret->model = path_model; /* Gemini: the path names the model */
    } else {
        ret->model = g_steal_pointer(&s->model);
    }
    ret->web_search = ret->endpoint == LW_ENDPOINT_CHAT &&
                      (s->web_search_options || is_search_model(ret->model));
    scan_clear(s);
    return ok;
}

static GBytes *add_include_usage(const char *body, gsize len, const Scan *s, gboolean ok);

void lw_inspect_request(LwFormat format, const char *method, const char *path, const char *body,
                        gsize body_len, LwRequestInfo *ret)
{
    g_return_if_fail(ret != NULL);
    Scan s;
    inspect(format, method, path, body, body_len, ret, &s);
}

GBytes *lw_inspect_request_adding_usage(LwFormat format, const char *method, const char *path,
                                        const char *body, gsize body_len, LwRequestInfo *ret)
{
    g_return_val_if_fail(ret != NULL, NULL);
    Scan s;
    gboolean ok = inspect(format, method, path, body, body_len, ret, &s);
    if (!ret->stream || ret->include_usage ||
        (ret->endpoint != LW_ENDPOINT_CHAT && ret->endpoint != LW_ENDPOINT_COMPLETIONS))
        return NULL;
    return add_include_usage(body, body_len, &s, ok);
}

void lw_request_info_clear(LwRequestInfo *info)
{
    if (info == NULL)
        return;
    g_free(info->model);
    info->model = NULL;
}

/* ---- rewrites ------------------------------------------------------------- */

typedef struct {
    gsize start, end; /* replace [start, end) */
    char *text;
} Edit;

static int edit_cmp(const void *a, const void *b)
{
    const Edit *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* The body with `edits` (non-overlapping) applied. Frees the edits' text. */
static GBytes *apply(const char *body, gsize len, Edit *edits, guint n)
{
    qsort(edits, n, sizeof *edits, edit_cmp);
    GString *out = g_string_sized_new(len + 64);
    gsize at = 0;
    for (guint i = 0; i < n; i++) {
        g_string_append_len(out, body + at, (gssize)(edits[i].start - at));
        g_string_append(out, edits[i].text);
        at = edits[i].end;
        g_free(edits[i].text);
    }
    g_string_append_len(out, body + at, (gssize)(len - at));
    return g_string_free_to_bytes(out);
}

static Edit replace(Span span, char *text)
{
    return (Edit){(gsize)span.start, (gsize)span.end, text};
}

/* Inserts member `name: value` before the closing brace of `obj`. */
static Edit insert_member(const Obj *obj, const char *name, const char *value)
{
    return (Edit){obj->close, obj->close,
                  g_strdup_printf("%s\"%s\":%s", obj->members > 0 ? "," : "", name, value)};
}

/* The include_usage edit, from a parse of the body. */
static GBytes *add_include_usage(const char *body, gsize len, const Scan *s, gboolean ok)
{
    /* stream_options in a request that does not stream is a 400 */
    if (!ok || !s->stream)
        return NULL;
    Edit e;
    if (s->stream_options.value.start < 0)
        e = insert_member(&s->top, "stream_options", "{\"include_usage\":true}");
    else if (!s->stream_options.is_map)
        e = replace(s->stream_options.value, g_strdup("{\"include_usage\":true}"));
    else if (s->include_usage_at.start >= 0)
        e = replace(s->include_usage_at, g_strdup("true"));
    else
        e = insert_member(&s->stream_options, "include_usage", "true");
    return apply(body, len, &e, 1);
}

GBytes *lw_rewrite_include_usage(const char *body, gsize len)
{
    Scan s;
    gboolean ok = scan_body(body, len, &s);
    scan_clear(&s);
    return add_include_usage(body, len, &s, ok);
}

GBytes *lw_rewrite_model(const char *body, gsize len, const char *model)
{
    g_return_val_if_fail(model != NULL, NULL);
    Scan s;
    gboolean ok = scan_body(body, len, &s);
    scan_clear(&s);
    if (!ok || s.model_at.start < 0)
        return NULL;
    GString *quoted = g_string_new(NULL);
    lw_json_append_string(quoted, model, -1);
    Edit e = replace(s.model_at, g_string_free(quoted, FALSE));
    return apply(body, len, &e, 1);
}

/* Reasoning models on OpenAI reject max_tokens; every OpenAI-compatible
 * provider accepts it. The field to add when the body has none. */
static const char *openai_max_field(LwEndpoint endpoint, const char *model)
{
    if (endpoint == LW_ENDPOINT_RESPONSES)
        return "max_output_tokens";
    if (endpoint == LW_ENDPOINT_COMPLETIONS || model == NULL)
        return "max_tokens";
    if ((model[0] == 'o' && g_ascii_isdigit(model[1])) || g_str_has_prefix(model, "gpt-5"))
        return "max_completion_tokens";
    return "max_tokens";
}

GBytes *lw_rewrite_max_output(const char *body, gsize len, LwFormat format,
                              const LwRequestInfo *info, gint64 max)
{
    if (max < 0)
        return NULL;
    Scan s;
    gboolean ok = scan_body(body, len, &s);
    g_autofree char *model = g_steal_pointer(&s.model);
    if (!ok)
        return NULL;
    LwEndpoint endpoint = info != NULL ? info->endpoint : LW_ENDPOINT_OTHER;
    char num[32];
    g_snprintf(num, sizeof num, "%" G_GINT64_FORMAT, max);

    Edit edits[3];
    guint n = 0;
    switch (lw_endpoint_format(endpoint, format)) {
    case LW_FORMAT_OPENAI: {
        Span fields[] = {s.max_completion_tokens_at, s.max_tokens_at, s.max_output_tokens_at};
        for (gsize i = 0; i < G_N_ELEMENTS(fields); i++) {
            if (fields[i].start >= 0)
                edits[n++] = replace(fields[i], g_strdup(num));
        }
        if (n == 0) {
            const char *m = info != NULL && info->model != NULL ? info->model : model;
            edits[n++] = insert_member(&s.top, openai_max_field(endpoint, m), num);
        }
        break;
    }
    case LW_FORMAT_ANTHROPIC:
        if (s.max_tokens_at.start >= 0)
            edits[n++] = replace(s.max_tokens_at, g_strdup(num));
        else
            edits[n++] = insert_member(&s.top, "max_tokens", num);
        break;
    case LW_FORMAT_GEMINI: {
        const Obj *gc = &s.generation_config;
        const char *field = gc->snake ? "max_output_tokens" : "maxOutputTokens";
        if (gc->value.start < 0) {
            g_autofree char *v = g_strdup_printf("{\"maxOutputTokens\":%s}", num);
            edits[n++] = insert_member(&s.top, "generationConfig", v);
        } else if (!gc->is_map) {
            edits[n++] = replace(gc->value, g_strdup_printf("{\"%s\":%s}", field, num));
        } else if (s.g_max_output_at.start >= 0) {
            edits[n++] = replace(s.g_max_output_at, g_strdup(num));
        } else {
            edits[n++] = insert_member(gc, field, num);
        }
        break;
    }
    }
    return apply(body, len, edits, n);
}
