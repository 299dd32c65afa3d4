/* test-inspect.c - endpoints from paths of every provider, request fields,
 * and byte-exact rewrites. */
#include "inspect.h"

#include <string.h>

#include "usage-keys.h"

typedef struct {
    LwFormat format;
    const char *method;
    const char *path;
    const char *body;
    /* expected */
    LwEndpoint endpoint;
    const char *model;
    gboolean stream, sse;
    gint64 max_output, choices, thinking_budget;
    gboolean include_usage, server_state;
} InspectCase;

#define O LW_FORMAT_OPENAI
#define A LW_FORMAT_ANTHROPIC
#define G LW_FORMAT_GEMINI

static const InspectCase inspect_cases[] = {
    /* OpenAI-format chat under every provider's prefix */
    {O, "POST", "/v1/chat/completions",
     "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
     "\"max_completion_tokens\":500,\"max_tokens\":100,\"n\":3,\"messages\":[]}",
     LW_ENDPOINT_CHAT, "gpt-4o", TRUE, TRUE, 500, 3, -1, TRUE, FALSE},
    {O, "POST", "/openai/v1/chat/completions", "{\"model\":\"llama-3.3-70b-versatile\",\"max_tokens\":100}",
     LW_ENDPOINT_CHAT, "llama-3.3-70b-versatile", FALSE, FALSE, 100, 1, -1, FALSE, FALSE},
    {O, "POST", "/api/v1/chat/completions", "{\"model\":\"anthropic/claude-sonnet-4.5\",\"stream\":false}",
     LW_ENDPOINT_CHAT, "anthropic/claude-sonnet-4.5", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "POST", "/inference/v1/chat/completions",
     "{\"model\":\"accounts/fireworks/models/gpt-oss-120b\",\"stream\":true}", LW_ENDPOINT_CHAT,
     "accounts/fireworks/models/gpt-oss-120b", TRUE, TRUE, -1, 1, -1, FALSE, FALSE},
    {G, "POST", "/v1beta/openai/chat/completions",
     "{\"model\":\"gemini-2.5-flash\",\"stream\":true,\"max_tokens\":64}", LW_ENDPOINT_CHAT,
     "gemini-2.5-flash", TRUE, TRUE, 64, 1, -1, FALSE, FALSE},
    {O, "POST", "/chat/completions", "{\"model\":\"sonar\"}", LW_ENDPOINT_CHAT, "sonar", FALSE,
     FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "POST", "/v1/chat/completions/", "{\"model\":\"deepseek-chat\"}", LW_ENDPOINT_CHAT,
     "deepseek-chat", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "post", "/chat/completions?x=1", "{\"model\":\"deepseek-chat\"}", LW_ENDPOINT_CHAT,
     "deepseek-chat", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    /* listing stored completions is not a completion */
    {O, "GET", "/v1/chat/completions", NULL, LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1, -1,
     FALSE, FALSE},
    {O, "POST", "/v1/chat/completions/chatcmpl-1", "{}", LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1,
     1, -1, FALSE, FALSE},
    /* legacy completions: best_of candidates are all billed */
    {O, "POST", "/v1/completions",
     "{\"model\":\"gpt-3.5-turbo-instruct\",\"n\":2,\"best_of\":5,\"max_tokens\":16}",
     LW_ENDPOINT_COMPLETIONS, "gpt-3.5-turbo-instruct", FALSE, FALSE, 16, 5, -1, FALSE, FALSE},
    {O, "POST", "/v1/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":\"hi\"}",
     LW_ENDPOINT_EMBEDDINGS, "text-embedding-3-small", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    /* responses: POST only; server-side state */
    {O, "POST", "/v1/responses",
     "{\"model\":\"gpt-5.4\",\"max_output_tokens\":2048,\"previous_response_id\":\"resp_1\","
     "\"stream\":true}",
     LW_ENDPOINT_RESPONSES, "gpt-5.4", TRUE, TRUE, 2048, 1, -1, FALSE, TRUE},
    {O, "POST", "/v1/responses", "{\"model\":\"gpt-5.4\",\"conversation\":{\"id\":\"conv_1\"}}",
     LW_ENDPOINT_RESPONSES, "gpt-5.4", FALSE, FALSE, -1, 1, -1, FALSE, TRUE},
    {O, "POST", "/v1/responses", "{\"model\":\"gpt-5.4\",\"previous_response_id\":null}",
     LW_ENDPOINT_RESPONSES, "gpt-5.4", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    /* a stored prompt template is server-side input; a string prompt is text */
    {O, "POST", "/v1/responses", "{\"model\":\"gpt-5.4\",\"prompt\":{\"id\":\"pmpt_1\"}}",
     LW_ENDPOINT_RESPONSES, "gpt-5.4", FALSE, FALSE, -1, 1, -1, FALSE, TRUE},
    {O, "POST", "/v1/completions", "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"hi\"}",
     LW_ENDPOINT_COMPLETIONS, "gpt-3.5-turbo-instruct", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "GET", "/v1/responses/resp_67c", NULL, LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1, -1,
     FALSE, FALSE},
    {O, "POST", "/v1/responses/resp_67c/cancel", NULL, LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1,
     1, -1, FALSE, FALSE},
    {O, "POST", "/v1/responses/input_tokens", "{\"model\":\"gpt-5.4\",\"input\":\"hi\"}",
     LW_ENDPOINT_COUNT_TOKENS, "gpt-5.4", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "GET", "/v1/models", NULL, LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    /* Anthropic */
    {A, "POST", "/v1/messages",
     "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"stream\":true,\"messages\":[]}",
     LW_ENDPOINT_MESSAGES, "claude-sonnet-4-5", TRUE, TRUE, 1024, 1, -1, FALSE, FALSE},
    {A, "POST", "/v1/messages?beta=true", "{\"model\":\"claude-opus-4-7\",\"max_tokens\":8}",
     LW_ENDPOINT_MESSAGES, "claude-opus-4-7", FALSE, FALSE, 8, 1, -1, FALSE, FALSE},
    {A, "POST", "/v1/messages/count_tokens", "{\"model\":\"claude-opus-4-7\",\"messages\":[]}",
     LW_ENDPOINT_COUNT_TOKENS, "claude-opus-4-7", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    /* a batch costs later, where llmwrap cannot see it */
    {A, "POST", "/v1/messages/batches", "{\"requests\":[]}", LW_ENDPOINT_UNPRICED, NULL, FALSE,
     FALSE, -1, 1, -1, FALSE, FALSE},
    {A, "POST", "/v1/messages/batches/msgbatch_1/cancel", NULL, LW_ENDPOINT_OTHER, NULL, FALSE,
     FALSE, -1, 1, -1, FALSE, FALSE},
    {A, "POST", "/v1/files", "--x", LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    /* POSTs that may cost and have no price: images, audio, batches, runs */
    {O, "POST", "/v1/images/generations", "{\"model\":\"gpt-image-1\"}", LW_ENDPOINT_UNPRICED,
     "gpt-image-1", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "POST", "/v1/audio/transcriptions", "--x", LW_ENDPOINT_UNPRICED, NULL, FALSE, FALSE, -1, 1,
     -1, FALSE, FALSE},
    {O, "POST", "/v1/batches", "{}", LW_ENDPOINT_UNPRICED, NULL, FALSE, FALSE, -1, 1, -1, FALSE,
     FALSE},
    {O, "POST", "/v1/threads/thread_1/runs", "{}", LW_ENDPOINT_UNPRICED, NULL, FALSE, FALSE, -1, 1,
     -1, FALSE, FALSE},
    /* ... and those that cost nothing per call */
    {O, "POST", "/v1/threads/thread_1/messages", "{}", LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1,
     -1, FALSE, FALSE},
    {O, "POST", "/v1/uploads/upload_1/parts", "--x", LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1,
     -1, FALSE, FALSE},
    {O, "POST", "/v1/moderations", "{}", LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1, -1, FALSE,
     FALSE},
    {O, "POST", "/v1/vector_stores/vs_1/files", "{}", LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1,
     -1, FALSE, FALSE},
    {G, "POST", "/upload/v1beta/files?key=k", "--x", LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1, 1,
     -1, FALSE, FALSE},
    /* Responses-shaped: compaction, Perplexity's Agent API */
    {O, "POST", "/v1/responses/compact", "{\"model\":\"gpt-5.4\"}", LW_ENDPOINT_RESPONSES,
     "gpt-5.4", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "POST", "/v1/agent", "{\"model\":\"perplexity/sonar\",\"stream\":true}",
     LW_ENDPOINT_RESPONSES, "perplexity/sonar", TRUE, TRUE, -1, 1, -1, FALSE, FALSE},
    /* OpenRouter's Anthropic-format endpoint */
    {O, "POST", "/api/v1/messages", "{\"model\":\"anthropic/claude-opus-4.7\",\"max_tokens\":9}",
     LW_ENDPOINT_MESSAGES, "anthropic/claude-opus-4.7", FALSE, FALSE, 9, 1, -1, FALSE, FALSE},
    /* Gemini: the model is in the path; the query (with its key) is never copied */
    {G, "POST", "/v1beta/models/gemini-2.5-flash:generateContent",
     "{\"contents\":[],\"generationConfig\":{\"maxOutputTokens\":1024,\"candidateCount\":2,"
     "\"thinkingConfig\":{\"thinkingBudget\":2048}}}",
     LW_ENDPOINT_GENERATE, "gemini-2.5-flash", FALSE, FALSE, 1024, 2, 2048, FALSE, FALSE},
    {G, "POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?key=SECRET&alt=sse",
     "{\"generation_config\":{\"max_output_tokens\":512,\"candidate_count\":3,"
     "\"thinking_config\":{\"thinking_budget\":0}}}",
     LW_ENDPOINT_STREAM_GENERATE, "gemini-2.5-pro", TRUE, TRUE, 512, 3, 0, FALSE, FALSE},
    {G, "POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=ssex&key=alt=sse",
     "{}", LW_ENDPOINT_STREAM_GENERATE, "gemini-2.5-pro", TRUE, FALSE, -1, 1, -1, FALSE, FALSE},
    /* a context cache the request only names */
    {G, "POST", "/v1beta/models/gemini-2.5-pro:generateContent",
     "{\"cachedContent\":\"cachedContents/abc\",\"contents\":[]}", LW_ENDPOINT_GENERATE,
     "gemini-2.5-pro", FALSE, FALSE, -1, 1, -1, FALSE, TRUE},
    {G, "POST", "/v1beta/models/gemini-2.5-pro:generateContent",
     "{\"cached_content\":\"cachedContents/abc\"}", LW_ENDPOINT_GENERATE, "gemini-2.5-pro",
     FALSE, FALSE, -1, 1, -1, FALSE, TRUE},
    {G, "POST", "/v1/models/gemini-2.0-flash:countTokens", "{\"contents\":[]}",
     LW_ENDPOINT_COUNT_TOKENS, "gemini-2.0-flash", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {G, "POST", "/v1beta/models/gemini-embedding-001:embedContent", "{}",
     LW_ENDPOINT_EMBED_CONTENT, "gemini-embedding-001", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {G, "POST", "/v1beta/models/gemini-embedding-001:batchEmbedContents", "{}",
     LW_ENDPOINT_EMBED_CONTENT, "gemini-embedding-001", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {G, "POST", "/v1beta/tunedModels/my-tuned-123:generateContent", "{}", LW_ENDPOINT_GENERATE,
     "tunedModels/my-tuned-123", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {G, "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", "{}",
     LW_ENDPOINT_UNPRICED, "gemini-2.5-flash", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {G, "POST", "/v1beta/models/imagen-4.0-generate-001:predict", "{}", LW_ENDPOINT_UNPRICED,
     "imagen-4.0-generate-001", FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {G, "GET", "/v1beta/models/gemini-2.5-flash", NULL, LW_ENDPOINT_OTHER, NULL, FALSE, FALSE, -1,
     1, -1, FALSE, FALSE},
    /* bodies that are not what they should be: defaults, never a crash */
    {O, "POST", "/v1/chat/completions", "hello", LW_ENDPOINT_CHAT, NULL, FALSE, FALSE, -1, 1, -1,
     FALSE, FALSE},
    {O, "POST", "/v1/chat/completions", "[{\"model\":\"x\"}]", LW_ENDPOINT_CHAT, NULL, FALSE,
     FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "POST", "/v1/chat/completions", "{\"x\":{\"model\":\"a\",\"max_tokens\":5,\"stream\":true}}",
     LW_ENDPOINT_CHAT, NULL, FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "POST", "/v1/chat/completions", "{\"model\":7,\"max_tokens\":\"100\",\"n\":0}",
     LW_ENDPOINT_CHAT, NULL, FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    {O, "POST", "/v1/chat/completions", "{\"max_tokens\":-5,\"max_completion_tokens\":1.5}",
     LW_ENDPOINT_CHAT, NULL, FALSE, FALSE, -1, 1, -1, FALSE, FALSE},
    /* a truncated body keeps what was read before the cut */
    {O, "POST", "/v1/chat/completions", "{\"model\":\"gpt-4o\",\"stream\":true,\"messa",
     LW_ENDPOINT_CHAT, "gpt-4o", TRUE, TRUE, -1, 1, -1, FALSE, FALSE},
    {O, "POST", "/v1/chat/completions", "", LW_ENDPOINT_CHAT, NULL, FALSE, FALSE, -1, 1, -1, FALSE,
     FALSE},
};

static void test_inspect(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(inspect_cases); i++) {
        const InspectCase *c = &inspect_cases[i];
        LwRequestInfo info;
        gsize len = c->body != NULL ? strlen(c->body) : 0;
        lw_inspect_request(c->format, c->method, c->path, c->body, len, &info);
        g_test_message("case %zu: %s %s", i, c->method, c->path);
        g_assert_cmpstr(lw_endpoint_name(info.endpoint), ==, lw_endpoint_name(c->endpoint));
        g_assert_cmpstr(info.model, ==, c->model);
        g_assert_cmpint(info.stream, ==, c->stream);
        g_assert_cmpint(info.sse, ==, c->sse);
        g_assert_cmpint(info.max_output, ==, c->max_output);
        g_assert_cmpint(info.choices, ==, c->choices);
        g_assert_cmpint(info.thinking_budget, ==, c->thinking_budget);
        g_assert_cmpint(info.include_usage, ==, c->include_usage);
        g_assert_cmpint(info.server_state, ==, c->server_state);
        g_assert_cmpint(info.body_bytes, ==, (gint64)len);
        lw_request_info_clear(&info);
        g_assert_null(info.model);
    }
}

typedef struct {
    LwFormat format;
    const char *path;
    const char *body;
    gboolean fast_mode, web_search;
} AskedCase;

/* Charges a request asks for that the answer does not report. */
static const AskedCase asked_cases[] = {
    {A, "/v1/messages", "{\"model\":\"claude-opus-4-6\",\"speed\":\"fast\",\"max_tokens\":8}",
     TRUE, FALSE},
    {A, "/v1/messages", "{\"model\":\"claude-opus-4-6\",\"speed\":\"standard\"}", FALSE, FALSE},
    {A, "/v1/messages", "{\"model\":\"claude-opus-4-6\",\"metadata\":{\"speed\":\"fast\"}}", FALSE,
     FALSE},
    {O, "/v1/chat/completions", "{\"model\":\"gpt-5.5\",\"speed\":\"fast\"}", FALSE, FALSE},
    {O, "/v1/chat/completions",
     "{\"model\":\"gpt-4o\",\"web_search_options\":{\"search_context_size\":\"low\"}}", FALSE,
     TRUE},
    {O, "/v1/chat/completions", "{\"model\":\"gpt-4o-mini-search-preview\",\"messages\":[]}",
     FALSE, TRUE},
    {O, "/v1/chat/completions", "{\"model\":\"gpt-4o\",\"web_search_options\":null}", FALSE,
     FALSE},
    {O, "/v1/chat/completions", "{\"model\":\"gpt-4o\",\"x\":{\"web_search_options\":{}}}", FALSE,
     FALSE},
    /* Responses searches are output items the answer lists */
    {O, "/v1/responses", "{\"model\":\"gpt-4o-search-preview\",\"web_search_options\":{}}", FALSE,
     FALSE},
};

static void test_asked_charges(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(asked_cases); i++) {
        const AskedCase *c = &asked_cases[i];
        LwRequestInfo info;
        lw_inspect_request(c->format, "POST", c->path, c->body, strlen(c->body), &info);
        g_test_message("case %zu: %s", i, c->body);
        g_assert_cmpint(info.fast_mode, ==, c->fast_mode);
        g_assert_cmpint(info.web_search, ==, c->web_search);
        lw_request_info_clear(&info);
    }
}

/* A "model" longer than 256 bytes is not kept; one of 256 is. */
static void test_model_cap(void)
{
    for (int over = 0; over <= 1; over++) {
        g_autofree char *name = g_strnfill(256 + (gsize)over, 'g');
        g_autofree char *body = g_strdup_printf("{\"model\":\"%s\"}", name);
        LwRequestInfo info;
        lw_inspect_request(O, "POST", "/v1/chat/completions", body, strlen(body), &info);
        g_assert_cmpstr(info.model, ==, over ? NULL : name);
        lw_request_info_clear(&info);

        g_autofree char *path = g_strdup_printf("/v1beta/models/%s:generateContent", name);
        lw_inspect_request(G, "POST", path, "{}", 2, &info);
        g_assert_cmpstr(info.model, ==, over ? NULL : name);
        g_assert_cmpint(info.endpoint, ==, LW_ENDPOINT_GENERATE);
        lw_request_info_clear(&info);
    }
}

/* Nesting past 256 levels is not inspected (yajl would grow a stack per
 * level); fields before it are kept, rewrites refuse. */
static void test_depth_cap(void)
{
    for (int over = 0; over <= 1; over++) {
        gsize arrays = 255 + (gsize)over; /* plus the top-level object */
        GString *b = g_string_new("{\"model\":\"m\",\"x\":");
        for (gsize i = 0; i < arrays; i++)
            g_string_append_c(b, '[');
        for (gsize i = 0; i < arrays; i++)
            g_string_append_c(b, ']');
        g_string_append(b, ",\"max_tokens\":7}");
        LwRequestInfo info;
        lw_inspect_request(O, "POST", "/v1/chat/completions", b->str, b->len, &info);
        g_assert_cmpstr(info.model, ==, "m");
        g_assert_cmpint(info.max_output, ==, over ? -1 : 7);
        lw_request_info_clear(&info);
        GBytes *r = lw_rewrite_model(b->str, b->len, "n");
        g_assert_true((r == NULL) == over);
        if (r != NULL)
            g_bytes_unref(r);
        g_string_free(b, TRUE);
    }
}

/* ---- rewrites ------------------------------------------------------------- */

typedef enum {
    REWRITE_INCLUDE_USAGE,
    REWRITE_MODEL,
    REWRITE_MAX,
} RewriteKind;

typedef struct {
    RewriteKind kind;
    LwFormat format;
    const char *path; /* for REWRITE_MAX: the request's path (its info) */
    const char *body;
    const char *model; /* REWRITE_MODEL */
    gint64 max;        /* REWRITE_MAX */
    const char *want;  /* NULL: refused */
} RewriteCase;

static const RewriteCase rewrite_cases[] = {
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"model\":\"m\",\"stream\":true}", NULL, 0,
     "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"},
    {REWRITE_INCLUDE_USAGE, O, NULL,
     "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":false}}", NULL, 0,
     "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"},
    {REWRITE_INCLUDE_USAGE, O, NULL,
     "{\"stream_options\":{\"include_obfuscation\":false},\"stream\":true}", NULL, 0,
     "{\"stream_options\":{\"include_obfuscation\":false,\"include_usage\":true},\"stream\":true}"},
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"stream\":true,\"stream_options\":{ }}", NULL, 0,
     "{\"stream\":true,\"stream_options\":{ \"include_usage\":true}}"},
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"stream_options\":null,\"stream\":true}", NULL, 0,
     "{\"stream_options\":{\"include_usage\":true},\"stream\":true}"},
    {REWRITE_INCLUDE_USAGE, O, NULL, " { \"stream\" : true } \n", NULL, 0,
     " { \"stream\" : true ,\"stream_options\":{\"include_usage\":true}} \n"},
    /* not a streaming request: stream_options would be refused by the provider */
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"model\":\"m\"}", NULL, 0, NULL},
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"model\":\"m\",\"stream\":false}", NULL, 0, NULL},
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"messages\":[{\"content\":\"}\\\"}\"}],\"stream\":true}",
     NULL, 0,
     "{\"messages\":[{\"content\":\"}\\\"}\"}],\"stream\":true,\"stream_options\":{\"include_usage\":"
     "true}}"},
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
     NULL, 0, "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}"},
    {REWRITE_INCLUDE_USAGE, O, NULL, "[1]", NULL, 0, NULL},
    {REWRITE_INCLUDE_USAGE, O, NULL, "not json", NULL, 0, NULL},
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"a\":1", NULL, 0, NULL},
    {REWRITE_INCLUDE_USAGE, O, NULL, "{\"a\":1}x", NULL, 0, NULL},
    {REWRITE_INCLUDE_USAGE, O, NULL, "\"str\"", NULL, 0, NULL},
    {REWRITE_INCLUDE_USAGE, O, NULL, "", NULL, 0, NULL},

    {REWRITE_MODEL, O, NULL, "{\"model\":\"gpt-4o\",\"messages\":[]}", "gpt-4o-mini", 0,
     "{\"model\":\"gpt-4o-mini\",\"messages\":[]}"},
    {REWRITE_MODEL, O, NULL, "{\"messages\":[],\"model\" : \"a\\u0062\" }", "x", 0,
     "{\"messages\":[],\"model\" : \"x\" }"},
    {REWRITE_MODEL, O, NULL, "{\"model\":\"a\"}", "a\"b\\c", 0, "{\"model\":\"a\\\"b\\\\c\"}"},
    /* yajl takes \v and \f for blanks too: the edit must start at the value */
    {REWRITE_MODEL, O, NULL, "{\"model\"\v:\f\"a\"}", "x", 0, "{\"model\"\v:\f\"x\"}"},
    {REWRITE_MODEL, O, NULL, "{\"messages\":[{\"model\":\"a\"}]}", "x", 0, NULL},
    {REWRITE_MODEL, O, NULL, "{\"messages\":[]}", "x", 0, NULL},
    {REWRITE_MODEL, O, NULL, "[\"model\"]", "x", 0, NULL},

    {REWRITE_MAX, O, "/v1/chat/completions", "{\"model\":\"gpt-4o\",\"max_tokens\":4096}", NULL, 100,
     "{\"model\":\"gpt-4o\",\"max_tokens\":100}"},
    {REWRITE_MAX, O, "/v1/chat/completions",
     "{\"max_tokens\":4096,\"model\":\"o3\",\"max_completion_tokens\":8192}", NULL, 100,
     "{\"max_tokens\":100,\"model\":\"o3\",\"max_completion_tokens\":100}"},
    {REWRITE_MAX, O, "/v1/chat/completions", "{\"model\":\"gpt-4o\"}", NULL, 100,
     "{\"model\":\"gpt-4o\",\"max_tokens\":100}"},
    {REWRITE_MAX, O, "/v1/chat/completions", "{\"model\":\"o3-mini\"}", NULL, 100,
     "{\"model\":\"o3-mini\",\"max_completion_tokens\":100}"},
    {REWRITE_MAX, O, "/v1/chat/completions", "{\"model\":\"gpt-5.4\"}", NULL, 0,
     "{\"model\":\"gpt-5.4\",\"max_completion_tokens\":0}"},
    {REWRITE_MAX, O, "/v1/responses", "{\"model\":\"gpt-5.4\",\"input\":\"hi\"}", NULL, 300,
     "{\"model\":\"gpt-5.4\",\"input\":\"hi\",\"max_output_tokens\":300}"},
    {REWRITE_MAX, O, "/v1/completions", "{}", NULL, 16, "{\"max_tokens\":16}"},
    {REWRITE_MAX, A, "/v1/messages", "{\"model\":\"c\",\"max_tokens\":1024,\"messages\":[]}", NULL,
     512, "{\"model\":\"c\",\"max_tokens\":512,\"messages\":[]}"},
    {REWRITE_MAX, A, "/v1/messages", "{\"model\":\"c\"}", NULL, 512,
     "{\"model\":\"c\",\"max_tokens\":512}"},
    {REWRITE_MAX, G, "/v1beta/models/g:generateContent", "{\"contents\":[]}", NULL, 100,
     "{\"contents\":[],\"generationConfig\":{\"maxOutputTokens\":100}}"},
    {REWRITE_MAX, G, "/v1beta/models/g:generateContent", "{\"generationConfig\":{}}", NULL, 100,
     "{\"generationConfig\":{\"maxOutputTokens\":100}}"},
    {REWRITE_MAX, G, "/v1beta/models/g:generateContent",
     "{\"generationConfig\":{\"temperature\":0.2},\"contents\":[]}", NULL, 100,
     "{\"generationConfig\":{\"temperature\":0.2,\"maxOutputTokens\":100},\"contents\":[]}"},
    {REWRITE_MAX, G, "/v1beta/models/g:generateContent",
     "{\"generationConfig\":{\"maxOutputTokens\":65535,\"topK\":40}}", NULL, 100,
     "{\"generationConfig\":{\"maxOutputTokens\":100,\"topK\":40}}"},
    {REWRITE_MAX, G, "/v1beta/models/g:generateContent",
     "{\"generation_config\":{\"temperature\":0}}", NULL, 100,
     "{\"generation_config\":{\"temperature\":0,\"max_output_tokens\":100}}"},
    {REWRITE_MAX, G, "/v1beta/models/g:generateContent", "{\"generationConfig\":null}", NULL, 100,
     "{\"generationConfig\":{\"maxOutputTokens\":100}}"},
    {REWRITE_MAX, O, "/v1/chat/completions", "{\"model\":\"gpt-4o\"}", NULL, -1, NULL},
    {REWRITE_MAX, O, "/v1/chat/completions", "[]", NULL, 10, NULL},
};

static void test_rewrites(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(rewrite_cases); i++) {
        const RewriteCase *c = &rewrite_cases[i];
        gsize len = strlen(c->body);
        GBytes *got = NULL;
        switch (c->kind) {
        case REWRITE_INCLUDE_USAGE: {
            got = lw_rewrite_include_usage(c->body, len);
            /* The collector makes the same edit from inspection's own
             * parse, on a chat or completions stream not asking yet. */
            const char *paths[] = {"/v1/chat/completions", "/v1/completions", "/v1/responses"};
            for (gsize p = 0; p < G_N_ELEMENTS(paths); p++) {
                LwRequestInfo info;
                g_autoptr(GBytes) once =
                    lw_inspect_request_adding_usage(c->format, "POST", paths[p], c->body, len, &info);
                if (got == NULL || info.include_usage || info.endpoint == LW_ENDPOINT_RESPONSES)
                    g_assert_null(once);
                else if (once == NULL || !g_bytes_equal(once, got))
                    g_error("rewrite case %zu: inspection's edit differs on %s", i, paths[p]);
                lw_request_info_clear(&info);
            }
            break;
        }
        case REWRITE_MODEL:
            got = lw_rewrite_model(c->body, len, c->model);
            break;
        case REWRITE_MAX: {
            LwRequestInfo info;
            lw_inspect_request(c->format, "POST", c->path, c->body, len, &info);
            got = lw_rewrite_max_output(c->body, len, c->format, &info, c->max);
            if (got != NULL && c->max >= 0) {
                /* the edited body reads back with the new limit */
                LwRequestInfo again;
                gsize glen;
                const char *g = g_bytes_get_data(got, &glen);
                lw_inspect_request(c->format, "POST", c->path, g, glen, &again);
                g_assert_cmpint(again.max_output, ==, c->max);
                lw_request_info_clear(&again);
            }
            lw_request_info_clear(&info);
            break;
        }
        }
        if (c->want == NULL) {
            if (got != NULL)
                g_error("rewrite case %zu: expected refusal", i);
            continue;
        }
        if (got == NULL)
            g_error("rewrite case %zu: refused", i);
        gsize glen;
        const char *g = g_bytes_get_data(got, &glen);
        if (glen != strlen(c->want) || memcmp(g, c->want, glen) != 0)
            g_error("rewrite case %zu:\n got  %.*s\n want %s", i, (int)glen, g, c->want);
        g_bytes_unref(got);
    }
}

/* An include_usage rewrite reads back as asking for usage. */
static void test_include_usage_reads_back(void)
{
    const char *body = "{\"model\":\"m\",\"stream\":true,\"messages\":[]}";
    g_autoptr(GBytes) out = lw_rewrite_include_usage(body, strlen(body));
    gsize len;
    const char *p = g_bytes_get_data(out, &len);
    LwRequestInfo info;
    lw_inspect_request(O, "POST", "/v1/chat/completions", p, len, &info);
    g_assert_true(info.include_usage);
    g_assert_true(info.stream);
    lw_request_info_clear(&info);
}

/* Every key the extractors look for interns to itself. */
static void test_keys(void)
{
    for (int k = 1; k < LW_KEY_COUNT; k++) {
        const char *name = lw_usage_key_name((LwKey)k);
        g_assert_nonnull(name);
        g_assert_cmpint(lw_usage_key_lookup(name, strlen(name)), ==, k);
    }
    /* Both spellings of the keys Gemini accepts two ways. */
    static const struct {
        const char *name;
        LwKey key;
    } both[] = {
        {"max_output_tokens", LW_KEY_MAX_OUTPUT_TOKENS},
        {"maxOutputTokens", LW_KEY_MAX_OUTPUT_TOKENS},
        {"candidate_count", LW_KEY_CANDIDATE_COUNT},
        {"candidateCount", LW_KEY_CANDIDATE_COUNT},
        {"generation_config", LW_KEY_GENERATION_CONFIG},
        {"generationConfig", LW_KEY_GENERATION_CONFIG},
        {"thinking_budget", LW_KEY_THINKING_BUDGET},
        {"thinkingBudget", LW_KEY_THINKING_BUDGET},
        {"thinking_config", LW_KEY_THINKING_CONFIG},
        {"thinkingConfig", LW_KEY_THINKING_CONFIG},
    };
    for (guint i = 0; i < G_N_ELEMENTS(both); i++)
        g_assert_cmpint(lw_usage_key_lookup(both[i].name, strlen(both[i].name)), ==, both[i].key);
    /* Names one byte off every key, and case differences, are no key. */
    for (int k = 1; k < LW_KEY_COUNT; k++) {
        g_autofree char *name = g_strdup(lw_usage_key_name((LwKey)k));
        gsize len = strlen(name);
        g_assert_cmpint(lw_usage_key_lookup(name, len - 1), !=, k);
        name[len - 1] ^= 0x20;
        g_assert_cmpint(lw_usage_key_lookup(name, len), ==, LW_KEY_OTHER);
    }
    g_assert_cmpint(lw_usage_key_lookup("usag", 4), ==, LW_KEY_OTHER);
    g_assert_cmpint(lw_usage_key_lookup("usagex", 6), ==, LW_KEY_OTHER);
    g_assert_cmpint(lw_usage_key_lookup("", 0), ==, LW_KEY_OTHER);
}

/* What logs and the ledger may show of a path: never its query, nor one a
 * client percent-encoded into the path (it may hold key=). */
static void test_path_for_display(void)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/v1/chat/completions", "/v1/chat/completions"},
        {"/v1beta/models/m:generateContent?key=K&alt=sse", "/v1beta/models/m:generateContent"},
        {"/v1/x#key=K", "/v1/x"},
        {"/v1beta/models/m:generateContent%3Fkey=K", "/v1beta/models/m:generateContent"},
        {"/v1beta/models/m:generateContent%3fkey%3DK", "/v1beta/models/m:generateContent"},
        {"/v1/images/generations%23key=K", "/v1/images/generations"},
        {"/v1/files/a%2Fb%20c%3", "/v1/files/a%2Fb%20c%3"},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = lw_path_for_display(cases[i].path);
        g_assert_cmpstr(got, ==, cases[i].want);
    }
    g_autofree char *long_path = g_strnfill(300, 'a');
    g_autofree char *shown = lw_path_for_display(long_path);
    g_assert_cmpuint(strlen(shown), ==, 200);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/inspect/table", test_inspect);
    g_test_add_func("/inspect/asked-charges", test_asked_charges);
    g_test_add_func("/inspect/model-cap", test_model_cap);
    g_test_add_func("/inspect/depth-cap", test_depth_cap);
    g_test_add_func("/inspect/rewrites", test_rewrites);
    g_test_add_func("/inspect/include-usage-reads-back", test_include_usage_reads_back);
    g_test_add_func("/inspect/keys", test_keys);
    g_test_add_func("/inspect/path-for-display", test_path_for_display);
    return g_test_run();
}
