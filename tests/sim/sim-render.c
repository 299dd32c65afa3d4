/* sim-render.c - response bodies and stream events, per API and flavour.
 *
 * Bodies are built by appending to a reused GString (no JSON generator, no
 * tree): the shapes are fixed and only numbers, ids and the model vary. All
 * output is a pure function of the SimRequest, so tests can predict it.
 */
#include "sim.h"

#include <string.h>

/* ---- the deterministic text ---- */

/* Four sentences, 30 words; output is the first N words, cycling. No word
 * needs JSON escaping. */
static const char *const WORDS[] = {
    "Hello",   "from",  "the",  "simulated", "provider.", "It",      "answers", "every",
    "request", "with",  "the",  "same",      "words.",    "Token",   "counts",  "follow",
    "simple",  "rules", "so",   "tests",     "can",       "predict", "them.",   "Nothing",
    "here",    "comes", "from", "a",         "real",      "model.",
};

static const char THINKING_TEXT[] = "Thinking about the request.";

#define LIT(s, lit) g_string_append_len((s), (lit), (gssize)(sizeof(lit) - 1))

static void append_u64(GString *s, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    g_string_append_len(s, tmp + i, (gssize)sizeof tmp - i);
}

static void append_i64(GString *s, int64_t v)
{
    append_u64(s, v < 0 ? 0 : (uint64_t)v);
}

/* Zero-padded to 6 digits (ids: "chatcmpl-sim-000042"). */
static void append_seq(GString *s, uint64_t seq)
{
    for (uint64_t p = 100000; p > 1 && seq < p; p /= 10)
        g_string_append_c(s, '0');
    append_u64(s, seq);
}

/* JSON string with quotes; control characters escaped as \u00XX. */
void sim_append_json_str(GString *s, const char *v, size_t len)
{
    g_string_append_c(s, '"');
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        g_string_append_len(s, v + start, (gssize)(i - start));
        if (c == '"' || c == '\\') {
            g_string_append_c(s, '\\');
            g_string_append_c(s, (char)c);
        } else {
            g_string_append_printf(s, "\\u%04x", c);
        }
        start = i + 1;
    }
    g_string_append_len(s, v + start, (gssize)(len - start));
    g_string_append_c(s, '"');
}

static void append_cstr_json(GString *s, const char *v)
{
    sim_append_json_str(s, v, strlen(v));
}

/* Delta i of the output: the word, with a leading space after the first. */
static void append_word(GString *s, int64_t i)
{
    if (i > 0)
        g_string_append_c(s, ' ');
    g_string_append(s, WORDS[i % (int64_t)G_N_ELEMENTS(WORDS)]);
}

static void append_text(GString *s, int64_t words)
{
    for (int64_t i = 0; i < words; i++)
        append_word(s, i);
}

/* Text as a JSON string value. */
static void append_text_json(GString *s, int64_t words)
{
    g_string_append_c(s, '"');
    append_text(s, words);
    g_string_append_c(s, '"');
}

/* Tool-call arguments {"text":"<words>"}; as a JSON string value when
 * `quoted` (OpenAI's arguments are a string), as an object otherwise. */
static void append_tool_args(GString *s, int64_t words, bool quoted)
{
    if (quoted)
        LIT(s, "\"{\\\"text\\\":\\\"");
    else
        LIT(s, "{\"text\":\"");
    append_text(s, words);
    if (quoted)
        LIT(s, "\\\"}\"");
    else
        LIT(s, "\"}");
}

/* Fragment k of the streamed tool arguments: `{"text":"`, then one word per
 * fragment, then `"}`; always as a JSON string value. */
static void append_tool_fragment(GString *s, int64_t k, int64_t words)
{
    if (k == 0)
        LIT(s, "\"{\\\"text\\\":\\\"\"");
    else if (k <= words) {
        g_string_append_c(s, '"');
        append_word(s, k - 1);
        g_string_append_c(s, '"');
    } else
        LIT(s, "\"\\\"}\"");
}

static const char *tool_name(const SimRequest *r)
{
    return r->tool_name[0] != '\0' ? r->tool_name : "get_weather";
}

/* ---- response bookkeeping ---- */

void sim_response_init(SimResponse *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->headers = g_string_sized_new(512);
    resp->body = g_string_sized_new(4096);
    resp->ends = g_array_sized_new(FALSE, FALSE, sizeof(guint32), 64);
    resp->retry_after = -1;
}

void sim_response_clear(SimResponse *resp)
{
    resp->status = 200;
    resp->content_type = "application/json";
    g_string_truncate(resp->headers, 0);
    g_string_truncate(resp->body, 0);
    g_array_set_size(resp->ends, 0);
    resp->n_comments = 0;
    resp->is_stream = false;
    resp->retry_after = -1;
}

void sim_response_free(SimResponse *resp)
{
    if (resp->headers != NULL)
        g_string_free(resp->headers, TRUE);
    if (resp->body != NULL)
        g_string_free(resp->body, TRUE);
    if (resp->ends != NULL)
        g_array_free(resp->ends, TRUE);
    memset(resp, 0, sizeof *resp);
}

static void end_segment(SimResponse *resp)
{
    guint32 end = (guint32)resp->body->len;
    g_array_append_val(resp->ends, end);
}

/* ---- usage ---- */

static int64_t nonneg(int64_t v)
{
    return v < 0 ? 0 : v;
}

void sim_usage_resolve(const SimRequest *r, SimUsage *u)
{
    const SimDirectives *d = &r->d;
    memset(u, 0, sizeof *u);
    u->input = d->in >= 0 ? d->in : (int64_t)((r->body_len + 3) / 4);
    u->cached = nonneg(d->cached);
    u->cw5m = nonneg(d->cache_write);
    u->cw1h = nonneg(d->cache_write_1h);
    u->reasoning = nonneg(d->reasoning);
    if (d->out >= 0) {
        u->words = d->out;
    } else {
        u->words = d->words >= 0 ? d->words : 8;
        if (r->max_tokens >= 0 && r->max_tokens < u->words) {
            u->words = r->max_tokens;
            u->truncated = true;
        }
    }
}

static bool is_reasoner(const SimRequest *r)
{
    return r->flavor == SIM_FLAVOR_DEEPSEEK && strstr(r->model, "reasoner") != NULL;
}

/* Words of reasoning_content shown for deepseek-reasoner: bounded, the usage
 * still reports the full `reasoning` count. */
static int64_t reasoning_words(const SimRequest *r, const SimUsage *u)
{
    return is_reasoner(r) ? MIN(u->reasoning, 16) : 0;
}

static void append_decimal(GString *s, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    g_string_append(s, g_ascii_formatd(buf, sizeof buf, "%.6f", v));
}

/* The usage object of OpenAI-shaped Chat/Completions answers, per flavour. */
static void openai_usage(GString *s, const SimRequest *r, const SimUsage *u)
{
    SimFlavor f = r->flavor;
    bool additive = f == SIM_FLAVOR_XAI;
    int64_t prompt = u->input;
    int64_t completion = additive ? u->words : u->words + u->reasoning;
    int64_t total = prompt + completion + (additive ? u->reasoning : 0);
    int64_t cache_write = u->cw5m + u->cw1h;

    LIT(s, "{\"prompt_tokens\":");
    append_i64(s, prompt);
    LIT(s, ",\"completion_tokens\":");
    append_i64(s, completion);
    LIT(s, ",\"total_tokens\":");
    append_i64(s, total);
    if (f == SIM_FLAVOR_GROQ)
        LIT(s, ",\"queue_time\":0.001,\"prompt_time\":0.001,\"completion_time\":0.001,"
               "\"total_time\":0.002");
    if (f == SIM_FLAVOR_DEEPSEEK) {
        LIT(s, ",\"prompt_cache_hit_tokens\":");
        append_i64(s, u->cached);
        LIT(s, ",\"prompt_cache_miss_tokens\":");
        append_i64(s, prompt - u->cached);
    }
    bool minimal =
        f == SIM_FLAVOR_MISTRAL || f == SIM_FLAVOR_TOGETHER || f == SIM_FLAVOR_PERPLEXITY;
    if (!minimal || u->cached > 0 || cache_write > 0) {
        LIT(s, ",\"prompt_tokens_details\":{\"cached_tokens\":");
        append_i64(s, u->cached);
        if (cache_write > 0) {
            LIT(s, ",\"cache_write_tokens\":");
            append_i64(s, cache_write);
        }
        if (f == SIM_FLAVOR_OPENAI || f == SIM_FLAVOR_XAI || f == SIM_FLAVOR_OPENROUTER)
            LIT(s, ",\"audio_tokens\":0");
        if (f == SIM_FLAVOR_XAI) {
            LIT(s, ",\"text_tokens\":");
            append_i64(s, prompt);
            LIT(s, ",\"image_tokens\":0");
        }
        g_string_append_c(s, '}');
    }
    if (!minimal || u->reasoning > 0) {
        LIT(s, ",\"completion_tokens_details\":{\"reasoning_tokens\":");
        append_i64(s, u->reasoning);
        if (f == SIM_FLAVOR_OPENAI || f == SIM_FLAVOR_XAI)
            LIT(s, ",\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
                   "\"rejected_prediction_tokens\":0");
        g_string_append_c(s, '}');
    }
    if (f == SIM_FLAVOR_XAI) {
        LIT(s, ",\"num_sources_used\":0");
        if (r->d.ticks >= 0) {
            LIT(s, ",\"cost_in_usd_ticks\":");
            append_i64(s, r->d.ticks);
        }
    }
    if (f == SIM_FLAVOR_OPENROUTER && r->d.cost[0] != '\0') {
        LIT(s, ",\"cost\":");
        g_string_append(s, r->d.cost);
        LIT(s, ",\"is_byok\":false,\"cost_details\":{\"upstream_inference_cost\":null}");
    }
    if (f == SIM_FLAVOR_PERPLEXITY) {
        /* sonar list prices: 1 USD per 1M tokens each way + 0.005 per request. */
        double in_cost = (double)prompt * 1e-6, out_cost = (double)completion * 1e-6;
        LIT(s, ",\"search_context_size\":\"low\",\"citation_tokens\":0,\"num_search_queries\":1,"
               "\"reasoning_tokens\":");
        append_i64(s, u->reasoning);
        LIT(s, ",\"cost\":{\"input_tokens_cost\":");
        append_decimal(s, in_cost);
        LIT(s, ",\"output_tokens_cost\":");
        append_decimal(s, out_cost);
        LIT(s, ",\"request_cost\":0.005,\"total_cost\":");
        if (r->d.cost[0] != '\0')
            g_string_append(s, r->d.cost);
        else
            append_decimal(s, in_cost + out_cost + 0.005);
        g_string_append_c(s, '}');
    }
    g_string_append_c(s, '}');
}

/* ---- ids, models, headers ---- */

static const char *response_model(const SimRequest *r)
{
    if (r->d.served[0] != '\0')
        return r->d.served;
    if (!r->d.snapshot || r->flavor != SIM_FLAVOR_OPENAI)
        return r->model;
    static const char *const snapshots[][2] = {
        {"gpt-4o", "gpt-4o-2024-08-06"},
        {"gpt-4o-mini", "gpt-4o-mini-2024-07-18"},
        {"gpt-4.1", "gpt-4.1-2025-04-14"},
        {"gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"},
        {"gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"},
        {"gpt-5", "gpt-5-2025-08-07"},
        {"gpt-5-mini", "gpt-5-mini-2025-08-07"},
        {"o3", "o3-2025-04-16"},
        {"o4-mini", "o4-mini-2025-04-16"},
        {"gpt-3.5-turbo", "gpt-3.5-turbo-0125"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(snapshots); i++) {
        if (strcmp(r->model, snapshots[i][0]) == 0)
            return snapshots[i][1];
    }
    return r->model;
}

static void append_model_json(GString *s, const SimRequest *r)
{
    append_cstr_json(s, response_model(r));
}

static void add_request_id_headers(const SimRequest *r, SimResponse *resp, bool with_extras)
{
    GString *h = resp->headers;
    switch (r->flavor) {
    case SIM_FLAVOR_ANTHROPIC:
        LIT(h, "request-id: req_sim_");
        append_seq(h, r->seq);
        LIT(h, "\r\nanthropic-organization-id: sim-org\r\n");
        return;
    case SIM_FLAVOR_GEMINI:
        return;
    default:
        break;
    }
    LIT(h, "x-request-id: req_sim_");
    append_seq(h, r->seq);
    LIT(h, "\r\n");
    if (!with_extras)
        return;
    if (r->flavor == SIM_FLAVOR_OPENAI || r->flavor == SIM_FLAVOR_GROQ)
        LIT(h, "openai-processing-ms: 1\r\n"
               "x-ratelimit-limit-requests: 10000\r\nx-ratelimit-remaining-requests: 9999\r\n"
               "x-ratelimit-reset-requests: 6ms\r\nx-ratelimit-limit-tokens: 30000000\r\n"
               "x-ratelimit-remaining-tokens: 29990000\r\nx-ratelimit-reset-tokens: 12ms\r\n");
    if (r->flavor == SIM_FLAVOR_OPENROUTER) {
        LIT(h, "x-generation-id: gen-sim-");
        append_seq(h, r->seq);
        LIT(h, "\r\n");
    }
}

/* The id of an OpenAI-shaped completion; OpenRouter uses gen-. */
static void append_chat_id(GString *s, const SimRequest *r, bool legacy)
{
    g_string_append_c(s, '"');
    if (r->flavor == SIM_FLAVOR_OPENROUTER)
        LIT(s, "gen-sim-");
    else if (legacy)
        LIT(s, "cmpl-sim-");
    else
        LIT(s, "chatcmpl-sim-");
    append_seq(s, r->seq);
    g_string_append_c(s, '"');
}

/* ---- SSE framing helpers ---- */

static void sse_data_begin(SimResponse *resp)
{
    LIT(resp->body, "data: ");
}

static void sse_data_end(SimResponse *resp)
{
    LIT(resp->body, "\n\n");
    end_segment(resp);
}

static void sse_event_begin(SimResponse *resp, const char *event)
{
    LIT(resp->body, "event: ");
    g_string_append(resp->body, event);
    LIT(resp->body, "\ndata: ");
}

static void add_keepalives(const SimRequest *r, SimResponse *resp, const char *line,
                           const char *eol)
{
    int64_t n = r->d.keepalive;
    for (int64_t i = 0; i < n; i++) {
        g_string_append(resp->body, line);
        g_string_append(resp->body, eol);
        g_string_append(resp->body, eol);
        end_segment(resp);
    }
    resp->n_comments = (guint)MAX(n, 0);
}

static void begin_stream(const SimRequest *r, SimResponse *resp, const char *content_type)
{
    resp->is_stream = true;
    resp->content_type = content_type;
    const char *line =
        r->flavor == SIM_FLAVOR_OPENROUTER ? ": OPENROUTER PROCESSING" : ": keep-alive";
    const char *eol = r->flavor == SIM_FLAVOR_GEMINI ? "\r\n" : "\n";
    if (r->api == SIM_API_GEMINI_STREAM && !r->gemini_sse)
        return; /* a JSON array has no comment syntax */
    add_keepalives(r, resp, line, eol);
}

/* ---- OpenAI Chat Completions and legacy Completions ---- */

static const char *openai_finish(const SimRequest *r, const SimUsage *u)
{
    if (r->d.tools && r->api == SIM_API_CHAT)
        return "tool_calls";
    return u->truncated ? "length" : "stop";
}

static void perplexity_extras(GString *s)
{
    LIT(s,
        ",\"citations\":[\"https://example.com/sim\"],\"search_results\":[{\"title\":\"Simulated "
        "source\",\"url\":\"https://example.com/sim\",\"date\":null}]");
}

static void chat_json(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    GString *s = resp->body;
    bool legacy = r->api == SIM_API_COMPLETIONS;
    LIT(s, "{\"id\":");
    append_chat_id(s, r, legacy);
    if (legacy)
        LIT(s, ",\"object\":\"text_completion\",\"created\":");
    else
        LIT(s, ",\"object\":\"chat.completion\",\"created\":");
    append_u64(s, SIM_CREATED);
    LIT(s, ",\"model\":");
    append_model_json(s, r);
    if (legacy) {
        LIT(s, ",\"choices\":[{\"text\":");
        append_text_json(s, u->words);
        LIT(s, ",\"index\":0,\"logprobs\":null,\"finish_reason\":\"");
    } else {
        LIT(s, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        if (r->d.tools) {
            LIT(s, "null,\"tool_calls\":[{\"id\":\"call_sim_");
            append_seq(s, r->seq);
            LIT(s, "\",\"type\":\"function\",\"function\":{\"name\":");
            append_cstr_json(s, tool_name(r));
            LIT(s, ",\"arguments\":");
            append_tool_args(s, u->words, true);
            LIT(s, "}}]");
        } else {
            append_text_json(s, u->words);
        }
        if (is_reasoner(r)) {
            LIT(s, ",\"reasoning_content\":");
            append_text_json(s, reasoning_words(r, u));
        }
        LIT(s, ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"");
    }
    g_string_append(s, openai_finish(r, u));
    LIT(s, "\"}],\"usage\":");
    openai_usage(s, r, u);
    if (r->flavor == SIM_FLAVOR_OPENAI)
        LIT(s, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_sim\"");
    if (r->flavor == SIM_FLAVOR_GROQ) {
        LIT(s, ",\"x_groq\":{\"id\":\"req_sim_");
        append_seq(s, r->seq);
        LIT(s, "\"}");
    }
    if (r->flavor == SIM_FLAVOR_OPENROUTER)
        LIT(s, ",\"provider\":\"Simulated\"");
    if (r->flavor == SIM_FLAVOR_PERPLEXITY)
        perplexity_extras(s);
    g_string_append_c(s, '}');
    end_segment(resp);
}

/* Where a stream's usage goes, per flavour (README.md "Flavours"). */
typedef struct {
    bool null_on_chunks; /* "usage":null on every chunk */
    bool usage_chunk;    /* the extra empty-choices chunk */
    bool on_finish;      /* usage on the finish_reason chunk */
    bool x_groq;         /* x_groq.usage on the finish_reason chunk */
} StreamUsage;

static StreamUsage stream_usage_plan(const SimRequest *r)
{
    StreamUsage p = {0};
    switch (r->flavor) {
    case SIM_FLAVOR_OPENROUTER:
        p.usage_chunk = true;
        break;
    case SIM_FLAVOR_MISTRAL:
    case SIM_FLAVOR_TOGETHER:
    case SIM_FLAVOR_PERPLEXITY:
        p.on_finish = true;
        break;
    case SIM_FLAVOR_GEMINI_OPENAI:
        p.on_finish = r->include_usage;
        break;
    case SIM_FLAVOR_GROQ:
        p.x_groq = true;
        p.null_on_chunks = p.usage_chunk = r->include_usage;
        break;
    default:
        p.null_on_chunks = p.usage_chunk = r->include_usage;
        break;
    }
    return p;
}

static void chunk_begin(const SimRequest *r, GString *s)
{
    bool legacy = r->api == SIM_API_COMPLETIONS;
    LIT(s, "{\"id\":");
    append_chat_id(s, r, legacy);
    if (legacy)
        LIT(s, ",\"object\":\"text_completion\",\"created\":");
    else
        LIT(s, ",\"object\":\"chat.completion.chunk\",\"created\":");
    append_u64(s, SIM_CREATED);
    LIT(s, ",\"model\":");
    append_model_json(s, r);
}

/* `delta_fn` writes the inside of the delta object (chat) or the text value
 * (legacy); `finish` is NULL for non-final chunks. */
typedef void (*DeltaFn)(GString *s, const SimRequest *r, const SimUsage *u, int64_t k);

static void chunk_choices(GString *s, const SimRequest *r, const SimUsage *u, DeltaFn fn, int64_t k,
                          const char *finish)
{
    if (r->api == SIM_API_COMPLETIONS) {
        LIT(s, ",\"choices\":[{\"text\":");
        if (fn != NULL)
            fn(s, r, u, k);
        else
            LIT(s, "\"\"");
        LIT(s, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    } else {
        LIT(s, ",\"choices\":[{\"index\":0,\"delta\":{");
        if (fn != NULL)
            fn(s, r, u, k);
        LIT(s, "},\"logprobs\":null,\"finish_reason\":");
    }
    if (finish != NULL) {
        g_string_append_c(s, '"');
        g_string_append(s, finish);
        g_string_append_c(s, '"');
    } else {
        LIT(s, "null");
    }
    LIT(s, "}]");
}

static void delta_role(GString *s, const SimRequest *r, const SimUsage *u, int64_t k)
{
    if (r->api == SIM_API_COMPLETIONS) {
        LIT(s, "\"\"");
    } else if (r->d.tools) {
        LIT(s, "\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":"
               "\"call_sim_");
        append_seq(s, r->seq);
        LIT(s, "\",\"type\":\"function\",\"function\":{\"name\":");
        append_cstr_json(s, tool_name(r));
        LIT(s, ",\"arguments\":\"\"}}]");
    } else {
        LIT(s, "\"role\":\"assistant\",\"content\":\"\"");
    }
}

static void delta_word(GString *s, const SimRequest *r, const SimUsage *u, int64_t k)
{
    if (r->api == SIM_API_COMPLETIONS) {
        g_string_append_c(s, '"');
        append_word(s, k);
        g_string_append_c(s, '"');
    } else if (r->d.tools) {
        LIT(s, "\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
        append_tool_fragment(s, k, u->words);
        LIT(s, "}}]");
    } else {
        LIT(s, "\"content\":\"");
        append_word(s, k);
        g_string_append_c(s, '"');
    }
}

static void delta_reasoning(GString *s, const SimRequest *r, const SimUsage *u, int64_t k)
{
    LIT(s, "\"content\":null,\"reasoning_content\":\"");
    append_word(s, k);
    g_string_append_c(s, '"');
}

static void delta_finish(GString *s, const SimRequest *r, const SimUsage *u, int64_t k)
{
    if (r->flavor == SIM_FLAVOR_MISTRAL)
        LIT(s, "\"content\":\"\"");
}

static void chunk_end(GString *s, const SimRequest *r, const StreamUsage *p)
{
    if (p->null_on_chunks)
        LIT(s, ",\"usage\":null");
    if (r->flavor == SIM_FLAVOR_PERPLEXITY)
        perplexity_extras(s);
    g_string_append_c(s, '}');
}

static void emit_chunk(const SimRequest *r, const SimUsage *u, const StreamUsage *p,
                       SimResponse *resp, DeltaFn fn, int64_t k)
{
    sse_data_begin(resp);
    chunk_begin(r, resp->body);
    chunk_choices(resp->body, r, u, fn, k, NULL);
    chunk_end(resp->body, r, p);
    sse_data_end(resp);
}

static void chat_stream(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    StreamUsage p = stream_usage_plan(r);
    GString *s = resp->body;
    begin_stream(r, resp, "text/event-stream; charset=utf-8");

    emit_chunk(r, u, &p, resp, delta_role, 0);
    if (r->api == SIM_API_CHAT) {
        for (int64_t k = 0; k < reasoning_words(r, u); k++)
            emit_chunk(r, u, &p, resp, delta_reasoning, k);
    }
    /* Tool arguments travel as words + 2 framing fragments. */
    int64_t deltas = r->d.tools && r->api == SIM_API_CHAT ? u->words + 2 : u->words;
    for (int64_t k = 0; k < deltas; k++)
        emit_chunk(r, u, &p, resp, delta_word, k);

    /* The finish_reason chunk. */
    sse_data_begin(resp);
    chunk_begin(r, s);
    chunk_choices(s, r, u, r->api == SIM_API_COMPLETIONS ? NULL : delta_finish, 0,
                  openai_finish(r, u));
    if (p.on_finish) {
        LIT(s, ",\"usage\":");
        openai_usage(s, r, u);
    } else if (p.null_on_chunks) {
        LIT(s, ",\"usage\":null");
    }
    if (p.x_groq) {
        LIT(s, ",\"x_groq\":{\"id\":\"req_sim_");
        append_seq(s, r->seq);
        LIT(s, "\",\"usage\":");
        openai_usage(s, r, u);
        g_string_append_c(s, '}');
    }
    if (r->flavor == SIM_FLAVOR_PERPLEXITY)
        perplexity_extras(s);
    g_string_append_c(s, '}');
    sse_data_end(resp);

    if (p.usage_chunk) {
        sse_data_begin(resp);
        chunk_begin(r, s);
        LIT(s, ",\"choices\":[],\"usage\":");
        openai_usage(s, r, u);
        g_string_append_c(s, '}');
        sse_data_end(resp);
    }
    LIT(s, "data: [DONE]\n\n");
    end_segment(resp);
}

/* ---- OpenAI Responses ---- */

static void responses_usage(GString *s, const SimRequest *r, const SimUsage *u)
{
    int64_t out = u->words + u->reasoning;
    LIT(s, "{\"input_tokens\":");
    append_i64(s, u->input);
    LIT(s, ",\"input_tokens_details\":{\"cached_tokens\":");
    append_i64(s, u->cached);
    if (u->cw5m + u->cw1h > 0) {
        LIT(s, ",\"cache_write_tokens\":");
        append_i64(s, u->cw5m + u->cw1h);
    }
    LIT(s, "},\"output_tokens\":");
    append_i64(s, out);
    LIT(s, ",\"output_tokens_details\":{\"reasoning_tokens\":");
    append_i64(s, u->reasoning);
    LIT(s, "},\"total_tokens\":");
    append_i64(s, u->input + out);
    if (r->d.ticks >= 0) {
        LIT(s, ",\"cost_in_usd_ticks\":");
        append_i64(s, r->d.ticks);
    }
    if (r->d.cost[0] != '\0') {
        LIT(s, ",\"cost\":");
        g_string_append(s, r->d.cost);
    }
    g_string_append_c(s, '}');
}

static void responses_item_id(GString *s, const SimRequest *r)
{
    g_string_append_c(s, '"');
    if (r->d.tools)
        LIT(s, "fc_sim_");
    else
        LIT(s, "msg_sim_");
    append_seq(s, r->seq);
    g_string_append_c(s, '"');
}

/* Web searches: one web_search_call output item each, before the answer's
 * item, which comes at output index `searches`. */
static int64_t searches(const SimRequest *r)
{
    return nonneg(r->d.searches);
}

static void search_query(GString *s, int64_t k)
{
    LIT(s, "\"sim query ");
    append_i64(s, k + 1);
    g_string_append_c(s, '"');
}

static void responses_search_item(GString *s, const SimRequest *r, int64_t k, bool done)
{
    LIT(s, "{\"type\":\"web_search_call\",\"id\":\"ws_sim_");
    append_seq(s, r->seq);
    g_string_append_c(s, '_');
    append_i64(s, k + 1);
    if (done) {
        LIT(s, "\",\"status\":\"completed\",\"action\":{\"type\":\"search\",\"query\":");
        search_query(s, k);
        LIT(s, "}}");
    } else {
        LIT(s, "\",\"status\":\"in_progress\"}");
    }
}

/* The output item; `done` selects the finished form (full text). */
static void responses_item(GString *s, const SimRequest *r, const SimUsage *u, bool done)
{
    if (r->d.tools) {
        LIT(s, "{\"type\":\"function_call\",\"id\":");
        responses_item_id(s, r);
        LIT(s, ",\"call_id\":\"call_sim_");
        append_seq(s, r->seq);
        LIT(s, "\",\"name\":");
        append_cstr_json(s, tool_name(r));
        LIT(s, ",\"arguments\":");
        if (done)
            append_tool_args(s, u->words, true);
        else
            LIT(s, "\"\"");
        LIT(s, ",\"status\":");
    } else {
        LIT(s, "{\"type\":\"message\",\"id\":");
        responses_item_id(s, r);
        LIT(s, ",\"role\":\"assistant\",\"content\":[");
        if (done) {
            LIT(s, "{\"type\":\"output_text\",\"text\":");
            append_text_json(s, u->words);
            LIT(s, ",\"annotations\":[]}");
        }
        LIT(s, "],\"status\":");
    }
    if (done)
        LIT(s, "\"completed\"}");
    else
        LIT(s, "\"in_progress\"}");
}

static void responses_object(GString *s, const SimRequest *r, const SimUsage *u, bool final)
{
    LIT(s, "{\"id\":\"resp_sim_");
    append_seq(s, r->seq);
    LIT(s, "\",\"object\":\"response\",\"created_at\":");
    append_u64(s, SIM_CREATED);
    LIT(s, ",\"status\":");
    if (!final)
        LIT(s, "\"in_progress\",\"error\":null,\"incomplete_details\":null");
    else if (u->truncated)
        LIT(s, "\"incomplete\",\"error\":null,\"incomplete_details\":{\"reason\":"
               "\"max_output_tokens\"}");
    else
        LIT(s, "\"completed\",\"error\":null,\"incomplete_details\":null");
    LIT(s, ",\"model\":");
    append_model_json(s, r);
    LIT(s, ",\"output\":[");
    if (final) {
        for (int64_t k = 0; k < searches(r); k++) {
            responses_search_item(s, r, k, true);
            g_string_append_c(s, ',');
        }
        responses_item(s, r, u, true);
    }
    LIT(s, "],\"parallel_tool_calls\":true,\"service_tier\":\"default\",\"usage\":");
    if (final)
        responses_usage(s, r, u);
    else
        LIT(s, "null");
    g_string_append_c(s, '}');
}

typedef struct {
    SimResponse *resp;
    int64_t seq;
} EventCtx;

static GString *resp_event_begin(EventCtx *e, const char *type)
{
    GString *s = e->resp->body;
    sse_event_begin(e->resp, type);
    LIT(s, "{\"type\":\"");
    g_string_append(s, type);
    LIT(s, "\",\"sequence_number\":");
    append_i64(s, e->seq++);
    return s;
}

static void resp_event_end(EventCtx *e)
{
    g_string_append_c(e->resp->body, '}');
    sse_data_end(e->resp);
}

static void output_index(GString *s, int64_t index)
{
    LIT(s, ",\"output_index\":");
    append_i64(s, index);
}

static void item_ref(GString *s, const SimRequest *r)
{
    LIT(s, ",\"item_id\":");
    responses_item_id(s, r);
    output_index(s, searches(r));
}

/* A web search as the API streams it: the item, its progress, the item done. */
static void responses_search_events(EventCtx *e, const SimRequest *r, int64_t k)
{
    GString *s = resp_event_begin(e, "response.output_item.added");
    output_index(s, k);
    LIT(s, ",\"item\":");
    responses_search_item(s, r, k, false);
    resp_event_end(e);
    static const char *const progress[] = {"response.web_search_call.in_progress",
                                           "response.web_search_call.searching",
                                           "response.web_search_call.completed"};
    for (size_t i = 0; i < G_N_ELEMENTS(progress); i++) {
        s = resp_event_begin(e, progress[i]);
        output_index(s, k);
        LIT(s, ",\"item_id\":\"ws_sim_");
        append_seq(s, r->seq);
        g_string_append_c(s, '_');
        append_i64(s, k + 1);
        g_string_append_c(s, '"');
        resp_event_end(e);
    }
    s = resp_event_begin(e, "response.output_item.done");
    output_index(s, k);
    LIT(s, ",\"item\":");
    responses_search_item(s, r, k, true);
    resp_event_end(e);
}

static void responses_stream(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    begin_stream(r, resp, "text/event-stream; charset=utf-8");
    EventCtx e = {resp, 0};
    GString *s;

    s = resp_event_begin(&e, "response.created");
    LIT(s, ",\"response\":");
    responses_object(s, r, u, false);
    resp_event_end(&e);
    s = resp_event_begin(&e, "response.in_progress");
    LIT(s, ",\"response\":");
    responses_object(s, r, u, false);
    resp_event_end(&e);
    for (int64_t k = 0; k < searches(r); k++)
        responses_search_events(&e, r, k);
    s = resp_event_begin(&e, "response.output_item.added");
    output_index(s, searches(r));
    LIT(s, ",\"item\":");
    responses_item(s, r, u, false);
    resp_event_end(&e);

    if (r->d.tools) {
        for (int64_t k = 0; k < u->words + 2; k++) {
            s = resp_event_begin(&e, "response.function_call_arguments.delta");
            item_ref(s, r);
            LIT(s, ",\"delta\":");
            append_tool_fragment(s, k, u->words);
            resp_event_end(&e);
        }
        s = resp_event_begin(&e, "response.function_call_arguments.done");
        item_ref(s, r);
        LIT(s, ",\"arguments\":");
        append_tool_args(s, u->words, true);
        resp_event_end(&e);
    } else {
        s = resp_event_begin(&e, "response.content_part.added");
        item_ref(s, r);
        LIT(s, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\","
               "\"annotations\":[]}");
        resp_event_end(&e);
        for (int64_t k = 0; k < u->words; k++) {
            s = resp_event_begin(&e, "response.output_text.delta");
            item_ref(s, r);
            LIT(s, ",\"content_index\":0,\"delta\":\"");
            append_word(s, k);
            LIT(s, "\",\"logprobs\":[]");
            resp_event_end(&e);
        }
        s = resp_event_begin(&e, "response.output_text.done");
        item_ref(s, r);
        LIT(s, ",\"content_index\":0,\"text\":");
        append_text_json(s, u->words);
        LIT(s, ",\"logprobs\":[]");
        resp_event_end(&e);
        s = resp_event_begin(&e, "response.content_part.done");
        item_ref(s, r);
        LIT(s, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":");
        append_text_json(s, u->words);
        LIT(s, ",\"annotations\":[]}");
        resp_event_end(&e);
    }
    s = resp_event_begin(&e, "response.output_item.done");
    output_index(s, searches(r));
    LIT(s, ",\"item\":");
    responses_item(s, r, u, true);
    resp_event_end(&e);
    s = resp_event_begin(&e, u->truncated ? "response.incomplete" : "response.completed");
    LIT(s, ",\"response\":");
    responses_object(s, r, u, true);
    resp_event_end(&e);
}

/* ---- OpenAI Embeddings ---- */

/* Deterministic components in [-0.1, 0.1) with 3 decimals. */
static int embedding_milli(unsigned i, unsigned j)
{
    return (int)((i * 31u + j * 17u + 7u) % 200u) - 100;
}

static void embeddings_json(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    GString *s = resp->body;
    LIT(s, "{\"object\":\"list\",\"data\":[");
    for (unsigned i = 0; i < r->n_inputs; i++) {
        if (i > 0)
            g_string_append_c(s, ',');
        LIT(s, "{\"object\":\"embedding\",\"index\":");
        append_u64(s, i);
        LIT(s, ",\"embedding\":");
        if (r->base64) {
            g_autofree float *v = g_new(float, r->dimensions);
            for (unsigned j = 0; j < r->dimensions; j++)
                v[j] = (float)embedding_milli(i, j) / 1000.0f;
            g_autofree char *b64 =
                g_base64_encode((const guchar *)v, r->dimensions * sizeof(float));
            append_cstr_json(s, b64);
        } else {
            g_string_append_c(s, '[');
            for (unsigned j = 0; j < r->dimensions; j++) {
                int m = embedding_milli(i, j);
                if (j > 0)
                    g_string_append_c(s, ',');
                g_string_append_printf(s, "%s0.%03d", m < 0 ? "-" : "", m < 0 ? -m : m);
            }
            g_string_append_c(s, ']');
        }
        g_string_append_c(s, '}');
    }
    LIT(s, "],\"model\":");
    append_model_json(s, r);
    LIT(s, ",\"usage\":{\"prompt_tokens\":");
    append_i64(s, u->input);
    LIT(s, ",\"total_tokens\":");
    append_i64(s, u->input);
    if (r->flavor == SIM_FLAVOR_OPENROUTER && r->d.cost[0] != '\0') {
        LIT(s, ",\"cost\":");
        g_string_append(s, r->d.cost);
    }
    LIT(s, "}}");
    end_segment(resp);
}

/* ---- Anthropic Messages ---- */

static const char *anthropic_stop(const SimRequest *r, const SimUsage *u)
{
    if (r->d.tools)
        return "tool_use";
    return u->truncated ? "max_tokens" : "end_turn";
}

static int64_t anthropic_uncached(const SimUsage *u)
{
    return nonneg(u->input - u->cached - u->cw5m - u->cw1h);
}

/* The searches (final usage only) and the region, when asked for. */
static void anthropic_usage_extras(GString *s, const SimRequest *r, bool final)
{
    if (final && searches(r) > 0) {
        LIT(s, ",\"server_tool_use\":{\"web_search_requests\":");
        append_i64(s, searches(r));
        g_string_append_c(s, '}');
    }
    if (r->d.geo[0] != '\0') {
        LIT(s, ",\"inference_geo\":");
        append_cstr_json(s, r->d.geo);
    }
}

/* `with_breakdown`: the message_start / non-stream form with cache_creation;
 * `output` is the output_tokens value to report. */
static void anthropic_usage(GString *s, const SimRequest *r, const SimUsage *u, int64_t output,
                            bool final)
{
    LIT(s, "{\"input_tokens\":");
    append_i64(s, anthropic_uncached(u));
    LIT(s, ",\"cache_creation_input_tokens\":");
    append_i64(s, u->cw5m + u->cw1h);
    LIT(s, ",\"cache_read_input_tokens\":");
    append_i64(s, u->cached);
    LIT(s, ",\"cache_creation\":{\"ephemeral_5m_input_tokens\":");
    append_i64(s, u->cw5m);
    LIT(s, ",\"ephemeral_1h_input_tokens\":");
    append_i64(s, u->cw1h);
    LIT(s, "},\"output_tokens\":");
    append_i64(s, output);
    if (final && u->reasoning > 0) {
        LIT(s, ",\"output_tokens_details\":{\"thinking_tokens\":");
        append_i64(s, u->reasoning);
        g_string_append_c(s, '}');
    }
    LIT(s, ",\"service_tier\":\"standard\"");
    anthropic_usage_extras(s, r, final);
    g_string_append_c(s, '}');
}

static void append_msg_id(GString *s, const SimRequest *r)
{
    LIT(s, "\"msg_sim_");
    append_seq(s, r->seq);
    g_string_append_c(s, '"');
}

static void messages_json(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    GString *s = resp->body;
    LIT(s, "{\"id\":");
    append_msg_id(s, r);
    LIT(s, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    append_model_json(s, r);
    LIT(s, ",\"content\":[");
    if (u->reasoning > 0)
        LIT(s, "{\"type\":\"thinking\",\"thinking\":\"Thinking about the request.\","
               "\"signature\":\"c2ltLXNpZ25hdHVyZQ==\"},");
    if (r->d.tools) {
        LIT(s, "{\"type\":\"tool_use\",\"id\":\"toolu_sim_");
        append_seq(s, r->seq);
        LIT(s, "\",\"name\":");
        append_cstr_json(s, tool_name(r));
        LIT(s, ",\"input\":");
        append_tool_args(s, u->words, false);
        g_string_append_c(s, '}');
    } else {
        LIT(s, "{\"type\":\"text\",\"text\":");
        append_text_json(s, u->words);
        g_string_append_c(s, '}');
    }
    LIT(s, "],\"stop_reason\":\"");
    g_string_append(s, anthropic_stop(r, u));
    LIT(s, "\",\"stop_sequence\":null,\"usage\":");
    anthropic_usage(s, r, u, u->words + u->reasoning, true);
    g_string_append_c(s, '}');
    end_segment(resp);
}

static GString *anth_event(SimResponse *resp, const char *type)
{
    sse_event_begin(resp, type);
    LIT(resp->body, "{\"type\":\"");
    g_string_append(resp->body, type);
    g_string_append_c(resp->body, '"');
    return resp->body;
}

static void anth_event_end(SimResponse *resp)
{
    g_string_append_c(resp->body, '}');
    sse_data_end(resp);
}

static void messages_stream(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    begin_stream(r, resp, "text/event-stream; charset=utf-8");
    GString *s = anth_event(resp, "message_start");
    LIT(s, ",\"message\":{\"id\":");
    append_msg_id(s, r);
    LIT(s, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    append_model_json(s, r);
    LIT(s, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    anthropic_usage(s, r, u, 1, false);
    g_string_append_c(s, '}');
    anth_event_end(resp);

    int index = 0;
    if (u->reasoning > 0) {
        s = anth_event(resp, "content_block_start");
        LIT(s, ",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\","
               "\"signature\":\"\"}");
        anth_event_end(resp);
        s = anth_event(resp, "content_block_delta");
        LIT(s, ",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"");
        g_string_append(s, THINKING_TEXT);
        LIT(s, "\"}");
        anth_event_end(resp);
        s = anth_event(resp, "content_block_delta");
        LIT(s, ",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":"
               "\"c2ltLXNpZ25hdHVyZQ==\"}");
        anth_event_end(resp);
        s = anth_event(resp, "content_block_stop");
        LIT(s, ",\"index\":0");
        anth_event_end(resp);
        index = 1;
    }

    s = anth_event(resp, "content_block_start");
    LIT(s, ",\"index\":");
    append_u64(s, (uint64_t)index);
    if (r->d.tools) {
        LIT(s, ",\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_sim_");
        append_seq(s, r->seq);
        LIT(s, "\",\"name\":");
        append_cstr_json(s, tool_name(r));
        LIT(s, ",\"input\":{}}");
    } else {
        LIT(s, ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}");
    }
    anth_event_end(resp);
    anth_event(resp, "ping");
    anth_event_end(resp);

    int64_t deltas = r->d.tools ? u->words + 2 : u->words;
    for (int64_t k = 0; k < deltas; k++) {
        s = anth_event(resp, "content_block_delta");
        LIT(s, ",\"index\":");
        append_u64(s, (uint64_t)index);
        if (r->d.tools) {
            LIT(s, ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":");
            append_tool_fragment(s, k, u->words);
            g_string_append_c(s, '}');
        } else {
            LIT(s, ",\"delta\":{\"type\":\"text_delta\",\"text\":\"");
            append_word(s, k);
            LIT(s, "\"}");
        }
        anth_event_end(resp);
    }
    s = anth_event(resp, "content_block_stop");
    LIT(s, ",\"index\":");
    append_u64(s, (uint64_t)index);
    anth_event_end(resp);

    s = anth_event(resp, "message_delta");
    LIT(s, ",\"delta\":{\"stop_reason\":\"");
    g_string_append(s, anthropic_stop(r, u));
    LIT(s, "\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":");
    append_i64(s, anthropic_uncached(u));
    LIT(s, ",\"cache_creation_input_tokens\":");
    append_i64(s, u->cw5m + u->cw1h);
    LIT(s, ",\"cache_read_input_tokens\":");
    append_i64(s, u->cached);
    LIT(s, ",\"output_tokens\":");
    append_i64(s, u->words + u->reasoning);
    anthropic_usage_extras(s, r, true);
    LIT(s, "}");
    anth_event_end(resp);
    anth_event(resp, "message_stop");
    anth_event_end(resp);
}

/* ---- Gemini ---- */

static void gemini_usage(GString *s, const SimUsage *u, int64_t candidates)
{
    LIT(s, "\"usageMetadata\":{\"promptTokenCount\":");
    append_i64(s, u->input);
    LIT(s, ",\"candidatesTokenCount\":");
    append_i64(s, candidates);
    LIT(s, ",\"totalTokenCount\":");
    append_i64(s, u->input + candidates + u->reasoning);
    if (u->cached > 0) {
        LIT(s, ",\"cachedContentTokenCount\":");
        append_i64(s, u->cached);
    }
    if (u->reasoning > 0) {
        LIT(s, ",\"thoughtsTokenCount\":");
        append_i64(s, u->reasoning);
    }
    LIT(s, ",\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":");
    append_i64(s, u->input);
    LIT(s, "}]}");
}

/* Google Search grounding: the queries, on the last chunk. */
static void gemini_grounding(GString *s, const SimRequest *r)
{
    LIT(s, ",\"groundingMetadata\":{\"webSearchQueries\":[");
    for (int64_t k = 0; k < searches(r); k++) {
        if (k > 0)
            g_string_append_c(s, ',');
        search_query(s, k);
    }
    LIT(s, "],\"groundingChunks\":[{\"web\":{\"uri\":\"https://example.com/\","
           "\"title\":\"example.com\"}}]}");
}

/* One candidate chunk holding words [from, to); finish on the last. */
static void gemini_chunk(GString *s, const SimRequest *r, const SimUsage *u, int64_t from,
                         int64_t to, bool last)
{
    LIT(s, "{\"candidates\":[{\"content\":{\"parts\":[");
    if (r->d.tools) {
        LIT(s, "{\"functionCall\":{\"name\":");
        append_cstr_json(s, tool_name(r));
        LIT(s, ",\"args\":");
        append_tool_args(s, u->words, false);
        LIT(s, "}}");
    } else {
        LIT(s, "{\"text\":\"");
        for (int64_t k = from; k < to; k++)
            append_word(s, k);
        LIT(s, "\"}");
    }
    LIT(s, "],\"role\":\"model\"}");
    if (last) {
        if (u->truncated)
            LIT(s, ",\"finishReason\":\"MAX_TOKENS\"");
        else
            LIT(s, ",\"finishReason\":\"STOP\"");
        if (searches(r) > 0)
            gemini_grounding(s, r);
    }
    LIT(s, ",\"index\":0}],");
    gemini_usage(s, u, to);
    LIT(s, ",\"modelVersion\":");
    append_model_json(s, r);
    LIT(s, ",\"responseId\":\"sim-");
    append_seq(s, r->seq);
    LIT(s, "\"}");
}

static void gemini_json(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    gemini_chunk(resp->body, r, u, 0, u->words, true);
    end_segment(resp);
}

static void gemini_stream(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    bool sse = r->gemini_sse;
    begin_stream(r, resp, sse ? "text/event-stream" : "application/json; charset=UTF-8");
    GString *s = resp->body;
    /* One word per chunk; a tool call (or an empty answer) is one chunk. */
    int64_t chunks = r->d.tools || u->words == 0 ? 1 : u->words;
    for (int64_t k = 0; k < chunks; k++) {
        bool last = k == chunks - 1;
        int64_t from = r->d.tools ? 0 : k, to = r->d.tools || last ? u->words : k + 1;
        if (sse)
            LIT(s, "data: ");
        else if (k == 0)
            g_string_append_c(s, '[');
        else
            LIT(s, ",\r\n");
        gemini_chunk(s, r, u, from, to, last);
        if (sse)
            LIT(s, "\r\n\r\n");
        else if (last)
            g_string_append_c(s, ']');
        end_segment(resp);
    }
}

/* ---- token counting ---- */

static void count_json(const SimRequest *r, const SimUsage *u, SimResponse *resp)
{
    GString *s = resp->body;
    switch (r->api) {
    case SIM_API_MESSAGES_COUNT:
        LIT(s, "{\"input_tokens\":");
        append_i64(s, u->input);
        g_string_append_c(s, '}');
        break;
    case SIM_API_RESPONSES_COUNT:
        LIT(s, "{\"object\":\"response.input_tokens\",\"input_tokens\":");
        append_i64(s, u->input);
        g_string_append_c(s, '}');
        break;
    default:
        LIT(s, "{\"totalTokens\":");
        append_i64(s, u->input);
        if (u->cached > 0) {
            LIT(s, ",\"cachedContentTokenCount\":");
            append_i64(s, u->cached);
        }
        LIT(s, ",\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":");
        append_i64(s, u->input);
        LIT(s, "}]}");
        break;
    }
    end_segment(resp);
}

/* ---- entry points ---- */

void sim_render(const SimRequest *r, SimResponse *resp)
{
    SimUsage u;
    sim_usage_resolve(r, &u);
    sim_response_clear(resp);
    add_request_id_headers(r, resp, true);

    switch (r->api) {
    case SIM_API_CHAT:
    case SIM_API_COMPLETIONS:
        if (r->stream)
            chat_stream(r, &u, resp);
        else
            chat_json(r, &u, resp);
        if (r->flavor == SIM_FLAVOR_FIREWORKS && !r->stream)
            g_string_append_printf(resp->headers,
                                   "fireworks-prompt-tokens: %" G_GINT64_FORMAT "\r\n", u.input);
        break;
    case SIM_API_RESPONSES:
        if (r->stream)
            responses_stream(r, &u, resp);
        else {
            responses_object(resp->body, r, &u, true);
            end_segment(resp);
        }
        break;
    case SIM_API_EMBEDDINGS:
        embeddings_json(r, &u, resp);
        break;
    case SIM_API_MESSAGES:
        if (r->stream)
            messages_stream(r, &u, resp);
        else
            messages_json(r, &u, resp);
        break;
    case SIM_API_GEMINI_GENERATE:
        gemini_json(r, &u, resp);
        break;
    case SIM_API_GEMINI_STREAM:
        gemini_stream(r, &u, resp);
        break;
    case SIM_API_MESSAGES_COUNT:
    case SIM_API_RESPONSES_COUNT:
    case SIM_API_GEMINI_COUNT:
        count_json(r, &u, resp);
        break;
    case SIM_API_NONE:
        break;
    }

    /* DeepSeek-style queue whitespace before a non-stream body. */
    if (!resp->is_stream && r->d.lead_ws > 0) {
        g_autofree char *ws = g_strnfill((gsize)r->d.lead_ws, '\n');
        g_string_prepend(resp->body, ws);
        g_array_index(resp->ends, guint32, resp->ends->len - 1) = (guint32)resp->body->len;
    }
}

static const char *openai_error_type(int status)
{
    switch (status) {
    case 401:
        return "invalid_request_error\",\"param\":null,\"code\":\"invalid_api_key\"";
    case 403:
        return "permission_error\",\"param\":null,\"code\":null";
    case 404:
        return "invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"";
    case 429:
        return "requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"";
    default:
        return status >= 500 ? "server_error\",\"param\":null,\"code\":null"
                             : "invalid_request_error\",\"param\":null,\"code\":null";
    }
}

static const char *anthropic_error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout_error";
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static const char *gemini_status(int status)
{
    switch (status) {
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 500:
        return "INTERNAL";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
    }
}

void sim_render_error(const SimRequest *r, int status, const char *message, SimResponse *resp)
{
    sim_response_clear(resp);
    resp->status = status;
    add_request_id_headers(r, resp, false);
    GString *s = resp->body;
    switch (r->flavor) {
    case SIM_FLAVOR_ANTHROPIC:
        LIT(s, "{\"type\":\"error\",\"error\":{\"type\":\"");
        g_string_append(s, anthropic_error_type(status));
        LIT(s, "\",\"message\":");
        append_cstr_json(s, message);
        LIT(s, "},\"request_id\":\"req_sim_");
        append_seq(s, r->seq);
        LIT(s, "\"}");
        break;
    case SIM_FLAVOR_GEMINI:
        LIT(s, "{\"error\":{\"code\":");
        append_u64(s, (uint64_t)status);
        LIT(s, ",\"message\":");
        append_cstr_json(s, message);
        LIT(s, ",\"status\":\"");
        g_string_append(s, gemini_status(status));
        g_string_append_c(s, '"');
        if (status == 429 && r->d.retry_after >= 0) {
            LIT(s, ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                   "\"retryDelay\":\"");
            append_i64(s, r->d.retry_after);
            LIT(s, "s\"}]");
        }
        LIT(s, "}}");
        break;
    case SIM_FLAVOR_OPENROUTER:
        LIT(s, "{\"error\":{\"code\":");
        append_u64(s, (uint64_t)status);
        LIT(s, ",\"message\":");
        append_cstr_json(s, message);
        LIT(s, ",\"metadata\":{}}}");
        break;
    case SIM_FLAVOR_MISTRAL:
        LIT(s, "{\"object\":\"error\",\"message\":");
        append_cstr_json(s, message);
        LIT(s, ",\"type\":\"");
        g_string_append(s, status == 429 ? "rate_limited\",\"param\":null,\"code\":\"1300\""
                                         : openai_error_type(status));
        g_string_append_c(s, '}');
        break;
    default:
        LIT(s, "{\"error\":{\"message\":");
        append_cstr_json(s, message);
        LIT(s, ",\"type\":\"");
        g_string_append(s, openai_error_type(status));
        LIT(s, "}}");
        break;
    }
    end_segment(resp);
}
