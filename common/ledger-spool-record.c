/* ledger-spool-record.c - framing and encoding of the spool's rows. */
#include "ledger-spool-record.h"

#include <string.h>
#include <zlib.h>

#include "spool.pb-c.h"

static const guint8 magic[4] = {'L', 'W', 'S', '1'};

static void put_be32(guint8 *p, guint32 v)
{
    p[0] = (guint8)(v >> 24);
    p[1] = (guint8)(v >> 16);
    p[2] = (guint8)(v >> 8);
    p[3] = (guint8)v;
}

static guint32 get_be32(const guint8 *p)
{
    return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

/* protobuf-c takes non-const strings; it only reads them when packing. */
#define STR(s) ((char *)(s))
#define SET(field, value)                                                                        \
    do {                                                                                         \
        m.has_##field = TRUE;                                                                    \
        m.field = (value);                                                                       \
    } while (0)

gboolean lw_spool_frame_append(GByteArray *out, gint64 id, const LwLedgerRequest *r)
{
    Lw__SpoolRow m = LW__SPOOL_ROW__INIT;
    SET(id, id);
    SET(time_ms, r->time_ms);
    if (r->run_id != 0)
        SET(run_id, r->run_id);
    SET(pid, r->pid);
    m.exe = STR(r->exe);
    m.tags_json = STR(r->tags_json);
    m.provider = STR(r->provider);
    m.host = STR(r->host);
    m.endpoint = STR(r->endpoint);
    m.model_requested = STR(r->model_requested);
    m.model_served = STR(r->model_served);
    m.model_sent = STR(r->model_sent);
    SET(stream, r->stream != FALSE);
    SET(status, r->status);
    SET(input_tokens, r->input_tokens);
    SET(cached_input_tokens, r->cached_input_tokens);
    SET(cache_write_tokens, r->cache_write_tokens);
    SET(cache_write_1h_tokens, r->cache_write_1h_tokens);
    SET(output_tokens, r->output_tokens);
    SET(reasoning_tokens, r->reasoning_tokens);
    if (r->cost.known)
        SET(cost_pusd, r->cost.pusd);
    m.cost_source = STR(r->cost_source);
    SET(latency_ms, r->latency_ms);
    if (r->ttft_ms >= 0)
        SET(ttft_ms, r->ttft_ms);
    SET(bytes_in, r->bytes_in);
    SET(bytes_out, r->bytes_out);
    SET(cache_hit, r->cache_hit != FALSE);
    SET(partial, r->partial != FALSE);
    m.upstream_request_id = STR(r->upstream_request_id);
    m.credential = STR(r->credential);
    m.raw_usage = STR(r->raw_usage);
    m.refused_by = STR(r->refused_by);
    m.warning = STR(r->warning);
    m.unpriced_path = STR(r->unpriced_path);

    /* Packed into room for the largest encoding instead of measured first:
     * one pass over the fields instead of two, on the collector's request
     * path. Every field is a tag (at most 2 bytes) and a varint (at most
     * 10), or a tag, a length (at most 5) and the bytes. */
    const char *const strings[] = {m.exe,        m.tags_json,   m.provider,
                                   m.host,       m.endpoint,    m.model_requested,
                                   m.model_served, m.cost_source, m.upstream_request_id,
                                   m.credential, m.raw_usage,   m.refused_by,
                                   m.warning,    m.unpriced_path, m.model_sent};
    size_t bound = lw__spool_row__descriptor.n_fields * 12;
    for (guint i = 0; i < G_N_ELEMENTS(strings); i++)
        bound += strings[i] != NULL ? strlen(strings[i]) + 7 : 0;
    if (bound > LW_SPOOL_MAX_PAYLOAD)
        return FALSE;
    guint start = out->len;
    g_byte_array_set_size(out, start + LW_SPOOL_FRAME_HEADER + (guint)bound);
    guint8 *frame = out->data + start;
    guint8 *payload = frame + LW_SPOOL_FRAME_HEADER;
    size_t n = lw__spool_row__pack(&m, payload);
    g_byte_array_set_size(out, start + LW_SPOOL_FRAME_HEADER + (guint)n);
    memcpy(frame, magic, sizeof magic);
    put_be32(frame + 4, (guint32)n);
    put_be32(frame + 8, (guint32)crc32(0, payload, (uInt)n));
    return TRUE;
}

size_t lw_spool_frame_check_cost(const guint8 *buf, size_t len)
{
    if (len < LW_SPOOL_FRAME_HEADER || memcmp(buf, magic, sizeof magic) != 0)
        return 0;
    guint32 n = get_be32(buf + 4);
    if (n > LW_SPOOL_MAX_PAYLOAD || len - LW_SPOOL_FRAME_HEADER < n)
        return 0;
    return n;
}

LwSpoolFrameResult lw_spool_frame_check(const guint8 *buf, size_t len, size_t *ret_len)
{
    /* A torn header is short too, as long as what is there fits. */
    if (len < LW_SPOOL_FRAME_HEADER)
        return memcmp(buf, magic, MIN(len, sizeof magic)) == 0 ? LW_SPOOL_FRAME_SHORT
                                                               : LW_SPOOL_FRAME_BAD;
    if (memcmp(buf, magic, sizeof magic) != 0)
        return LW_SPOOL_FRAME_BAD;
    guint32 n = get_be32(buf + 4);
    if (n > LW_SPOOL_MAX_PAYLOAD)
        return LW_SPOOL_FRAME_BAD;
    if (len - LW_SPOOL_FRAME_HEADER < n)
        return LW_SPOOL_FRAME_SHORT;
    if ((guint32)crc32(0, buf + LW_SPOOL_FRAME_HEADER, n) != get_be32(buf + 8))
        return LW_SPOOL_FRAME_BAD;
    *ret_len = LW_SPOOL_FRAME_HEADER + n;
    return LW_SPOOL_FRAME_OK;
}

LwSpoolRecord *lw_spool_record_decode(const guint8 *frame, size_t len)
{
    g_return_val_if_fail(len >= LW_SPOOL_FRAME_HEADER, NULL);
    Lw__SpoolRow *m = lw__spool_row__unpack(NULL, len - LW_SPOOL_FRAME_HEADER,
                                            frame + LW_SPOOL_FRAME_HEADER);
    if (m == NULL)
        return NULL;
    if (!m->has_id || m->id <= 0) {
        lw__spool_row__free_unpacked(m, NULL);
        return NULL;
    }
    LwSpoolRecord *rec = g_new0(LwSpoolRecord, 1);
    rec->message = m;
    rec->id = m->id;
    LwLedgerRequest *r = &rec->row;
    r->time_ms = m->time_ms;
    r->run_id = m->run_id;
    r->pid = m->pid;
    r->exe = m->exe;
    r->tags_json = m->tags_json;
    r->provider = m->provider;
    r->host = m->host;
    r->endpoint = m->endpoint;
    r->model_requested = m->model_requested;
    r->model_served = m->model_served;
    r->model_sent = m->model_sent;
    r->stream = m->stream;
    r->status = m->status;
    r->input_tokens = m->input_tokens;
    r->cached_input_tokens = m->cached_input_tokens;
    r->cache_write_tokens = m->cache_write_tokens;
    r->cache_write_1h_tokens = m->cache_write_1h_tokens;
    r->output_tokens = m->output_tokens;
    r->reasoning_tokens = m->reasoning_tokens;
    r->cost.known = m->has_cost_pusd;
    r->cost.pusd = m->cost_pusd;
    r->cost_source = m->cost_source;
    r->latency_ms = m->latency_ms;
    r->ttft_ms = m->has_ttft_ms ? m->ttft_ms : -1;
    r->bytes_in = m->bytes_in;
    r->bytes_out = m->bytes_out;
    r->cache_hit = m->cache_hit;
    r->partial = m->partial;
    r->upstream_request_id = m->upstream_request_id;
    r->credential = m->credential;
    r->raw_usage = m->raw_usage;
    r->refused_by = m->refused_by;
    r->warning = m->warning;
    r->unpriced_path = m->unpriced_path;
    return rec;
}

void lw_spool_record_free(LwSpoolRecord *rec)
{
    if (rec == NULL)
        return;
    lw__spool_row__free_unpacked(rec->message, NULL);
    g_free(rec);
}
