/* errors.h - error bodies in each provider's own shape.
 *
 * Whatever the collector answers itself (a malformed request, an upstream
 * that is down, later a budget refusal) must look like the provider's own
 * error, so the program's SDK raises its usual exception with a readable
 * message (see ref/providers.md §1.7, §2.7, §3.5, §5.1).
 */
#pragma once

#include <glib.h>

#include "providers.h"

/* Returns the JSON body for an error answered with HTTP `status`.
 * `type` is the provider's error type/code (OpenAI "type" and "code",
 * Anthropic "error.type", Gemini "status"); NULL picks the provider's usual
 * one for `status`. Transfer full. */
GString *lw_error_body(LwFormat format, int status, const char *type, const char *message);
