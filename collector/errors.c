/* errors.c - error bodies in each provider's own shape. */
#include "errors.h"

#include "json.h"

static const char *openai_type(int status)
{
    if (status == 429)
        return "rate_limit_exceeded";
    if (status >= 500)
        return "server_error";
    return "invalid_request_error";
}

static const char *anthropic_type(int status)
{
    switch (status) {
    case 402:
        return "billing_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static const char *gemini_status(int status)
{
    switch (status) {
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 504:
        return "DEADLINE_EXCEEDED";
    case 500:
        return "INTERNAL";
    default:
        return status >= 500 ? "UNAVAILABLE" : "INVALID_ARGUMENT";
    }
}

GString *lw_error_body(LwFormat format, int status, const char *type, const char *message)
{
    GString *b = g_string_sized_new(160);
    switch (format) {
    case LW_FORMAT_ANTHROPIC:
        g_string_append(b, "{\"type\":\"error\",\"error\":{\"type\":");
        lw_json_append_string(b, type != NULL ? type : anthropic_type(status), -1);
        g_string_append(b, ",\"message\":");
        lw_json_append_string(b, message, -1);
        g_string_append(b, "}}");
        break;
    case LW_FORMAT_GEMINI:
        g_string_append_printf(b, "{\"error\":{\"code\":%d,\"message\":", status);
        lw_json_append_string(b, message, -1);
        g_string_append(b, ",\"status\":");
        lw_json_append_string(b, type != NULL ? type : gemini_status(status), -1);
        g_string_append(b, "}}");
        break;
    case LW_FORMAT_OPENAI:
    default: {
        const char *t = type != NULL ? type : openai_type(status);
        g_string_append(b, "{\"error\":{\"message\":");
        lw_json_append_string(b, message, -1);
        g_string_append(b, ",\"type\":");
        lw_json_append_string(b, t, -1);
        g_string_append(b, ",\"param\":null,\"code\":");
        lw_json_append_string(b, t, -1);
        g_string_append(b, "}}");
        break;
    }
    }
    return b;
}
