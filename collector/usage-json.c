/* usage-json.c - SAX extraction of response facts (see usage-json.h).
 *
 * Path bookkeeping: keys[d] is the member name being read in the object at
 * depth d, or ARR when the container at depth d is an array (idx[d] is then
 * the index of the element being read). A value's path is keys[root..depth]
 * where root is the depth of the document object; container values are
 * matched before their own depth is pushed, so scalars and containers use
 * the same patterns.
 *
 * Long strings: yajl keeps a token that spans two yajl_parse calls in its
 * own buffer and lexes it again from its start on every call, so a string
 * of megabytes would cost its size in memory and, fed in network-sized
 * pieces, quadratic time. So yajl gets at most LW_USAGE_JSON_MAX_STRING
 * bytes of a string: after each slice, the bytes it holds since its last
 * parse event (a few, normally) are scanned for an open string and its
 * escapes (Scan), and the next slice is cut where that string would reach
 * the cap. There, at the first point outside an escape sequence, the bytes
 * up to its closing quote go past yajl, which then sees a shorter string;
 * their count is added to the string's length. Where that happens depends
 * only on the bytes, never on how they were cut into feeds. Text without
 * long strings pays for a scan of the few bytes after each slice's last
 * parse event (0.5 % more instructions in bench-observe).
 */
#include "usage-json.h"

#include <string.h>
#include <yajl/yajl_parse.h>

#define ARR LW_KEY_COUNT
#define SLICE (64 * 1024) /* feed yajl in slices so the token cap is checked often */
#define MAX_TYPE 64
#define MAX_TIER 23 /* "default", "priority", "flex": longer is none we know */
#define MAX_GEO 23  /* "global", "us": likewise */

G_STATIC_ASSERT(LW_KEY_COUNT < 255);
/* a string kept from yajl is longer than the raw usage text kept */
G_STATIC_ASSERT(LW_USAGE_JSON_MAX_STRING >= LW_USAGE_JSON_MAX_RAW);

/* What yajl holds since its last parse event (the scan of those bytes):
 * separators and whitespace, then at most one token that has not ended. */
typedef enum {
    TAIL_BETWEEN, /* no token yet */
    TAIL_STRING,  /* a string */
    TAIL_OTHER,   /* a number or a literal: no string can start before an event */
} TailPhase;

typedef struct {
    TailPhase phase;
    gboolean escaped;   /* a backslash came last: the next byte is escaped */
    guint hex_left;     /* digits of a \uXXXX still to come */
    guint64 string_len; /* bytes of the string's content so far */
    gboolean eliding;   /* the rest of the string goes past yajl */
    guint64 elided;     /* ... how many bytes so far */
} Scan;

struct _LwUsageJson {
    LwFormat format;
    LwDocFunc on_doc;
    void *on_doc_data;
    yajl_handle yh;
    LwUsageJsonResult state;

    const char *feed_buf; /* the buffer of the current feed call */
    gsize feed_len;
    gsize slice_off; /* where the slice yajl is parsing starts in feed_buf */
    const char *slice;
    gsize slice_len;
    guint64 fed;        /* bytes given to yajl before the current slice, since the reset */
    guint64 total;      /* bytes fed, those kept from yajl too */
    guint64 last_event; /* position just past the last parse event */
    gsize done_end;
    Scan scan;
    guint64 string_extra; /* bytes kept from yajl of the string it is about to report */

    int depth;
    int root; /* depth of the open document object; 0 = none */
    gboolean array_top;
    gssize key_start; /* feed_buf offset of the current member name's quote; -1 unknown */
    gssize usage_key_start; /* key_start of the open top-level "usage" object; -1 none */

    /* the document being read */
    LwDocFacts f;
    char model[LW_USAGE_JSON_MAX_NAME + 1];
    char id[LW_USAGE_JSON_MAX_NAME + 1];
    char type[MAX_TYPE + 1];
    char tier[MAX_TIER + 1];
    char geo[MAX_GEO + 1];
    GString *raw;       /* text of the document's last complete usage object */
    gboolean raw_ok;

    /* the usage object being read */
    int u_depth; /* its depth; 0 = not in one */
    LwUsageFields ufields;
    GString *cap; /* its text so far */
    gboolean cap_over;
    gsize cap_from; /* slice offset from which the slice still has to be copied */

    /* Gemini candidate and part being read */
    gboolean cand_finished;
    gint64 cand_index;
    gint64 part_text;

    /* Last, and not zeroed at creation (2 KiB, one extractor per
     * response): keys[d] and idx[d] are written when depth d is entered,
     * before anything reads them. */
    guint8 keys[LW_USAGE_JSON_MAX_DEPTH + 2];
    gint64 idx[LW_USAGE_JSON_MAX_DEPTH + 2];
};

/* ---- paths ---------------------------------------------------------------- */

static gboolean at_path(const LwUsageJson *uj, const guint8 *pat, int n)
{
    if (uj->root == 0 || uj->depth - uj->root + 1 != n)
        return FALSE;
    return memcmp(&uj->keys[uj->root], pat, (gsize)n) == 0;
}

#define AT(uj, ...)                                                                                \
    at_path((uj), (const guint8[]){__VA_ARGS__}, (int)sizeof((const guint8[]){__VA_ARGS__}))

static gboolean in_doc(const LwUsageJson *uj)
{
    return uj->root > 0 && uj->depth >= uj->root;
}

static gboolean is_usage_path(const LwUsageJson *uj)
{
    switch (uj->format) {
    case LW_FORMAT_OPENAI:
        return AT(uj, LW_KEY_USAGE) || AT(uj, LW_KEY_X_GROQ, LW_KEY_USAGE) ||
               AT(uj, LW_KEY_RESPONSE, LW_KEY_USAGE);
    case LW_FORMAT_ANTHROPIC:
        return AT(uj, LW_KEY_USAGE) || AT(uj, LW_KEY_MESSAGE, LW_KEY_USAGE);
    case LW_FORMAT_GEMINI:
        return AT(uj, LW_KEY_USAGE_METADATA);
    }
    return FALSE;
}

static gboolean is_gemini_candidate(const LwUsageJson *uj)
{
    return uj->format == LW_FORMAT_GEMINI && AT(uj, LW_KEY_CANDIDATES, ARR);
}

static gboolean is_gemini_part(const LwUsageJson *uj)
{
    return uj->format == LW_FORMAT_GEMINI &&
           AT(uj, LW_KEY_CANDIDATES, ARR, LW_KEY_CONTENT, LW_KEY_PARTS, ARR);
}

/* ---- per-event bookkeeping ------------------------------------------------ */

static guint64 position(const LwUsageJson *uj)
{
    return uj->fed + yajl_get_bytes_consumed(uj->yh);
}

/* Every parse event: notes progress. Input that goes more than the token
 * cap without a parse event stops the parse; checked here as well as
 * between slices, so where the feeds were cut does not change the outcome. */
static gboolean progress(LwUsageJson *uj)
{
    guint64 pos = position(uj);
    if (pos - uj->last_event > LW_USAGE_JSON_MAX_TOKEN) {
        uj->state = LW_USAGE_JSON_FAILED;
        return FALSE;
    }
    uj->last_event = pos;
    return TRUE;
}

/* A value starts: progress, and the element count of an enclosing array. */
static gboolean value_begin(LwUsageJson *uj)
{
    if (!progress(uj))
        return FALSE;
    if (uj->depth > 0 && uj->keys[uj->depth] == ARR)
        uj->idx[uj->depth]++;
    return TRUE;
}

static void copy_name(char *dst, gsize cap, const char **ret, const unsigned char *s, gsize len)
{
    if (len > cap) {
        *ret = NULL; /* longer than any real name: not kept rather than cut */
        return;
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    *ret = dst;
}

/* ---- charges outside usage ------------------------------------------------ */

static const char *const tool_items[LW_TOOL_COUNT] = {
    [LW_TOOL_WEB_SEARCH] = "web_search_call",
    [LW_TOOL_FILE_SEARCH] = "file_search_call",
    [LW_TOOL_CODE_INTERPRETER] = "code_interpreter_call",
    [LW_TOOL_IMAGE_GENERATION] = "image_generation_call",
    [LW_TOOL_MCP] = "mcp_call",
};

const char *lw_usage_json_tool_item(LwTool tool)
{
    g_return_val_if_fail(tool < LW_TOOL_COUNT, NULL);
    return tool_items[tool];
}

/* The tool whose call an output item of type `s` is; LW_TOOL_COUNT for any
 * other item (a message, reasoning, a function call the client runs). */
static LwTool tool_of(const unsigned char *s, gsize len)
{
    for (int t = 0; t < LW_TOOL_COUNT; t++) {
        if (len == strlen(tool_items[t]) && memcmp(s, tool_items[t], len) == 0)
            return (LwTool)t;
    }
    return LW_TOOL_COUNT;
}

static gboolean is_output_array(const LwUsageJson *uj)
{
    return AT(uj, LW_KEY_OUTPUT) || AT(uj, LW_KEY_RESPONSE, LW_KEY_OUTPUT);
}

static gboolean is_output_item_type(const LwUsageJson *uj)
{
    return AT(uj, LW_KEY_OUTPUT, ARR, LW_KEY_TYPE) ||
           AT(uj, LW_KEY_RESPONSE, LW_KEY_OUTPUT, ARR, LW_KEY_TYPE);
}

static void count_output_item(LwUsageJson *uj, const unsigned char *s, gsize len)
{
    LwTool t = tool_of(s, len);
    if (t < LW_TOOL_COUNT)
        uj->f.output_tools[t]++;
}

static void doc_begin(LwUsageJson *uj, int root)
{
    uj->root = root;
    memset(&uj->f, 0, sizeof uj->f);
    uj->f.item_tool = LW_TOOL_COUNT;
    g_string_truncate(uj->raw, 0);
    uj->raw_ok = FALSE;
    uj->u_depth = 0;
}

static void doc_end(LwUsageJson *uj)
{
    if (uj->f.have_usage && uj->raw_ok) {
        uj->f.raw_usage = uj->raw->str;
        uj->f.raw_usage_len = uj->raw->len;
    }
    if (uj->on_doc != NULL)
        uj->on_doc(&uj->f, uj->on_doc_data);
    uj->root = 0;
}

/* ---- usage objects -------------------------------------------------------- */

static void cap_append(LwUsageJson *uj, gsize from, gsize to)
{
    if (uj->cap_over || to <= from)
        return;
    if (uj->cap->len + (to - from) > LW_USAGE_JSON_MAX_RAW) {
        uj->cap_over = TRUE;
        return;
    }
    g_string_append_len(uj->cap, uj->slice + from, (gssize)(to - from));
}

static void usage_begin(LwUsageJson *uj)
{
    uj->u_depth = uj->depth;
    lw_usage_fields_reset(&uj->ufields);
    g_string_truncate(uj->cap, 0);
    uj->cap_over = FALSE;
    uj->cap_from = yajl_get_bytes_consumed(uj->yh) - 1; /* the '{' */
}

static void usage_end(LwUsageJson *uj)
{
    cap_append(uj, uj->cap_from, yajl_get_bytes_consumed(uj->yh));
    uj->u_depth = 0;
    uj->f.have_usage = TRUE;
    uj->f.usage = uj->ufields;
    /* the last usage object of a document is the one kept */
    GString *t = uj->raw;
    uj->raw = uj->cap;
    uj->cap = t;
    uj->raw_ok = !uj->cap_over;
}

/* The member (parent, key) a scalar inside the usage object is, or FALSE
 * when it is nested deeper than the rules look. */
static gboolean usage_member(const LwUsageJson *uj, LwKey *ret_parent, LwKey *ret_key)
{
    int rel = uj->depth - uj->u_depth;
    if (rel == 0) {
        *ret_parent = LW_KEY_OTHER;
        *ret_key = uj->keys[uj->depth];
        return TRUE;
    }
    if (rel == 1 && uj->keys[uj->depth] != ARR) {
        *ret_parent = uj->keys[uj->u_depth];
        *ret_key = uj->keys[uj->depth];
        return TRUE;
    }
    return FALSE;
}

/* Offsets in feed_buf of the member whose key starts at `key_start` and
 * whose value ends where the parser is now, plus one adjacent comma, so
 * that removing [start, end) leaves exactly the other members. */
static gboolean member_span(const LwUsageJson *uj, gssize key_start, gsize *ret_start,
                            gsize *ret_end)
{
    if (key_start < 0)
        return FALSE;
    const char *b = uj->feed_buf;
    gsize ks = (gsize)key_start;
    gsize ne = uj->slice_off + yajl_get_bytes_consumed(uj->yh);
    gsize p = ks;
    while (p > 0 && g_ascii_isspace(b[p - 1]))
        p--;
    if (p > 0 && b[p - 1] == ',') {
        *ret_start = p - 1;
        *ret_end = ne;
        return TRUE;
    }
    gsize q = ne;
    while (q < uj->feed_len && g_ascii_isspace(b[q]))
        q++;
    if (q < uj->feed_len && b[q] == ',') {
        q++;
        while (q < uj->feed_len && g_ascii_isspace(b[q]))
            q++;
        ne = q;
    }
    *ret_start = ks;
    *ret_end = ne;
    return TRUE;
}

static void record_usage_null(LwUsageJson *uj)
{
    if (member_span(uj, uj->key_start, &uj->f.usage_null_start, &uj->f.usage_null_end))
        uj->f.usage_null = TRUE;
}

/* ---- text ----------------------------------------------------------------- */

static gboolean is_openai_text(const LwUsageJson *uj)
{
    int n = uj->depth - uj->root + 1;
    const guint8 *k = &uj->keys[uj->root];
    if (n >= 3 && k[0] == LW_KEY_CHOICES && k[1] == ARR) {
        if (n == 3)
            return k[2] == LW_KEY_TEXT;
        if (k[2] != LW_KEY_DELTA && k[2] != LW_KEY_MESSAGE)
            return FALSE;
        if (n == 4)
            return k[3] == LW_KEY_CONTENT || k[3] == LW_KEY_REFUSAL ||
                   k[3] == LW_KEY_REASONING || k[3] == LW_KEY_REASONING_CONTENT;
        return n == 7 && k[3] == LW_KEY_TOOL_CALLS && k[4] == ARR && k[5] == LW_KEY_FUNCTION &&
               k[6] == LW_KEY_ARGUMENTS;
    }
    if (n >= 3 && k[0] == LW_KEY_OUTPUT && k[1] == ARR) {
        if (n == 3)
            return k[2] == LW_KEY_ARGUMENTS;
        return n == 5 && k[2] == LW_KEY_CONTENT && k[3] == ARR &&
               (k[4] == LW_KEY_TEXT || k[4] == LW_KEY_REFUSAL);
    }
    return FALSE;
}

static gboolean is_anthropic_text(const LwUsageJson *uj)
{
    return AT(uj, LW_KEY_CONTENT, ARR, LW_KEY_TEXT) || AT(uj, LW_KEY_DELTA, LW_KEY_TEXT) ||
           AT(uj, LW_KEY_DELTA, LW_KEY_PARTIAL_JSON) || AT(uj, LW_KEY_DELTA, LW_KEY_THINKING) ||
           AT(uj, LW_KEY_CONTENT, ARR, LW_KEY_THINKING);
}

/* ---- yajl callbacks ------------------------------------------------------- */

static int on_null(void *ctx)
{
    LwUsageJson *uj = ctx;
    if (!value_begin(uj))
        return 0;
    if (in_doc(uj) && uj->u_depth == 0 && uj->format == LW_FORMAT_OPENAI && AT(uj, LW_KEY_USAGE))
        record_usage_null(uj);
    return 1;
}

static int on_boolean(void *ctx, int value)
{
    LwUsageJson *uj = ctx;
    if (!value_begin(uj))
        return 0;
    if (!in_doc(uj))
        return 1;
    LwKey parent, key;
    if (uj->u_depth > 0) {
        if (usage_member(uj, &parent, &key))
            lw_usage_fields_set_bool(&uj->ufields, parent, key, value != 0);
    } else if (AT(uj, LW_KEY_ERROR)) {
        uj->f.error |= value != 0;
    }
    return 1;
}

static int on_number(void *ctx, const char *s, size_t len)
{
    LwUsageJson *uj = ctx;
    if (!value_begin(uj))
        return 0;
    if (!in_doc(uj))
        return 1;
    LwKey parent, key;
    if (uj->u_depth > 0) {
        if (usage_member(uj, &parent, &key))
            lw_usage_fields_set_number(&uj->ufields, parent, key, s, len);
    } else if (AT(uj, LW_KEY_ERROR)) {
        gint64 v = 0;
        uj->f.error |= !lw_usage_fields_decimal(s, len, 0, &v) || v != 0;
    } else if (uj->format == LW_FORMAT_GEMINI && AT(uj, LW_KEY_CANDIDATES, ARR, LW_KEY_INDEX)) {
        gint64 v = -1;
        if (lw_usage_fields_decimal(s, len, 0, &v) && v >= 0)
            uj->cand_index = v;
    }
    return 1;
}

static void openai_string(LwUsageJson *uj, const unsigned char *s, gsize len)
{
    if (AT(uj, LW_KEY_MODEL) || AT(uj, LW_KEY_RESPONSE, LW_KEY_MODEL))
        copy_name(uj->model, LW_USAGE_JSON_MAX_NAME, &uj->f.model, s, len);
    else if (AT(uj, LW_KEY_SERVICE_TIER) || AT(uj, LW_KEY_RESPONSE, LW_KEY_SERVICE_TIER))
        copy_name(uj->tier, MAX_TIER, &uj->f.service_tier, s, len);
    else if (AT(uj, LW_KEY_ID) || AT(uj, LW_KEY_RESPONSE, LW_KEY_ID))
        copy_name(uj->id, LW_USAGE_JSON_MAX_NAME, &uj->f.id, s, len);
    else if (AT(uj, LW_KEY_DELTA))
        uj->f.delta_bytes += (gint64)len;
    else if (is_output_item_type(uj))
        count_output_item(uj, s, len);
    else if (AT(uj, LW_KEY_ITEM, LW_KEY_TYPE))
        uj->f.item_tool = tool_of(s, len);
    else if (is_openai_text(uj))
        uj->f.text_bytes += (gint64)len;
}

static void anthropic_string(LwUsageJson *uj, const unsigned char *s, gsize len)
{
    if (AT(uj, LW_KEY_MODEL) || AT(uj, LW_KEY_MESSAGE, LW_KEY_MODEL))
        copy_name(uj->model, LW_USAGE_JSON_MAX_NAME, &uj->f.model, s, len);
    else if (AT(uj, LW_KEY_ID) || AT(uj, LW_KEY_MESSAGE, LW_KEY_ID))
        copy_name(uj->id, LW_USAGE_JSON_MAX_NAME, &uj->f.id, s, len);
    else if (is_anthropic_text(uj))
        uj->f.text_bytes += (gint64)len;
}

static void gemini_string(LwUsageJson *uj, const unsigned char *s, gsize len)
{
    if (AT(uj, LW_KEY_MODEL_VERSION))
        copy_name(uj->model, LW_USAGE_JSON_MAX_NAME, &uj->f.model, s, len);
    else if (AT(uj, LW_KEY_RESPONSE_ID))
        copy_name(uj->id, LW_USAGE_JSON_MAX_NAME, &uj->f.id, s, len);
    else if (AT(uj, LW_KEY_CANDIDATES, ARR, LW_KEY_CONTENT, LW_KEY_PARTS, ARR, LW_KEY_TEXT))
        uj->part_text += (gint64)len;
    else if (AT(uj, LW_KEY_CANDIDATES, ARR, LW_KEY_FINISH_REASON))
        uj->cand_finished |= len > 0;
    else if (AT(uj, LW_KEY_PROMPT_FEEDBACK, LW_KEY_BLOCK_REASON))
        uj->f.blocked |= len > 0;
    else if (AT(uj, LW_KEY_CANDIDATES, ARR, LW_KEY_GROUNDING_METADATA, LW_KEY_WEB_SEARCH_QUERIES,
                ARR))
        uj->f.search_queries++; /* Google Search grounding is billed per query */
}

/* The bytes of a long string yajl did not see, for the string it reports
 * now (0 for any other). */
static guint64 take_string_extra(LwUsageJson *uj)
{
    guint64 extra = uj->string_extra;
    uj->string_extra = 0;
    return extra;
}

/* `len` counts the bytes kept from yajl too, so for a long string it is
 * more than `s` holds: nothing here reads `s` beyond LW_USAGE_JSON_MAX_NAME
 * (copy_name checks the length first), the rest only adds lengths up. */
static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    LwUsageJson *uj = ctx;
    len += (size_t)take_string_extra(uj);
    if (!value_begin(uj))
        return 0;
    if (!in_doc(uj))
        return 1;
    LwKey parent, key;
    if (uj->u_depth > 0) {
        /* Anthropic reports the tier and the region in the usage object */
        if (usage_member(uj, &parent, &key) && parent == LW_KEY_OTHER) {
            if (key == LW_KEY_SERVICE_TIER)
                copy_name(uj->tier, MAX_TIER, &uj->f.service_tier, s, len);
            else if (key == LW_KEY_INFERENCE_GEO)
                copy_name(uj->geo, MAX_GEO, &uj->f.inference_geo, s, len);
        }
        return 1;
    }
    if (AT(uj, LW_KEY_TYPE)) {
        copy_name(uj->type, MAX_TYPE, &uj->f.type, s, len);
        return 1;
    }
    if (AT(uj, LW_KEY_ERROR)) {
        uj->f.error |= len > 0;
        return 1;
    }
    switch (uj->format) {
    case LW_FORMAT_OPENAI:
        openai_string(uj, s, len);
        break;
    case LW_FORMAT_ANTHROPIC:
        anthropic_string(uj, s, len);
        break;
    case LW_FORMAT_GEMINI:
        gemini_string(uj, s, len);
        break;
    }
    return 1;
}

static int on_map_key(void *ctx, const unsigned char *s, size_t len)
{
    LwUsageJson *uj = ctx;
    take_string_extra(uj); /* a name that long is none of ours */
    if (!progress(uj))
        return 0;
    uj->keys[uj->depth] = (guint8)lw_usage_key_lookup((const char *)s, len);
    const char *p = (const char *)s;
    if (p > uj->feed_buf && p + len <= uj->feed_buf + uj->feed_len)
        uj->key_start = p - uj->feed_buf - 1;
    else
        uj->key_start = -1; /* escaped or split name: yajl's copy */
    return 1;
}

static gboolean push(LwUsageJson *uj, guint8 key)
{
    if (uj->depth >= LW_USAGE_JSON_MAX_DEPTH)
        return FALSE;
    uj->depth++;
    uj->keys[uj->depth] = key;
    uj->idx[uj->depth] = -1;
    return TRUE;
}

static int on_start_map(void *ctx)
{
    LwUsageJson *uj = ctx;
    if (!value_begin(uj))
        return 0;
    gboolean doc = FALSE, usage = FALSE;
    if (uj->depth == 0 && !uj->array_top) {
        doc = TRUE;
    } else if (uj->depth == 1 && uj->array_top) {
        doc = TRUE;
    } else if (in_doc(uj)) {
        if (uj->u_depth == 0 && is_usage_path(uj)) {
            usage = TRUE;
            uj->usage_key_start =
                uj->format == LW_FORMAT_OPENAI && AT(uj, LW_KEY_USAGE) ? uj->key_start : -1;
        }
        else if (AT(uj, LW_KEY_ERROR))
            uj->f.error = TRUE;
        else if (is_gemini_candidate(uj)) {
            uj->cand_finished = FALSE;
            uj->cand_index = -1;
        } else if (is_gemini_part(uj)) {
            uj->part_text = 0;
        }
    }
    if (!push(uj, LW_KEY_OTHER))
        return 0;
    if (doc)
        doc_begin(uj, uj->depth);
    if (usage)
        usage_begin(uj);
    return 1;
}

static int finish_top(LwUsageJson *uj)
{
    if (uj->depth > 0)
        return 1;
    uj->done_end = uj->slice_off + yajl_get_bytes_consumed(uj->yh);
    uj->state = LW_USAGE_JSON_DONE;
    return 0; /* stop: whatever follows the value is not ours to judge */
}

static int on_end_map(void *ctx)
{
    LwUsageJson *uj = ctx;
    if (!progress(uj))
        return 0;
    if (uj->u_depth > 0 && uj->depth == uj->u_depth) {
        if (uj->usage_key_start >= 0 &&
            member_span(uj, uj->usage_key_start, &uj->f.usage_obj_start, &uj->f.usage_obj_end))
            uj->f.usage_obj = TRUE;
        uj->usage_key_start = -1;
        usage_end(uj);
    }
    gboolean doc_closes = uj->root > 0 && uj->depth == uj->root;
    uj->depth--;
    if (doc_closes) {
        doc_end(uj);
    } else if (is_gemini_part(uj)) {
        /* thought parts are billed output too */
        uj->f.text_bytes += uj->part_text;
    } else if (is_gemini_candidate(uj) && uj->cand_finished) {
        gint64 i = uj->cand_index >= 0 ? uj->cand_index : uj->idx[uj->depth];
        uj->f.finished_mask |= G_GUINT64_CONSTANT(1) << MIN(i, 63);
    }
    return finish_top(uj);
}

static int on_start_array(void *ctx)
{
    LwUsageJson *uj = ctx;
    if (!value_begin(uj))
        return 0;
    if (uj->depth == 0)
        uj->array_top = TRUE;
    else if (in_doc(uj) && uj->u_depth == 0) {
        if (uj->format == LW_FORMAT_OPENAI && AT(uj, LW_KEY_CHOICES)) {
            uj->f.have_choices = TRUE;
        } else if (uj->format == LW_FORMAT_OPENAI && is_output_array(uj)) {
            /* a repeated member replaces the one before, as for a parser
             * that keeps the last */
            uj->f.have_output = TRUE;
            memset(uj->f.output_tools, 0, sizeof uj->f.output_tools);
        } else if (AT(uj, LW_KEY_ERROR)) {
            uj->f.error = TRUE;
        }
    }
    return push(uj, ARR) ? 1 : 0;
}

static int on_end_array(void *ctx)
{
    LwUsageJson *uj = ctx;
    if (!progress(uj))
        return 0;
    gint64 n = uj->idx[uj->depth] + 1;
    uj->depth--;
    if (in_doc(uj) && uj->u_depth == 0 && uj->format == LW_FORMAT_OPENAI && AT(uj, LW_KEY_CHOICES))
        uj->f.n_choices = n;
    return finish_top(uj);
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

/* ---- API ------------------------------------------------------------------ */

LwUsageJson *lw_usage_json_new(LwFormat format, LwDocFunc on_doc, void *data)
{
    LwUsageJson *uj = g_new(LwUsageJson, 1);
    memset(uj, 0, G_STRUCT_OFFSET(LwUsageJson, keys));
    uj->format = format;
    uj->on_doc = on_doc;
    uj->on_doc_data = data;
    uj->raw = g_string_sized_new(256);
    uj->cap = g_string_sized_new(256);
    lw_usage_json_reset(uj);
    return uj;
}

void lw_usage_json_free(LwUsageJson *uj)
{
    if (uj == NULL)
        return;
    if (uj->yh != NULL)
        yajl_free(uj->yh);
    g_string_free(uj->raw, TRUE);
    g_string_free(uj->cap, TRUE);
    g_free(uj);
}

void lw_usage_json_reset(LwUsageJson *uj)
{
    if (uj->yh != NULL)
        yajl_free(uj->yh);
    uj->yh = yajl_alloc(&callbacks, NULL, uj);
    /* Invalid UTF-8 inside a string (a provider cutting a character in two)
     * must not cost the usage that follows it. */
    yajl_config(uj->yh, yajl_dont_validate_strings, 1);
    uj->state = LW_USAGE_JSON_MORE;
    uj->fed = uj->total = uj->last_event = 0;
    memset(&uj->scan, 0, sizeof uj->scan);
    uj->string_extra = 0;
    uj->depth = 0;
    uj->root = 0;
    uj->array_top = FALSE;
    uj->u_depth = 0;
    uj->key_start = -1;
    uj->usage_key_start = -1;
    uj->keys[0] = LW_KEY_OTHER;
    uj->idx[0] = -1;
    if (uj->raw->allocated_len > 64 * 1024) {
        g_string_free(uj->raw, TRUE);
        uj->raw = g_string_sized_new(256);
    }
}

guint64 lw_usage_json_fed(const LwUsageJson *uj)
{
    return uj->total;
}

/* ---- long strings --------------------------------------------------------- */

/* Where the next '"' of a buffer is, searched once and again only when the
 * scan got past it (it was escaped): memchr runs over plain string bytes
 * instead of a loop visiting each. */
typedef struct {
    gboolean known;
    gsize at; /* its offset, or the buffer's length when there is none */
} NextQuote;

static gsize next_quote(NextQuote *nq, const char *p, gsize i, gsize n)
{
    if (!nq->known || (nq->at < i && nq->at < n)) {
        const char *q = memchr(p + i, '"', n - i);
        nq->at = q != NULL ? (gsize)(q - p) : n;
        nq->known = TRUE;
    }
    return nq->at;
}

/* In a string, outside any escape: the end of the plain run from i (the
 * next '"' or backslash, or n). */
static gsize plain_run(NextQuote *nq, const char *p, gsize i, gsize n)
{
    gsize stop = next_quote(nq, p, i, n);
    const char *bs = memchr(p + i, '\\', stop - i);
    return bs != NULL ? (gsize)(bs - p) : stop;
}

/* An escaped byte, or a digit of a \uXXXX. */
static void escape_byte(Scan *sc, char c)
{
    if (sc->escaped) {
        sc->escaped = FALSE;
        sc->hex_left = c == 'u' ? 4 : 0;
    } else {
        sc->hex_left--;
    }
}

/* Follows the bytes yajl was given after its last parse event. */
static void tail_scan(Scan *sc, const char *p, gsize n)
{
    NextQuote nq = {FALSE, 0};
    gsize i = 0;
    while (i < n && sc->phase != TAIL_OTHER) {
        if (sc->phase == TAIL_BETWEEN) {
            char c = p[i++];
            if (c == '"') {
                sc->phase = TAIL_STRING;
                sc->string_len = 0;
                sc->escaped = FALSE;
                sc->hex_left = 0;
            } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ',' && c != ':') {
                sc->phase = TAIL_OTHER;
            }
        } else if (sc->escaped || sc->hex_left > 0) {
            escape_byte(sc, p[i++]);
            sc->string_len++;
        } else {
            gsize stop = plain_run(&nq, p, i, n);
            sc->string_len += stop - i;
            i = stop;
            if (i == n)
                break;
            if (p[i++] == '"') {
                sc->phase = TAIL_BETWEEN; /* yajl reported it; only after a failure */
            } else {
                sc->escaped = TRUE;
                sc->string_len++;
            }
        }
    }
}

/* How many of the next `left` bytes yajl may have before the open string
 * (if any) reaches the cap; 0: it has, outside any escape, so the rest of
 * it is to be skipped. */
static gsize yajl_budget(const Scan *sc, gsize left)
{
    gsize n = MIN(left, (gsize)SLICE);
    const guint64 cap = LW_USAGE_JSON_MAX_STRING;
    switch (sc->phase) {
    case TAIL_OTHER:
        return n;
    case TAIL_BETWEEN:
        return MIN(n, cap); /* a string starting in there stays under the cap */
    case TAIL_STRING:
        break;
    }
    if (sc->string_len < cap)
        return MIN(n, cap - sc->string_len);
    return sc->escaped || sc->hex_left > 0 ? 1 : 0; /* to the escape's end, byte by byte */
}

/* Eliding: skips [p, p+n) up to the string's closing quote, which is left
 * for yajl. Returns how many bytes were skipped. */
static gsize skip_string(Scan *sc, const char *p, gsize n)
{
    NextQuote nq = {FALSE, 0};
    gsize i = 0;
    while (i < n) {
        if (sc->escaped || sc->hex_left > 0) {
            escape_byte(sc, p[i++]);
            continue;
        }
        i = plain_run(&nq, p, i, n);
        if (i == n)
            break;
        if (p[i] == '"') {
            sc->eliding = FALSE;
            break;
        }
        sc->escaped = TRUE; /* a backslash */
        i++;
    }
    sc->elided += i;
    return i;
}

/* Gives yajl [off, off+n) of the current feed. */
static void parse_slice(LwUsageJson *uj, gsize off, gsize n)
{
    uj->slice = uj->feed_buf + off;
    uj->slice_len = n;
    uj->slice_off = off;
    guint64 start = uj->fed;
    yajl_status st = yajl_parse(uj->yh, (const unsigned char *)uj->slice, n);
    if (uj->state != LW_USAGE_JSON_MORE)
        return; /* DONE (or a cap) from inside a callback */
    if (st != yajl_status_ok) {
        uj->state = LW_USAGE_JSON_FAILED;
        return;
    }
    if (uj->u_depth > 0) {
        cap_append(uj, uj->cap_from, n);
        uj->cap_from = 0;
    }
    if (uj->last_event > start) {
        /* what yajl holds now starts at its last event */
        uj->scan.phase = TAIL_BETWEEN;
        gsize from = (gsize)(uj->last_event - start);
        tail_scan(&uj->scan, uj->slice + from, n - from);
    } else {
        tail_scan(&uj->scan, uj->slice, n);
    }
    uj->fed += n;
    if (uj->fed - uj->last_event > LW_USAGE_JSON_MAX_TOKEN)
        uj->state = LW_USAGE_JSON_FAILED; /* yajl would buffer a token without bound */
}

LwUsageJsonResult lw_usage_json_feed(LwUsageJson *uj, const char *buf, gsize len, gsize *ret_end)
{
    if (uj->state != LW_USAGE_JSON_MORE)
        return uj->state;
    uj->feed_buf = buf;
    uj->feed_len = len;
    uj->key_start = -1; /* an offset in the previous buffer means nothing here */
    uj->usage_key_start = -1;
    for (gsize off = 0; off < len && uj->state == LW_USAGE_JSON_MORE;) {
        gsize n = 0;
        if (uj->scan.eliding) {
            n = skip_string(&uj->scan, buf + off, len - off);
            if (!uj->scan.eliding) {
                /* yajl reports the string with its closing quote, next */
                uj->string_extra = uj->scan.elided;
                uj->scan.string_len = 0;
            }
        } else if ((n = yajl_budget(&uj->scan, len - off)) > 0) {
            parse_slice(uj, off, n);
        } else {
            uj->scan.eliding = TRUE;
            uj->scan.elided = 0;
            if (uj->u_depth > 0)
                uj->cap_over = TRUE; /* the raw usage text would have a hole */
        }
        uj->total += n;
        off += n;
    }
    if (uj->state == LW_USAGE_JSON_DONE && ret_end != NULL)
        *ret_end = uj->done_end;
    uj->feed_buf = NULL;
    uj->feed_len = 0;
    return uj->state;
}
