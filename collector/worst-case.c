/* worst-case.c - the most a request can cost. See worst-case.h. */
#include "worst-case.h"

#include <string.h>

/* JSON members through which a request can make the provider read input
 * the body does not contain. */
static const char *const external_input_markers[] = {
    "\"image_url\"", "\"file_id\"", "\"file_uri\"", "\"fileUri\"", "\"file_url\"",
    "\"input_file\"", "\"document\"", "\"url\":",
    "\"item_reference\"", /* a Responses input item stored by an earlier turn */
};

static gboolean references_external_input(const char *body, gsize len)
{
    if (body == NULL)
        return FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(external_input_markers); i++) {
        const char *m = external_input_markers[i];
        if (memmem(body, len, m, strlen(m)) != NULL)
            return TRUE;
    }
    return FALSE;
}

static gboolean is_embedding(LwEndpoint endpoint)
{
    return endpoint == LW_ENDPOINT_EMBEDDINGS || endpoint == LW_ENDPOINT_EMBED_CONTENT;
}

/* The most input tokens the provider accepts for the model, or -1 when
 * unknown. A long-context tier that starts at or above the listed context
 * window shows the provider takes more than that window for a price of its
 * own (Anthropic's 1M-token beta for Claude Sonnet 4 and 4.5 lists a 200k
 * window and prices input above 200k): asked for, the window then bounds
 * nothing; not asked for, the provider refuses input beyond it. */
static gint64 input_window(const LwPrice *price, const LwRequestInfo *info)
{
    gint64 window = price->max_input_tokens;
    for (guint i = 0; window > 0 && info->long_context && i < price->n_tiers; i++)
        if (price->tiers[i].above_input_tokens >= window)
            return -1;
    return window;
}

/* Gemini's thinking budget, where it may come on top of the max-tokens
 * field: Google documents thinking and answer as apart (in practice
 * maxOutputTokens is seen bounding both), so a bound counts both. */
static gint64 thinking_on_top(const LwRequestInfo *info)
{
    return MAX(info->thinking_budget, 0);
}

static gint64 max4(gint64 a, gint64 b, gint64 c, gint64 d)
{
    return MAX(MAX(a, b), MAX(c, d));
}

void lw_worst_case(const LwPrice *price, const LwRequestInfo *info, const char *body,
                   gsize body_len, gint64 max_output, LwWorstCase *ret)
{
    memset(ret, 0, sizeof *ret);
    gint64 window = input_window(price, info);

    if (info->server_state || references_external_input(body, body_len)) {
        ret->input_bounded = window > 0;
        ret->input_tokens = window;
    } else {
        ret->input_bounded = TRUE;
        ret->input_tokens = info->body_bytes;
        if (window > 0)
            ret->input_tokens = MIN(ret->input_tokens, window);
    }

    gint64 per_choice = max_output >= 0 ? max_output : info->max_output;
    /* An embedding is all input: it has no max-tokens field and its
     * model no output limit, yet it can produce no output tokens. */
    if (is_embedding(info->endpoint))
        per_choice = 0;
    if (per_choice < 0) {
        per_choice = price->max_output_tokens; /* bounds thinking and answer together */
    } else if (per_choice > 0 && thinking_on_top(info) > 0) {
        per_choice += thinking_on_top(info);
        if (price->max_output_tokens > 0)
            per_choice = MIN(per_choice, price->max_output_tokens);
    }
    if (per_choice >= 0) {
        ret->output_bounded = TRUE;
        ret->output_tokens = lw_pusd_mul(per_choice, MAX(info->choices, 1));
        if (per_choice == 0)
            ret->output_tokens = 0;
    }

    LwRates r = lw_pricing_rates(price, ret->input_bounded ? ret->input_tokens : G_MAXINT64);
    ret->input_rate = max4(r.input, r.cached_input, r.cache_write, r.cache_write_1h);
    ret->output_rate = r.output;
    gint64 cost = 0;
    if (ret->input_bounded)
        cost = lw_pusd_mul(ret->input_tokens, ret->input_rate);
    if (ret->output_bounded)
        cost = lw_pusd_add(cost, lw_pusd_mul(ret->output_tokens, ret->output_rate));
    ret->pusd = cost;
}

gint64 lw_worst_case_max_output(const LwWorstCase *w, const LwRequestInfo *info,
                                gint64 remaining_pusd)
{
    if (!w->input_bounded)
        return -1;
    gint64 input_cost = lw_pusd_mul(w->input_tokens, w->input_rate);
    if (remaining_pusd <= input_cost)
        return 0;
    if (w->output_rate <= 0)
        return G_MAXINT32;
    gint64 per_token = lw_pusd_mul(w->output_rate, MAX(info->choices, 1));
    /* The field written bounds the answer; the thinking budget comes on top. */
    return MAX((remaining_pusd - input_cost) / per_token - thinking_on_top(info), 0);
}
