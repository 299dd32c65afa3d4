/* options.h - parsing and validating llmwrap's option values.
 *
 * Pure functions (no I/O, no global state) so the unit tests cover every
 * accepted and refused form.
 *
 * Thread-safety: every function is reentrant.
 */
#pragma once

#include <glib.h>

#define LW_PUSD_PER_USD G_GINT64_CONSTANT(1000000000000) /* pico-USD in one USD */

/* Limits on --tag: what fits comfortably in a ledger row and a log line. */
#define LW_TAG_MAX_COUNT     32
#define LW_TAG_KEY_MAX_LEN   64
#define LW_TAG_VALUE_MAX_LEN 256

/* Parses a USD amount exactly into pico-USD: "5", "0.25", "12.000000000001".
 * Digits with an optional '.' and 1..12 fractional digits; no sign, no
 * exponent, no spaces; at most what fits in a gint64 (about 9.2 million
 * USD). A budget is never rounded: a 13th fractional digit is refused.
 * Returns FALSE (ret untouched) on anything else. */
gboolean lw_options_parse_usd(const char *s, gint64 *ret_pusd);

/* Formats pico-USD exactly as a decimal number of USD: 12 fractional
 * digits with trailing zeros trimmed ("0.001234", "5", "-0.5"). Transfer
 * full. */
char *lw_options_format_usd(gint64 pusd);

/* Splits and validates "KEY=VALUE". KEY: 1..64 of [A-Za-z0-9_.-], starting
 * with a letter or digit. VALUE: 1..256 bytes of valid UTF-8 without control
 * characters. Returns FALSE with a G_OPTION_ERROR_BAD_VALUE error that says
 * what is wrong; on success *ret_key and *ret_value are transfer full. */
gboolean lw_options_parse_tag(const char *s, char **ret_key, char **ret_value, GError **error);
