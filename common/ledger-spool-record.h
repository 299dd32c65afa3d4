/* ledger-spool-record.h - one request row as the ledger's spool stores it.
 *
 * A frame is a 12-byte header and a payload:
 *   magic "LWS1" | payload length (4 bytes, big-endian) |
 *   CRC-32 of the payload (4 bytes, big-endian) | payload
 * The payload is a lw.SpoolRow (proto/spool.proto): the row and its id.
 * A frame is written with one write(2), so a process killed while writing
 * leaves at most one torn frame, at the end of the file: too short for the
 * length it announces. A complete frame whose CRC or payload is wrong is
 * damage, not a torn write; so is a short one with a whole frame after it
 * (a damaged length), and replay goes on from that frame.
 *
 * Thread-safety: no shared state.
 */
#pragma once

#include <glib.h>

#include "ledger.h"

#define LW_SPOOL_FRAME_HEADER 12
/* A frame's first byte (of its magic), for resynchronising after damage. */
#define LW_SPOOL_FRAME_MAGIC0 'L'
/* Far above any real row (a few KiB); a bigger row bypasses the spool. */
#define LW_SPOOL_MAX_PAYLOAD (1u << 20)

/* Appends the frame for row `id` to `out`. FALSE (and `out` unchanged)
 * when the row is over LW_SPOOL_MAX_PAYLOAD. */
gboolean lw_spool_frame_append(GByteArray *out, gint64 id, const LwLedgerRequest *row);

typedef enum {
    LW_SPOOL_FRAME_OK,    /* *ret_len is the whole frame's length */
    LW_SPOOL_FRAME_SHORT, /* `len` ends inside the frame */
    LW_SPOOL_FRAME_BAD,   /* wrong magic, length or CRC */
} LwSpoolFrameResult;

/* How many payload bytes lw_spool_frame_check would read for its CRC
 * (0 when it would stop at the header). */
size_t lw_spool_frame_check_cost(const guint8 *buf, size_t len);

/* Checks the frame at the start of `buf`. */
LwSpoolFrameResult lw_spool_frame_check(const guint8 *buf, size_t len, size_t *ret_len);

/* A decoded row; its strings live as long as the record. */
typedef struct {
    gint64 id;
    LwLedgerRequest row;
    void *message; /* private */
} LwSpoolRecord;

/* Decodes a frame lw_spool_frame_check accepted. NULL when the payload is
 * not a row (undecodable, or no valid id). Transfer full. */
LwSpoolRecord *lw_spool_record_decode(const guint8 *frame, size_t len);
void lw_spool_record_free(LwSpoolRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwSpoolRecord, lw_spool_record_free)
