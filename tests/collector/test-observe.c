/* test-observe.c - usage, model, completeness and emitted bytes for recorded
 * provider transcripts (tests/collector/golden/), each fed whole, split in
 * two at every byte and byte by byte; the include_usage strip against the
 * transcript the provider sends without the option; caps; garbage. */
#include "observe.h"

#include <string.h>
#include <zlib.h>

#include "sse.h"
#include "usage-fields.h"
#include "usage-json.h"

#define SSE "text/event-stream"
#define JSON "application/json"

typedef struct {
    const char *name;
    const char *file;
    LwFormat format; /* the provider's */
    const char *path;
    const char *request; /* request body */
    int status;
    const char *content_type;
    const char *stripped; /* strip mode: the file the client must receive; NULL: pass-through */
    /* expected */
    gboolean have_usage;
    LwTokens tokens;
    gboolean have_cost;
    gint64 cost_pusd;
    const char *model;
    const char *id;
    gboolean complete;
    gboolean error;
    gint64 text_bytes;
    const char *raw_has;       /* a piece of the raw usage text; NULL: no raw usage */
    const char *terminal_from; /* flagged bytes run from its last occurrence to the end */
} Golden;

#define CHAT "/v1/chat/completions"
#define CHAT_STREAM "{\"model\":\"m\",\"stream\":true,\"messages\":[]}"
#define CHAT_STREAM_IU                                                                             \
    "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[]}"
#define NOSTREAM "{\"model\":\"m\",\"messages\":[]}"

/* LwTokens: input, cached, cache_write (all TTLs), cache_write_1h (of which), output,
 * reasoning */
static const Golden goldens[] = {
    /* input = prompt 12; output = max(completion 2, total 14 - prompt 12) = 2;
     * text: "" + "Hello" (5) + " caf\u00e9\n" (1 + 3 + 2 + 1 = 7) = 12 */
    {"openai-chat-include-usage", "openai-chat-stream-include-usage.sse", LW_FORMAT_OPENAI, CHAT,
     CHAT_STREAM_IU, 200, SSE, NULL, TRUE, {12, 0, 0, 0, 2, 0}, FALSE, 0,
     "gpt-4o-mini-2024-07-18", "chatcmpl-9x", TRUE, FALSE, 12, "\"prompt_tokens\":12",
     "data: [DONE]"},
    /* the same with the option stripped: exactly the stream without it */
    {"openai-chat-include-usage-strip", "openai-chat-stream-include-usage.sse", LW_FORMAT_OPENAI,
     CHAT, CHAT_STREAM, 200, SSE, "openai-chat-stream.sse", TRUE, {12, 0, 0, 0, 2, 0}, FALSE, 0,
     "gpt-4o-mini-2024-07-18", "chatcmpl-9x", TRUE, FALSE, 12, "\"prompt_tokens\":12",
     "data: [DONE]"},
    /* without include_usage there is no usage at all */
    {"openai-chat-no-usage", "openai-chat-stream.sse", LW_FORMAT_OPENAI, CHAT, CHAT_STREAM, 200,
     SSE, NULL, FALSE, {0}, FALSE, 0, "gpt-4o-mini-2024-07-18", "chatcmpl-9x", TRUE, FALSE, 12,
     NULL, "data: [DONE]"},
    /* cut before the usage chunk, mid-event: partial, text so far "" + "Hello" + " caf\u00e9\n" */
    {"openai-chat-cut", "openai-chat-stream-cut.sse", LW_FORMAT_OPENAI, CHAT, CHAT_STREAM_IU, 200,
     SSE, NULL, FALSE, {0}, FALSE, 0, "gpt-4o-mini-2024-07-18", "chatcmpl-9x", FALSE, FALSE, 12,
     NULL, NULL},
    /* input 2006 of which cached 1920 and written 64; output max(300, 2306 - 2006) = 300 of
     * which reasoning 256; text "Checking." (9) + {"city": (8) + "Paris"} (8) = 25 */
    {"openai-chat-cached-reasoning", "openai-chat-stream-cached-reasoning.sse", LW_FORMAT_OPENAI,
     CHAT, CHAT_STREAM_IU, 200, SSE, NULL, TRUE, {2006, 1920, 64, 0, 300, 256}, FALSE, 0,
     "gpt-5.6-2026-06-01", "chatcmpl-A1", TRUE, FALSE, 25, "\"cache_write_tokens\":64",
     "data: [DONE]"},
    {"openai-chat-cached-reasoning-strip", "openai-chat-stream-cached-reasoning.sse",
     LW_FORMAT_OPENAI, CHAT, CHAT_STREAM, 200, SSE, "openai-chat-stream-cached-reasoning.stripped.sse",
     TRUE, {2006, 1920, 64, 0, 300, 256}, FALSE, 0, "gpt-5.6-2026-06-01", "chatcmpl-A1", TRUE,
     FALSE, 25, "\"cache_write_tokens\":64", "data: [DONE]"},
    /* an error chunk in a 200 stream, then the connection closes: text "Par" */
    {"openai-chat-mid-stream-error", "openai-chat-stream-error.sse", LW_FORMAT_OPENAI, CHAT,
     CHAT_STREAM, 200, SSE, NULL, FALSE, {0}, FALSE, 0, "gpt-4o-mini-2024-07-18", "chatcmpl-9x",
     FALSE, TRUE, 3, NULL, NULL},
    /* input 2006 of which cached 1920; output max(300, 2306 - 2006) = 300; text "Hi." */
    {"openai-chat-json", "openai-chat.json", LW_FORMAT_OPENAI, CHAT, NOSTREAM, 200, JSON, NULL,
     TRUE, {2006, 1920, 0, 0, 300, 0}, FALSE, 0, "gpt-4.1-2025-04-14", "chatcmpl-9x", TRUE, FALSE,
     3, "\"cached_tokens\": 1920", "}"},
    /* input 5210 of which cached 4096; output max(640, 5850 - 5210) = 640 of which reasoning
     * 512; text: deltas "Hi" + "!" (the .done events and the final object repeat it) */
    {"openai-responses-stream", "openai-responses-stream.sse", LW_FORMAT_OPENAI, "/v1/responses",
     "{\"model\":\"gpt-5.4\",\"stream\":true,\"input\":\"Hi\"}", 200, SSE, NULL, TRUE,
     {5210, 4096, 0, 0, 640, 512}, FALSE, 0, "gpt-5.4-2026-03-05", "resp_67c", TRUE, FALSE, 3,
     "\"reasoning_tokens\":512", "event: response.completed"},
    {"openai-responses-json", "openai-responses.json", LW_FORMAT_OPENAI, "/v1/responses",
     "{\"model\":\"gpt-5.4\",\"input\":\"Hi\"}", 200, JSON, NULL, TRUE, {5210, 4096, 0, 0, 640, 512},
     FALSE, 0, "gpt-5.4-2026-03-05", "resp_67c", TRUE, FALSE, 3, "\"total_tokens\":5850", "}"},
    /* input 8; output max(0, 8 - 8) = 0 */
    {"openai-embeddings", "openai-embeddings.json", LW_FORMAT_OPENAI, "/v1/embeddings",
     "{\"model\":\"text-embedding-3-small\",\"input\":\"hi\"}", 200, JSON, NULL, TRUE,
     {8, 0, 0, 0, 0, 0}, FALSE, 0, "text-embedding-3-small", NULL, TRUE, FALSE, 0,
     "{\"prompt_tokens\":8,\"total_tokens\":8}", "}"},
    /* input 5; output max(7, 12 - 5) = 7; text "Once" + " upon" + " a time" = 4 + 5 + 7 */
    {"openai-completions-include-usage", "openai-completions-stream-include-usage.sse",
     LW_FORMAT_OPENAI, "/v1/completions", CHAT_STREAM_IU, 200, SSE, NULL, TRUE, {5, 0, 0, 0, 7, 0},
     FALSE, 0, "gpt-3.5-turbo-instruct", "cmpl-7", TRUE, FALSE, 16, "\"completion_tokens\":7",
     "data: [DONE]"},
    /* "usage":null first, in the middle and last in the object: all cut exactly */
    {"openai-completions-strip", "openai-completions-stream-include-usage.sse", LW_FORMAT_OPENAI,
     "/v1/completions", CHAT_STREAM, 200, SSE, "openai-completions-stream.sse", TRUE,
     {5, 0, 0, 0, 7, 0}, FALSE, 0, "gpt-3.5-turbo-instruct", "cmpl-7", TRUE, FALSE, 16,
     "\"completion_tokens\":7", "data: [DONE]"},
    /* input 14 + cache read 12000 + cache writes 3000 = 15014; writes split 1000 (5m) and
     * 2000 (1h) by cache_creation; output 420 from message_delta (message_start's 1 is a
     * placeholder); text "Hello" + " there." = 5 + 7 */
    {"anthropic-stream-cache-5m-1h", "anthropic-stream-cache-5m-1h.sse", LW_FORMAT_ANTHROPIC,
     "/v1/messages", CHAT_STREAM, 200, SSE, NULL, TRUE, {15014, 12000, 3000, 2000, 420, 0}, FALSE,
     0, "claude-sonnet-4-5-20250929", "msg_01X", TRUE, FALSE, 12, "{\"output_tokens\":420}",
     "event: message_stop"},
    /* the last message_delta wins field by field (never summed): input 80 + 0 + 200 = 280,
     * the 200 written at the 5-minute rate (no breakdown); output 420 (not 300 + 420) of which
     * thinking 300; text "Two plus two is four." (21, streamed thinking is billed output) +
     * "The answer is 4." (16) = 37 */
    {"anthropic-stream-thinking", "anthropic-stream-thinking.sse", LW_FORMAT_ANTHROPIC,
     "/v1/messages", CHAT_STREAM, 200, SSE, NULL, TRUE, {280, 0, 200, 0, 420, 300}, FALSE, 0,
     "claude-opus-4-7", "msg_02T", TRUE, FALSE, 37, "\"thinking_tokens\":300",
     "event: message_stop"},
    /* after a server-tool turn, message_delta's cumulative cache_creation_input_tokens
     * (4000, with no breakdown) beats message_start's breakdown (1000 at 1h): the 1000
     * stay 1-hour writes, the other 3000 are 5-minute ones (the default TTL), never plain
     * input; input 14 + 0 + 4000; text {"query":"x"} (13) + "Found it." (9) */
    {"anthropic-stream-delta-cache-writes", "anthropic-stream-delta-cache-writes.sse",
     LW_FORMAT_ANTHROPIC, "/v1/messages", CHAT_STREAM, 200, SSE, NULL, TRUE,
     {4014, 0, 4000, 1000, 420, 0}, FALSE, 0, "claude-sonnet-4-5-20250929", "msg_01W", TRUE, FALSE,
     22, "\"cache_creation_input_tokens\":4000", "event: message_stop"},
    /* message_start's usage stands (output 1 is all that was reported); error event */
    {"anthropic-stream-overloaded", "anthropic-stream-overloaded.sse", LW_FORMAT_ANTHROPIC,
     "/v1/messages", CHAT_STREAM, 200, SSE, NULL, TRUE, {15014, 12000, 3000, 2000, 1, 0}, FALSE, 0,
     "claude-sonnet-4-5-20250929", "msg_01X", FALSE, TRUE, 5, "\"cache_read_input_tokens\":12000",
     NULL},
    /* input 420 + 1800 + 0 = 2220 of which cached 1800; text "Let me check the weather." */
    {"anthropic-json-tool-use", "anthropic-json-tool-use.json", LW_FORMAT_ANTHROPIC,
     "/v1/messages", NOSTREAM, 200, JSON, NULL, TRUE, {2220, 1800, 0, 0, 95, 0}, FALSE, 0,
     "claude-haiku-4-5-20251001", "msg_01T", TRUE, FALSE, 25, "\"output_tokens\":95", "}"},
    /* CRLF events; the last usageMetadata wins and the chunk without one resets nothing:
     * input 8; output candidates 9 + thoughts 120 = 129 of which reasoning 120;
     * text "Sure, here" + " it" + " is." = 10 + 3 + 4, plus the thought part
     * "**Weighing it** briefly" (23, billed output) = 40 */
    {"gemini-sse-crlf-thoughts", "gemini-sse-crlf-thoughts.sse", LW_FORMAT_GEMINI,
     "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=SECRET", "{\"contents\":[]}",
     200, SSE, NULL, TRUE, {8, 0, 0, 0, 129, 120}, FALSE, 0, "gemini-2.5-flash", "Xy7aBc", TRUE,
     FALSE, 40, "\"candidatesTokenCount\":9", "data: "},
    /* usage of the first chunk: output 4 + 120; then an error chunk */
    {"gemini-sse-error", "gemini-sse-error.sse", LW_FORMAT_GEMINI,
     "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "{\"contents\":[]}", 200, SSE,
     NULL, TRUE, {8, 0, 0, 0, 124, 120}, FALSE, 0, "gemini-2.5-flash", "Xy7aBc", FALSE, TRUE, 33,
     "\"candidatesTokenCount\":4", NULL},
    /* JSON array stream: input prompt 5210 + tool-use prompt 10 = 5220 of which cached 4096;
     * output 44 + 186 = 230 of which reasoning 186; text "Hi" + "!" */
    {"gemini-json-array-stream", "gemini-json-array-stream.json", LW_FORMAT_GEMINI,
     "/v1beta/models/gemini-2.5-pro:streamGenerateContent", "{\"contents\":[]}", 200, JSON, NULL,
     TRUE, {5220, 4096, 0, 0, 230, 186}, FALSE, 0, "gemini-2.5-pro", "Bq9zYk", TRUE, FALSE, 3,
     "\"toolUsePromptTokenCount\":10", "]"},
    /* input 5210 of which cached 4096; output 44 + 186 = 230; text "Hi!" (not the thought) */
    {"gemini-generate", "gemini-generate.json", LW_FORMAT_GEMINI,
     "/v1beta/models/gemini-2.5-flash:generateContent", "{\"contents\":[]}", 200, JSON, NULL, TRUE,
     {5210, 4096, 0, 0, 230, 186}, FALSE, 0, "gemini-2.5-flash", "AdVRaMm", TRUE, FALSE, 27,
     "\"thoughtsTokenCount\":186", "}"},
    /* OpenAI shape on Gemini's host; usage on the content chunk; completion_tokens leaves the
     * thinking out: output max(9, 137 - 8) = 129, of which 129 - 9 = 120 reasoning */
    {"gemini-openai-compat", "gemini-openai-compat-stream.sse", LW_FORMAT_GEMINI,
     "/v1beta/openai/chat/completions", CHAT_STREAM_IU, 200, SSE, NULL, TRUE, {8, 0, 0, 0, 129, 120},
     FALSE, 0, "gemini-2.5-flash", "AdVRaMm", TRUE, FALSE, 17, "\"total_tokens\":137",
     "data: [DONE]"},
    /* strip mode: the usage member of the content chunk is cut, the chunk stays */
    {"gemini-openai-compat-strip", "gemini-openai-compat-stream.sse", LW_FORMAT_GEMINI,
     "/v1beta/openai/chat/completions", CHAT_STREAM, 200, SSE,
     "gemini-openai-compat-stream.stripped.sse",
     TRUE, {8, 0, 0, 0, 129, 120}, FALSE, 0, "gemini-2.5-flash", "AdVRaMm", TRUE, FALSE, 17,
     "\"total_tokens\":137", "data: [DONE]"},
    /* keep-alive comments and leading blank lines; cache hits from prompt_cache_hit_tokens
     * (1024), not the OpenAI-style cached_tokens (1000); output max(300, 1500 - 1200) of
     * which reasoning 120; text "Think" (reasoning_content, billed output) + "Hello" = 10 */
    {"deepseek-stream", "deepseek-stream-keepalive-leading-ws.sse", LW_FORMAT_OPENAI, CHAT,
     CHAT_STREAM_IU, 200, SSE, NULL, TRUE, {1200, 1024, 0, 0, 300, 120}, FALSE, 0,
     "deepseek-reasoner", "5f0c2d8e", TRUE, FALSE, 10, "\"prompt_cache_hit_tokens\":1024",
     "data: [DONE]"},
    {"deepseek-json-leading-ws", "deepseek-json-leading-ws.json", LW_FORMAT_OPENAI, CHAT, NOSTREAM,
     200, JSON, NULL, TRUE, {1200, 1024, 0, 0, 300, 120}, FALSE, 0, "deepseek-chat", "930c60df",
     TRUE, FALSE, 1, "\"prompt_cache_miss_tokens\":176", "}"},
    /* total 3000 = prompt 2000 + completion 300 + reasoning 700: additive, so output
     * max(300, 3000 - 2000) = 1000 of which 700 reasoning; cached 1500 (text_tokens is not
     * summed); cost 34250000 ticks x 100 = 3425000000 pico-USD; text "Paris" + "." */
    {"xai-stream-reasoning-ticks", "xai-stream-reasoning-ticks.sse", LW_FORMAT_OPENAI, CHAT,
     CHAT_STREAM_IU, 200, SSE, NULL, TRUE, {2000, 1500, 0, 0, 1000, 700}, TRUE, 3425000000LL,
     "grok-4.3", "3d1a-9f", TRUE, FALSE, 6, "\"cost_in_usd_ticks\":34250000", "data: [DONE]"},
    /* the empty-choices usage chunk goes, and the usage member of the content chunk */
    {"xai-stream-strip", "xai-stream-reasoning-ticks.sse", LW_FORMAT_OPENAI, CHAT, CHAT_STREAM, 200,
     SSE, "xai-stream-reasoning-ticks.stripped.sse", TRUE, {2000, 1500, 0, 0, 1000, 700}, TRUE,
     3425000000LL, "grok-4.3", "3d1a-9f", TRUE, FALSE, 6, "\"cost_in_usd_ticks\":34250000",
     "data: [DONE]"},
    /* comments pass; cost 0.000574 USD = 574000000 pico-USD exactly; input 1200 of which
     * 1024 cached; output 80; text "Bonjour" */
    {"openrouter-stream", "openrouter-stream-comments-cost.sse", LW_FORMAT_OPENAI,
     "/api/v1/chat/completions", CHAT_STREAM, 200, SSE, NULL, TRUE, {1200, 1024, 0, 0, 80, 0}, TRUE,
     574000000, "anthropic/claude-sonnet-4.5", "gen-1760000500-abc", TRUE, FALSE, 7,
     "\"cost\":0.000574", "data: [DONE]"},
    /* OpenRouter sends usage whether asked or not: its usage chunk is not stripped */
    {"openrouter-stream-strip", "openrouter-stream-comments-cost.sse", LW_FORMAT_OPENAI,
     "/api/v1/chat/completions", CHAT_STREAM, 200, SSE, "openrouter-stream-comments-cost.sse", TRUE,
     {1200, 1024, 0, 0, 80, 0}, TRUE, 574000000, "anthropic/claude-sonnet-4.5",
     "gen-1760000500-abc", TRUE, FALSE, 7, "\"cost\":0.000574", "data: [DONE]"},
    /* x_groq.usage on the final chunk: input 40; output max(210, 250 - 40) of which 150 */
    {"groq-stream-xgroq", "groq-stream-xgroq.sse", LW_FORMAT_OPENAI, "/openai/v1/chat/completions",
     CHAT_STREAM, 200, SSE, NULL, TRUE, {40, 0, 0, 0, 210, 150}, FALSE, 0, "openai/gpt-oss-120b",
     "chatcmpl-7c1", TRUE, FALSE, 5, "\"queue_time\":0.012", "data: [DONE]"},
    {"groq-stream-strip", "groq-stream-xgroq-include-usage.sse", LW_FORMAT_OPENAI,
     "/openai/v1/chat/completions", CHAT_STREAM, 200, SSE, "groq-stream-xgroq.sse", TRUE,
     {40, 0, 0, 0, 210, 150}, FALSE, 0, "openai/gpt-oss-120b", "chatcmpl-7c1", TRUE, FALSE, 5,
     "\"total_time\":0.183", "data: [DONE]"},
    /* usage on the last content chunk: input 10; output max(15, 25 - 10); "Bonjour !" */
    {"mistral-stream", "mistral-stream.sse", LW_FORMAT_OPENAI, CHAT, CHAT_STREAM, 200, SSE, NULL,
     TRUE, {10, 0, 0, 0, 15, 0}, FALSE, 0, "mistral-large-latest", "cmpl-e5c", TRUE, FALSE, 9,
     "\"total_tokens\":25", "data: [DONE]"},
    /* cost.total_cost 0.005129 USD = 5129000000 pico-USD; output max(120, 129 - 9) */
    {"perplexity-json-cost", "perplexity-json-cost.json", LW_FORMAT_OPENAI, "/chat/completions",
     NOSTREAM, 200, JSON, NULL, TRUE, {9, 0, 0, 0, 120, 0}, TRUE, 5129000000LL, "sonar", "3c4d5e",
     TRUE, FALSE, 12, "\"total_cost\":0.005129", "}"},
};

/* ---- running an observer over pieces of a body ---------------------------- */

typedef struct {
    GString *out;
    GString *flags; /* '1' for each terminal byte */
} Sink;

static void sink_emit(void *data, const char *buf, gsize len, gboolean terminal)
{
    Sink *s = data;
    g_assert_cmpuint(len, >, 0);
    g_string_append_len(s->out, buf, (gssize)len);
    for (gsize i = 0; i < len; i++)
        g_string_append_c(s->flags, terminal ? '1' : '0');
}

typedef struct {
    LwUsage usage;
    char *out;
    gsize out_len;
    char *flags;
    gboolean rewrites;
} Result;

static void result_clear(Result *r)
{
    lw_usage_clear(&r->usage);
    g_free(r->out);
    g_free(r->flags);
}

static void copy_usage(LwUsage *dst, const LwUsage *src)
{
    *dst = *src;
    dst->model_served = g_strdup(src->model_served);
    dst->raw_usage = g_strdup(src->raw_usage);
    dst->response_id = g_strdup(src->response_id);
}

/* Feeds `body` cut at `cuts` (ascending offsets). */
static void run(LwFormat format, const LwRequestInfo *req, int status, const char *ctype,
                const char *cenc, gboolean strip, const char *body, gsize len, const gsize *cuts,
                gsize n_cuts, Result *ret)
{
    Sink s = {g_string_new(NULL), g_string_new(NULL)};
    const LwObserverSink sink = {sink_emit};
    LwObserver *obs = lw_observer_new(format, req, status, ctype, cenc, strip, &sink, &s);
    gsize from = 0;
    for (gsize k = 0; k <= n_cuts; k++) {
        gsize to = k < n_cuts ? cuts[k] : len;
        /* each feed in its own exact-size buffer, freed right after, as a
         * socket read would be: a look past it or a pointer kept into it
         * trips ASan */
        char *feed = g_memdup2(body + from, to - from);
        lw_observer_feed(obs, feed, to - from);
        g_free(feed);
        from = to;
    }
    lw_observer_finish(obs);
    copy_usage(&ret->usage, lw_observer_usage(obs));
    ret->rewrites = lw_observer_rewrites(obs);
    lw_observer_free(obs);
    ret->out_len = s.out->len;
    ret->out = g_string_free(s.out, FALSE);
    ret->flags = g_string_free(s.flags, FALSE);
}

static void assert_same(const Result *a, const Result *b, const char *how)
{
    if (a->out_len != b->out_len || memcmp(a->out, b->out, a->out_len) != 0)
        g_error("%s: emitted bytes differ from the whole-body run", how);
    if (strcmp(a->flags, b->flags) != 0)
        g_error("%s: terminal flags differ from the whole-body run", how);
    const LwUsage *x = &a->usage, *y = &b->usage;
    if (memcmp(&x->tokens, &y->tokens, sizeof x->tokens) != 0 || x->have_usage != y->have_usage ||
        x->complete != y->complete || x->mid_stream_error != y->mid_stream_error ||
        x->have_provider_cost != y->have_provider_cost ||
        x->provider_cost_pusd != y->provider_cost_pusd ||
        x->output_text_bytes != y->output_text_bytes ||
        g_strcmp0(x->model_served, y->model_served) != 0 ||
        g_strcmp0(x->response_id, y->response_id) != 0 ||
        g_strcmp0(x->raw_usage, y->raw_usage) != 0 || strcmp(x->unreadable, y->unreadable) != 0 ||
        strcmp(x->service_tier, y->service_tier) != 0 || x->web_searches != y->web_searches ||
        strcmp(x->inference_geo, y->inference_geo) != 0 ||
        memcmp(x->tool_calls, y->tool_calls, sizeof x->tool_calls) != 0 ||
        x->search_queries != y->search_queries)
        g_error("%s: usage differs from the whole-body run", how);
}

static char *golden_path(const char *file)
{
    return g_test_build_filename(G_TEST_DIST, "golden", file, NULL);
}

static GBytes *load(const char *file)
{
    g_autofree char *path = golden_path(file);
    g_autoptr(GError) error = NULL;
    char *data;
    gsize len;
    if (!g_file_get_contents(path, &data, &len, &error))
        g_error("%s: %s", path, error->message);
    return g_bytes_new_take(data, len);
}

/* Expected flags: '1' from the last occurrence of `from` to the end. */
static char *expected_flags(const char *body, gsize len, const char *from)
{
    char *flags = g_malloc(len + 1);
    memset(flags, '0', len);
    flags[len] = '\0';
    if (from != NULL) {
        gsize fl = strlen(from);
        gssize at = -1;
        for (gsize i = 0; i + fl <= len; i++) {
            if (memcmp(body + i, from, fl) == 0)
                at = (gssize)i;
        }
        g_assert_cmpint(at, >=, 0);
        memset(flags + at, '1', len - (gsize)at);
    }
    return flags;
}

static void check_golden_usage(const Golden *g, const Result *r)
{
    const LwUsage *u = &r->usage;
    g_assert_cmpint(u->have_usage, ==, g->have_usage);
    if (g->have_usage) {
        g_assert_cmpint(u->tokens.input_tokens, ==, g->tokens.input_tokens);
        g_assert_cmpint(u->tokens.cached_input_tokens, ==, g->tokens.cached_input_tokens);
        g_assert_cmpint(u->tokens.cache_write_tokens, ==, g->tokens.cache_write_tokens);
        g_assert_cmpint(u->tokens.cache_write_1h_tokens, ==, g->tokens.cache_write_1h_tokens);
        g_assert_cmpint(u->tokens.output_tokens, ==, g->tokens.output_tokens);
        g_assert_cmpint(u->tokens.reasoning_tokens, ==, g->tokens.reasoning_tokens);
    }
    g_assert_cmpint(u->have_provider_cost, ==, g->have_cost);
    if (g->have_cost)
        g_assert_cmpint(u->provider_cost_pusd, ==, g->cost_pusd);
    g_assert_cmpstr(u->model_served, ==, g->model);
    g_assert_cmpstr(u->response_id, ==, g->id);
    g_assert_cmpint(u->complete, ==, g->complete);
    g_assert_cmpint(u->mid_stream_error, ==, g->error);
    g_assert_cmpint(u->output_text_bytes, ==, g->text_bytes);
    if (g->raw_has == NULL) {
        g_assert_null(u->raw_usage);
    } else {
        g_assert_nonnull(u->raw_usage);
        g_assert_nonnull(strstr(u->raw_usage, g->raw_has));
        g_assert_cmpint(u->raw_usage[0], ==, '{');
        g_assert_cmpint(u->raw_usage[strlen(u->raw_usage) - 1], ==, '}');
    }
}

/* Runs body whole, split at every point and byte by byte: all must agree,
 * and the whole run must match `want_out` / `want_flags`. */
static void run_all_splits(LwFormat format, const LwRequestInfo *req, int status, const char *ctype,
                           const char *cenc, gboolean strip, const char *body, gsize len,
                           const char *want_out, gsize want_len, const char *want_flags,
                           Result *ret_whole)
{
    run(format, req, status, ctype, cenc, strip, body, len, NULL, 0, ret_whole);
    g_assert_cmpmem(ret_whole->out, ret_whole->out_len, want_out, want_len);
    if (want_flags != NULL)
        g_assert_cmpstr(ret_whole->flags, ==, want_flags);

    for (gsize cut = 1; cut < len; cut++) {
        Result r = {0};
        run(format, req, status, ctype, cenc, strip, body, len, &cut, 1, &r);
        g_autofree char *how = g_strdup_printf("split at %zu", cut);
        assert_same(&r, ret_whole, how);
        result_clear(&r);
    }
    g_autofree gsize *cuts = g_new(gsize, len > 0 ? len : 1);
    for (gsize i = 1; i < len; i++)
        cuts[i - 1] = i;
    Result r = {0};
    run(format, req, status, ctype, cenc, strip, body, len, cuts, len > 0 ? len - 1 : 0, &r);
    assert_same(&r, ret_whole, "byte by byte");
    result_clear(&r);
}

static void test_golden(gconstpointer data)
{
    const Golden *g = data;
    g_autoptr(GBytes) body = load(g->file);
    gsize len;
    const char *p = g_bytes_get_data(body, &len);

    LwRequestInfo req;
    lw_inspect_request(g->format, "POST", g->path, g->request, strlen(g->request), &req);

    g_autoptr(GBytes) want = g->stripped != NULL ? load(g->stripped) : g_bytes_ref(body);
    gsize want_len;
    const char *w = g_bytes_get_data(want, &want_len);
    g_autofree char *flags = expected_flags(w, want_len, g->terminal_from);

    Result whole = {0};
    run_all_splits(g->format, &req, g->status, g->content_type, NULL, g->stripped != NULL, p, len,
                   w, want_len, flags, &whole);
    check_golden_usage(g, &whole);
    g_assert_cmpint(whole.rewrites, ==, g->stripped != NULL);
    result_clear(&whole);
    lw_request_info_clear(&req);
}

/* ---- compressed bodies ------------------------------------------------------ */

/* window_bits: 15 + 16 gzip, 15 zlib, -15 raw deflate */
static GBytes *compress_as(const char *data, gsize len, int window_bits)
{
    z_stream z = {0};
    g_assert_cmpint(deflateInit2(&z, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), ==,
                    Z_OK);
    gsize cap = deflateBound(&z, (uLong)len);
    guint8 *out = g_malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
    gsize n = z.total_out;
    deflateEnd(&z);
    return g_bytes_new_take(out, n);
}

static GBytes *gzip(const char *data, gsize len, gboolean gzip_header)
{
    return compress_as(data, len, gzip_header ? 15 + 16 : 15);
}

typedef struct {
    const char *golden; /* a name in goldens[] */
    const char *encoding;
    int window_bits;    /* what the body really is (see compress_as) */
    const char *label;  /* test name */
} Compressed;

static const Compressed compressed[] = {
    {"openai-chat-json", "gzip", 15 + 16, "gzip"},
    {"anthropic-stream-cache-5m-1h", "gzip", 15 + 16, "gzip"},
    {"openai-chat-json", "x-gzip", 15 + 16, "x-gzip"},
    {"gemini-generate", "deflate", 15, "deflate"},
    /* "deflate" as servers often send it: raw, without the zlib wrapper */
    {"gemini-generate", "deflate", -15, "deflate-raw"},
    {"openai-chat-json", "deflate", -15, "deflate-raw"},
    {"anthropic-stream-cache-5m-1h", "deflate", -15, "deflate-raw"},
    /* mislabelled, and still read */
    {"openai-chat-json", "deflate", 15 + 16, "deflate-gzip"},
};

/* The client gets the compressed bytes unchanged; usage comes from the
 * inflated copy; the last byte of the compressed stream is terminal. */
static void test_compressed(gconstpointer data)
{
    const Compressed *c = data;
    const Golden *g = NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(goldens); i++) {
        if (strcmp(goldens[i].name, c->golden) == 0)
            g = &goldens[i];
    }
    g_assert_nonnull(g);
    g_autoptr(GBytes) plain = load(g->file);
    gsize plen;
    const char *pp = g_bytes_get_data(plain, &plen);
    g_autoptr(GBytes) z = compress_as(pp, plen, c->window_bits);
    gsize len;
    const char *p = g_bytes_get_data(z, &len);

    LwRequestInfo req;
    lw_inspect_request(g->format, "POST", g->path, g->request, strlen(g->request), &req);
    g_autofree char *flags = g_malloc(len + 1);
    memset(flags, '0', len);
    flags[len - 1] = '1';
    flags[len] = '\0';

    Result whole = {0};
    /* strip asked for, but a compressed body is never rewritten */
    run_all_splits(g->format, &req, g->status, g->content_type, c->encoding, TRUE, p, len, p, len,
                   flags, &whole);
    check_golden_usage(g, &whole);
    g_assert_false(whole.rewrites);
    g_assert_cmpstr(whole.usage.unreadable, ==, "");
    result_clear(&whole);
    lw_request_info_clear(&req);
}

/* A body in a coding the observer does not read passes unchanged, and says
 * why its usage is missing; so does a corrupt compressed body. */
static void test_unreadable_encoding(void)
{
    const char *json = "{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}";
    static const struct {
        const char *encoding;
        const char *body; /* NULL: json */
        const char *want; /* in usage.unreadable; "" when readable */
    } c[] = {
        {NULL, NULL, ""},
        {"identity", NULL, ""},
        {"zstd", NULL, "encoded as 'zstd'"},
        {"br", NULL, "encoded as 'br'"},
        {"gzip, br", NULL, "encoded as 'gzip, br'"},
        /* the provider's bytes, cut to 24 and printable ASCII only */
        {"x-\xc3\xa9\x01-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL,
         "encoded as 'x-?\?\?-aaaaaaaaaaaaaaaaaa',"},
        {"aaaaaaaaaaaaaaaaaaaaaa\xc3\xa9", NULL, "encoded as 'aaaaaaaaaaaaaaaaaaaaaa?\?',"},
        {"gzip", NULL, "compressed data is corrupt"}, /* plain text is no gzip */
        /* raw deflate whose first block has the reserved type 11 */
        {"deflate", "\x07garbage", "compressed data is corrupt"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(c); i++) {
        Result r = {0};
        const char *body = c[i].body != NULL ? c[i].body : json;
        gsize len = strlen(body);
        run_all_splits(LW_FORMAT_OPENAI, NULL, 200, JSON, c[i].encoding, FALSE, body, len, body,
                       len, NULL, &r);
        if (c[i].want[0] == '\0') {
            g_assert_cmpstr(r.usage.unreadable, ==, "");
            g_assert_true(r.usage.have_usage);
        } else {
            if (strstr(r.usage.unreadable, c[i].want) == NULL)
                g_error("%s: unreadable [%s]", c[i].encoding, r.usage.unreadable);
            g_assert_false(r.usage.have_usage);
        }
        result_clear(&r);
    }
}

typedef struct {
    const char *client; /* NULL: no Accept-Encoding */
    const char *upstream;
} AcceptCase;

static const AcceptCase accept_cases[] = {
    {NULL, "identity"},
    {"", "identity"},
    {"gzip, deflate, br, zstd", "gzip, deflate"},
    {"br;q=1.0, zstd, gzip;q=0.8,deflate;q=0.5", "gzip;q=0.8, deflate;q=0.5"},
    {"  X-GZIP ; q=0.3 ,Identity", "X-GZIP ; q=0.3, Identity"},
    {"br, zstd", "identity"},
    {"*", "identity"},
    {"gzip;q=0, br", "identity"},
    {"gzip;q=0.000, deflate;q=0.001", "gzip;q=0.000, deflate;q=0.001"},
    {"gzipx, xgzip, deflate-raw", "identity"},
    {"identity;q=0", "identity"},
    {",,gzip,,", "gzip"},
};

/* Only codings the observer reads are asked for, as the client put them. */
static void test_accept_encoding(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(accept_cases); i++) {
        g_autofree char *got = lw_observer_accept_encoding(accept_cases[i].client);
        if (strcmp(got, accept_cases[i].upstream) != 0)
            g_error("accept-encoding [%s]: got [%s] want [%s]", accept_cases[i].client, got,
                    accept_cases[i].upstream);
    }
}

/* ---- strip mode, one chunk at a time ----------------------------------------- */

typedef struct {
    const char *in;
    const char *out; /* NULL: dropped */
} StripCase;

static const StripCase strip_cases[] = {
    {"data: {\"a\":1,\"usage\":null}\n\n", "data: {\"a\":1}\n\n"},
    {"data: {\"usage\":null,\"a\":1}\n\n", "data: {\"a\":1}\n\n"},
    {"data: {\"a\":1, \"usage\" : null }\n\n", "data: {\"a\":1 }\n\n"},
    {"data: { \"usage\":null , \"a\":1}\r\n\r\n", "data: { \"a\":1}\r\n\r\n"},
    {"data: {\"usage\":null}\n\n", "data: {}\n\n"},
    {"data:{\"a\":1,\"usage\":null}\r\r", "data:{\"a\":1}\r\r"},
    /* not top-level, or not a member at all: untouched */
    {"data: {\"a\":{\"usage\":null},\"b\":1}\n\n", "data: {\"a\":{\"usage\":null},\"b\":1}\n\n"},
    {"data: {\"x\":\"\\\"usage\\\":null}\"}\n\n", "data: {\"x\":\"\\\"usage\\\":null}\"}\n\n"},
    {"data: {\"x\":[{\"usage\":null}]}\n\n", "data: {\"x\":[{\"usage\":null}]}\n\n"},
    /* the usage-only chunk goes; on a chunk with choices (Gemini's OpenAI
     * endpoint, xAI) the usage member is cut and the rest stays */
    {"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n", NULL},
    {"data: {\"choices\":[{\"index\":0}],\"usage\":{\"prompt_tokens\":1}}\n\n",
     "data: {\"choices\":[{\"index\":0}]}\n\n"},
    {"data: {\"usage\":{\"prompt_tokens\":1,\"x\":{\"y\":2}}, \"choices\":[{\"index\":0}]}\n\n",
     "data: {\"choices\":[{\"index\":0}]}\n\n"},
    /* OpenRouter's usage arrives unasked: kept */
    {"data: {\"choices\":[{\"index\":0}],\"usage\":{\"prompt_tokens\":1,\"cost\":0.1,\"is_byok\":false}}\n\n",
     "data: {\"choices\":[{\"index\":0}],\"usage\":{\"prompt_tokens\":1,\"cost\":0.1,\"is_byok\":false}}\n\n"},
    {"data: {\"choices\":[],\"usage\":null}\n\n", "data: {\"choices\":[]}\n\n"},
    /* several data lines: the edit would not map onto raw bytes; left alone */
    {"data: {\"a\":1,\ndata: \"usage\":null}\n\n", "data: {\"a\":1,\ndata: \"usage\":null}\n\n"},
    /* a CR-terminated usage chunk whose LF comes later: dropped with it */
    {"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\r\r\n", NULL},
};

static void test_strip_cases(void)
{
    const LwObserverSink sink = {sink_emit};
    for (gsize i = 0; i < G_N_ELEMENTS(strip_cases); i++) {
        const StripCase *c = &strip_cases[i];
        gsize len = strlen(c->in);
        for (gsize cut = 0; cut < len; cut++) {
            Sink s = {g_string_new(NULL), g_string_new(NULL)};
            LwObserver *obs =
                lw_observer_new(LW_FORMAT_OPENAI, NULL, 200, SSE, NULL, TRUE, &sink, &s);
            g_assert_true(lw_observer_rewrites(obs));
            lw_observer_feed(obs, c->in, cut);
            lw_observer_feed(obs, c->in + cut, len - cut);
            const char *dn = "data: [DONE]\n\n";
            lw_observer_feed(obs, dn, strlen(dn));
            lw_observer_finish(obs);
            lw_observer_free(obs);
            g_autofree char *want = g_strconcat(c->out != NULL ? c->out : "", dn, NULL);
            if (strcmp(s.out->str, want) != 0)
                g_error("strip case %zu cut %zu: got [%s] want [%s]", i, cut, s.out->str, want);
            g_string_free(s.out, TRUE);
            g_string_free(s.flags, TRUE);
        }
    }
}

/* lw_observer_rewrites is TRUE only when the bytes can change. */
static void test_rewrites_flag(void)
{
    const LwObserverSink sink = {sink_emit};
    struct {
        LwFormat f;
        int status;
        const char *ctype, *cenc;
        gboolean strip, want;
    } c[] = {
        {LW_FORMAT_OPENAI, 200, SSE, NULL, TRUE, TRUE},
        {LW_FORMAT_OPENAI, 200, "Text/Event-Stream; charset=utf-8", "identity", TRUE, TRUE},
        {LW_FORMAT_OPENAI, 200, SSE, NULL, FALSE, FALSE},
        {LW_FORMAT_OPENAI, 200, SSE, "gzip", TRUE, FALSE},
        {LW_FORMAT_OPENAI, 400, JSON, NULL, TRUE, FALSE},
        {LW_FORMAT_OPENAI, 429, SSE, NULL, TRUE, FALSE},
        {LW_FORMAT_ANTHROPIC, 200, SSE, NULL, TRUE, FALSE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(c); i++) {
        Sink s = {g_string_new(NULL), g_string_new(NULL)};
        LwObserver *obs = lw_observer_new(c[i].f, NULL, c[i].status, c[i].ctype, c[i].cenc,
                                          c[i].strip, &sink, &s);
        g_assert_cmpint(lw_observer_rewrites(obs), ==, c[i].want);
        lw_observer_free(obs);
        g_string_free(s.out, TRUE);
        g_string_free(s.flags, TRUE);
    }
}

/* ---- caps ------------------------------------------------------------------- */

static Result run_whole(LwFormat format, const char *ctype, const char *cenc, gboolean strip,
                        const char *body, gsize len)
{
    Result r = {0};
    run(format, NULL, 200, ctype, cenc, strip, body, len, NULL, 0, &r);
    g_assert_cmpmem(r.out, r.out_len, body, len);
    return r;
}

#define USAGE_CHUNK                                                                                \
    "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,"         \
    "\"completion_tokens\":3,\"total_tokens\":10}}\n\n"

/* An event over the 8 MiB cap passes through unkept, but read: its text
 * is counted; the usage chunk after it is read too. */
static void test_cap_event(void)
{
    GString *b = g_string_new("data: {\"choices\":[{\"delta\":{\"content\":\"");
    gsize start = b->len;
    gsize big = LW_SSE_MAX_EVENT + 1024;
    while (b->len < big)
        g_string_append(b, "abcdefghijklmnopqrstuvwxyz012345");
    gint64 text = (gint64)(b->len - start);
    g_string_append(b, "\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\n");
    g_string_append(b, USAGE_CHUNK "data: [DONE]\n\n");
    Result r = run_whole(LW_FORMAT_OPENAI, SSE, NULL, FALSE, b->str, b->len);
    g_assert_true(r.usage.have_usage);
    g_assert_cmpint(r.usage.tokens.input_tokens, ==, 7);
    g_assert_cmpint(r.usage.tokens.output_tokens, ==, 3);
    g_assert_cmpint(r.usage.output_text_bytes, ==, text + 2);
    g_assert_true(r.usage.complete);
    result_clear(&r);
    g_string_free(b, TRUE);
}

typedef struct {
    const char *name;
    LwFormat format;
    const char *path;
    const char *request;
    const char *eol;       /* the line ending the stream uses */
    const char *before;    /* events before the big one (with %s for eol) */
    const char *big_head;  /* the big event up to the long string (lines ending in %s) */
    const char *big_tail;  /* after the long string, through the blank line */
    LwTokens tokens;
    const char *model;
    gboolean terminal; /* the big event ends the answer */
    gint64 image_calls; /* image_generation_call items in the answer's output */
} OversizeCase;

#define B64 (9 * 1024 * 1024) /* the long string: over LW_SSE_MAX_EVENT */

static const OversizeCase oversize_cases[] = {
    /* a Responses stream whose response.completed repeats a 9 MiB image */
    {"responses-completed", LW_FORMAT_OPENAI, "/v1/responses",
     "{\"model\":\"gpt-5.4\",\"stream\":true}", "\n",
     "event: response.created%sdata: {\"type\":\"response.created\",\"response\":{\"id\":"
     "\"resp_1\",\"model\":\"gpt-5.4\",\"usage\":null,\"output\":[]}}%s%s",
     "event: response.completed%sdata: {\"type\":\"response.completed\",\"response\":{\"id\":"
     "\"resp_1\",\"model\":\"gpt-5.4\",\"output\":[{\"type\":\"image_generation_call\","
     "\"result\":\"",
     "\"}],\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500}}}%s%s",
     {1000, 0, 0, 0, 500, 0}, "gpt-5.4", TRUE, 1},
    /* the same with CRLF, the JSON over two data lines and the event line last */
    {"responses-completed-crlf-multiline", LW_FORMAT_OPENAI, "/v1/responses",
     "{\"model\":\"gpt-5.4\",\"stream\":true}", "\r\n", "",
     "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",%s"
     "data: \"model\":\"gpt-5.4\",\"output\":[{\"type\":\"image_generation_call\","
     "\"result\":\"",
     "\"}],\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500}}}%s"
     "event: response.completed%s%s",
     {1000, 0, 0, 0, 500, 0}, "gpt-5.4", TRUE, 1},
    /* Gemini's last chunk with an inline image, the finish reason and the usage */
    {"gemini-inline-image", LW_FORMAT_GEMINI,
     "/v1beta/models/gemini-2.5-flash-image:streamGenerateContent?alt=sse", "{}", "\r\n",
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Here\"}]},\"index\":0}],"
     "\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":1},"
     "\"modelVersion\":\"gemini-2.5-flash-image\",\"responseId\":\"R\"}%s%s",
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"mimeType\":"
     "\"image/png\",\"data\":\"",
     "\"}}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":"
     "8,\"candidatesTokenCount\":1290},\"modelVersion\":\"gemini-2.5-flash-image\"}%s%s",
     {8, 0, 0, 0, 1290, 0}, "gemini-2.5-flash-image", TRUE, 0},
    /* not the last event: read, but not terminal; [DONE] ends the answer */
    {"chat-chunk", LW_FORMAT_OPENAI, CHAT, CHAT_STREAM_IU, "\n", "",
     "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"",
     "\"}}],\"usage\":null}%s%s"
     "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,"
     "\"completion_tokens\":3}}%s%sdata: [DONE]%s%s",
     {7, 0, 0, 0, 3, 0}, "m", FALSE, 0},
};

/* Fills each %s in `fmt` with `eol`. */
static void append_eol(GString *b, const char *fmt, const char *eol)
{
    for (const char *p = fmt; *p != '\0'; p++) {
        if (p[0] == '%' && p[1] == 's') {
            g_string_append(b, eol);
            p++;
        } else {
            g_string_append_c(b, *p);
        }
    }
}

/* An event over the framer's cap that ends the answer: its usage is read
 * as it passes (no 9 MiB buffer), and only its dispatching blank line is
 * held as terminal, whatever the cuts (each cut near the event's start
 * and end, where the framer's pieces begin and end). */
static void test_oversize_event(gconstpointer data)
{
    const OversizeCase *c = data;
    GString *b = g_string_new(NULL);
    append_eol(b, c->before, c->eol);
    gsize big_start = b->len;
    append_eol(b, c->big_head, c->eol);
    g_string_set_size(b, b->len + B64);
    memset(b->str + b->len - B64, 'Q', B64);
    append_eol(b, c->big_tail, c->eol);

    LwRequestInfo req;
    lw_inspect_request(c->format, "POST", c->path, c->request, strlen(c->request), &req);
    g_autofree char *flags = g_malloc(b->len + 1);
    memset(flags, '0', b->len);
    flags[b->len] = '\0';
    if (c->terminal)
        memset(flags + b->len - strlen(c->eol), '1', strlen(c->eol));
    else
        memset(flags + b->len - strlen("data: [DONE]") - 2 * strlen(c->eol), '1',
               strlen("data: [DONE]") + 2 * strlen(c->eol));

    Result whole = {0};
    run(c->format, &req, 200, SSE, NULL, FALSE, b->str, b->len, NULL, 0, &whole);
    g_assert_cmpmem(whole.out, whole.out_len, b->str, b->len);
    g_assert_true(strcmp(whole.flags, flags) == 0);
    g_assert_true(whole.usage.have_usage);
    const LwTokens *t = &whole.usage.tokens;
    g_assert_cmpint(t->input_tokens, ==, c->tokens.input_tokens);
    g_assert_cmpint(t->output_tokens, ==, c->tokens.output_tokens);
    g_assert_cmpstr(whole.usage.model_served, ==, c->model);
    g_assert_true(whole.usage.complete);
    g_assert_cmpint(whole.usage.tool_calls[LW_TOOL_IMAGE_GENERATION], ==, c->image_calls);

    gsize cuts[] = {big_start + 1, big_start + 7, b->len - 90, b->len - 40, b->len - 3,
                    b->len - 2, b->len - 1};
    for (gsize i = 0; i < G_N_ELEMENTS(cuts); i++) {
        Result r = {0};
        run(c->format, &req, 200, SSE, NULL, FALSE, b->str, b->len, &cuts[i], 1, &r);
        g_autofree char *how = g_strdup_printf("%s split at %zu", c->name, cuts[i]);
        assert_same(&r, &whole, how);
        result_clear(&r);
    }
    /* network-sized pieces */
    gsize many[B64 / 65536 + 8], n = 0;
    for (gsize at = 16411; at < b->len && n < G_N_ELEMENTS(many); at += 65531)
        many[n++] = at;
    Result r = {0};
    run(c->format, &req, 200, SSE, NULL, FALSE, b->str, b->len, many, n, &r);
    assert_same(&r, &whole, "in 64 KiB pieces");
    result_clear(&r);
    result_clear(&whole);
    lw_request_info_clear(&req);
    g_string_free(b, TRUE);
}

/* A usage object over 8 KiB is still read, but its text is not kept. */
static void test_cap_raw_usage(void)
{
    for (int over = 0; over <= 1; over++) {
        GString *pad = g_string_new(NULL);
        /* {"prompt_tokens":7,"pad":"...","completion_tokens":3} at exactly the cap, or one more */
        gsize fixed = strlen("{\"prompt_tokens\":7,\"pad\":\"\",\"completion_tokens\":3}");
        while (pad->len < LW_USAGE_JSON_MAX_RAW - fixed + (gsize)over)
            g_string_append_c(pad, 'x');
        g_autofree char *body = g_strdup_printf(
            "{\"id\":\"c1\",\"usage\":{\"prompt_tokens\":7,\"pad\":\"%s\",\"completion_tokens\":3}}",
            pad->str);
        Result r = run_whole(LW_FORMAT_OPENAI, JSON, NULL, FALSE, body, strlen(body));
        g_assert_true(r.usage.have_usage);
        g_assert_cmpint(r.usage.tokens.output_tokens, ==, 3);
        if (over) {
            g_assert_null(r.usage.raw_usage);
        } else {
            g_assert_nonnull(r.usage.raw_usage);
            g_assert_cmpuint(strlen(r.usage.raw_usage), ==, LW_USAGE_JSON_MAX_RAW);
        }
        result_clear(&r);
        g_string_free(pad, TRUE);
    }
}

/* Model and id longer than 256 bytes are not kept; at 256 they are. */
static void test_cap_names(void)
{
    for (int over = 0; over <= 1; over++) {
        g_autofree char *name = g_strnfill(LW_USAGE_JSON_MAX_NAME + (gsize)over, 'm');
        g_autofree char *body = g_strdup_printf(
            "{\"id\":\"%s\",\"model\":\"%s\",\"usage\":{\"prompt_tokens\":1}}", name, name);
        Result r = run_whole(LW_FORMAT_OPENAI, JSON, NULL, FALSE, body, strlen(body));
        g_assert_cmpstr(r.usage.model_served, ==, over ? NULL : name);
        g_assert_cmpstr(r.usage.response_id, ==, over ? NULL : name);
        g_assert_true(r.usage.have_usage);
        result_clear(&r);
    }
}

/* A JSON body whose single string runs past 8 MiB (a base64 image) is read
 * on: yajl sees only the string's head, its length is counted whole, and
 * the usage after it is read; the bytes all pass. */
static void test_cap_json_token(void)
{
    GString *b = g_string_new("{\"choices\":[{\"message\":{\"content\":\"");
    gsize start = b->len;
    while (b->len < LW_USAGE_JSON_MAX_TOKEN + 1024)
        g_string_append(b, "0123456789abcdef");
    gint64 text = (gint64)(b->len - start);
    g_string_append(b, "\"}}],\"usage\":{\"prompt_tokens\":5}}");
    gsize cuts[64];
    gsize n = 0;
    for (gsize at = 65536; at < b->len && n < G_N_ELEMENTS(cuts); at += b->len / 32)
        cuts[n++] = at;
    for (int split = 0; split <= 1; split++) {
        Result r = {0};
        run(LW_FORMAT_OPENAI, NULL, 200, JSON, NULL, FALSE, b->str, b->len, cuts, split ? n : 0,
            &r);
        g_assert_cmpmem(r.out, r.out_len, b->str, b->len);
        g_assert_true(r.usage.have_usage);
        g_assert_cmpint(r.usage.tokens.input_tokens, ==, 5);
        g_assert_true(r.usage.complete);
        g_assert_cmpint(r.usage.output_text_bytes, ==, text);
        result_clear(&r);
    }
    g_string_free(b, TRUE);
}

/* Any other token (here a number) running past 8 MiB still stops the
 * parse: yajl would buffer it whole. */
static void test_cap_json_number(void)
{
    GString *b = g_string_new("{\"x\":");
    while (b->len < LW_USAGE_JSON_MAX_TOKEN + 1024)
        g_string_append(b, "1234567890123456");
    g_string_append(b, ",\"usage\":{\"prompt_tokens\":5}}");
    Result r = run_whole(LW_FORMAT_OPENAI, JSON, NULL, FALSE, b->str, b->len);
    g_assert_false(r.usage.have_usage);
    g_assert_false(r.usage.complete);
    result_clear(&r);
    g_string_free(b, TRUE);
}

/* Where a long string stops going to yajl never falls inside an escape
 * sequence: strings with an escape at every offset around the cap still
 * parse, the usage after them is read, and the outcome does not depend on
 * the cuts. The length counted lies between the decoded and the raw one. */
static void test_long_string_escapes(void)
{
    static const struct {
        const char *raw;
        gsize decoded; /* bytes once decoded (UTF-8) */
    } escapes[] = {
        {"\\\"", 1}, {"\\\\", 1}, {"\\n", 1}, {"\\u00e9", 2}, {"\\uD83D\\uDE00", 4},
    };
    const gsize max = LW_USAGE_JSON_MAX_STRING;
    for (gsize e = 0; e < G_N_ELEMENTS(escapes); e++) {
        for (gsize k = max - 8; k <= max + 2; k++) {
            g_autofree char *xs = g_strnfill(k, 'x');
            g_autofree char *body = g_strdup_printf(
                "{\"choices\":[{\"message\":{\"content\":\"%s%syyyyyyyy\"}}],\"model\":\"m\","
                "\"usage\":{\"prompt_tokens\":5}}",
                xs, escapes[e].raw);
            gsize len = strlen(body);
            gint64 raw = (gint64)(k + strlen(escapes[e].raw) + 8);
            gint64 decoded = (gint64)(k + escapes[e].decoded + 8);
            Result whole = {0};
            run(LW_FORMAT_OPENAI, NULL, 200, JSON, NULL, FALSE, body, len, NULL, 0, &whole);
            g_assert_true(whole.usage.have_usage);
            g_assert_true(whole.usage.complete);
            g_assert_cmpstr(whole.usage.model_served, ==, "m");
            g_assert_cmpint(whole.usage.output_text_bytes, >=, decoded);
            g_assert_cmpint(whole.usage.output_text_bytes, <=, raw);
            /* cuts around the escape, where the scan decides */
            gsize from = strlen("{\"choices\":[{\"message\":{\"content\":\"") + k - 4;
            for (gsize cut = from; cut < from + 20; cut++) {
                Result r = {0};
                run(LW_FORMAT_OPENAI, NULL, 200, JSON, NULL, FALSE, body, len, &cut, 1, &r);
                g_autofree char *how = g_strdup_printf("escape %zu, k %zu, cut %zu", e, k, cut);
                assert_same(&r, &whole, how);
                result_clear(&r);
            }
            result_clear(&whole);
        }
    }
}

/* Nesting deeper than the cap stops the parse. */
static void test_cap_depth(void)
{
    for (int over = 0; over <= 1; over++) {
        /* the document object is one level, the arrays in "x" the rest */
        gsize arrays = LW_USAGE_JSON_MAX_DEPTH - 1 + (gsize)over;
        GString *b = g_string_new("{\"x\":");
        for (gsize i = 0; i < arrays; i++)
            g_string_append_c(b, '[');
        for (gsize i = 0; i < arrays; i++)
            g_string_append_c(b, ']');
        g_string_append(b, ",\"usage\":{\"prompt_tokens\":5}}");
        Result r = run_whole(LW_FORMAT_OPENAI, JSON, NULL, FALSE, b->str, b->len);
        g_assert_cmpint(r.usage.have_usage, ==, !over);
        g_assert_cmpint(r.usage.complete, ==, !over);
        result_clear(&r);
        g_string_free(b, TRUE);
    }
}

/* A gzip body inflating past 64 MiB is not parsed further (a bomb costs
 * bounded work); it still passes whole. */
static void test_cap_inflate(void)
{
    GString *b = g_string_new("{\"choices\":[");
    g_autofree char *filler = g_strnfill(1024 * 1024, 'x');
    for (int i = 0; i < 65; i++)
        g_string_append_printf(b, "\"%s\",", filler);
    g_string_append(b, "0],\"usage\":{\"prompt_tokens\":5}}");
    g_autoptr(GBytes) z = gzip(b->str, b->len, TRUE);
    gsize len;
    const char *p = g_bytes_get_data(z, &len);
    Result r = run_whole(LW_FORMAT_OPENAI, JSON, "gzip", FALSE, p, len);
    g_assert_false(r.usage.have_usage);
    result_clear(&r);

    /* the same body under the cap is read */
    g_string_truncate(b, 0);
    g_string_append(b, "{\"choices\":[");
    for (int i = 0; i < 60; i++)
        g_string_append_printf(b, "\"%s\",", filler);
    g_string_append(b, "0],\"usage\":{\"prompt_tokens\":5}}");
    g_autoptr(GBytes) z2 = gzip(b->str, b->len, TRUE);
    p = g_bytes_get_data(z2, &len);
    r = run_whole(LW_FORMAT_OPENAI, JSON, "gzip", FALSE, p, len);
    g_assert_true(r.usage.have_usage);
    g_assert_cmpint(r.usage.tokens.input_tokens, ==, 5);
    result_clear(&r);
    g_string_free(b, TRUE);
}

/* ---- garbage ------------------------------------------------------------------ */

/* Bytes that are not what the headers say never crash, never invent usage,
 * and pass through unchanged (strip mode changes nothing it cannot parse). */
static void test_garbage(void)
{
    const struct {
        const char *body;
        gboolean json; /* a complete JSON document after all */
    } bodies[] = {
        {"<html><body>502 Bad Gateway</body></html>", FALSE},
        {"data: {\"usage\":{\"prompt_tokens\":\n\n", FALSE},
        {"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"12\"\n\n", FALSE},
        {"{\"usage\":{\"prompt_tokens\":1e999999}}", TRUE},
        {"\xff\xfe\x00\x01 data: \r\r\r:::\n\n\n", FALSE},
        {"[[[[[[[[[[{\"usageMetadata\":", FALSE},
        {"data: [DONE", FALSE},
        {"", FALSE},
    };
    const char *ctypes[] = {SSE, JSON, NULL, "text/html"};
    const char *encs[] = {NULL, "gzip", "br"};
    const LwFormat formats[] = {LW_FORMAT_OPENAI, LW_FORMAT_ANTHROPIC, LW_FORMAT_GEMINI};
    for (gsize b = 0; b < G_N_ELEMENTS(bodies); b++)
        for (gsize c = 0; c < G_N_ELEMENTS(ctypes); c++)
            for (gsize e = 0; e < G_N_ELEMENTS(encs); e++)
                for (gsize f = 0; f < G_N_ELEMENTS(formats); f++) {
                    Result r = {0};
                    const char *body = bodies[b].body;
                    gsize len = b == 4 ? 20 : strlen(body); /* it holds a NUL */
                    run(formats[f], NULL, 200, ctypes[c], encs[e], TRUE, body, len, NULL, 0, &r);
                    g_assert_cmpmem(r.out, r.out_len, body, len);
                    g_assert_false(r.usage.have_usage);
                    g_assert_false(r.usage.mid_stream_error);
                    if (!bodies[b].json)
                        g_assert_false(r.usage.complete);
                    result_clear(&r);
                }
}

/* A "usage":null member split across feeds of a JSON body (a regression:
 * its name's offset belonged to the previous feed). */
static void test_usage_null_split(void)
{
    const char *body = "{\"id\":\"x\",\"model\":\"m\",\"usage\" : null}";
    gsize len = strlen(body);
    Result whole = {0};
    run_all_splits(LW_FORMAT_OPENAI, NULL, 200, JSON, NULL, TRUE, body, len, body, len, NULL,
                   &whole);
    g_assert_false(whole.usage.have_usage);
    g_assert_true(whole.usage.complete);
    g_assert_cmpstr(whole.usage.model_served, ==, "m");
    result_clear(&whole);
}

/* An empty model name (the first chunk of an Azure stream, its prompt
 * filter results) names nothing: the next chunk's name is the served one. */
static void test_empty_model_name_skipped(void)
{
    const char *body = "data: {\"id\":\"\",\"model\":\"\",\"choices\":[]}\n\n"
                       "data: {\"id\":\"c\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[]}\n\n"
                       "data: [DONE]\n\n";
    Result r = run_whole(LW_FORMAT_OPENAI, SSE, NULL, TRUE, body, strlen(body));
    g_assert_cmpstr(r.usage.model_served, ==, "gpt-4o-2024-08-06");
    result_clear(&r);
}

/* Out-of-range counts are clamped, never negative or wrapped. */
static void test_clamped(void)
{
    const char *body =
        "{\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":3,\"prompt_tokens_details\":"
        "{\"cached_tokens\":9}}}";
    Result r = run_whole(LW_FORMAT_OPENAI, JSON, NULL, FALSE, body, strlen(body));
    g_assert_true(r.usage.have_usage);
    g_assert_cmpint(r.usage.tokens.input_tokens, ==, 0);
    g_assert_cmpint(r.usage.tokens.cached_input_tokens, ==, 0);
    g_assert_cmpint(r.usage.tokens.output_tokens, ==, 3);
    result_clear(&r);
}

/* ---- provider-reported cost --------------------------------------------------- */

typedef struct {
    const char *text;
    int scale;
    gboolean ok;
    gint64 want;
} Decimal;

static const Decimal decimals[] = {
    {"0.000574", 12, TRUE, 574000000},
    {"0.005129", 12, TRUE, 5129000000LL},
    {"5.74e-4", 12, TRUE, 574000000},
    {"1E-12", 12, TRUE, 1},
    {"123.000000000001", 12, TRUE, 123000000000001LL},
    {"0.0000000000004", 12, TRUE, 0},  /* 13th decimal: rounded half away from zero */
    {"0.0000000000005", 12, TRUE, 1},
    {"-0.0000000000005", 12, TRUE, -1},
    {"34250000", 2, TRUE, 3425000000LL},
    {"12", 0, TRUE, 12},
    {"12.5", 0, TRUE, 13},
    {"0", 12, TRUE, 0},
    {"9223372036854775807", 0, TRUE, G_MAXINT64},
    {"9223372036854775808", 0, FALSE, 0},
    {"10000000", 12, FALSE, 0}, /* 1e19 pico-USD: beyond gint64 */
    {"1.2.3", 0, FALSE, 0},
    {"", 0, FALSE, 0},
    {"-", 0, FALSE, 0},
    {"1e", 0, FALSE, 0},
    {"0.12345678901234567890123456789", 12, TRUE, 123456789012LL},
    {"0.99999999999999999999999", 12, TRUE, 1000000000000LL},
};

static void test_decimal(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(decimals); i++) {
        const Decimal *d = &decimals[i];
        gint64 v = -42;
        gboolean ok = lw_usage_fields_decimal(d->text, strlen(d->text), d->scale, &v);
        if (ok != d->ok || (ok && v != d->want))
            g_error("%s (scale %d): ok %d value %" G_GINT64_FORMAT, d->text, d->scale, ok, v);
    }
}

/* With BYOK, OpenRouter's cost is its fee; the upstream's charge is added. */
static void test_openrouter_byok(void)
{
    const char *body =
        "{\"id\":\"gen-1\",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,"
        "\"total_tokens\":12,\"cost\":0.0001,\"is_byok\":true,\"cost_details\":"
        "{\"upstream_inference_cost\":0.0025}}}";
    Result r = run_whole(LW_FORMAT_OPENAI, JSON, NULL, FALSE, body, strlen(body));
    g_assert_true(r.usage.have_provider_cost);
    g_assert_cmpint(r.usage.provider_cost_pusd, ==, 100000000 + 2500000000LL);
    result_clear(&r);
}

/* xAI reporting reasoning inside completion_tokens (total = prompt +
 * completion): no reasoning is added on top. */
static void test_xai_subset(void)
{
    const char *body =
        "{\"usage\":{\"prompt_tokens\":2000,\"completion_tokens\":1000,\"total_tokens\":3000,"
        "\"completion_tokens_details\":{\"reasoning_tokens\":700}}}";
    Result r = run_whole(LW_FORMAT_OPENAI, JSON, NULL, FALSE, body, strlen(body));
    g_assert_cmpint(r.usage.tokens.output_tokens, ==, 1000);
    g_assert_cmpint(r.usage.tokens.reasoning_tokens, ==, 700);
    result_clear(&r);
}

/* An Anthropic stream whose message_start reported no cache writes, with a
 * zero breakdown, and whose message_delta brings 3000 (cumulative, no
 * breakdown): 3000 writes at the 5-minute rate, not 3000 plain input. */
static void test_anthropic_delta_writes(void)
{
    const char *body =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
        "\"usage\":{\"input_tokens\":14,\"cache_creation_input_tokens\":0,"
        "\"cache_read_input_tokens\":12000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,"
        "\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1}}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":14,"
        "\"cache_creation_input_tokens\":3000,\"cache_read_input_tokens\":12000,"
        "\"output_tokens\":420}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    Result r = {0};
    gsize len = strlen(body);
    run_all_splits(LW_FORMAT_ANTHROPIC, NULL, 200, SSE, NULL, FALSE, body, len, body, len, NULL,
                   &r);
    const LwTokens want = {15014, 12000, 3000, 0, 420, 0};
    g_assert_cmpmem(&r.usage.tokens, sizeof r.usage.tokens, &want, sizeof want);
    result_clear(&r);
}

typedef struct {
    const char *name;
    LwFormat format;
    const char *ctype;
    const char *body; /* or, when it starts with '@', a golden file */
    gboolean have_usage;
    const char *tier;
    gint64 web_searches;
    const char *geo;
    gint64 tools[LW_TOOL_COUNT]; /* web search, file search, code interpreter, image, MCP */
    gint64 queries;
} ChargeCase;

#define NO_TOOLS {0, 0, 0, 0, 0}
#define RESP_EVENT(TYPE, JSON) "event: " TYPE "\ndata: {\"type\":\"" TYPE "\"," JSON "}\n\n"
#define GEMINI_CHUNK(CAND, OUT)                                                                    \
    "data: {\"candidates\":[" CAND "],\"usageMetadata\":{\"promptTokenCount\":3,"                  \
    "\"candidatesTokenCount\":" OUT "},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":"    \
    "\"R\"}\r\n\r\n"

static const ChargeCase charge_cases[] = {
    {"openai-json-priority", LW_FORMAT_OPENAI, JSON,
     "{\"id\":\"c\",\"model\":\"gpt-5.5\",\"service_tier\":\"priority\",\"choices\":[],"
     "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1}}",
     TRUE, "priority", 0, "", NO_TOOLS, 0},
    /* the first chunk is parsed (it names the model); text deltas are not */
    {"openai-stream-flex", LW_FORMAT_OPENAI, SSE,
     "data: {\"id\":\"c\",\"model\":\"o3\",\"service_tier\":\"flex\",\"choices\":[{\"delta\":"
     "{\"content\":\"Hi\"}}]}\n\ndata: {\"id\":\"c\",\"service_tier\":\"flex\",\"choices\":[],"
     "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n",
     TRUE, "flex", 0, "", NO_TOOLS, 0},
    {"responses-stream-priority", LW_FORMAT_OPENAI, SSE,
     "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":"
     "\"r\",\"model\":\"gpt-5.5\",\"service_tier\":\"priority\",\"usage\":{\"input_tokens\":"
     "10,\"output_tokens\":1}}}\n\n",
     TRUE, "priority", 0, "", NO_TOOLS, 0},
    /* a tier named in a message is no tier */
    {"openai-json-nested", LW_FORMAT_OPENAI, JSON,
     "{\"choices\":[{\"message\":{\"service_tier\":\"priority\"}}],\"usage\":"
     "{\"prompt_tokens\":10}}",
     TRUE, "", 0, "", NO_TOOLS, 0},
    {"anthropic-json-searches-batch", LW_FORMAT_ANTHROPIC, JSON,
     "{\"id\":\"m\",\"type\":\"message\",\"usage\":{\"input_tokens\":1000,\"output_tokens\":"
     "100,\"server_tool_use\":{\"web_search_requests\":5,\"web_fetch_requests\":2},"
     "\"service_tier\":\"batch\"}}",
     TRUE, "batch", 5, "", NO_TOOLS, 0},
    /* message_delta's count is cumulative: 3, not 1 + 3 */
    {"anthropic-stream-searches", LW_FORMAT_ANTHROPIC, SSE,
     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
     "\"usage\":{\"input_tokens\":14,\"output_tokens\":1,\"server_tool_use\":"
     "{\"web_search_requests\":1},\"service_tier\":\"standard\"}}}\n\n"
     "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":"
     "42,\"server_tool_use\":{\"web_search_requests\":3}}}\n\n"
     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
     TRUE, "standard", 3, "", NO_TOOLS, 0},
    {"anthropic-golden-delta", LW_FORMAT_ANTHROPIC, SSE, "@anthropic-stream-delta-cache-writes.sse",
     TRUE, "", 1, "", NO_TOOLS, 0},
    /* regional inference, named by the usage object; message_delta does not repeat it */
    {"anthropic-json-geo", LW_FORMAT_ANTHROPIC, JSON,
     "{\"id\":\"m\",\"type\":\"message\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1,"
     "\"service_tier\":\"standard\",\"inference_geo\":\"us\"}}",
     TRUE, "standard", 0, "us", NO_TOOLS, 0},
    {"anthropic-stream-geo", LW_FORMAT_ANTHROPIC, SSE,
     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
     "\"usage\":{\"input_tokens\":14,\"output_tokens\":1,\"inference_geo\":\"us\"}}}\n\n"
     "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":"
     "42}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
     TRUE, "", 0, "us", NO_TOOLS, 0},
    /* Responses built-in tools, one output item per call; a function call the
     * client runs, a content part and a search action are no built-in call */
    {"responses-json-tools", LW_FORMAT_OPENAI, JSON,
     "{\"id\":\"r\",\"object\":\"response\",\"model\":\"gpt-5.4\",\"output\":["
     "{\"type\":\"web_search_call\",\"id\":\"ws_1\",\"status\":\"completed\",\"action\":"
     "{\"type\":\"search\",\"query\":\"q\"}},{\"type\":\"web_search_call\",\"id\":\"ws_2\"},"
     "{\"type\":\"file_search_call\",\"id\":\"fs_1\",\"queries\":[\"x\"]},"
     "{\"type\":\"code_interpreter_call\",\"id\":\"ci_1\",\"code\":\"print(1)\"},"
     "{\"type\":\"image_generation_call\",\"id\":\"ig_1\",\"result\":\"aGk=\"},"
     "{\"type\":\"mcp_call\",\"id\":\"mcp_1\",\"name\":\"x\",\"arguments\":\"{}\"},"
     "{\"type\":\"function_call\",\"id\":\"fc_1\",\"name\":\"f\",\"arguments\":\"{}\"},"
     "{\"type\":\"message\",\"id\":\"msg_1\",\"content\":[{\"type\":\"web_search_call\","
     "\"text\":\"Hi\"}]}],\"usage\":{\"input_tokens\":10,\"output_tokens\":2}}",
     TRUE, "", 0, "", {2, 1, 1, 1, 1}, 0},
    /* streamed: announced by output_item.done and listed by response.completed,
     * one call, not two */
    {"responses-stream-tools", LW_FORMAT_OPENAI, SSE,
     RESP_EVENT("response.created", "\"response\":{\"id\":\"r\",\"model\":\"gpt-5.4\","
                                    "\"output\":[],\"usage\":null}")
     RESP_EVENT("response.output_item.added", "\"output_index\":0,\"item\":{\"type\":"
                                              "\"web_search_call\",\"id\":\"ws_1\"}")
     RESP_EVENT("response.web_search_call.completed", "\"output_index\":0,\"item_id\":\"ws_1\"")
     RESP_EVENT("response.output_item.done", "\"output_index\":0,\"item\":{\"type\":"
                                             "\"web_search_call\",\"id\":\"ws_1\"}")
     RESP_EVENT("response.output_text.delta", "\"item_id\":\"msg_1\",\"delta\":\"Hi\"")
     RESP_EVENT("response.completed", "\"response\":{\"id\":\"r\",\"model\":\"gpt-5.4\","
                                      "\"output\":[{\"type\":\"web_search_call\",\"id\":"
                                      "\"ws_1\"},{\"type\":\"message\",\"id\":\"msg_1\"}],"
                                      "\"usage\":{\"input_tokens\":10,\"output_tokens\":2}}"),
     TRUE, "", 0, "", {1, 0, 0, 0, 0}, 0},
    /* a stream cut before response.completed: the calls output_item.done announced */
    {"responses-stream-cut-tools", LW_FORMAT_OPENAI, SSE,
     RESP_EVENT("response.created", "\"response\":{\"id\":\"r\",\"model\":\"gpt-5.4\","
                                    "\"output\":[],\"usage\":null}")
     RESP_EVENT("response.output_item.done", "\"output_index\":0,\"item\":{\"id\":\"ws_1\","
                                             "\"type\":\"web_search_call\"}")
     RESP_EVENT("response.output_item.added", "\"output_index\":1,\"item\":{\"type\":"
                                              "\"web_search_call\",\"id\":\"ws_2\"}")
     RESP_EVENT("response.output_item.done", "\"output_index\":1,\"item\":{\"type\":"
                                             "\"web_search_call\",\"id\":\"ws_2\"}")
     RESP_EVENT("response.output_item.done", "\"output_index\":2,\"item\":{\"type\":"
                                             "\"mcp_call\",\"id\":\"mcp_1\"}")
     RESP_EVENT("response.output_item.done", "\"output_index\":3,\"item\":{\"type\":"
                                             "\"function_call\",\"id\":\"fc_1\"}")
     "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
     "\"delta\":\"Hi",
     FALSE, "", 0, "", {2, 0, 0, 0, 1}, 0},
    /* a provider that sends no item events: what response.completed lists */
    {"responses-stream-listed-only", LW_FORMAT_OPENAI, SSE,
     RESP_EVENT("response.completed", "\"response\":{\"id\":\"r\",\"model\":\"gpt-5.4\","
                                      "\"output\":[{\"type\":\"code_interpreter_call\"},"
                                      "{\"type\":\"code_interpreter_call\"}],\"usage\":"
                                      "{\"input_tokens\":10,\"output_tokens\":2}}"),
     TRUE, "", 0, "", {0, 0, 2, 0, 0}, 0},
    /* Gemini grounding on a chunk that neither ends the answer nor names the
     * model: still read; the last chunk does not repeat it */
    {"gemini-sse-grounding", LW_FORMAT_GEMINI, SSE,
     GEMINI_CHUNK("{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"index\":0}", "1")
     GEMINI_CHUNK("{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"groundingMetadata\":"
                  "{\"webSearchQueries\":[\"q1\",\"q2\"],\"groundingChunks\":[{\"web\":"
                  "{\"uri\":\"https://example.com\",\"title\":\"t\"}}]},\"index\":0}", "2")
     GEMINI_CHUNK("{\"content\":{\"parts\":[{\"text\":\"c\"}]},\"finishReason\":\"STOP\","
                  "\"index\":0}", "3"),
     TRUE, "", 0, "", NO_TOOLS, 2},
    /* ... repeated on a later chunk: the queries once */
    {"gemini-sse-grounding-repeated", LW_FORMAT_GEMINI, SSE,
     GEMINI_CHUNK("{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"groundingMetadata\":"
                  "{\"webSearchQueries\":[\"q1\",\"q2\",\"q3\"]},\"index\":0}", "1")
     GEMINI_CHUNK("{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":\"STOP\","
                  "\"groundingMetadata\":{\"webSearchQueries\":[\"q1\",\"q2\",\"q3\"]},"
                  "\"index\":0}", "2"),
     TRUE, "", 0, "", NO_TOOLS, 3},
    /* two candidates, each grounded: their queries add up */
    {"gemini-json-grounding-candidates", LW_FORMAT_GEMINI, JSON,
     "{\"candidates\":[{\"groundingMetadata\":{\"webSearchQueries\":[\"a\"]},\"finishReason\":"
     "\"STOP\",\"index\":0},{\"groundingMetadata\":{\"webSearchQueries\":[\"b\",\"c\"]},"
     "\"finishReason\":\"STOP\",\"index\":1}],\"usageMetadata\":{\"promptTokenCount\":3,"
     "\"candidatesTokenCount\":2},\"webSearchQueries\":[\"not a candidate's\"]}",
     TRUE, "", 0, "", NO_TOOLS, 3},
};

#undef NO_TOOLS
#undef RESP_EVENT
#undef GEMINI_CHUNK

/* What the price table cannot express is reported: the tier that served
 * the answer, the region, the web searches, built-in tool calls and
 * grounding queries it made, however the body was cut. */
static void test_unpriced_charges(gconstpointer data)
{
    const ChargeCase *c = data;
    g_autoptr(GBytes) file = c->body[0] == '@' ? load(c->body + 1) : NULL;
    gsize len = file != NULL ? g_bytes_get_size(file) : strlen(c->body);
    const char *body = file != NULL ? g_bytes_get_data(file, NULL) : c->body;
    Result r = {0};
    run_all_splits(c->format, NULL, 200, c->ctype, NULL, FALSE, body, len, body, len, NULL, &r);
    g_assert_cmpint(r.usage.have_usage, ==, c->have_usage);
    g_assert_cmpstr(r.usage.service_tier, ==, c->tier);
    g_assert_cmpint(r.usage.web_searches, ==, c->web_searches);
    g_assert_cmpstr(r.usage.inference_geo, ==, c->geo);
    for (int t = 0; t < LW_TOOL_COUNT; t++)
        g_assert_cmpint(r.usage.tool_calls[t], ==, c->tools[t]);
    g_assert_cmpint(r.usage.search_queries, ==, c->queries);
    result_clear(&r);
}

/* Gemini with two candidates: the answer ends when both have finished. */
static void test_gemini_candidates(void)
{
    const char *path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    const char *reqbody = "{\"generationConfig\":{\"candidateCount\":2}}";
    LwRequestInfo req;
    lw_inspect_request(LW_FORMAT_GEMINI, "POST", path, reqbody, strlen(reqbody), &req);
    g_assert_cmpint(req.choices, ==, 2);
    const char *first =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":"
        "\"STOP\",\"index\":0},{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"index\":1}]}\r\n\r\n";
    const char *second =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"c\"}]},\"finishReason\":"
        "\"STOP\",\"index\":1}],\"usageMetadata\":{\"promptTokenCount\":3,"
        "\"candidatesTokenCount\":3}}\r\n\r\n";
    g_autofree char *body = g_strconcat(first, second, NULL);
    Result r = {0};
    run(LW_FORMAT_GEMINI, &req, 200, SSE, NULL, FALSE, body, strlen(body), NULL, 0, &r);
    g_autofree char *flags = expected_flags(body, strlen(body), second);
    g_assert_cmpstr(r.flags, ==, flags);
    g_assert_true(r.usage.complete);
    g_assert_cmpint(r.usage.output_text_bytes, ==, 3);
    result_clear(&r);
    lw_request_info_clear(&req);
}

/* Gemini repeats its running usage on every chunk and the observer parses
 * only the latest when asked: asked after every read (a metered stream)
 * and asked once after a stream that broke before its final chunk, the
 * answer is that chunk's usage, and text is counted once. */
static void test_gemini_running_usage(void)
{
    const char *path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    LwRequestInfo req;
    lw_inspect_request(LW_FORMAT_GEMINI, "POST", path, "{}", 2, &req);
#define CHUNK(TEXT, THOUGHT, OUT, THOUGHTS)                                                     \
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"" TEXT "\"" THOUGHT          \
    "}]},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":" OUT \
    ",\"thoughtsTokenCount\":" THOUGHTS "},\"modelVersion\":\"gemini-2.5-flash\","             \
    "\"responseId\":\"R1\"}\r\n\r\n"
    const char *chunks[] = {
        CHUNK("Hi", "", "1", "0"),
        CHUNK(" there", ",\"thought\":true", "2", "40"),
        CHUNK(" you", "", "3", "40"),
    };
#undef CHUNK
    const gint64 want_output[] = {1, 42, 43};
    const gint64 want_text[] = {2, 8, 12};

    for (int asked_each_time = 0; asked_each_time <= 1; asked_each_time++) {
        Sink s = {g_string_new(NULL), g_string_new(NULL)};
        const LwObserverSink sink = {sink_emit};
        LwObserver *obs = lw_observer_new(LW_FORMAT_GEMINI, &req, 200, SSE, NULL, FALSE, &sink, &s);
        for (gsize i = 0; i < G_N_ELEMENTS(chunks); i++) {
            lw_observer_feed(obs, chunks[i], strlen(chunks[i]));
            if (asked_each_time) {
                const LwUsage *u = lw_observer_usage(obs);
                g_assert_cmpint(u->tokens.output_tokens, ==, want_output[i]);
                g_assert_cmpint(u->output_text_bytes, ==, want_text[i]);
            }
        }
        lw_observer_finish(obs);
        const LwUsage *u = lw_observer_usage(obs);
        g_assert_true(u->have_usage);
        g_assert_false(u->complete);
        g_assert_cmpint(u->tokens.input_tokens, ==, 8);
        g_assert_cmpint(u->tokens.output_tokens, ==, 43);
        g_assert_cmpint(u->tokens.reasoning_tokens, ==, 40);
        g_assert_cmpint(u->output_text_bytes, ==, 12);
        g_assert_nonnull(strstr(u->raw_usage, "\"candidatesTokenCount\":3"));
        g_assert_cmpstr(u->model_served, ==, "gemini-2.5-flash");
        g_assert_cmpstr(u->response_id, ==, "R1");
        lw_observer_free(obs);
        g_string_free(s.out, TRUE);
        g_string_free(s.flags, TRUE);
    }
    lw_request_info_clear(&req);
}

/* Member names written with escapes are the names they decode to, as for
 * any JSON parser (the SDK's): the scan that spares text deltas a parse
 * cannot read them, so such an event is parsed, and its usage counts. */
typedef struct {
    const char *name;
    LwFormat format;
    const char *path;
    const char *body;
    LwTokens tokens;
} EscapedCase;

static const EscapedCase escaped_cases[] = {
    {"openai-usage", LW_FORMAT_OPENAI, "/v1/chat/completions",
     "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":"
     "{\"content\":\"Hi\"}}]}\n\n"
     "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[],\"us\\u0061ge\":"
     "{\"prompt_tokens\":1000,\"completion_tokens\":70,\"total_tokens\":1070}}\n\n"
     "data: [DONE]\n\n",
     {1000, 0, 0, 0, 70, 0}},
    {"gemini-usage-metadata", LW_FORMAT_GEMINI,
     "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"index\":0}],"
     "\"usageMetadata\":{\"promptTokenCount\":100,\"candidatesTokenCount\":1},"
     "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"R\"}\r\n\r\n"
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" b\"}]},\"index\":0}],"
     "\"usage\\u004detadata\":{\"promptTokenCount\":100,\"candidatesTokenCount\":500},"
     "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"R\"}\r\n\r\n"
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" c\"}]},"
     "\"finishReason\":\"STOP\",\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\","
     "\"responseId\":\"R\"}\r\n\r\n",
     {100, 0, 0, 0, 500, 0}},
};

static void test_escaped_names(gconstpointer data)
{
    const EscapedCase *c = data;
    LwRequestInfo req;
    lw_inspect_request(c->format, "POST", c->path, "{\"stream\":true}", 15, &req);
    gsize len = strlen(c->body);
    Result r = {0};
    run_all_splits(c->format, &req, 200, SSE, NULL, FALSE, c->body, len, c->body, len, NULL, &r);
    g_assert_true(r.usage.have_usage);
    g_assert_true(r.usage.complete);
    g_assert_cmpmem(&r.usage.tokens, sizeof r.usage.tokens, &c->tokens, sizeof c->tokens);
    result_clear(&r);
    lw_request_info_clear(&req);
}

/* A Gemini stream that breaks inside a chunk: whatever of it came (cut
 * after the usage's name, inside a later string, or just after the usage
 * object) reports no usage, so the running usage stays the last whole
 * chunk's, as the provider counted it, not the first chunk's. Asked once
 * at the end (the latest report is kept unparsed until then) and after
 * every read. */
static void test_gemini_cut_inside_chunk(void)
{
    const char *path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    LwRequestInfo req;
    lw_inspect_request(LW_FORMAT_GEMINI, "POST", path, "{}", 2, &req);
#define HEAD(TEXT)                                                                                \
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"" TEXT "\"}]},\"index\":0}],"
#define USAGE(OUT)                                                                                \
    "\"usageMetadata\":{\"promptTokenCount\":100,\"candidatesTokenCount\":" OUT "}"
#define TAIL ",\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"R1\"}\r\n\r\n"
    const char *chunks[] = {
        HEAD("a") USAGE("1") TAIL,
        HEAD("bb") USAGE("400") TAIL,
        HEAD("cc") USAGE("800") TAIL,
    };
    const char *cuts[] = {
        HEAD("dd") "\"usageMetadata\":{\"promptTokenCount\":100,\"candidatesTokenCount\":",
        HEAD("dd") USAGE("900") ",\"modelVersion\":\"gemini-2.",
        HEAD("dd") USAGE("900"),
        HEAD("dd") "\"usageMetadata\"",
    };
#undef HEAD
#undef USAGE
#undef TAIL
    for (gsize c = 0; c < G_N_ELEMENTS(cuts); c++) {
        for (int asked_each_time = 0; asked_each_time <= 1; asked_each_time++) {
            Sink s = {g_string_new(NULL), g_string_new(NULL)};
            const LwObserverSink sink = {sink_emit};
            LwObserver *obs =
                lw_observer_new(LW_FORMAT_GEMINI, &req, 200, SSE, NULL, FALSE, &sink, &s);
            for (gsize i = 0; i < G_N_ELEMENTS(chunks); i++) {
                lw_observer_feed(obs, chunks[i], strlen(chunks[i]));
                if (asked_each_time)
                    lw_observer_usage(obs);
            }
            lw_observer_feed(obs, cuts[c], strlen(cuts[c]));
            lw_observer_finish(obs);
            const LwUsage *u = lw_observer_usage(obs);
            g_test_message("cut %zu, asked each time: %d", c, asked_each_time);
            g_assert_true(u->have_usage);
            g_assert_false(u->complete);
            g_assert_cmpint(u->tokens.input_tokens, ==, 100);
            g_assert_cmpint(u->tokens.output_tokens, ==, 800);
            g_assert_nonnull(strstr(u->raw_usage, "\"candidatesTokenCount\":800"));
            lw_observer_free(obs);
            g_string_free(s.out, TRUE);
            g_string_free(s.flags, TRUE);
        }
    }
    lw_request_info_clear(&req);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(goldens); i++) {
        g_autofree char *path = g_strdup_printf("/observe/golden/%s", goldens[i].name);
        g_test_add_data_func(path, &goldens[i], test_golden);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(compressed); i++) {
        g_autofree char *path =
            g_strdup_printf("/observe/compressed/%s/%s", compressed[i].label, compressed[i].golden);
        g_test_add_data_func(path, &compressed[i], test_compressed);
    }
    g_test_add_func("/observe/unreadable-encoding", test_unreadable_encoding);
    g_test_add_func("/observe/accept-encoding", test_accept_encoding);
    g_test_add_func("/observe/strip-cases", test_strip_cases);
    g_test_add_func("/observe/rewrites-flag", test_rewrites_flag);
    g_test_add_func("/observe/cap/event", test_cap_event);
    for (gsize i = 0; i < G_N_ELEMENTS(oversize_cases); i++) {
        g_autofree char *path = g_strdup_printf("/observe/oversize/%s", oversize_cases[i].name);
        g_test_add_data_func(path, &oversize_cases[i], test_oversize_event);
    }
    g_test_add_func("/observe/cap/raw-usage", test_cap_raw_usage);
    g_test_add_func("/observe/cap/names", test_cap_names);
    g_test_add_func("/observe/cap/json-token", test_cap_json_token);
    g_test_add_func("/observe/cap/json-number", test_cap_json_number);
    g_test_add_func("/observe/long-string-escapes", test_long_string_escapes);
    g_test_add_func("/observe/cap/depth", test_cap_depth);
    g_test_add_func("/observe/cap/inflate", test_cap_inflate);
    g_test_add_func("/observe/garbage", test_garbage);
    g_test_add_func("/observe/usage-null-split", test_usage_null_split);
    g_test_add_func("/observe/empty-model-name-skipped", test_empty_model_name_skipped);
    g_test_add_func("/observe/clamped", test_clamped);
    g_test_add_func("/observe/decimal", test_decimal);
    g_test_add_func("/observe/openrouter-byok", test_openrouter_byok);
    g_test_add_func("/observe/xai-subset", test_xai_subset);
    g_test_add_func("/observe/gemini-running-usage", test_gemini_running_usage);
    g_test_add_func("/observe/gemini-cut-inside-chunk", test_gemini_cut_inside_chunk);
    for (gsize i = 0; i < G_N_ELEMENTS(escaped_cases); i++) {
        g_autofree char *path = g_strdup_printf("/observe/escaped-names/%s", escaped_cases[i].name);
        g_test_add_data_func(path, &escaped_cases[i], test_escaped_names);
    }
    g_test_add_func("/observe/gemini-candidates", test_gemini_candidates);
    g_test_add_func("/observe/anthropic-delta-writes", test_anthropic_delta_writes);
    for (gsize i = 0; i < G_N_ELEMENTS(charge_cases); i++) {
        g_autofree char *path = g_strdup_printf("/observe/unpriced/%s", charge_cases[i].name);
        g_test_add_data_func(path, &charge_cases[i], test_unpriced_charges);
    }
    return g_test_run();
}
