/* usage-fields.c - usage objects to normalised tokens (see usage-fields.h). */
#include "usage-fields.h"

#include <string.h>

void lw_usage_fields_reset(LwUsageFields *f)
{
    f->present = 0;
}

static gboolean has(const LwUsageFields *f, LwUsageField field)
{
    return (f->present & (G_GUINT64_CONSTANT(1) << field)) != 0;
}

gboolean lw_usage_fields_has(const LwUsageFields *f, LwUsageField field)
{
    return has(f, field);
}

static gint64 get(const LwUsageFields *f, LwUsageField field)
{
    return has(f, field) ? f->v[field] : 0;
}

static void put(LwUsageFields *f, LwUsageField field, gint64 value)
{
    f->v[field] = value;
    f->present |= G_GUINT64_CONSTANT(1) << field;
}

/* Which field (and decimal scale) a member is, or -1. */
static int field_of(LwKey parent, LwKey key, int *ret_scale)
{
    *ret_scale = 0;
    switch (parent) {
    case LW_KEY_OTHER:
        switch (key) {
        case LW_KEY_PROMPT_TOKENS: return LW_UF_PROMPT_TOKENS;
        case LW_KEY_COMPLETION_TOKENS: return LW_UF_COMPLETION_TOKENS;
        case LW_KEY_TOTAL_TOKENS: return LW_UF_TOTAL_TOKENS;
        case LW_KEY_INPUT_TOKENS: return LW_UF_INPUT_TOKENS;
        case LW_KEY_OUTPUT_TOKENS: return LW_UF_OUTPUT_TOKENS;
        case LW_KEY_REASONING_TOKENS: return LW_UF_REASONING_TOP;
        case LW_KEY_PROMPT_CACHE_HIT_TOKENS: return LW_UF_CACHE_HIT;
        case LW_KEY_PROMPT_CACHE_MISS_TOKENS: return LW_UF_CACHE_MISS;
        case LW_KEY_CACHE_READ_INPUT_TOKENS: return LW_UF_CACHE_READ_INPUT;
        case LW_KEY_CACHE_CREATION_INPUT_TOKENS: return LW_UF_CACHE_CREATION_INPUT;
        case LW_KEY_PROMPT_TOKEN_COUNT: return LW_UF_G_PROMPT;
        case LW_KEY_CACHED_CONTENT_TOKEN_COUNT: return LW_UF_G_CACHED;
        case LW_KEY_CANDIDATES_TOKEN_COUNT: return LW_UF_G_CANDIDATES;
        case LW_KEY_THOUGHTS_TOKEN_COUNT: return LW_UF_G_THOUGHTS;
        case LW_KEY_TOOL_USE_PROMPT_TOKEN_COUNT: return LW_UF_G_TOOL_USE_PROMPT;
        case LW_KEY_TOTAL_TOKEN_COUNT: return LW_UF_G_TOTAL;
        case LW_KEY_COST: *ret_scale = 12; return LW_UF_COST_PUSD;
        /* 1 tick = 1e-10 USD = 100 pico-USD */
        case LW_KEY_COST_IN_USD_TICKS: *ret_scale = 2; return LW_UF_TICKS_PUSD;
        default: return -1;
        }
    case LW_KEY_PROMPT_TOKENS_DETAILS:
    case LW_KEY_INPUT_TOKENS_DETAILS:
        switch (key) {
        case LW_KEY_CACHED_TOKENS: return LW_UF_CACHED_TOKENS;
        case LW_KEY_CACHE_WRITE_TOKENS: return LW_UF_CACHE_WRITE_TOKENS;
        case LW_KEY_CACHE_READ_INPUT_TOKENS: return LW_UF_DETAIL_CACHE_READ;
        case LW_KEY_CACHE_CREATION_INPUT_TOKENS: return LW_UF_DETAIL_CACHE_CREATION;
        default: return -1;
        }
    case LW_KEY_COMPLETION_TOKENS_DETAILS:
    case LW_KEY_OUTPUT_TOKENS_DETAILS:
        switch (key) {
        case LW_KEY_REASONING_TOKENS: return LW_UF_REASONING_TOKENS;
        case LW_KEY_THINKING_TOKENS: return LW_UF_THINKING_TOKENS;
        default: return -1;
        }
    case LW_KEY_CACHE_CREATION:
        switch (key) {
        case LW_KEY_EPHEMERAL_5M_INPUT_TOKENS: return LW_UF_EPHEMERAL_5M;
        case LW_KEY_EPHEMERAL_1H_INPUT_TOKENS: return LW_UF_EPHEMERAL_1H;
        default: return -1;
        }
    case LW_KEY_COST:
        *ret_scale = 12;
        return key == LW_KEY_TOTAL_COST ? LW_UF_TOTAL_COST_PUSD : -1;
    case LW_KEY_COST_DETAILS:
        *ret_scale = 12;
        return key == LW_KEY_UPSTREAM_INFERENCE_COST ? LW_UF_UPSTREAM_COST_PUSD : -1;
    case LW_KEY_SERVER_TOOL_USE:
        return key == LW_KEY_WEB_SEARCH_REQUESTS ? LW_UF_WEB_SEARCHES : -1;
    default:
        return -1;
    }
}

gboolean lw_usage_fields_set_number(LwUsageFields *f, LwKey parent, LwKey key, const char *text,
                                    gsize len)
{
    int scale;
    int field = field_of(parent, key, &scale);
    gint64 value;
    if (field < 0 || !lw_usage_fields_decimal(text, len, scale, &value))
        return FALSE;
    put(f, (LwUsageField)field, value);
    return TRUE;
}

void lw_usage_fields_set_bool(LwUsageFields *f, LwKey parent, LwKey key, gboolean value)
{
    if (parent == LW_KEY_OTHER && key == LW_KEY_IS_BYOK)
        put(f, LW_UF_IS_BYOK, value ? 1 : 0);
}

void lw_usage_fields_merge(LwUsageFields *into, const LwUsageFields *from)
{
    for (int i = 0; i < LW_UF_COUNT; i++) {
        if (has(from, (LwUsageField)i))
            put(into, (LwUsageField)i, from->v[i]);
    }
}

static gboolean has_any(const LwUsageFields *f, LwUsageField first, LwUsageField last)
{
    for (int i = (int)first; i <= (int)last; i++) {
        if (has(f, (LwUsageField)i))
            return TRUE;
    }
    return FALSE;
}

/* max(reported, total - input) for an output count, and the reasoning that
 * goes with it: what total_tokens says beyond the reported output can only
 * be output the provider left out of it (xAI's additive reasoning, compat
 * layers' thinking), so it is reasoning. */
static void output_from_total(const LwUsageFields *f, LwUsageField out_field, gint64 input,
                              gint64 reasoning, LwTokens *t)
{
    gint64 reported = get(f, out_field);
    t->output_tokens = reported;
    t->reasoning_tokens = reasoning;
    if (has(f, LW_UF_TOTAL_TOKENS) && get(f, LW_UF_TOTAL_TOKENS) - input > reported) {
        t->output_tokens = get(f, LW_UF_TOTAL_TOKENS) - input;
        t->reasoning_tokens = MAX(reasoning, t->output_tokens - reported);
    }
}

/* cache_write_tokens is every write; cache_write_1h_tokens the part with
 * the 1-hour TTL (ledger.h), from the cache_creation breakdown. Writes are
 * the larger of the reported total and the breakdown's sum: an Anthropic
 * stream's message_delta brings the newer cumulative total (after server
 * tool turns) without a breakdown, so message_start's breakdown is stale,
 * and cumulative counts only grow. Writes no breakdown covers are 5-minute
 * ones, the default TTL, as Anthropic bills them. Returns the writes. */
static gint64 cache_writes(const LwUsageFields *f, gint64 total, LwTokens *t)
{
    gint64 by_ttl = get(f, LW_UF_EPHEMERAL_5M) + get(f, LW_UF_EPHEMERAL_1H);
    t->cache_write_tokens = MAX(total, by_ttl);
    t->cache_write_1h_tokens = get(f, LW_UF_EPHEMERAL_1H);
    return t->cache_write_tokens;
}

gboolean lw_usage_fields_normalise(const LwUsageFields *f, LwFormat format, LwTokens *ret_tokens,
                                   gint64 *ret_cost_pusd)
{
    LwTokens t = {0};
    gint64 reasoning;

    if (has_any(f, LW_UF_G_PROMPT, LW_UF_G_TOTAL)) {
        t.input_tokens = get(f, LW_UF_G_PROMPT) + get(f, LW_UF_G_TOOL_USE_PROMPT);
        t.cached_input_tokens = get(f, LW_UF_G_CACHED);
        t.output_tokens = get(f, LW_UF_G_CANDIDATES) + get(f, LW_UF_G_THOUGHTS);
        t.reasoning_tokens = get(f, LW_UF_G_THOUGHTS);
    } else if (has(f, LW_UF_PROMPT_TOKENS)) {
        t.input_tokens = get(f, LW_UF_PROMPT_TOKENS);
        t.cached_input_tokens = has(f, LW_UF_CACHE_HIT) ? get(f, LW_UF_CACHE_HIT)
                                                         : get(f, LW_UF_CACHED_TOKENS);
        cache_writes(f, get(f, LW_UF_CACHE_WRITE_TOKENS), &t);
        reasoning = has(f, LW_UF_REASONING_TOKENS) ? get(f, LW_UF_REASONING_TOKENS)
                                                   : get(f, LW_UF_REASONING_TOP);
        output_from_total(f, LW_UF_COMPLETION_TOKENS, t.input_tokens, reasoning, &t);
    } else if (format == LW_FORMAT_ANTHROPIC || has(f, LW_UF_CACHE_READ_INPUT) ||
               has(f, LW_UF_CACHE_CREATION_INPUT)) {
        if (!has_any(f, LW_UF_INPUT_TOKENS, LW_UF_OUTPUT_TOKENS) &&
            !has(f, LW_UF_CACHE_READ_INPUT) && !has(f, LW_UF_CACHE_CREATION_INPUT))
            return FALSE;
        t.cached_input_tokens = get(f, LW_UF_CACHE_READ_INPUT);
        gint64 creation = cache_writes(f, get(f, LW_UF_CACHE_CREATION_INPUT), &t);
        t.input_tokens = get(f, LW_UF_INPUT_TOKENS) + t.cached_input_tokens + creation;
        t.output_tokens = get(f, LW_UF_OUTPUT_TOKENS);
        t.reasoning_tokens = get(f, LW_UF_THINKING_TOKENS);
    } else if (has(f, LW_UF_INPUT_TOKENS) || has(f, LW_UF_OUTPUT_TOKENS)) {
        t.input_tokens = get(f, LW_UF_INPUT_TOKENS);
        t.cached_input_tokens = has(f, LW_UF_CACHED_TOKENS) ? get(f, LW_UF_CACHED_TOKENS)
                                                            : get(f, LW_UF_DETAIL_CACHE_READ);
        cache_writes(f,
                     has(f, LW_UF_CACHE_WRITE_TOKENS) ? get(f, LW_UF_CACHE_WRITE_TOKENS)
                                                      : get(f, LW_UF_DETAIL_CACHE_CREATION),
                     &t);
        output_from_total(f, LW_UF_OUTPUT_TOKENS, t.input_tokens, get(f, LW_UF_REASONING_TOKENS),
                          &t);
    } else {
        return FALSE;
    }

    /* Keep the "of which" invariants whatever the provider sent, so a
     * price computation never sees a negative uncached remainder. */
    t.input_tokens = MAX(t.input_tokens, 0);
    t.cached_input_tokens = CLAMP(t.cached_input_tokens, 0, t.input_tokens);
    t.cache_write_tokens = CLAMP(t.cache_write_tokens, 0, t.input_tokens - t.cached_input_tokens);
    t.cache_write_1h_tokens = CLAMP(t.cache_write_1h_tokens, 0, t.cache_write_tokens);
    t.output_tokens = MAX(t.output_tokens, 0);
    t.reasoning_tokens = CLAMP(t.reasoning_tokens, 0, t.output_tokens);

    gint64 cost = -1;
    if (has(f, LW_UF_TICKS_PUSD))
        cost = get(f, LW_UF_TICKS_PUSD);
    else if (has(f, LW_UF_TOTAL_COST_PUSD))
        cost = get(f, LW_UF_TOTAL_COST_PUSD);
    else if (has(f, LW_UF_COST_PUSD)) {
        /* with BYOK, cost is OpenRouter's fee; the upstream charged the rest */
        cost = get(f, LW_UF_COST_PUSD);
        if (get(f, LW_UF_IS_BYOK) == 1 && has(f, LW_UF_UPSTREAM_COST_PUSD))
            cost += get(f, LW_UF_UPSTREAM_COST_PUSD);
    }
    if (cost < 0)
        cost = -1;

    *ret_tokens = t;
    *ret_cost_pusd = cost;
    return TRUE;
}

gboolean lw_usage_fields_decimal(const char *text, gsize len, int scale, gint64 *ret)
{
    const char *p = text, *end = text + len;
    gboolean negative = FALSE;
    guint64 mant = 0;
    int exp10 = 0, digits = 0;
    gboolean any = FALSE, round_up = FALSE, dropped_seen = FALSE;

    if (p < end && *p == '-') {
        negative = TRUE;
        p++;
    }
    /* 19 significant digits always fit in a guint64 */
    for (; p < end && g_ascii_isdigit(*p); p++) {
        any = TRUE;
        if (digits < 19) {
            if (mant > 0 || *p != '0') {
                mant = mant * 10 + (guint64)(*p - '0');
                digits++;
            }
        } else {
            if (!dropped_seen) {
                round_up = *p >= '5';
                dropped_seen = TRUE;
            }
            exp10++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        for (; p < end && g_ascii_isdigit(*p); p++) {
            any = TRUE;
            if (digits < 19) {
                if (mant > 0 || *p != '0')
                    digits++;
                mant = mant * 10 + (guint64)(*p - '0');
                exp10--;
            } else if (!dropped_seen) {
                round_up = *p >= '5';
                dropped_seen = TRUE;
            }
        }
    }
    if (!any)
        return FALSE;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        gboolean eneg = FALSE;
        int e = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !g_ascii_isdigit(*p))
            return FALSE;
        for (; p < end && g_ascii_isdigit(*p); p++)
            e = MIN(e * 10 + (*p - '0'), 10000);
        exp10 += eneg ? -e : e;
    }
    if (p != end)
        return FALSE;

    int e = exp10 + scale;
    if (mant == 0) {
        *ret = 0;
        return TRUE;
    }
    if (e >= 0) {
        if (round_up && mant < G_MAXUINT64)
            mant++;
        for (; e > 0; e--) {
            if (mant > G_MAXINT64 / 10)
                return FALSE;
            mant *= 10;
        }
    } else if (e < -19) {
        mant = 0;
    } else {
        guint64 div = 1;
        for (int i = 0; i < -e; i++)
            div *= 10;
        guint64 q = mant / div, r = mant % div;
        /* half away from zero; digits dropped past the 19th only matter
         * when the kept remainder is just under half */
        if (r >= div - r || (div - r == r + 1 && round_up))
            q++;
        mant = q;
    }
    if (mant > (guint64)G_MAXINT64)
        return FALSE;
    *ret = negative ? -(gint64)mant : (gint64)mant;
    return TRUE;
}
