/* worst-case.h - the most a request can cost, known before it is sent.
 *
 * Budgets reserve this bound at admission, so concurrent requests cannot
 * together overrun a limit (DESIGN §4). The bound must be a true upper
 * bound, never an estimate:
 *   input   at most one token per body byte (tokenisers never produce more
 *           tokens than bytes of text, and a JSON body holds more bytes than
 *           the text it carries), capped by the model's context window; when
 *           the body cannot bound the input — server-side conversation state
 *           (previous_response_id), media or files referenced by URL or id —
 *           the context window is the bound, and with no known window there
 *           is none (nor when the request asks for a long-context beta
 *           whose tier starts at or above the listed window: the provider
 *           then serves beyond it)
 *   output  choices x (the max-tokens field, plus a Gemini thinking budget
 *           up to the model's output limit; or the model's output limit),
 *           capped by the context window; with neither there is none; an
 *           embedding has none to bound: 0
 *   price   input at the highest input-side rate (uncached, cached, cache
 *           write 5m/1h) of the tier the input bound reaches; output at that
 *           tier's output rate
 *
 * Thread-safety: pure functions.
 */
#pragma once

#include <glib.h>

#include "inspect.h"
#include "pricing.h"

typedef struct {
    gboolean input_bounded;
    gboolean output_bounded;
    gint64 input_tokens;  /* valid when input_bounded */
    gint64 output_tokens; /* valid when output_bounded */
    gint64 input_rate;    /* pico-USD per token used for the input bound */
    gint64 output_rate;   /* pico-USD per token */
    gint64 pusd;          /* the bound, when both are bounded; else the bounded part */
} LwWorstCase;

/* Computes the bound for a request to a model priced `price` (not NULL).
 * `body` is the request body (may be NULL). `max_output` >= 0 replaces the
 * request's own max-tokens field (a clamp being considered). */
void lw_worst_case(const LwPrice *price, const LwRequestInfo *info, const char *body,
                   gsize body_len, gint64 max_output, LwWorstCase *ret);

static inline gboolean lw_worst_case_bounded(const LwWorstCase *w)
{
    return w->input_bounded && w->output_bounded;
}

/* The largest max-tokens value whose worst case fits in `remaining_pusd`
 * (0 if even zero output does not fit; -1 if the input is unbounded). */
gint64 lw_worst_case_max_output(const LwWorstCase *w, const LwRequestInfo *info,
                                gint64 remaining_pusd);
