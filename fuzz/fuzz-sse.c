/* fuzz-sse.c - libFuzzer target for collector/sse.c.
 *
 * The input is a control byte (event cap), two bytes seeding where the
 * stream is cut into feeds, and the stream. Besides crashes and sanitizer
 * reports, the target aborts when a result breaks the contract in sse.h:
 * units that do not tile the input, a slice outside its unit, a TAIL that
 * is not one LF after a CR, or units that depend on how the bytes were cut.
 * LwSseFields reads every event too: a kept one must read as the framer
 * read it, an over-cap one (from its pieces) the same however it was cut.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

/* A run's units, normalised so different cuts compare equal: TAIL folded
 * into its owner, OVERSIZE pieces into one unit. One string per unit:
 * kind, event, data, raw. */
typedef struct {
    GPtrArray *units;
    GString *all; /* every raw byte, in order */
    gboolean open_piece;
    guint64 oversize;
    LwSseFields *fields; /* reading the over-cap event in progress */
    GString *fields_data;
    GPtrArray *fields_read; /* what it read of each over-cap event */
} Run;

/* Feeds one piece of an event to `f`, appending its data to `out`. */
static void read_fields(LwSseFields *f, const LwSseUnit *u, GString *out)
{
    const char *buf = u->raw, *data;
    gsize len = u->raw_len, data_len;
    while (lw_sse_fields_next(f, &buf, &len, &data, &data_len)) {
        require(data_len > 0);
        require((data >= u->raw && data + data_len <= u->raw + u->raw_len) ||
                (data_len == 1 && data[0] == '\n'));
        g_string_append_len(out, data, (gssize)data_len);
    }
    require(len == 0);
}

/* A kept event reads the same through LwSseFields as through the framer. */
static void check_fields(const LwSseUnit *u, gboolean stream_start)
{
    LwSseFields *f = lw_sse_fields_new();
    lw_sse_fields_reset(f, stream_start);
    GString *data = g_string_new(NULL);
    read_fields(f, u, data);
    /* a unit from lw_sse_finish may lack its line end; for one with it, a no-op */
    lw_sse_fields_end(f);
    LwSseUnit none = {.raw = ""};
    read_fields(f, &none, data);
    require(data->len == (u->data != NULL ? u->data_len : 0));
    require(u->data == NULL || memcmp(data->str, u->data, u->data_len) == 0);
    gsize event_len;
    const char *event = lw_sse_fields_event(f, &event_len);
    if (u->event == NULL)
        require(event == NULL);
    else if (u->event_len <= LW_SSE_MAX_EVENT_NAME)
        require(event != NULL && event_len == u->event_len &&
                memcmp(event, u->event, u->event_len) == 0);
    g_string_free(data, TRUE);
    lw_sse_fields_free(f);
}

/* The pieces of an over-cap event through LwSseFields; when it ends, what
 * was read is kept, so runs compare it too. */
static void oversize_fields(Run *r, const LwSseUnit *u, gboolean first, gboolean stream_start)
{
    if (first) {
        lw_sse_fields_reset(r->fields, stream_start);
        g_string_truncate(r->fields_data, 0);
    }
    read_fields(r->fields, u, r->fields_data);
    if (!u->last)
        return;
    gsize event_len;
    const char *event = lw_sse_fields_event(r->fields, &event_len);
    GString *s = g_string_new("F|");
    if (event != NULL)
        g_string_append_len(s, event, (gssize)event_len);
    else
        g_string_append(s, "(none)");
    g_string_append_c(s, '|');
    g_string_append_len(s, r->fields_data->str, (gssize)r->fields_data->len);
    g_ptr_array_add(r->fields_read, s);
}

static void add_unit(Run *r, const LwSseUnit *u, const char *input, size_t size)
{
    require(u->raw_len > 0);
    gboolean stream_start = r->all->len == 0;
    g_string_append_len(r->all, u->raw, (gssize)u->raw_len);
    require(r->all->len <= size && memcmp(r->all->str, input, r->all->len) == 0);
    if (u->data != NULL && u->data_in_raw)
        require(u->data >= u->raw && u->data + u->data_len <= u->raw + u->raw_len);
    if (u->event != NULL)
        require(u->event >= u->raw && u->event + u->event_len <= u->raw + u->raw_len);

    GString *last = r->units->len > 0 ? r->units->pdata[r->units->len - 1] : NULL;
    if (u->kind == LW_SSE_TAIL) {
        require(u->raw_len == 1 && u->raw[0] == '\n');
        require(last != NULL && last->str[last->len - 1] == '\r');
        g_string_append_c(last, '\n');
        return;
    }
    if (u->kind == LW_SSE_OVERSIZE && r->open_piece) {
        g_string_append_len(last, u->raw, (gssize)u->raw_len);
        r->open_piece = !u->last;
        oversize_fields(r, u, FALSE, FALSE);
        return;
    }
    require(!r->open_piece);
    if (u->kind == LW_SSE_EVENT)
        check_fields(u, stream_start);
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "%d|", (int)u->kind);
    if (u->event != NULL)
        g_string_append_len(s, u->event, (gssize)u->event_len);
    g_string_append_c(s, '|');
    if (u->data != NULL)
        g_string_append_len(s, u->data, (gssize)u->data_len);
    g_string_append_c(s, '|');
    g_string_append_len(s, u->raw, (gssize)u->raw_len);
    g_ptr_array_add(r->units, s);
    r->open_piece = u->kind == LW_SSE_OVERSIZE && !u->last;
    if (u->kind == LW_SSE_OVERSIZE)
        oversize_fields(r, u, TRUE, stream_start);
}

static void free_string(gpointer p)
{
    g_string_free(p, TRUE);
}

/* Feeds `input` in pieces of sizes drawn from `seed`. */
static void run(const char *input, size_t size, size_t cap, uint32_t seed, Run *r)
{
    r->units = g_ptr_array_new_with_free_func(free_string);
    r->all = g_string_new(NULL);
    r->open_piece = FALSE;
    r->fields = lw_sse_fields_new();
    r->fields_data = g_string_new(NULL);
    r->fields_read = g_ptr_array_new_with_free_func(free_string);
    LwSse *sse = lw_sse_new(cap);
    size_t at = 0;
    while (at < size) {
        size_t n = seed == 0 ? size - at : 1 + (seed % 97);
        seed = seed * 1103515245u + 12345u;
        if (n > size - at)
            n = size - at;
        /* an exact-size copy, so a read past the feed trips ASan */
        char *feed = malloc(n);
        require(feed != NULL);
        memcpy(feed, input + at, n);
        const char *buf = feed;
        size_t len = n;
        LwSseUnit u;
        while (lw_sse_next(sse, &buf, &len, &u) == LW_SSE_UNIT)
            add_unit(r, &u, input, size);
        require(len == 0);
        free(feed);
        at += n;
    }
    LwSseUnit u;
    if (lw_sse_finish(sse, &u))
        add_unit(r, &u, input, size);
    r->oversize = lw_sse_oversize_count(sse);
    lw_sse_free(sse);
    require(r->all->len == size);
}

static void run_clear(Run *r)
{
    g_ptr_array_unref(r->units);
    g_string_free(r->all, TRUE);
    lw_sse_fields_free(r->fields);
    g_string_free(r->fields_data, TRUE);
    g_ptr_array_unref(r->fields_read);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    /* small caps make the oversize paths reachable */
    size_t cap = data[0] < 128 ? 8 + data[0] : LW_SSE_MAX_EVENT;
    uint32_t seed = ((uint32_t)data[1] << 8) | data[2];
    const char *input = (const char *)data + 3;
    size -= 3;

    Run whole, cut;
    run(input, size, cap, 0, &whole);
    run(input, size, cap, seed | 1, &cut);
    require(whole.units->len == cut.units->len);
    for (guint i = 0; i < whole.units->len; i++) {
        GString *a = whole.units->pdata[i], *b = cut.units->pdata[i];
        require(g_string_equal(a, b));
    }
    require(whole.oversize == cut.oversize);
    require(whole.fields_read->len == cut.fields_read->len);
    for (guint i = 0; i < whole.fields_read->len; i++)
        require(g_string_equal(whole.fields_read->pdata[i], cut.fields_read->pdata[i]));
    run_clear(&whole);
    run_clear(&cut);
    return 0;
}
