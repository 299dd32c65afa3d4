/* test-sse.c - SSE framing: every line ending, comments, joined data, caps;
 * each case fed whole, at every split point and byte by byte, must give the
 * same units, and the units must tile the input exactly. */
#include "sse.h"

#include <string.h>

typedef struct {
    LwSseKind kind;
    const char *raw;
    const char *event; /* NULL: no event line */
    const char *data;  /* NULL: no data line */
} Unit;

#define MAX_UNITS 12

typedef struct {
    const char *name;
    const char *input;
    gsize max_event; /* 0: the default */
    Unit units[MAX_UNITS];
    guint64 oversize;
} Case;

static const Case cases[] = {
    {"lf", "data: a\n\ndata: b\n\n", 0,
     {{LW_SSE_EVENT, "data: a\n\n", NULL, "a"}, {LW_SSE_EVENT, "data: b\n\n", NULL, "b"}}},
    {"crlf", "data: {\"x\":1}\r\n\r\ndata: {\"y\":2}\r\n\r\n", 0,
     {{LW_SSE_EVENT, "data: {\"x\":1}\r\n\r\n", NULL, "{\"x\":1}"},
      {LW_SSE_EVENT, "data: {\"y\":2}\r\n\r\n", NULL, "{\"y\":2}"}}},
    {"cr", "event: e\rdata: a\r\rdata: b\r\r", 0,
     {{LW_SSE_EVENT, "event: e\rdata: a\r\r", "e", "a"}, {LW_SSE_EVENT, "data: b\r\r", NULL, "b"}}},
    {"mixed-endings", "data: a\r\ndata: b\rdata: c\n\r\n", 0,
     {{LW_SSE_EVENT, "data: a\r\ndata: b\rdata: c\n\r\n", NULL, "a\nb\nc"}}},
    {"no-space-and-two-spaces", "event:x\ndata:1\ndata:  2\n\n", 0,
     {{LW_SSE_EVENT, "event:x\ndata:1\ndata:  2\n\n", "x", "1\n 2"}}},
    {"comments-are-noise-between-events",
     ": OPENROUTER PROCESSING\n\n: keep-alive\r\ndata: a\n: inside\n\n", 0,
     {{LW_SSE_NOISE, ": OPENROUTER PROCESSING\n", NULL, NULL},
      {LW_SSE_NOISE, "\n", NULL, NULL},
      {LW_SSE_NOISE, ": keep-alive\r\n", NULL, NULL},
      {LW_SSE_EVENT, "data: a\n: inside\n\n", NULL, "a"}}},
    {"leading-blank-lines", "\n\r\n\rdata: [DONE]\n\n", 0,
     {{LW_SSE_NOISE, "\n", NULL, NULL},
      {LW_SSE_NOISE, "\r\n", NULL, NULL},
      {LW_SSE_NOISE, "\r", NULL, NULL},
      {LW_SSE_EVENT, "data: [DONE]\n\n", NULL, "[DONE]"}}},
    {"bom", "\xEF\xBB\xBF" "data: a\n\n", 0,
     {{LW_SSE_EVENT, "\xEF\xBB\xBF" "data: a\n\n", NULL, "a"}}},
    {"bare-data-and-other-fields", "id: 7\nretry: 10\ndata\nfoo: bar\n\n", 0,
     {{LW_SSE_EVENT, "id: 7\nretry: 10\ndata\nfoo: bar\n\n", NULL, ""}}},
    {"event-without-data", "event: ping\n\n", 0,
     {{LW_SSE_EVENT, "event: ping\n\n", "ping", NULL}}},
    {"last-event-wins-and-utf8", "event: a\nevent: b\ndata: h\xC3\xA9llo \xF0\x9F\x98\x80\n\n", 0,
     {{LW_SSE_EVENT, "event: a\nevent: b\ndata: h\xC3\xA9llo \xF0\x9F\x98\x80\n\n", "b",
       "h\xC3\xA9llo \xF0\x9F\x98\x80"}}},
    {"unterminated-last-event", "data: a\n\ndata: {\"cut", 0,
     {{LW_SSE_EVENT, "data: a\n\n", NULL, "a"}, {LW_SSE_EVENT, "data: {\"cut", NULL, "{\"cut"}}},
    {"unterminated-after-newline", "data: a\n", 0, {{LW_SSE_EVENT, "data: a\n", NULL, "a"}}},
    {"unterminated-comment", "data: a\n\n: ke", 0,
     {{LW_SSE_EVENT, "data: a\n\n", NULL, "a"}, {LW_SSE_NOISE, ": ke", NULL, NULL}}},
    /* caps: an event of 40 bytes with a 32-byte cap passes through unparsed,
     * and the framer carries on with the next one */
    {"oversize-event", "data: 0123456789012345678901234567890\n\ndata: ok\n\n", 32,
     {{LW_SSE_OVERSIZE, "data: 0123456789012345678901234567890\n\n", NULL, NULL},
      {LW_SSE_EVENT, "data: ok\n\n", NULL, "ok"}},
     1},
    {"oversize-multiline-crlf", "data: 0123456789\r\ndata: 0123456789\r\ndata: 01\r\n\r\ndata: ok\r\n\r\n",
     32,
     {{LW_SSE_OVERSIZE, "data: 0123456789\r\ndata: 0123456789\r\ndata: 01\r\n\r\n", NULL, NULL},
      {LW_SSE_EVENT, "data: ok\r\n\r\n", NULL, "ok"}},
     1},
    {"oversize-comment-line", ": 0123456789012345678901234567890123456789\ndata: ok\n\n", 32,
     {{LW_SSE_OVERSIZE, ": 0123456789012345678901234567890123456789\n", NULL, NULL},
      {LW_SSE_EVENT, "data: ok\n\n", NULL, "ok"}},
     1},
    /* the BOM is not the comment's first byte: found by fuzzing, where a
     * feed boundary inside the long line turned it into an event that
     * swallowed the blank line after it */
    {"oversize-comment-after-bom",
     "\xEF\xBB\xBF" ": 0123456789012345678901234567890123456789\n\ndata: ok\n\n", 32,
     {{LW_SSE_OVERSIZE, "\xEF\xBB\xBF" ": 0123456789012345678901234567890123456789\n", NULL, NULL},
      {LW_SSE_NOISE, "\n", NULL, NULL},
      {LW_SSE_EVENT, "data: ok\n\n", NULL, "ok"}},
     1},
    {"exactly-at-cap", "data: 012345678901234567890123\n\n", 32,
     {{LW_SSE_EVENT, "data: 012345678901234567890123\n\n", NULL, "012345678901234567890123"}}},
    /* the LF of the final CRLF does not count: it may come after the unit was reported */
    {"crlf-at-cap", "data: 0123456789ab\r\n\r\n", 21,
     {{LW_SSE_EVENT, "data: 0123456789ab\r\n\r\n", NULL, "0123456789ab"}}},
    {"crlf-over-cap", "data: 0123456789abc\r\n\r\n", 21,
     {{LW_SSE_OVERSIZE, "data: 0123456789abc\r\n\r\n", NULL, NULL}},
     1},
    {"oversize-cut", "data: 01234567890123456789012345678901234567890", 32,
     {{LW_SSE_OVERSIZE, "data: 01234567890123456789012345678901234567890", NULL, NULL}},
     1},
};

typedef struct {
    LwSseKind kind;
    GString *raw;
    char *event;
    char *data;
    gboolean open; /* OVERSIZE piece not yet ended */
} Got;

static void got_free(gpointer p)
{
    Got *g = p;
    g_string_free(g->raw, TRUE);
    g_free(g->event);
    g_free(g->data);
    g_free(g);
}

/* Folds TAIL units into their owner and OVERSIZE pieces into one unit, so
 * runs with different feed boundaries compare equal. */
static void collect(GPtrArray *out, const LwSseUnit *u)
{
    Got *last = out->len > 0 ? out->pdata[out->len - 1] : NULL;
    g_assert_cmpuint(u->raw_len, >, 0);
    if (u->kind == LW_SSE_TAIL) {
        g_assert_nonnull(last);
        g_assert_cmpmem(u->raw, u->raw_len, "\n", 1);
        g_assert_cmpint(last->raw->str[last->raw->len - 1], ==, '\r');
        g_string_append_len(last->raw, u->raw, u->raw_len);
        return;
    }
    if (u->kind == LW_SSE_OVERSIZE && last != NULL && last->kind == LW_SSE_OVERSIZE && last->open) {
        g_string_append_len(last->raw, u->raw, u->raw_len);
        last->open = !u->last;
        return;
    }
    Got *g = g_new0(Got, 1);
    g->kind = u->kind;
    g->raw = g_string_new_len(u->raw, u->raw_len);
    g->event = u->event != NULL ? g_strndup(u->event, u->event_len) : NULL;
    g->data = u->data != NULL ? g_strndup(u->data, u->data_len) : NULL;
    g->open = u->kind == LW_SSE_OVERSIZE && !u->last;
    if (u->data_in_raw) {
        g_assert_true(u->data >= u->raw && u->data + u->data_len <= u->raw + u->raw_len);
    }
    g_ptr_array_add(out, g);
}

static GPtrArray *run(const Case *c, const gsize *cuts, guint n_cuts, guint64 *ret_oversize)
{
    g_autoptr(LwSse) sse = lw_sse_new(c->max_event);
    GPtrArray *out = g_ptr_array_new_with_free_func(got_free);
    gsize total = strlen(c->input), from = 0;
    for (guint k = 0; k <= n_cuts; k++) {
        gsize to = k < n_cuts ? cuts[k] : total;
        const char *buf = c->input + from;
        gsize len = to - from;
        LwSseUnit u;
        guint guard = 0;
        while (lw_sse_next(sse, &buf, &len, &u) == LW_SSE_UNIT) {
            collect(out, &u);
            g_assert_cmpuint(++guard, <, 10000);
        }
        g_assert_cmpuint(len, ==, 0);
        from = to;
    }
    LwSseUnit u;
    if (lw_sse_finish(sse, &u))
        collect(out, &u);
    *ret_oversize = lw_sse_oversize_count(sse);
    return out;
}

static void check(const Case *c, GPtrArray *got, guint64 oversize, const char *how)
{
    guint n = 0;
    while (n < MAX_UNITS && c->units[n].raw != NULL)
        n++;
    if (got->len != n)
        g_error("%s (%s): %u units, want %u", c->name, how, got->len, n);
    GString *all = g_string_new(NULL);
    for (guint i = 0; i < n; i++) {
        const Got *g = got->pdata[i];
        const Unit *w = &c->units[i];
        g_assert_cmpint(g->kind, ==, w->kind);
        g_assert_cmpstr(g->raw->str, ==, w->raw);
        g_assert_cmpstr(g->event, ==, w->event);
        g_assert_cmpstr(g->data, ==, w->data);
        if (i + 1 < n)
            g_assert_false(g->open); /* only a cut stream leaves its last piece open */
        g_string_append_len(all, g->raw->str, g->raw->len);
    }
    g_assert_cmpstr(all->str, ==, c->input);
    g_assert_cmpuint(oversize, ==, c->oversize);
    g_string_free(all, TRUE);
}

static void test_case(gconstpointer data)
{
    const Case *c = data;
    gsize total = strlen(c->input);
    guint64 oversize;

    GPtrArray *got = run(c, NULL, 0, &oversize);
    check(c, got, oversize, "whole");
    g_ptr_array_unref(got);

    for (gsize cut = 1; cut < total; cut++) {
        got = run(c, &cut, 1, &oversize);
        g_autofree char *how = g_strdup_printf("split at %zu", cut);
        check(c, got, oversize, how);
        g_ptr_array_unref(got);
    }

    g_autofree gsize *cuts = g_new(gsize, total);
    for (gsize i = 1; i < total; i++)
        cuts[i - 1] = i;
    got = run(c, cuts, total > 0 ? (guint)(total - 1) : 0, &oversize);
    check(c, got, oversize, "byte by byte");
    g_ptr_array_unref(got);
}

/* Units are slices of the caller's buffer when they lie inside it: no copy
 * on the common path. */
static void test_zero_copy(void)
{
    g_autoptr(LwSse) sse = lw_sse_new(0);
    const char *in = "data: a\n\ndata: b\n\n";
    const char *buf = in;
    gsize len = strlen(in);
    LwSseUnit u;
    g_assert_cmpint(lw_sse_next(sse, &buf, &len, &u), ==, LW_SSE_UNIT);
    g_assert_true(u.raw == in);
    g_assert_true(u.data == in + 6);
    g_assert_cmpint(lw_sse_next(sse, &buf, &len, &u), ==, LW_SSE_UNIT);
    g_assert_true(u.raw == in + 9);
    g_assert_cmpint(lw_sse_next(sse, &buf, &len, &u), ==, LW_SSE_NEED_MORE);
    g_assert_false(lw_sse_finish(sse, &u));
}

/* The default cap: an event just over 8 MiB is not buffered whole; the
 * framer holds at most the cap while waiting for a unit's end. */
static void test_default_cap(void)
{
    g_autoptr(LwSse) sse = lw_sse_new(0);
    gsize big = LW_SSE_MAX_EVENT + 10;
    g_autofree char *chunk = g_malloc(64 * 1024);
    memset(chunk, 'x', 64 * 1024);
    const char *head = "data: ";
    gsize passed = 0, fed = 0;
    guint64 pieces = 0;
    LwSseUnit u;
    const char *buf = head;
    gsize len = strlen(head);
    while (lw_sse_next(sse, &buf, &len, &u) == LW_SSE_UNIT)
        g_assert_not_reached();
    fed += strlen(head);
    while (fed < big) {
        buf = chunk;
        len = MIN((gsize)64 * 1024, big - fed);
        fed += len;
        while (lw_sse_next(sse, &buf, &len, &u) == LW_SSE_UNIT) {
            g_assert_cmpint(u.kind, ==, LW_SSE_OVERSIZE);
            g_assert_false(u.last);
            passed += u.raw_len;
            pieces++;
        }
    }
    buf = "\n\ndata: ok\n\n";
    len = strlen(buf);
    g_assert_cmpint(lw_sse_next(sse, &buf, &len, &u), ==, LW_SSE_UNIT);
    g_assert_cmpint(u.kind, ==, LW_SSE_OVERSIZE);
    g_assert_true(u.last);
    passed += u.raw_len;
    g_assert_cmpuint(passed, ==, fed + 2);
    g_assert_cmpint(lw_sse_next(sse, &buf, &len, &u), ==, LW_SSE_UNIT);
    g_assert_cmpint(u.kind, ==, LW_SSE_EVENT);
    g_assert_cmpmem(u.data, u.data_len, "ok", 2);
    g_assert_cmpuint(lw_sse_oversize_count(sse), ==, 1);
    g_assert_cmpuint(pieces, >, 1);
}

/* ---- the fields of an event over the cap ----------------------------------- */

/* Reads the fields of `raw` cut at `cuts` into *ret_data (data joined) and
 * *ret_event (NULL: none). */
static void read_fields(const char *raw, gsize len, const gsize *cuts, gsize n_cuts,
                        gboolean stream_start, char **ret_data, char **ret_event)
{
    g_autoptr(LwSseFields) f = lw_sse_fields_new();
    lw_sse_fields_reset(f, stream_start);
    GString *data = g_string_new(NULL);
    gsize from = 0;
    for (gsize k = 0; k <= n_cuts; k++) {
        gsize to = k < n_cuts ? cuts[k] : len;
        const char *buf = raw + from, *piece;
        gsize left = to - from, piece_len;
        while (lw_sse_fields_next(f, &buf, &left, &piece, &piece_len)) {
            g_assert_cmpuint(piece_len, >, 0);
            g_assert_true((piece >= raw + from && piece + piece_len <= raw + to) ||
                          (piece_len == 1 && piece[0] == '\n'));
            g_string_append_len(data, piece, (gssize)piece_len);
        }
        g_assert_cmpuint(left, ==, 0);
        from = to;
    }
    /* the stream ended here: a last line without its end counts (a no-op
     * after a blank line) */
    lw_sse_fields_end(f);
    const char *none = "", *piece;
    gsize zero = 0, piece_len;
    while (lw_sse_fields_next(f, &none, &zero, &piece, &piece_len))
        g_string_append_len(data, piece, (gssize)piece_len);
    *ret_data = g_string_free(data, FALSE);
    gsize event_len;
    const char *event = lw_sse_fields_event(f, &event_len);
    *ret_event = event != NULL ? g_strndup(event, event_len) : NULL;
}

static void check_fields(const char *raw, gsize len, gboolean stream_start, const char *want_data,
                         const char *want_event)
{
    g_autofree gsize *cuts = g_new(gsize, len + 1);
    for (gsize i = 1; i < len; i++)
        cuts[i - 1] = i;
    for (gsize how = 0; how <= len; how++) {
        /* how 0: whole; 1..len-1: split there; len: byte by byte */
        gsize n_cuts = how == 0 ? 0 : how < len ? 1 : (len > 0 ? len - 1 : 0);
        const gsize *at = how > 0 && how < len ? &how : cuts;
        g_autofree char *data = NULL, *event = NULL;
        read_fields(raw, len, at, n_cuts, stream_start, &data, &event);
        if (strcmp(data, want_data) != 0 || g_strcmp0(event, want_event) != 0)
            g_error("fields of [%s] (cut %zu): data [%s] event [%s], want [%s] [%s]", raw, how,
                    data, event, want_data, want_event);
    }
}

/* Over every event of the framing cases, LwSseFields reads what the framer
 * reads from the kept event, however the event is cut. */
static void test_fields_match_framer(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(LwSse) sse = lw_sse_new(0);
        const char *buf = cases[i].input;
        gsize len = strlen(buf);
        LwSseUnit u;
        gboolean first = TRUE, more = TRUE;
        while (more) {
            gboolean got = lw_sse_next(sse, &buf, &len, &u) == LW_SSE_UNIT;
            if (!got) {
                got = lw_sse_finish(sse, &u);
                more = FALSE;
            }
            if (got && u.kind == LW_SSE_EVENT) {
                g_autofree char *data = g_strndup(u.data != NULL ? u.data : "", u.data_len);
                g_autofree char *event = u.event != NULL ? g_strndup(u.event, u.event_len) : NULL;
                check_fields(u.raw, u.raw_len, first, data, event);
            }
            first &= !got;
        }
    }
}

static void test_fields_cases(void)
{
    static const struct {
        const char *raw;
        const char *data;
        const char *event;
    } c[] = {
        {"event: response.completed\ndata: {\"a\":1,\ndata: \"b\":2}\n\n", "{\"a\":1,\n\"b\":2}",
         "response.completed"},
        /* the event line may come after the data */
        {"data: x\r\nevent: e\r\n\r\n", "x", "e"},
        /* a name longer than any field's, and names that only start like one */
        {"datadatadata: no\ndat: no\ndata : no\nevents: no\ndata: yes\n\n", "yes", NULL},
        /* an event name over the cap is no name; a later one is */
        {"event: 01234567890123456789012345678901234567890123456789012345678901234\ndata: x\n\n",
         "x", NULL},
        {"event: 01234567890123456789012345678901234567890123456789012345678901234\n"
         "event: short\ndata: x\n\n",
         "x", "short"},
        /* exactly at the cap */
        {"event: 0123456789012345678901234567890123456789012345678901234567890123\ndata:\n\n", "",
         "0123456789012345678901234567890123456789012345678901234567890123"},
        /* empty data lines still join */
        {"data:\ndata\ndata: z\n\n", "\n\nz", NULL},
        {": comment: data: no\ndata::x\n\n", ":x", NULL},
        /* cut streams: the last line counts whole */
        {"data: a\ndata", "a\n", NULL},
        {"data: a\nevent: e", "a", "e"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(c); i++)
        check_fields(c[i].raw, strlen(c[i].raw), FALSE, c[i].data, c[i].event);
    /* a BOM counts at the stream's start only */
    const char *bom = "\xEF\xBB\xBF" "data: a\n\n";
    check_fields(bom, strlen(bom), TRUE, "a", NULL);
    check_fields(bom, strlen(bom), FALSE, "", NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/sse/%s", cases[i].name);
        g_test_add_data_func(path, &cases[i], test_case);
    }
    g_test_add_func("/sse/zero-copy", test_zero_copy);
    g_test_add_func("/sse/default-cap", test_default_cap);
    g_test_add_func("/sse/fields-match-framer", test_fields_match_framer);
    g_test_add_func("/sse/fields-cases", test_fields_cases);
    return g_test_run();
}
