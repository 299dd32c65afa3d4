/* json.h - small helpers for producing JSON text.
 *
 * Parsing uses yajl (see docs/dependencies.md); producing the few JSON
 * documents the collector writes itself (error bodies, llmctl output) only
 * needs correct string escaping, which lives here once.
 */
#pragma once

#include <glib.h>

/* Appends `s` (UTF-8, `len` bytes, or -1 for NUL-terminated) to `out` as a
 * quoted JSON string: quotes, backslashes and control characters escaped,
 * invalid UTF-8 replaced by U+FFFD. */
void lw_json_append_string(GString *out, const char *s, gssize len);

/* Appends a double the way JSON wants it: no locale, no NaN/Infinity (they
 * become null), shortest round-trip form. */
void lw_json_append_double(GString *out, double v);
