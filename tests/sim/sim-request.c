/* sim-request.c - routing, request-body scan and scenario directives. */
#include "sim.h"

#include <string.h>

#include <yajl/yajl_parse.h>

/* ---- flavours ---- */

static const char *const FLAVOR_NAMES[SIM_FLAVOR_COUNT] = {
    "openai",   "deepseek",  "xai",        "openrouter",    "groq",      "mistral",
    "together", "fireworks", "perplexity", "gemini-openai", "anthropic", "gemini",
};

const char *sim_flavor_name(SimFlavor f)
{
    return (unsigned)f < SIM_FLAVOR_COUNT ? FLAVOR_NAMES[f] : "openai";
}

int sim_flavor_from_name(const char *name, size_t len)
{
    for (int i = 0; i < SIM_FLAVOR_COUNT; i++) {
        if (strlen(FLAVOR_NAMES[i]) == len && g_ascii_strncasecmp(FLAVOR_NAMES[i], name, len) == 0)
            return i;
    }
    return -1;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* First match wins; the order matters where prefixes overlap ("openai/gpt-oss-"
 * is Groq before the generic vendor/model rule makes it OpenRouter). */
SimFlavor sim_flavor_for_model(const char *model)
{
    if (has_prefix(model, "deepseek-"))
        return SIM_FLAVOR_DEEPSEEK;
    if (has_prefix(model, "grok-"))
        return SIM_FLAVOR_XAI;
    if (has_prefix(model, "meta-llama/") || strstr(model, "together") != NULL)
        return SIM_FLAVOR_TOGETHER;
    if (has_prefix(model, "accounts/fireworks/"))
        return SIM_FLAVOR_FIREWORKS;
    if (has_prefix(model, "llama-") || has_prefix(model, "openai/gpt-oss-"))
        return SIM_FLAVOR_GROQ;
    if (strchr(model, '/') != NULL)
        return SIM_FLAVOR_OPENROUTER;
    if (has_prefix(model, "mistral-") || has_prefix(model, "codestral-"))
        return SIM_FLAVOR_MISTRAL;
    if (has_prefix(model, "sonar"))
        return SIM_FLAVOR_PERPLEXITY;
    if (has_prefix(model, "gemini-"))
        return SIM_FLAVOR_GEMINI_OPENAI;
    return SIM_FLAVOR_OPENAI;
}

/* ---- routing ---- */

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

SimApi sim_route(const char *path, size_t len, char *ret_model)
{
    /* Gemini: .../models/{model}:{method}; the model is the segment after the
     * last "models/" up to the colon. */
    const char *colon = memrchr(path, ':', len);
    if (colon != NULL) {
        size_t prefix_len = (size_t)(colon - path);
        const char *m = g_strrstr_len(path, (gssize)prefix_len, "models/");
        if (m != NULL) {
            m += strlen("models/");
            const char *method = colon + 1;
            size_t mlen = len - (size_t)(method - path);
            SimApi api = SIM_API_NONE;
            if (mlen == strlen("generateContent") && memcmp(method, "generateContent", mlen) == 0)
                api = SIM_API_GEMINI_GENERATE;
            else if (mlen == strlen("streamGenerateContent") &&
                     memcmp(method, "streamGenerateContent", mlen) == 0)
                api = SIM_API_GEMINI_STREAM;
            else if (mlen == strlen("countTokens") && memcmp(method, "countTokens", mlen) == 0)
                api = SIM_API_GEMINI_COUNT;
            if (api != SIM_API_NONE) {
                size_t n = MIN((size_t)(colon - m), (size_t)SIM_MODEL_MAX);
                memcpy(ret_model, m, n);
                ret_model[n] = '\0';
                return api;
            }
        }
    }
    if (ends_with(path, len, "/chat/completions"))
        return SIM_API_CHAT;
    if (ends_with(path, len, "/completions"))
        return SIM_API_COMPLETIONS;
    if (ends_with(path, len, "/responses/input_tokens"))
        return SIM_API_RESPONSES_COUNT;
    if (ends_with(path, len, "/responses") || ends_with(path, len, "/v1/agent"))
        return SIM_API_RESPONSES; /* Perplexity's Agent API speaks Responses */
    if (ends_with(path, len, "/embeddings"))
        return SIM_API_EMBEDDINGS;
    if (ends_with(path, len, "/messages/count_tokens"))
        return SIM_API_MESSAGES_COUNT;
    if (ends_with(path, len, "/messages"))
        return SIM_API_MESSAGES;
    return SIM_API_NONE;
}

/* ---- directives ---- */

void sim_directives_init(SimDirectives *d)
{
    memset(d, 0, sizeof *d);
    d->in = d->out = d->cached = d->cache_write = d->cache_write_1h = d->reasoning = -1;
    d->ticks = d->words = d->delay_ms = d->chunk_delay_ms = d->status = -1;
    d->retry_after = d->drop_after = d->keepalive = d->lead_ws = d->searches = -1;
    d->flavor = -1;
}

static bool key_is(const char *k, size_t klen, const char *lit)
{
    return strlen(lit) == klen && memcmp(k, lit, klen) == 0;
}

/* Non-negative decimal integer, clamped to `max`; -1 when not a number. */
static int64_t parse_uint(const char *v, size_t len, int64_t max)
{
    if (len == 0 || len > 18)
        return len > 18 && strspn(v, "0123456789") >= len ? max : -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return MIN(n, max);
}

static void apply_one(SimDirectives *d, const char *k, size_t klen, const char *v, size_t vlen)
{
    const int64_t big = INT64_C(1000000000000); /* usage numbers: 10^12 */
    struct {
        const char *name;
        int64_t *field;
        int64_t max;
    } ints[] = {
        {"in", &d->in, big},
        {"out", &d->out, SIM_MAX_WORDS},
        {"cached", &d->cached, big},
        {"cache_write", &d->cache_write, big},
        {"cache_write_1h", &d->cache_write_1h, big},
        {"reasoning", &d->reasoning, big},
        {"ticks", &d->ticks, INT64_C(1000000000000000000)},
        {"words", &d->words, SIM_MAX_WORDS},
        {"delay_ms", &d->delay_ms, SIM_MAX_DELAY_MS},
        {"chunk_delay_ms", &d->chunk_delay_ms, SIM_MAX_DELAY_MS},
        {"status", &d->status, 599},
        {"retry_after", &d->retry_after, 86400},
        {"drop_after", &d->drop_after, SIM_MAX_WORDS},
        {"keepalive", &d->keepalive, 1000},
        {"lead_ws", &d->lead_ws, 1000},
        {"searches", &d->searches, SIM_MAX_SEARCHES},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ints); i++) {
        if (key_is(k, klen, ints[i].name)) {
            int64_t n = parse_uint(v, vlen, ints[i].max);
            if (n >= 0)
                *ints[i].field = n;
            return;
        }
    }
    bool flag = vlen == 1 && v[0] == '1';
    if (key_is(k, klen, "gzip")) {
        d->gzip = flag;
    } else if (key_is(k, klen, "tools")) {
        d->tools = flag;
    } else if (key_is(k, klen, "snapshot")) {
        d->snapshot = flag;
    } else if (key_is(k, klen, "flavor") || key_is(k, klen, "flavour")) {
        d->flavor = sim_flavor_from_name(v, vlen);
    } else if (key_is(k, klen, "served")) {
        if (vlen < sizeof d->served && strspn(v, "abcdefghijklmnopqrstuvwxyz"
                                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-") >=
                                           vlen) {
            memcpy(d->served, v, vlen);
            d->served[vlen] = '\0';
        }
    } else if (key_is(k, klen, "geo")) {
        if (vlen < sizeof d->geo &&
            strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") >= vlen) {
            memcpy(d->geo, v, vlen);
            d->geo[vlen] = '\0';
        }
    } else if (key_is(k, klen, "cost")) {
        if (vlen > 0 && vlen < sizeof d->cost && strspn(v, "0123456789.eE+-") >= vlen &&
            v[0] >= '0' && v[0] <= '9') {
            memcpy(d->cost, v, vlen);
            d->cost[vlen] = '\0';
        }
    } else if (key_is(k, klen, "fault")) {
        static const struct {
            const char *name;
            SimFault fault;
        } faults[] = {
            {"503", SIM_FAULT_503},     {"429", SIM_FAULT_429},         {"drop", SIM_FAULT_DROP},
            {"reset", SIM_FAULT_RESET}, {"garbage", SIM_FAULT_GARBAGE}, {"stall", SIM_FAULT_STALL},
            {"none", SIM_FAULT_NONE},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(faults); i++) {
            if (key_is(v, vlen, faults[i].name))
                d->fault = faults[i].fault;
        }
    }
}

void sim_directives_apply(SimDirectives *d, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && strchr(" \t;,", text[i]) != NULL && text[i] != '\0')
            i++;
        size_t start = i;
        while (i < len && strchr(" \t;,", text[i]) == NULL)
            i++;
        const char *tok = text + start;
        size_t tlen = i - start;
        const char *eq = memchr(tok, '=', tlen);
        if (eq != NULL)
            apply_one(d, tok, (size_t)(eq - tok), eq + 1, tlen - (size_t)(eq - tok) - 1);
    }
}

void sim_directives_scan_body(SimDirectives *d, const char *body, size_t len)
{
    static const char open[] = "[[sim";
    const char *p = body, *end = body + len;
    while ((size_t)(end - p) >= sizeof open) {
        const char *hit = memmem(p, (size_t)(end - p), open, sizeof open - 1);
        if (hit == NULL)
            break;
        const char *inner = hit + sizeof open - 1;
        /* A block is bounded so a stray "[[sim" cannot swallow the body. */
        size_t room = MIN((size_t)(end - inner), (size_t)512);
        const char *close = memmem(inner, room, "]]", 2);
        if (close == NULL) {
            p = inner;
            continue;
        }
        if (inner < close && (*inner == ' ' || *inner == '\t'))
            sim_directives_apply(d, inner, (size_t)(close - inner));
        p = close + 2;
    }
}

/* ---- request body scan ---- */

typedef enum {
    K_OTHER = 0,
    K_MODEL,
    K_STREAM,
    K_MAX_TOKENS,
    K_STREAM_OPTIONS,
    K_INCLUDE_USAGE,
    K_GEN_CONFIG,
    K_TOOLS,
    K_INPUT,
    K_ENCODING_FORMAT,
    K_DIMENSIONS,
    K_NAME,
} Key;

#define SCAN_DEPTH 8

typedef struct {
    SimRequest *req;
    int depth;               /* open containers */
    Key key[SCAN_DEPTH + 1]; /* current key of the map open at each depth */
    bool is_map[SCAN_DEPTH + 1];
    bool input_is_tokens;
} Scan;

static Key classify_key(const unsigned char *k, size_t len)
{
#define KEY(lit, key)                                                                              \
    {                                                                                              \
        lit, sizeof(lit) - 1, key                                                                  \
    }
    static const struct {
        const char *name;
        size_t len;
        Key key;
    } keys[] = {
        KEY("model", K_MODEL),
        KEY("stream", K_STREAM),
        KEY("max_tokens", K_MAX_TOKENS),
        KEY("max_completion_tokens", K_MAX_TOKENS),
        KEY("max_output_tokens", K_MAX_TOKENS),
        KEY("maxOutputTokens", K_MAX_TOKENS),
        KEY("stream_options", K_STREAM_OPTIONS),
        KEY("include_usage", K_INCLUDE_USAGE),
        KEY("generationConfig", K_GEN_CONFIG),
        KEY("generation_config", K_GEN_CONFIG),
        KEY("tools", K_TOOLS),
        KEY("input", K_INPUT),
        KEY("encoding_format", K_ENCODING_FORMAT),
        KEY("dimensions", K_DIMENSIONS),
        KEY("name", K_NAME),
    };
#undef KEY
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (keys[i].len == len && memcmp(k, keys[i].name, len) == 0)
            return keys[i].key;
    }
    return K_OTHER;
}

/* Key of the value now being parsed at depth d (K_OTHER inside arrays). */
static Key key_at(const Scan *s, int d)
{
    return d >= 1 && d <= SCAN_DEPTH && s->is_map[d] ? s->key[d] : K_OTHER;
}

static bool in_tools(const Scan *s)
{
    return s->depth >= 2 && key_at(s, 1) == K_TOOLS;
}

static bool in_input_array(const Scan *s)
{
    return s->depth == 2 && key_at(s, 1) == K_INPUT && !s->is_map[2];
}

static void set_max_tokens(SimRequest *req, int64_t n)
{
    if (n >= 0 && (req->max_tokens < 0 || n < req->max_tokens))
        req->max_tokens = n;
}

static int cb_null(void *ctx)
{
    return 1;
}

static int cb_bool(void *ctx, int v)
{
    Scan *s = ctx;
    if (s->depth == 1 && key_at(s, 1) == K_STREAM)
        s->req->stream = v != 0;
    else if (s->depth == 2 && key_at(s, 1) == K_STREAM_OPTIONS && key_at(s, 2) == K_INCLUDE_USAGE)
        s->req->include_usage = v != 0;
    return 1;
}

static int cb_number(void *ctx, const char *v, size_t len)
{
    Scan *s = ctx;
    int64_t n = parse_uint(v, len, INT64_C(1) << 40);
    if (s->depth == 1 && key_at(s, 1) == K_MAX_TOKENS)
        set_max_tokens(s->req, n);
    else if (s->depth == 2 && key_at(s, 1) == K_GEN_CONFIG && key_at(s, 2) == K_MAX_TOKENS)
        set_max_tokens(s->req, n);
    else if (s->depth == 1 && key_at(s, 1) == K_DIMENSIONS && n > 0)
        s->req->dimensions = (unsigned)MIN(n, SIM_MAX_DIMENSIONS);
    else if (in_input_array(s))
        s->input_is_tokens = true;
    return 1;
}

static int cb_string(void *ctx, const unsigned char *v, size_t len)
{
    Scan *s = ctx;
    SimRequest *req = s->req;
    if (s->depth == 1) {
        switch (key_at(s, 1)) {
        case K_MODEL: {
            size_t n = MIN(len, (size_t)SIM_MODEL_MAX);
            memcpy(req->model, v, n);
            req->model[n] = '\0';
            break;
        }
        case K_INPUT:
            req->n_inputs = 1;
            break;
        case K_ENCODING_FORMAT:
            req->base64 = key_is((const char *)v, len, "base64");
            break;
        default:
            break;
        }
    } else if (in_input_array(s)) {
        req->n_inputs = MIN(req->n_inputs + 1, SIM_MAX_INPUTS);
    } else if (in_tools(s) && key_at(s, s->depth) == K_NAME && req->tool_name[0] == '\0') {
        size_t n = MIN(len, (size_t)SIM_TOOL_NAME_MAX);
        memcpy(req->tool_name, v, n);
        req->tool_name[n] = '\0';
    }
    return 1;
}

static void open_container(Scan *s, bool is_map)
{
    if (in_input_array(s))
        s->req->n_inputs = MIN(s->req->n_inputs + 1, SIM_MAX_INPUTS);
    s->depth++;
    if (s->depth <= SCAN_DEPTH) {
        s->is_map[s->depth] = is_map;
        s->key[s->depth] = K_OTHER;
    }
}

static int cb_start_map(void *ctx)
{
    open_container(ctx, true);
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *k, size_t len)
{
    Scan *s = ctx;
    if (s->depth <= SCAN_DEPTH)
        s->key[s->depth] = classify_key(k, len);
    return 1;
}

static int cb_end(void *ctx)
{
    Scan *s = ctx;
    s->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    open_container(ctx, false);
    return 1;
}

static const yajl_callbacks SCAN_CALLBACKS = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end,
};

bool sim_request_scan(SimRequest *req, const char *body, size_t body_len)
{
    req->body_len = body_len;
    req->max_tokens = -1;
    req->n_inputs = 0;
    req->dimensions = 8;
    Scan s = {.req = req};
    yajl_handle h = yajl_alloc(&SCAN_CALLBACKS, NULL, &s);
    if (h == NULL)
        return false;
    bool ok = yajl_parse(h, (const unsigned char *)body, body_len) == yajl_status_ok &&
              yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    if (s.input_is_tokens && req->n_inputs == 0)
        req->n_inputs = 1;
    if (req->n_inputs == 0)
        req->n_inputs = 1;
    sim_directives_scan_body(&req->d, body, body_len);
    return ok;
}
