/* fuzz-observe.c - libFuzzer target for collector/observe.c (with the SSE
 * framer, the usage extractor and the request inspector under it).
 *
 * Input: a control byte (format, strip mode, content type, encoding), a
 * byte choosing the request (low 3 bits), the HTTP status (next 4) and
 * whether the content type and encoding are the input's own (top bit: the
 * body then starts with them, a line each), two bytes seeding the feed
 * sizes, then the response body. Besides crashes and sanitizer reports,
 * the target aborts when the contract in observe.h breaks: bytes changed
 * although the observer says it does not rewrite, results that depend on
 * how the body was cut into feeds, usage that breaks the "of which"
 * invariants, a rewrite or a mid-stream error in an answer that is not a
 * 2xx, or usage read from a body in a coding the observer does not read.
 * The body is also inspected as a request body and rewritten, and the
 * rewrites must read back as what they set.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "observe.h"
#include "usage-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

typedef struct {
    GString *out;
    GString *flags;
} Sink;

static void sink_emit(void *data, const char *buf, gsize len, gboolean terminal)
{
    Sink *s = data;
    require(len > 0);
    g_string_append_len(s->out, buf, (gssize)len);
    for (gsize i = 0; i < len; i++)
        g_string_append_c(s->flags, terminal ? '1' : '0');
}

typedef struct {
    LwUsage usage;
    Sink sink;
    gboolean rewrites;
} Run;

static void run(LwFormat format, const LwRequestInfo *req, int status, const char *ctype,
                const char *cenc, gboolean strip, const char *body, size_t size, uint32_t seed,
                Run *r)
{
    static const LwObserverSink sink = {sink_emit};
    r->sink.out = g_string_new(NULL);
    r->sink.flags = g_string_new(NULL);
    LwObserver *obs = lw_observer_new(format, req, status, ctype, cenc, strip, &sink, &r->sink);
    r->rewrites = lw_observer_rewrites(obs);
    size_t at = 0;
    while (at < size) {
        size_t n = seed == 0 ? size - at : 1 + (seed % 61);
        seed = seed * 1103515245u + 12345u;
        if (n > size - at)
            n = size - at;
        char *feed = malloc(n); /* exact size: reads past the feed trip ASan */
        require(feed != NULL);
        memcpy(feed, body + at, n);
        lw_observer_feed(obs, feed, n);
        free(feed);
        at += n;
    }
    lw_observer_finish(obs);
    const LwUsage *u = lw_observer_usage(obs);
    r->usage = *u;
    r->usage.model_served = g_strdup(u->model_served);
    r->usage.raw_usage = g_strdup(u->raw_usage);
    r->usage.response_id = g_strdup(u->response_id);
    lw_observer_free(obs);
}

static void run_clear(Run *r)
{
    lw_usage_clear(&r->usage);
    g_string_free(r->sink.out, TRUE);
    g_string_free(r->sink.flags, TRUE);
}

static void check_usage(const LwUsage *u)
{
    const LwTokens *t = &u->tokens;
    require(t->input_tokens >= 0 && t->output_tokens >= 0);
    require(t->cached_input_tokens >= 0 && t->cache_write_tokens >= 0 &&
            t->cache_write_1h_tokens >= 0 && t->reasoning_tokens >= 0);
    /* Cache reads and writes are parts of the input; 1-hour writes are
     * part of all writes (ledger.h). */
    require(t->cached_input_tokens + t->cache_write_tokens <= t->input_tokens);
    require(t->cache_write_1h_tokens <= t->cache_write_tokens);
    require(t->reasoning_tokens <= t->output_tokens);
    require(u->output_text_bytes >= 0);
    require(u->model_served == NULL || strlen(u->model_served) <= LW_USAGE_JSON_MAX_NAME);
    require(u->response_id == NULL || strlen(u->response_id) <= LW_USAGE_JSON_MAX_NAME);
    require(u->raw_usage == NULL || strlen(u->raw_usage) <= LW_USAGE_JSON_MAX_RAW);
}

static bool same(const Run *a, const Run *b)
{
    const LwUsage *x = &a->usage, *y = &b->usage;
    return g_string_equal(a->sink.out, b->sink.out) && g_string_equal(a->sink.flags, b->sink.flags) &&
           memcmp(&x->tokens, &y->tokens, sizeof x->tokens) == 0 &&
           x->have_usage == y->have_usage && x->complete == y->complete &&
           x->mid_stream_error == y->mid_stream_error &&
           x->have_provider_cost == y->have_provider_cost &&
           x->provider_cost_pusd == y->provider_cost_pusd &&
           x->output_text_bytes == y->output_text_bytes &&
           g_strcmp0(x->model_served, y->model_served) == 0 &&
           g_strcmp0(x->response_id, y->response_id) == 0 &&
           g_strcmp0(x->raw_usage, y->raw_usage) == 0 &&
           strcmp(x->unreadable, y->unreadable) == 0 &&
           strcmp(x->service_tier, y->service_tier) == 0 && x->web_searches == y->web_searches &&
           strcmp(x->inference_geo, y->inference_geo) == 0 &&
           memcmp(x->tool_calls, y->tool_calls, sizeof x->tool_calls) == 0 &&
           x->search_queries == y->search_queries;
}

static const char *const paths[] = {
    NULL, /* no request info */
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    "/v1beta/openai/chat/completions",
    "/v1/embeddings",
};

/* The rewrites must change only what they say and read back. */
static void check_rewrites(const char *body, size_t size)
{
    static const LwFormat formats[] = {LW_FORMAT_OPENAI, LW_FORMAT_ANTHROPIC, LW_FORMAT_GEMINI};
    for (size_t p = 1; p < G_N_ELEMENTS(paths); p++) {
        LwFormat f = formats[p % 3];
        LwRequestInfo info;
        lw_inspect_request(f, "POST", paths[p], body, size, &info);
        require(info.choices >= 1 && info.body_bytes == (gint64)size);

        GBytes *b = lw_rewrite_max_output(body, size, f, &info, 77);
        if (b != NULL) {
            gsize n;
            const char *q = g_bytes_get_data(b, &n);
            LwRequestInfo again;
            lw_inspect_request(f, "POST", paths[p], q, n, &again);
            require(again.max_output == 77);
            lw_request_info_clear(&again);
            g_bytes_unref(b);
        }
        lw_request_info_clear(&info);
    }

    GBytes *b = lw_rewrite_include_usage(body, size);
    /* The collector makes the same edit from inspection's own parse. */
    LwRequestInfo info;
    GBytes *once = lw_inspect_request_adding_usage(LW_FORMAT_OPENAI, "POST",
                                                   "/v1/chat/completions", body, size, &info);
    require(info.include_usage || b == NULL ? once == NULL
                                            : once != NULL && g_bytes_equal(once, b));
    if (once != NULL)
        g_bytes_unref(once);
    lw_request_info_clear(&info);
    if (b != NULL) {
        gsize n;
        const char *q = g_bytes_get_data(b, &n);
        LwRequestInfo again;
        lw_inspect_request(LW_FORMAT_OPENAI, "POST", "/v1/chat/completions", q, n, &again);
        require(again.include_usage);
        lw_request_info_clear(&again);
        GBytes *twice = lw_rewrite_include_usage(q, n);
        require(twice != NULL && g_bytes_equal(twice, b)); /* idempotent */
        g_bytes_unref(twice);
        g_bytes_unref(b);
    }

    b = lw_rewrite_model(body, size, "m\"x");
    if (b != NULL) {
        gsize n;
        const char *q = g_bytes_get_data(b, &n);
        LwRequestInfo again;
        lw_inspect_request(LW_FORMAT_OPENAI, "POST", "/v1/chat/completions", q, n, &again);
        require(g_strcmp0(again.model, "m\"x") == 0);
        lw_request_info_clear(&again);
        g_bytes_unref(b);
    }
}

/* A Content-Encoding the observer does not read (observe.h): anything but
 * identity, gzip, x-gzip and deflate, ignoring case and blanks around. */
static bool is_unread_coding(const char *value)
{
    if (value == NULL)
        return false;
    g_autofree char *v = g_strstrip(g_ascii_strdown(value, -1));
    return *v != '\0' && strcmp(v, "identity") != 0 && strcmp(v, "gzip") != 0 &&
           strcmp(v, "x-gzip") != 0 && strcmp(v, "deflate") != 0;
}

/* The input's own header value: the bytes up to the next newline (or the
 * end), which are taken off the body. */
static char *take_line(const char **body, size_t *size)
{
    const char *nl = memchr(*body, '\n', *size);
    size_t n = nl != NULL ? (size_t)(nl - *body) : *size;
    char *line = g_strndup(*body, n);
    if (nl != NULL)
        n++; /* the newline */
    *body += n;
    *size -= n;
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    static const LwFormat formats[] = {LW_FORMAT_OPENAI, LW_FORMAT_ANTHROPIC, LW_FORMAT_GEMINI};
    static const char *const ctypes[] = {"text/event-stream", "application/json", NULL,
                                         "text/html"};
    static const char *const encs[] = {NULL, "gzip", "deflate", "br"};
    /* What providers answer, what a gateway in front of them does, the
     * statuses without a body, and numbers no server should send. */
    static const int statuses[] = {200, 400, 429, 500, 529, 101, 204, 304,
                                   201, 206, 299, 199, 300, 402, 503, 0};
    LwFormat format = formats[(data[0] & 3) % 3];
    gboolean strip = (data[0] & 4) != 0;
    const char *ctype = ctypes[(data[0] >> 3) & 3];
    const char *cenc = encs[(data[0] >> 5) & 3];
    const char *path = paths[data[1] & 7];
    int status = statuses[(data[1] >> 3) & 15];
    uint32_t seed = ((uint32_t)data[2] << 8) | data[3];
    const char *body = (const char *)data + 4;
    size -= 4;
    g_autofree char *own_ctype = NULL, *own_cenc = NULL;
    if (data[1] & 0x80) {
        own_ctype = take_line(&body, &size);
        own_cenc = take_line(&body, &size);
        ctype = own_ctype;
        cenc = own_cenc;
    }
    gboolean ok_status = status >= 200 && status < 300;

    LwRequestInfo req;
    if (path != NULL)
        lw_inspect_request(format, "POST", path, "{\"stream\":true}", 15, &req);

    Run whole, cut;
    run(format, path != NULL ? &req : NULL, status, ctype, cenc, strip, body, size, 0, &whole);
    run(format, path != NULL ? &req : NULL, status, ctype, cenc, strip, body, size, seed | 1, &cut);
    require(same(&whole, &cut));
    check_usage(&whole.usage);
    /* An error answer is no stream that failed midway, and what strip mode
     * removes is only in a successful one. */
    if (!ok_status)
        require(!whole.usage.mid_stream_error && !whole.rewrites);
    if (is_unread_coding(cenc))
        require(!whole.usage.have_usage && !whole.usage.complete &&
                whole.usage.model_served == NULL && whole.usage.unreadable[0] != '\0' &&
                !whole.rewrites);
    if (!whole.rewrites)
        require(whole.sink.out->len == size && memcmp(whole.sink.out->str, body, size) == 0);
    else
        require(whole.sink.out->len <= size);
    run_clear(&whole);
    run_clear(&cut);
    if (path != NULL)
        lw_request_info_clear(&req);

    if (data[0] & 0x80)
        check_rewrites(body, size);
    return 0;
}
