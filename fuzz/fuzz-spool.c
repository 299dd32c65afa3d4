/* fuzz-spool.c - libFuzzer target for common/ledger-spool-record.c: the
 * frames a collector reads back from a spool file it did not write (a
 * damaged disk, a torn write, a file someone edited).
 *
 * The input is a spool file. It is walked frame by frame until one is
 * short or bad (replay then looks for the next whole frame, with the same
 * check). Besides crashes and sanitizer reports, the
 * target aborts when a result breaks the contract in ledger-spool-record.h:
 * an accepted frame longer than what is left or shorter than a header, a
 * decoded row without a valid id, or a row that does not come back the
 * same when encoded and decoded again.
 *
 * A mutated payload almost never keeps its CRC, so the input is walked a
 * second time with each frame's CRC set right: that is what reaches the
 * row decoder with bytes it did not write.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "ledger-spool-record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_row(const LwLedgerRequest *a, const LwLedgerRequest *b)
{
    return a->time_ms == b->time_ms && a->run_id == b->run_id && a->pid == b->pid &&
           same_text(a->exe, b->exe) && same_text(a->tags_json, b->tags_json) &&
           same_text(a->provider, b->provider) && same_text(a->host, b->host) &&
           same_text(a->endpoint, b->endpoint) &&
           same_text(a->model_requested, b->model_requested) &&
           same_text(a->model_served, b->model_served) && a->stream == b->stream &&
           a->status == b->status && a->input_tokens == b->input_tokens &&
           a->cached_input_tokens == b->cached_input_tokens &&
           a->cache_write_tokens == b->cache_write_tokens &&
           a->cache_write_1h_tokens == b->cache_write_1h_tokens &&
           a->output_tokens == b->output_tokens && a->reasoning_tokens == b->reasoning_tokens &&
           a->cost.known == b->cost.known && (!a->cost.known || a->cost.pusd == b->cost.pusd) &&
           same_text(a->cost_source, b->cost_source) && a->latency_ms == b->latency_ms &&
           /* Any negative first-byte time means unknown. */
           (a->ttft_ms == b->ttft_ms || (a->ttft_ms < 0 && b->ttft_ms < 0)) &&
           a->bytes_in == b->bytes_in && a->bytes_out == b->bytes_out &&
           a->cache_hit == b->cache_hit && a->partial == b->partial &&
           same_text(a->upstream_request_id, b->upstream_request_id) &&
           same_text(a->credential, b->credential) && same_text(a->raw_usage, b->raw_usage) &&
           same_text(a->refused_by, b->refused_by) && same_text(a->warning, b->warning);
}

static void walk(const uint8_t *data, size_t size)
{
    size_t off = 0, n = 0;
    while (off < size) {
        if (lw_spool_frame_check(data + off, size - off, &n) != LW_SPOOL_FRAME_OK)
            break;
        require(n >= LW_SPOOL_FRAME_HEADER && n <= size - off);
        LwSpoolRecord *rec = lw_spool_record_decode(data + off, n);
        if (rec == NULL)
            break;
        require(rec->id > 0);
        GByteArray *again = g_byte_array_new();
        require(lw_spool_frame_append(again, rec->id, &rec->row));
        size_t m = 0;
        require(lw_spool_frame_check(again->data, again->len, &m) == LW_SPOOL_FRAME_OK &&
                m == again->len);
        LwSpoolRecord *back = lw_spool_record_decode(again->data, m);
        require(back != NULL && back->id == rec->id && same_row(&back->row, &rec->row));
        lw_spool_record_free(back);
        g_byte_array_unref(again);
        lw_spool_record_free(rec);
        off += n;
    }
}

/* Sets the CRC of every frame whose magic and length fit, in place. */
static void fix_crcs(uint8_t *buf, size_t size)
{
    size_t off = 0;
    while (size - off >= LW_SPOOL_FRAME_HEADER && memcmp(buf + off, "LWS1", 4) == 0) {
        uint32_t n = (uint32_t)buf[off + 4] << 24 | (uint32_t)buf[off + 5] << 16 |
                     (uint32_t)buf[off + 6] << 8 | buf[off + 7];
        if (n > LW_SPOOL_MAX_PAYLOAD || n > size - off - LW_SPOOL_FRAME_HEADER)
            return;
        uint32_t c = (uint32_t)crc32(0, buf + off + LW_SPOOL_FRAME_HEADER, n);
        for (int i = 0; i < 4; i++)
            buf[off + 8 + i] = (uint8_t)(c >> (24 - 8 * i));
        off += LW_SPOOL_FRAME_HEADER + n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk(data, size);
    uint8_t *copy = malloc(size > 0 ? size : 1);
    require(copy != NULL);
    memcpy(copy, data, size);
    fix_crcs(copy, size);
    walk(copy, size);
    free(copy);
    return 0;
}
