/* bench-observe.c - what reading usage costs per SSE event and per byte of
 * a JSON body (collector/observe.c).
 *
 * Each case feeds one event per lw_observer_feed call, as a TCP read of a
 * streaming answer usually holds one event, to a sink that only counts, and
 * prints the mean nanoseconds per event. The JSON case feeds a 1 MiB
 * non-streamed body in 16 KiB reads and prints MB/s. Run from a release
 * build; results go to docs/performance.md.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "observe.h"

#define DELTA                                                                                      \
    "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,"   \
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"       \
    "\" Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"

/* the same delta with an x_groq member: the prefilter sends it to the full parse */
#define DELTA_PARSED                                                                               \
    "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,"   \
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"       \
    "\" Hello\"},\"finish_reason\":null}],\"x_groq\":{\"id\":\"req_01\"}}\n\n"

#define OPENAI_USAGE                                                                               \
    "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,"   \
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":2006,"       \
    "\"completion_tokens\":300,\"total_tokens\":2306,\"prompt_tokens_details\":{\"cached_tokens\":" \
    "1920},\"completion_tokens_details\":{\"reasoning_tokens\":256}}}\n\n"

#define ANTHROPIC_DELTA                                                                            \
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"   \
    "{\"type\":\"text_delta\",\"text\":\" Hello\"}}\n\n"

#define ANTHROPIC_USAGE                                                                            \
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"          \
    "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":420}}\n\n"

#define GEMINI_CHUNK                                                                               \
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\" Hello\"}]},"   \
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":4,"          \
    "\"totalTokenCount\":132,\"thoughtsTokenCount\":120},\"modelVersion\":\"gemini-2.5-flash\","   \
    "\"responseId\":\"Xy7aBc\"}\r\n\r\n"

static guint64 sink_bytes;

static void sink_emit(void *data, const char *buf, gsize len, gboolean terminal)
{
    sink_bytes += len;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Mean ns per event over `n` feeds of `event` (after a first event that
 * names the model, so the steady state is measured). Best of 5 runs. */
static double per_event(LwFormat format, const char *path, gboolean strip, const char *event,
                        guint n)
{
    const LwObserverSink sink = {sink_emit};
    LwRequestInfo req;
    const char *body = "{\"model\":\"m\",\"stream\":true}";
    lw_inspect_request(format, "POST", path, body, strlen(body), &req);
    gsize len = strlen(event);
    double best = 1e18;
    for (int round = 0; round < 5; round++) {
        LwObserver *obs =
            lw_observer_new(format, &req, 200, "text/event-stream", NULL, strip, &sink, NULL);
        lw_observer_feed(obs, event, len);
        double t0 = now_ns();
        for (guint i = 0; i < n; i++)
            lw_observer_feed(obs, event, len);
        double t = (now_ns() - t0) / n;
        lw_observer_free(obs);
        if (t < best)
            best = t;
    }
    lw_request_info_clear(&req);
    return best;
}

static double json_mb_per_s(void)
{
    GString *b = g_string_new("{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion\","
                              "\"model\":\"gpt-4.1\",\"choices\":[");
    for (int i = 0; b->len < 1024 * 1024 - 512; i++)
        g_string_append_printf(b,
                               "%s{\"index\":%d,\"finish_reason\":\"stop\",\"message\":{\"role\":"
                               "\"assistant\",\"content\":\"The quick brown fox jumps over the "
                               "lazy dog, \\u00e9t\\u00e9 \\\"quoted\\\" text.\"}}",
                               i ? "," : "", i);
    g_string_append(b, "],\"usage\":{\"prompt_tokens\":2006,\"completion_tokens\":300,"
                       "\"total_tokens\":2306}}");
    const LwObserverSink sink = {sink_emit};
    double best = 1e18;
    for (int round = 0; round < 5; round++) {
        LwObserver *obs = lw_observer_new(LW_FORMAT_OPENAI, NULL, 200, "application/json", NULL,
                                          FALSE, &sink, NULL);
        double t0 = now_ns();
        for (gsize at = 0; at < b->len; at += 16384)
            lw_observer_feed(obs, b->str + at, MIN((gsize)16384, b->len - at));
        lw_observer_finish(obs);
        double t = now_ns() - t0;
        g_assert_true(lw_observer_usage(obs)->have_usage);
        lw_observer_free(obs);
        if (t < best)
            best = t;
    }
    double mbps = (double)b->len / (best / 1e9) / 1e6;
    g_string_free(b, TRUE);
    return mbps;
}

int main(void)
{
    const guint n = 200000;
    printf("lw_observer_feed, one event per call (best of 5 x %u):\n", n);
    printf("  openai chat delta, %zu B, pass-through   %7.0f ns/event\n", strlen(DELTA),
           per_event(LW_FORMAT_OPENAI, "/v1/chat/completions", FALSE, DELTA, n));
    printf("  openai chat delta, %zu B, strip usage    %7.0f ns/event\n", strlen(DELTA),
           per_event(LW_FORMAT_OPENAI, "/v1/chat/completions", TRUE, DELTA, n));
    printf("  openai chat delta, %zu B, full parse     %7.0f ns/event\n", strlen(DELTA_PARSED),
           per_event(LW_FORMAT_OPENAI, "/v1/chat/completions", FALSE, DELTA_PARSED, n));
    printf("  openai usage chunk, %zu B               %7.0f ns/event\n", strlen(OPENAI_USAGE),
           per_event(LW_FORMAT_OPENAI, "/v1/chat/completions", FALSE, OPENAI_USAGE, n));
    printf("  anthropic text delta, %zu B             %7.0f ns/event\n", strlen(ANTHROPIC_DELTA),
           per_event(LW_FORMAT_ANTHROPIC, "/v1/messages", FALSE, ANTHROPIC_DELTA, n));
    printf("  anthropic message_delta (usage), %zu B  %7.0f ns/event\n", strlen(ANTHROPIC_USAGE),
           per_event(LW_FORMAT_ANTHROPIC, "/v1/messages", FALSE, ANTHROPIC_USAGE, n));
    printf("  gemini chunk (usage on each), %zu B     %7.0f ns/event\n", strlen(GEMINI_CHUNK),
           per_event(LW_FORMAT_GEMINI, "/v1beta/models/g:streamGenerateContent?alt=sse", FALSE,
                     GEMINI_CHUNK, n));
    printf("non-streamed 1 MiB JSON body, 16 KiB reads: %.0f MB/s\n", json_mb_per_s());
    return sink_bytes == 0;
}
