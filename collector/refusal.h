/* refusal.h - refusing a request the way its provider would, so the
 * program's SDK raises a clear error at once instead of retrying.
 *
 * Before any byte of an answer (budget, guard, `llmctl kill`):
 *   OpenAI format  429 {"error":{"type":"insufficient_quota","code":"insufficient_quota",...}}
 *   Anthropic      402 {"type":"error","error":{"type":"billing_error",...}}
 *   Gemini         429 {"error":{"code":429,"status":"RESOURCE_EXHAUSTED",...}}
 * with `x-should-retry: false` (the official SDKs check it before the
 * status), the provider's request-id header, and no retry-after (ref
 * providers.md §5.1).
 *
 * In the middle of a stream (a metered stream reached its budget), the
 * stream's own error event, after which the stream ends without its normal
 * terminator, so the SDK raises instead of returning a truncated answer as
 * if complete.
 *
 * Thread-safety: pure functions.
 */
#pragma once

#include <glib.h>

#include "inspect.h"
#include "providers.h"

/* The whole HTTP response (head and body) for a refusal. `request_id` names
 * it in the provider's request-id header. Transfer full. */
GString *lw_refusal_response(LwFormat format, const char *message, const char *request_id,
                             gboolean keep_alive);

/* The HTTP status a refusal uses for `format`. */
int lw_refusal_status(LwFormat format);

/* The event(s) that end a stream of `endpoint` with an error, in the
 * endpoint's dialect (`format` is the provider's: Gemini's OpenAI-compatible
 * endpoint speaks OpenAI). Transfer full. */
GString *lw_refusal_stream_event(LwFormat format, LwEndpoint endpoint, const char *message);
