/* refusal.c - refusals in each provider's own shape. */
#include "refusal.h"

#include "errors.h"
#include "json.h"

int lw_refusal_status(LwFormat format)
{
    return format == LW_FORMAT_ANTHROPIC ? 402 : 429;
}

GString *lw_refusal_response(LwFormat format, const char *message, const char *request_id,
                             gboolean keep_alive)
{
    int status = lw_refusal_status(format);
    const char *type = format == LW_FORMAT_ANTHROPIC ? "billing_error"
                       : format == LW_FORMAT_GEMINI  ? "RESOURCE_EXHAUSTED"
                                                     : "insufficient_quota";
    g_autoptr(GString) body = lw_error_body(format, status, type, message);
    GString *out = g_string_sized_new(512 + body->len);
    g_string_append_printf(out,
                           "HTTP/1.1 %d %s\r\n"
                           "content-type: application/json\r\n"
                           "content-length: %zu\r\n"
                           "x-should-retry: false\r\n",
                           status, status == 402 ? "Payment Required" : "Too Many Requests",
                           body->len);
    if (request_id != NULL)
        g_string_append_printf(out, "%s: %s\r\n",
                               format == LW_FORMAT_ANTHROPIC ? "request-id" : "x-request-id",
                               request_id);
    if (!keep_alive)
        g_string_append(out, "connection: close\r\n");
    g_string_append(out, "\r\n");
    g_string_append_len(out, body->str, (gssize)body->len);
    return out;
}

GString *lw_refusal_stream_event(LwFormat format, LwEndpoint endpoint, const char *message)
{
    GString *out = g_string_sized_new(256);
    switch (lw_endpoint_format(endpoint, format)) {
    case LW_FORMAT_ANTHROPIC:
        g_string_append(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                             "\"billing_error\",\"message\":");
        lw_json_append_string(out, message, -1);
        g_string_append(out, "}}\n\n");
        break;
    case LW_FORMAT_GEMINI:
        /* The "error" key must come first: the SDKs test the chunk's prefix. */
        g_string_append(out, "data: {\"error\":{\"code\":429,\"message\":");
        lw_json_append_string(out, message, -1);
        g_string_append(out, ",\"status\":\"RESOURCE_EXHAUSTED\"}}\r\n\r\n");
        break;
    case LW_FORMAT_OPENAI:
    default:
        if (endpoint == LW_ENDPOINT_RESPONSES) {
            /* The Responses error event, plus an "error" member: that is
             * what makes openai-node and openai-python raise APIError (a
             * bare error event is yielded as just another event). A
             * client that reads events sees the response fail too. */
            g_string_append(out, "event: error\ndata: {\"type\":\"error\",\"code\":"
                                 "\"insufficient_quota\",\"message\":");
            lw_json_append_string(out, message, -1);
            g_string_append(out, ",\"param\":null,\"error\":{\"type\":\"insufficient_quota\","
                                 "\"code\":\"insufficient_quota\",\"message\":");
            lw_json_append_string(out, message, -1);
            g_string_append(out, ",\"param\":null}}\n\n");
            g_string_append(out, "event: response.failed\ndata: {\"type\":\"response.failed\","
                                 "\"response\":{\"status\":\"failed\",\"error\":{\"code\":"
                                 "\"insufficient_quota\",\"message\":");
            lw_json_append_string(out, message, -1);
            g_string_append(out, "}}}\n\n");
        } else {
            g_string_append(out, "data: {\"error\":{\"message\":");
            lw_json_append_string(out, message, -1);
            g_string_append(out, ",\"type\":\"insufficient_quota\",\"param\":null,"
                                 "\"code\":\"insufficient_quota\"}}\n\n");
        }
        break;
    }
    return out;
}
