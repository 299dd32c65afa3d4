/* output.h - how llmctl prints: aligned tables for people, RFC 4180 CSV
 * and JSON for programs, and the number formats both use.
 *
 * Money is pico-USD (ledger.h). Machine formats print it exactly (the
 * integer as a decimal with up to 12 fractional digits, never through a
 * double), so a sum a program computes from the output matches ours.
 * People get a rounded "$0.000123" with enough digits to see small costs.
 *
 * Thread: single-threaded.
 */
#pragma once

#include <glib.h>
#include <stdio.h>

typedef enum {
    LW_OUTPUT_TABLE,
    LW_OUTPUT_JSON,
    LW_OUTPUT_CSV,
} LwOutputFormat;

/* From a command's --json/--csv flags; FALSE when both are given. */
gboolean lw_output_format_pick(gboolean json, gboolean csv, LwOutputFormat *ret_format);

/* ---- tables ---- */

/* Text from the ledger is what providers and programs sent: control
 * characters (terminal escapes) become '?', invalid UTF-8 U+FFFD, so human
 * output can neither be garbled nor drive the terminal. NULL gives "".
 * Table cells pass through this. Transfer full. */
char *lw_output_printable(const char *s);

typedef enum {
    LW_OUTPUT_LEFT,
    LW_OUTPUT_RIGHT,
} LwOutputAlign;

typedef struct _LwOutputTable LwOutputTable;

/* A table of `n` columns with these headers and alignments (copied). */
LwOutputTable *lw_output_table_new(guint n, const char *const *headers,
                                   const LwOutputAlign *align);
void lw_output_table_free(LwOutputTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwOutputTable, lw_output_table_free)

/* Appends a row of `n` cells (copied; NULL prints as empty). */
void lw_output_table_add(LwOutputTable *table, const char *const *cells);

/* Appends a rule (a line of dashes under every column), e.g. before a total. */
void lw_output_table_add_rule(LwOutputTable *table);

/* Prints the table, columns padded to their widest cell (by characters,
 * not bytes), two spaces apart, no trailing blanks. */
void lw_output_table_print(const LwOutputTable *table, FILE *out);

/* ---- CSV ---- */

/* Appends one RFC 4180 record: fields separated by commas, a field with a
 * comma, quote, CR or LF quoted with inner quotes doubled, CRLF at the
 * end. NULL fields are empty. */
void lw_output_csv_row(GString *out, guint n, const char *const *fields);

/* ---- numbers ---- */

/* Exact decimal USD: 123000000 -> "0.000123", -5e12 -> "-5". Transfer full. */
char *lw_output_usd_exact(gint64 pusd);

/* Appends the exact decimal as a JSON number. */
void lw_output_json_usd(GString *out, gint64 pusd);

/* For people: "$12.35", "$0.50", "$0.0123", "$0.000123", "-$0.10". Amounts
 * under $1 keep three significant digits (up to 12 decimals). Transfer full. */
char *lw_output_usd_human(gint64 pusd);
/* The same, rounded toward zero when not negative: for what is left of a
 * limit, which must never show more than there is ($0.999532 as $0.999,
 * not $1.00). */
char *lw_output_usd_human_down(gint64 pusd);

/* "1,234,567". Transfer full. */
char *lw_output_count(gint64 n);

/* A price in micro-USD per 1M tokens as exact decimal USD ("2.5"), or NULL
 * for -1 (not listed). Transfer full. */
char *lw_output_rate_exact(gint64 micro);

/* ---- times ---- */

/* "2026-11-21T13:45:01.123Z". Transfer full. */
char *lw_output_time_iso(gint64 ms);

/* "2026-11-21 13:45:01" (UTC). Transfer full. */
char *lw_output_time_human(gint64 ms);

/* "<1ms", "850ms", "12.3s", "4m05s", "2h03m", "3d04h". Transfer full. */
char *lw_output_duration(gint64 ms);
