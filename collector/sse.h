/* sse.h - Server-Sent Events framing: cuts a byte stream into units without
 * changing a byte.
 *
 * The observer must hand a client exactly the bytes the upstream sent, one
 * whole event at a time, and read the fields of the events it cares about.
 * So the framer reports units that tile the input: every input byte belongs
 * to exactly one unit, in order, and the concatenation of all units' `raw`
 * slices is the input. Framing follows the WHATWG rules the providers rely
 * on: lines end in LF, CRLF or a lone CR; a blank line dispatches an event;
 * `:` lines are comments; several `data:` lines are joined with "\n"; one
 * space after the colon is dropped; a leading UTF-8 BOM is ignored.
 *
 * Shape (after picohttpparser): the caller passes its buffer, the framer
 * answers with slices into it when a unit lies wholly inside, and copies
 * only the part of a unit that spans two feeds. An event larger than the
 * cap is never buffered: it is reported in LW_SSE_OVERSIZE pieces as its
 * bytes arrive, and counted; LwSseFields reads its fields from the pieces
 * as they pass.
 *
 * Thread-safety: an LwSse is used by one thread at a time.
 */
#pragma once

#include <glib.h>

/* Default cap on one event's raw size. */
#define LW_SSE_MAX_EVENT (8 * 1024 * 1024)

typedef enum {
    LW_SSE_NEED_MORE = 0, /* the input is used up; nothing to report */
    LW_SSE_UNIT,          /* *ret holds the next unit */
} LwSseResult;

typedef enum {
    LW_SSE_EVENT,    /* field lines (and comments among them) through the dispatching blank line */
    LW_SSE_NOISE,    /* one blank or comment line outside any event (keep-alives) */
    LW_SSE_TAIL,     /* the LF of a CRLF whose CR ended the previous unit in an earlier
                      * feed: it belongs to that unit and shares its fate */
    LW_SSE_OVERSIZE, /* a piece of an event over the cap: pass it on; its fields only
                      * through LwSseFields */
} LwSseKind;

typedef struct {
    LwSseKind kind;
    const char *raw; /* the unit's bytes as received */
    gsize raw_len;
    const char *event; /* EVENT: value of the last `event:` line; NULL when none */
    gsize event_len;
    const char *data; /* EVENT: the joined `data:` values; NULL when no data line */
    gsize data_len;
    gboolean data_in_raw; /* `data` is a slice of `raw` (a single data line), so an offset
                           * in data is an offset in raw from data - raw */
    gboolean last;        /* OVERSIZE: this piece ends the event */
} LwSseUnit;

typedef struct _LwSse LwSse;

/* A framer whose events may be at most `max_event` raw bytes. Transfer full. */
LwSse *lw_sse_new(gsize max_event);
void lw_sse_free(LwSse *sse);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwSse, lw_sse_free)

/* Consumes input from *buf (advancing *buf and decreasing *len) up to the
 * end of the next unit and describes it in `ret`. Returns LW_SSE_UNIT with
 * *ret filled, or LW_SSE_NEED_MORE once *len is 0 (the bytes of an
 * unfinished unit are kept). Pointers in *ret point into the caller's buffer
 * or into the framer; either stays valid until the next call on `sse`. */
LwSseResult lw_sse_next(LwSse *sse, const char **buf, gsize *len, LwSseUnit *ret);

/* The stream ended: reports the kept bytes of an unfinished unit (its last
 * line counted as complete, so a final event without its blank line is
 * still an EVENT). Returns FALSE when nothing was kept. */
gboolean lw_sse_finish(LwSse *sse, LwSseUnit *ret);

/* How many events exceeded the cap so far. */
guint64 lw_sse_oversize_count(const LwSse *sse);

/* ---- the fields of an event over the cap ---------------------------------- */

/* Longest `event:` value LwSseFields keeps. */
#define LW_SSE_MAX_EVENT_NAME 64

/* Reads an event's field lines from its raw bytes, in pieces of any size
 * (the LW_SSE_OVERSIZE pieces of one event, in order), by the framing rules
 * above, keeping nothing but the event name: the data values come out as
 * slices of the input, with "\n" between data lines as in a kept event's
 * joined data, so a parser can read an event too big to keep whole. */
typedef struct _LwSseFields LwSseFields;

LwSseFields *lw_sse_fields_new(void);
void lw_sse_fields_free(LwSseFields *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwSseFields, lw_sse_fields_free)

/* Starts on a new event. `stream_start`: its bytes are the first of the
 * stream, where a UTF-8 BOM is ignored. */
void lw_sse_fields_reset(LwSseFields *f, gboolean stream_start);

/* Reads from *buf (advancing *buf, decreasing *len) up to the next bytes of
 * data. Returns TRUE with *ret_data / *ret_len set (a slice of the input,
 * or a static "\n" between two data lines; never empty), FALSE once *len
 * is 0. */
gboolean lw_sse_fields_next(LwSseFields *f, const char **buf, gsize *len, const char **ret_data,
                            gsize *ret_len);

/* The event's bytes ended without its blank line (the stream did): its last
 * line counts as complete, as lw_sse_finish has it. What that completes (the
 * "\n" a bare last `data` line adds) comes from lw_sse_fields_next called
 * with no input. */
void lw_sse_fields_end(LwSseFields *f);

/* The value of the last complete `event:` line so far (*ret_len bytes; it
 * may hold a NUL); NULL when there is none or it is longer than
 * LW_SSE_MAX_EVENT_NAME. Valid until the next call on `f`. */
const char *lw_sse_fields_event(const LwSseFields *f, gsize *ret_len);
