/* sse.c - Server-Sent Events framing (see sse.h).
 *
 * Invariants between calls:
 *   - A unit in progress (some of its bytes consumed, not yet reported) has
 *     all those bytes in `pend`, unless the framer is in oversize mode, where
 *     they were already reported.
 *   - Offsets (line_start, data/event slices) are relative to the first
 *     byte of the unit in progress, so they survive the move from the
 *     caller's buffer into `pend`.
 *   - cr_pending: the last byte consumed was a CR that ended a line; an LF
 *     arriving next is the second half of that line ending.
 */
#include "sse.h"

#include <string.h>

#include "buf.h"

typedef enum {
    LINE_BLANK,
    LINE_COMMENT,
    LINE_FIELD,
} LineKind;

struct _LwSse {
    gsize max_event;
    LwBuf pend;            /* bytes of the unit in progress when it spans feeds */
    gboolean pend_release; /* pend holds the unit last reported: drop it on the next call */

    gsize line_start;  /* offset of the current, unfinished line */
    gboolean in_event; /* a field line was seen since the last dispatch */
    guint n_data;
    gsize data_off, data_len; /* the first data value */
    GString *joined;          /* all data values joined, once there are two */
    gboolean have_event;
    gsize event_off, event_len;
    gboolean first_line; /* no line completed yet in the stream (BOM check) */

    gboolean cr_pending;    /* see above */
    gboolean cr_ended_unit; /* ... and that line ending closed a reported unit */

    gboolean oversize;        /* passing an over-cap unit through */
    gboolean os_to_line_end;  /* ... which is a single comment line, not an event */
    gsize os_line_len;        /* bytes of the current line in oversize mode */
    guint64 n_oversize;
};

LwSse *lw_sse_new(gsize max_event)
{
    LwSse *sse = g_new0(LwSse, 1);
    sse->max_event = max_event > 0 ? max_event : LW_SSE_MAX_EVENT;
    sse->joined = g_string_new(NULL);
    sse->first_line = TRUE;
    return sse;
}

void lw_sse_free(LwSse *sse)
{
    if (sse == NULL)
        return;
    lw_buf_clear(&sse->pend);
    g_string_free(sse->joined, TRUE);
    g_free(sse);
}

guint64 lw_sse_oversize_count(const LwSse *sse)
{
    return sse->n_oversize;
}

/* The first CR or LF in [p, p+n), or NULL. */
static const char *find_eol(const char *p, gsize n)
{
    const char *lf = memchr(p, '\n', n);
    const char *cr = memchr(p, '\r', lf != NULL ? (gsize)(lf - p) : n);
    return cr != NULL ? cr : lf;
}

/* A unit's size for the cap: the LF of a final CRLF does not count, since
 * it may arrive in the next feed, after the unit was reported. */
static gsize capped_size(const char *p, gsize n)
{
    return n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n' ? n - 1 : n;
}

static void reset_unit(LwSse *sse)
{
    sse->line_start = 0;
    sse->in_event = FALSE;
    sse->n_data = 0;
    sse->have_event = FALSE;
    if (sse->joined->allocated_len > 64 * 1024) {
        /* one big multi-line event must not pin its size for the stream's life */
        g_string_free(sse->joined, TRUE);
        sse->joined = g_string_new(NULL);
    }
}

/* Reads the completed line at [off, off+n) of the unit starting at `unit`. */
static LineKind take_line(LwSse *sse, const char *unit, gsize off, gsize n)
{
    if (sse->first_line) {
        sse->first_line = FALSE;
        if (n >= 3 && memcmp(unit + off, "\xEF\xBB\xBF", 3) == 0) {
            off += 3;
            n -= 3;
        }
    }
    const char *line = unit + off;
    if (n == 0)
        return LINE_BLANK;
    if (line[0] == ':')
        return LINE_COMMENT;

    const char *colon = memchr(line, ':', n);
    gsize name_len = colon != NULL ? (gsize)(colon - line) : n;
    gsize voff = colon != NULL ? name_len + 1 : n;
    if (voff < n && line[voff] == ' ')
        voff++;
    gsize vlen = n - voff;

    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (sse->n_data == 0) {
            sse->data_off = off + voff;
            sse->data_len = vlen;
        } else {
            if (sse->n_data == 1) {
                g_string_truncate(sse->joined, 0);
                g_string_append_len(sse->joined, unit + sse->data_off, sse->data_len);
            }
            g_string_append_c(sse->joined, '\n');
            g_string_append_len(sse->joined, line + voff, vlen);
        }
        sse->n_data++;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        sse->have_event = TRUE;
        sse->event_off = off + voff;
        sse->event_len = vlen;
    }
    return LINE_FIELD;
}

static void fill_event(LwSse *sse, const char *unit, gsize len, LwSseUnit *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->kind = sse->in_event ? LW_SSE_EVENT : LW_SSE_NOISE;
    ret->raw = unit;
    ret->raw_len = len;
    if (sse->have_event) {
        ret->event = unit + sse->event_off;
        ret->event_len = sse->event_len;
    }
    if (sse->n_data == 1) {
        ret->data = unit + sse->data_off;
        ret->data_len = sse->data_len;
        ret->data_in_raw = TRUE;
    } else if (sse->n_data > 1) {
        ret->data = sse->joined->str;
        ret->data_len = sse->joined->len;
    }
    if (capped_size(unit, len) > sse->max_event) {
        /* Complete but too big to parse: same fate as one that spans feeds. */
        sse->n_oversize++;
        ret->kind = LW_SSE_OVERSIZE;
        ret->last = TRUE;
        ret->event = ret->data = NULL;
        ret->event_len = ret->data_len = 0;
        ret->data_in_raw = FALSE;
    }
    reset_unit(sse);
}

static void fill_piece(LwSseUnit *ret, const char *p, gsize n, gboolean last)
{
    memset(ret, 0, sizeof *ret);
    ret->kind = LW_SSE_OVERSIZE;
    ret->raw = p;
    ret->raw_len = n;
    ret->last = last;
}

/* Does the current line, of which `line_len` bytes are kept at `line` and
 * `more_len` follow at `more`, start with ':' (after the stream's BOM, on
 * the first line)? Either part may hold the BOM or the colon, depending on
 * how the stream was cut. */
static gboolean line_is_comment(const LwSse *sse, const char *line, gsize line_len,
                                const char *more, gsize more_len)
{
    char head[4];
    gsize n = 0;
    for (gsize i = 0; i < line_len && n < sizeof head; i++)
        head[n++] = line[i];
    for (gsize i = 0; i < more_len && n < sizeof head; i++)
        head[n++] = more[i];
    gsize skip = sse->first_line && n >= 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    return n > skip && head[skip] == ':';
}

/* Enters oversize mode for the unit in progress, whose current line starts
 * at `line` and holds `line_len` bytes so far; `more` is the input that
 * follows them (see line_is_comment). */
static void start_oversize(LwSse *sse, const char *line, gsize line_len, const char *more,
                           gsize more_len)
{
    /* outside an event, a line starting with ':' is a comment: a unit of its own */
    sse->os_to_line_end = !sse->in_event && line_is_comment(sse, line, line_len, more, more_len);
    sse->oversize = TRUE;
    sse->first_line = FALSE; /* a BOM only counts at the very start */
    sse->os_line_len = line_len;
    sse->n_oversize++;
    reset_unit(sse);
}

static void consume(const char **buf, gsize *len, gsize n)
{
    *buf += n;
    *len -= n;
}

/* Oversize mode: reports the input up to the end of the over-cap unit (or
 * all of it) as a piece. */
static LwSseResult next_oversize(LwSse *sse, const char **buf, gsize *len, gsize start,
                                 LwSseUnit *ret)
{
    const char *p = *buf;
    gsize n = *len, i = start;
    while (i < n) {
        const char *eol = find_eol(p + i, n - i);
        if (eol == NULL) {
            sse->os_line_len += n - i;
            break;
        }
        gsize e = (gsize)(eol - p);
        gsize line_len = sse->os_line_len + (e - i);
        gsize term = 1;
        gboolean cr_at_end = FALSE;
        if (p[e] == '\r') {
            if (e + 1 < n && p[e + 1] == '\n')
                term = 2;
            else if (e + 1 == n)
                cr_at_end = TRUE;
        }
        i = e + term;
        sse->cr_pending = cr_at_end;
        sse->os_line_len = 0;
        if (sse->os_to_line_end || line_len == 0) {
            sse->oversize = FALSE;
            sse->cr_ended_unit = TRUE;
            fill_piece(ret, p, i, TRUE);
            consume(buf, len, i);
            return LW_SSE_UNIT;
        }
        sse->cr_ended_unit = FALSE;
    }
    fill_piece(ret, p, n, FALSE);
    consume(buf, len, n);
    return LW_SSE_UNIT;
}

/* A unit in progress lives in pend: append whole lines from the input
 * until the unit ends or the input does. */
static LwSseResult next_pending(LwSse *sse, const char **buf, gsize *len, LwSseUnit *ret)
{
    const char *p = *buf;
    gsize n = *len;
    gsize used = lw_buf_len(&sse->pend);
    const char *eol = find_eol(p, n);
    gsize take = eol != NULL ? (gsize)(eol - p) + 1 : n;
    gboolean cr_at_end = FALSE;
    if (eol != NULL && *eol == '\r') {
        if (take < n && p[take] == '\n')
            take++;
        else if (take == n)
            cr_at_end = TRUE;
    }

    if (used + capped_size(p, take) > sse->max_event) {
        /* Report what is kept; the input is handled in oversize mode. */
        start_oversize(sse, lw_buf_head(&sse->pend) + sse->line_start, used - sse->line_start,
                       p, take);
        fill_piece(ret, lw_buf_head(&sse->pend), used, FALSE);
        sse->pend_release = TRUE;
        return LW_SSE_UNIT;
    }

    lw_buf_append(&sse->pend, p, take);
    consume(buf, len, take);
    if (eol == NULL)
        return LW_SSE_NEED_MORE;

    const char *unit = lw_buf_head(&sse->pend);
    gsize unit_len = lw_buf_len(&sse->pend);
    gsize term = (*eol == '\r' && !cr_at_end && take >= 2 && p[take - 1] == '\n') ? 2 : 1;
    gsize line_end = unit_len - term;
    LineKind kind = take_line(sse, unit, sse->line_start, line_end - sse->line_start);
    sse->cr_pending = cr_at_end;
    sse->cr_ended_unit = FALSE;
    if (kind == LINE_BLANK || (kind == LINE_COMMENT && !sse->in_event)) {
        sse->cr_ended_unit = cr_at_end;
        fill_event(sse, unit, unit_len, ret);
        sse->pend_release = TRUE;
        return LW_SSE_UNIT;
    }
    if (kind == LINE_FIELD)
        sse->in_event = TRUE;
    sse->line_start = unit_len;
    return LW_SSE_NEED_MORE;
}

LwSseResult lw_sse_next(LwSse *sse, const char **buf, gsize *len, LwSseUnit *ret)
{
    g_return_val_if_fail(sse != NULL && buf != NULL && len != NULL && ret != NULL,
                         LW_SSE_NEED_MORE);
    if (sse->pend_release) {
        lw_buf_reset(&sse->pend);
        sse->pend_release = FALSE;
    }

    while (*len > 0) {
        gsize skip_lf = 0;
        if (sse->cr_pending) {
            sse->cr_pending = FALSE;
            if ((*buf)[0] == '\n') {
                if (sse->cr_ended_unit) {
                    memset(ret, 0, sizeof *ret);
                    ret->kind = LW_SSE_TAIL;
                    ret->raw = *buf;
                    ret->raw_len = 1;
                    consume(buf, len, 1);
                    return LW_SSE_UNIT;
                }
                if (!sse->oversize) {
                    lw_buf_append(&sse->pend, "\n", 1);
                    sse->line_start = lw_buf_len(&sse->pend);
                    consume(buf, len, 1);
                    continue;
                }
                skip_lf = 1; /* oversize: the LF goes out with the next piece */
            }
        }
        if (sse->oversize)
            return next_oversize(sse, buf, len, skip_lf, ret);
        if (lw_buf_len(&sse->pend) > 0) {
            if (next_pending(sse, buf, len, ret) == LW_SSE_UNIT)
                return LW_SSE_UNIT;
            continue;
        }

        /* Nothing kept: the unit starts at *buf; report it in place. */
        const char *p = *buf;
        gsize n = *len, i = 0;
        for (;;) {
            const char *eol = find_eol(p + i, n - i);
            if (eol == NULL)
                break;
            gsize e = (gsize)(eol - p), term = 1;
            gboolean cr_at_end = FALSE;
            if (p[e] == '\r') {
                if (e + 1 < n && p[e + 1] == '\n')
                    term = 2;
                else if (e + 1 == n)
                    cr_at_end = TRUE;
            }
            LineKind kind = take_line(sse, p, i, e - i);
            i = e + term;
            sse->cr_pending = cr_at_end;
            sse->cr_ended_unit = FALSE;
            if (kind == LINE_BLANK || (kind == LINE_COMMENT && !sse->in_event)) {
                sse->cr_ended_unit = cr_at_end;
                fill_event(sse, p, i, ret);
                consume(buf, len, i);
                return LW_SSE_UNIT;
            }
            if (kind == LINE_FIELD)
                sse->in_event = TRUE;
            sse->line_start = i;
            if (i == n)
                break;
        }
        /* The input ends inside a unit. */
        if (capped_size(p, n) > sse->max_event) {
            start_oversize(sse, p + sse->line_start, n - sse->line_start, NULL, 0);
            fill_piece(ret, p, n, FALSE);
            consume(buf, len, n);
            return LW_SSE_UNIT;
        }
        lw_buf_append(&sse->pend, p, n);
        consume(buf, len, n);
    }
    return LW_SSE_NEED_MORE;
}

gboolean lw_sse_finish(LwSse *sse, LwSseUnit *ret)
{
    g_return_val_if_fail(sse != NULL && ret != NULL, FALSE);
    if (sse->pend_release) {
        lw_buf_reset(&sse->pend);
        sse->pend_release = FALSE;
    }
    sse->cr_pending = FALSE;
    if (sse->oversize) {
        sse->oversize = FALSE;
        reset_unit(sse);
        return FALSE;
    }
    gsize used = lw_buf_len(&sse->pend);
    if (used == 0)
        return FALSE;
    const char *unit = lw_buf_head(&sse->pend);
    if (used > sse->line_start &&
        take_line(sse, unit, sse->line_start, used - sse->line_start) == LINE_FIELD)
        sse->in_event = TRUE;
    fill_event(sse, unit, used, ret);
    sse->pend_release = TRUE;
    return TRUE;
}

/* ---- the fields of an event over the cap ---------------------------------- */

typedef enum {
    FS_NAME,        /* reading a field name (a line's start) */
    FS_VALUE_START, /* just after the colon: one space is dropped */
    FS_VALUE,       /* in the value of a data or event line */
    FS_SKIP,        /* a comment or another field: to the line's end */
} FieldState;

typedef enum {
    FIELD_OTHER,
    FIELD_DATA,
    FIELD_EVENT,
} Field;

#define NAME_KEPT 8 /* "event", after a BOM of 3 */

struct _LwSseFields {
    FieldState state;
    Field field;
    gboolean cr_pending; /* a CR ended the last line: an LF now is part of it */
    gboolean first_line; /* the stream's first line: a BOM may lead it */
    char name[NAME_KEPT];
    gsize name_len;
    gboolean name_long;
    guint n_data;
    gboolean sep_owed; /* a data line followed another: its "\n" is still to come */
    char value[LW_SSE_MAX_EVENT_NAME]; /* the event line being read */
    gsize value_len;
    gboolean value_long;
    char event[LW_SSE_MAX_EVENT_NAME]; /* the last complete one */
    gsize event_len;
    gboolean have_event;
};

LwSseFields *lw_sse_fields_new(void)
{
    LwSseFields *f = g_new(LwSseFields, 1);
    lw_sse_fields_reset(f, FALSE);
    return f;
}

void lw_sse_fields_free(LwSseFields *f)
{
    g_free(f);
}

void lw_sse_fields_reset(LwSseFields *f, gboolean stream_start)
{
    memset(f, 0, sizeof *f);
    f->state = FS_NAME;
    f->first_line = stream_start;
}

const char *lw_sse_fields_event(const LwSseFields *f, gsize *ret_len)
{
    *ret_len = f->have_event ? f->event_len : 0;
    return f->have_event ? f->event : NULL;
}

/* What the name read so far makes the line (BOM dropped as take_line does). */
static Field field_of_name(const LwSseFields *f, gboolean *ret_comment)
{
    const char *n = f->name;
    gsize len = f->name_len;
    if (f->first_line && len >= 3 && memcmp(n, "\xEF\xBB\xBF", 3) == 0) {
        n += 3;
        len -= 3;
    }
    *ret_comment = len == 0 && !f->name_long;
    if (f->name_long)
        return FIELD_OTHER;
    if (len == 4 && memcmp(n, "data", 4) == 0)
        return FIELD_DATA;
    if (len == 5 && memcmp(n, "event", 5) == 0)
        return FIELD_EVENT;
    return FIELD_OTHER;
}

/* The field's name is complete: at its colon, or at the line's end for a
 * line without one (then its value is empty). */
static void name_done(LwSseFields *f, gboolean at_colon)
{
    gboolean comment;
    f->field = field_of_name(f, &comment);
    f->first_line = FALSE;
    if (f->field == FIELD_DATA)
        f->sep_owed = f->n_data++ > 0;
    f->value_len = 0;
    f->value_long = FALSE;
    if (!at_colon)
        return;
    f->state = comment || f->field == FIELD_OTHER ? FS_SKIP : FS_VALUE_START;
}

/* A line ended: an event line's value counts from now on. */
static void line_done(LwSseFields *f)
{
    if (f->field == FIELD_EVENT) {
        f->have_event = !f->value_long;
        memcpy(f->event, f->value, f->value_len);
        f->event_len = f->value_len;
    }
    f->state = FS_NAME;
    f->field = FIELD_OTHER;
    f->name_len = 0;
    f->name_long = FALSE;
    f->first_line = FALSE;
}

void lw_sse_fields_end(LwSseFields *f)
{
    g_return_if_fail(f != NULL);
    if (f->state == FS_NAME && (f->name_len > 0 || f->name_long))
        name_done(f, FALSE);
    line_done(f);
    f->cr_pending = FALSE;
}

static void keep_value(LwSseFields *f, const char *p, gsize n)
{
    if (f->value_long || f->value_len + n > LW_SSE_MAX_EVENT_NAME) {
        f->value_long = TRUE;
        return;
    }
    memcpy(f->value + f->value_len, p, n);
    f->value_len += n;
}

gboolean lw_sse_fields_next(LwSseFields *f, const char **buf, gsize *len, const char **ret_data,
                            gsize *ret_len)
{
    g_return_val_if_fail(f != NULL && buf != NULL && len != NULL, FALSE);
    while (*len > 0 || f->sep_owed) {
        if (f->sep_owed) {
            f->sep_owed = FALSE;
            *ret_data = "\n";
            *ret_len = 1;
            return TRUE;
        }
        const char *p = *buf;
        if (f->cr_pending) {
            f->cr_pending = FALSE;
            if (p[0] == '\n') {
                consume(buf, len, 1);
                continue;
            }
        }
        if (f->state == FS_VALUE_START) {
            f->state = FS_VALUE;
            if (p[0] == ' ') {
                consume(buf, len, 1);
                continue;
            }
        }
        const char *eol = find_eol(p, *len);
        gsize n = eol != NULL ? (gsize)(eol - p) : *len;
        if (f->state == FS_NAME) {
            const char *colon = memchr(p, ':', n);
            gsize name_n = colon != NULL ? (gsize)(colon - p) : n;
            gsize room = NAME_KEPT - f->name_len;
            if (name_n > room)
                f->name_long = TRUE;
            memcpy(f->name + f->name_len, p, MIN(name_n, room));
            f->name_len += MIN(name_n, room);
            if (colon != NULL) {
                name_done(f, TRUE);
                consume(buf, len, name_n + 1);
                continue;
            }
            if (eol != NULL && (f->name_len > 0 || f->name_long))
                name_done(f, FALSE); /* "data" alone: an empty data line */
        } else if (f->state == FS_VALUE && f->field == FIELD_DATA && n > 0) {
            consume(buf, len, n);
            *ret_data = p;
            *ret_len = n;
            return TRUE;
        } else if (f->state == FS_VALUE && f->field == FIELD_EVENT) {
            keep_value(f, p, n);
        }
        consume(buf, len, n);
        if (eol != NULL) {
            f->cr_pending = *eol == '\r';
            consume(buf, len, 1);
            line_done(f);
        }
    }
    return FALSE;
}
