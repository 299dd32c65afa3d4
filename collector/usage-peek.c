/* usage-peek.c - the pre-parse scan (see usage-peek.h). */
#include "usage-peek.h"

#include <string.h>

typedef enum {
    NAME_OTHER,
    NAME_USAGE,
    NAME_ERROR,
    NAME_X_GROQ,
    NAME_USAGE_METADATA,
    NAME_MODEL,
    NAME_ID,
    NAME_TYPE,
    NAME_FINISH_REASON,
    NAME_PROMPT_FEEDBACK,
    NAME_GROUNDING,
    NAME_TEXT, /* + LwPeekText */
} Name;

#define IS(lit) (len == sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)

static int classify(const char *s, gsize len, LwPeekText *ret_text)
{
    switch (len) {
    case 2:
        return IS("id") ? NAME_ID : NAME_OTHER;
    case 4:
        if (IS("text")) {
            *ret_text = LW_PEEK_TEXT;
            return NAME_TEXT;
        }
        return IS("type") ? NAME_TYPE : NAME_OTHER;
    case 5:
        if (IS("usage"))
            return NAME_USAGE;
        if (IS("error"))
            return NAME_ERROR;
        if (IS("model"))
            return NAME_MODEL;
        if (IS("delta")) {
            *ret_text = LW_PEEK_DELTA;
            return NAME_TEXT;
        }
        return NAME_OTHER;
    case 6:
        return IS("x_groq") ? NAME_X_GROQ : NAME_OTHER;
    case 8:
        if (IS("thinking")) {
            *ret_text = LW_PEEK_REASONING;
            return NAME_TEXT;
        }
        return NAME_OTHER;
    case 7:
        if (IS("content")) {
            *ret_text = LW_PEEK_CONTENT;
            return NAME_TEXT;
        }
        if (IS("refusal")) {
            *ret_text = LW_PEEK_REFUSAL;
            return NAME_TEXT;
        }
        return NAME_OTHER;
    case 9:
        if (IS("arguments")) {
            *ret_text = LW_PEEK_ARGUMENTS;
            return NAME_TEXT;
        }
        if (IS("reasoning")) {
            *ret_text = LW_PEEK_REASONING;
            return NAME_TEXT;
        }
        return NAME_OTHER;
    case 10:
        return IS("responseId") ? NAME_ID : NAME_OTHER;
    case 11:
        return IS("blockReason") ? NAME_PROMPT_FEEDBACK : NAME_OTHER;
    case 12:
        if (IS("partial_json")) {
            *ret_text = LW_PEEK_PARTIAL_JSON;
            return NAME_TEXT;
        }
        if (IS("modelVersion"))
            return NAME_MODEL;
        return IS("finishReason") ? NAME_FINISH_REASON : NAME_OTHER;
    case 13:
        return IS("usageMetadata") ? NAME_USAGE_METADATA : NAME_OTHER;
    case 14:
        return IS("promptFeedback") ? NAME_PROMPT_FEEDBACK : NAME_OTHER;
    case 16:
        return IS("webSearchQueries") ? NAME_GROUNDING : NAME_OTHER;
    case 17:
        if (IS("reasoning_content")) {
            *ret_text = LW_PEEK_REASONING;
            return NAME_TEXT;
        }
        return NAME_OTHER;
    default:
        return NAME_OTHER;
    }
}

#undef IS

/* The closing quote of the string whose content starts at `s`, or NULL. */
static const char *string_end(const char *s, const char *end)
{
    for (;;) {
        const char *q = memchr(s, '"', (gsize)(end - s));
        if (q == NULL)
            return NULL;
        gsize slashes = 0;
        for (const char *b = q; b > s && b[-1] == '\\'; b--)
            slashes++;
        if (slashes % 2 == 0)
            return q;
        s = q + 1;
    }
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = g_ascii_xdigit_value(p[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decoded UTF-8 length of the string content [s, e) (no quotes). */
static gint64 decoded_len(const char *s, const char *e)
{
    gint64 n = 0;
    while (s < e) {
        const char *bs = memchr(s, '\\', (gsize)(e - s));
        if (bs == NULL)
            return n + (e - s);
        n += bs - s;
        s = bs + 1;
        if (s >= e)
            break;
        if (*s != 'u' || e - s < 5) {
            n++;
            s++;
            continue;
        }
        int cp = hex4(s + 1);
        s += 5;
        if (cp < 0x80)
            n += 1;
        else if (cp < 0x800)
            n += 2;
        else if (cp >= 0xD800 && cp < 0xDC00 && e - s >= 6 && s[0] == '\\' && s[1] == 'u' &&
                 hex4(s + 2) >= 0xDC00 && hex4(s + 2) < 0xE000) {
            n += 4; /* a surrogate pair is one 4-byte character */
            s += 6;
        } else {
            n += 3;
        }
    }
    return n;
}

/* A "type" value [s, e) naming a tool call item ("web_search_call"). */
static gboolean is_call_type(const char *s, const char *e)
{
    return e - s >= 5 && memcmp(e - 5, "_call", 5) == 0;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

void lw_usage_peek(const char *json, gsize len, LwPeek *ret)
{
    memset(ret, 0, sizeof *ret);
    const char *p = json, *end = json + len;
    while (p < end) {
        const char *open = memchr(p, '"', (gsize)(end - p));
        if (open == NULL)
            return;
        const char *s = open + 1;
        const char *close = string_end(s, end);
        if (close == NULL) {
            ret->truncated = TRUE;
            return;
        }
        p = skip_ws(close + 1, end);
        if (p >= end || *p != ':')
            continue; /* a value, not a member name */
        p = skip_ws(p + 1, end);
        if (p >= end)
            return;

        LwPeekText text = LW_PEEK_TEXT_COUNT;
        switch (classify(s, (gsize)(close - s), &text)) {
        case NAME_USAGE:
            if (end - p >= 4 && memcmp(p, "null", 4) == 0)
                ret->usage_null++;
            else
                ret->usage_value++;
            break;
        case NAME_ERROR:
            if (*p != 'n' && *p != 'f')
                ret->error = TRUE;
            break;
        case NAME_X_GROQ:
            ret->x_groq = TRUE;
            break;
        case NAME_USAGE_METADATA:
            ret->usage_metadata = TRUE;
            break;
        case NAME_MODEL:
            ret->model = TRUE;
            break;
        case NAME_ID:
            ret->id = TRUE;
            break;
        case NAME_FINISH_REASON:
            ret->finish_reason = TRUE;
            break;
        case NAME_PROMPT_FEEDBACK:
            ret->prompt_feedback = TRUE;
            break;
        case NAME_GROUNDING:
            ret->grounding = TRUE;
            break;
        case NAME_TYPE:
        case NAME_TEXT:
            if (*p == '"') {
                const char *vs = p + 1;
                const char *ve = string_end(vs, end);
                if (ve == NULL) {
                    ret->truncated = TRUE;
                    return;
                }
                if (text != LW_PEEK_TEXT_COUNT) {
                    ret->text[text] += decoded_len(vs, ve);
                } else {
                    ret->call_item |= is_call_type(vs, ve);
                    if (ret->type == NULL) {
                        ret->type = vs;
                        ret->type_len = (gsize)(ve - vs);
                    }
                }
                p = ve + 1;
            }
            break;
        default:
            /* Never a name the scan knows, which have no escapes; the
             * parser decodes it, and it may be one. */
            if (memchr(s, '\\', (gsize)(close - s)) != NULL)
                ret->escaped_name = TRUE;
            break;
        }
    }
}
