/* guard.h - guards against runaway programs.
 *
 * Guards watch each run with the runs nested in it: callers name the
 * outermost one (lw_runs_root); requests outside llmwrap share one bucket:
 *   loop        the Nth identical request (same provider, path and body)
 *               within the window trips it (a body that streams past
 *               unread, exchange.h, is never identical; a free request,
 *               such as a status poll, is not counted)
 *   rate        the request that would make more than N within the window
 *   spend-rate  settled spend within the window has reached N USD
 *               (both count in slots of a 255th of the window: what they
 *               count may reach that much further back, never less far)
 *   size        the request's input, estimated at 4 bytes of body per
 *               token (a streamed body's declared length), is above N
 *               tokens
 *   growth      the request's estimated input is N times (or more) the
 *               run's first request's
 * A tripped guard warns (the request goes on, with a header and a log line)
 * or blocks (refused in the provider's shape). Definitions come from
 * config.ini [guard.NAME] and `llmctl guard set`.
 *
 * Memory is bounded: per bucket, the last LW_GUARD_HISTORY requests (what
 * the loop guard compares) and LW_GUARD_SLOTS slots for each rate and
 * spend-rate guard; a run's bucket goes when the run ends
 * (lw_guards_forget).
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "inspect.h"
#include "server.h"

#define LW_GUARD_HISTORY 1024
#define LW_GUARD_SLOTS   256

typedef struct _LwGuards LwGuards;

typedef struct {
    gboolean block;
    char *guard;   /* the guard that tripped (the first blocking one, else the first) */
    char *message; /* names the guard, what it saw and its threshold */
} LwGuardVerdict;

LwGuards *lw_guards_new(LwServer *server);
void lw_guards_free(LwGuards *guards);

/* Re-reads config and ledger guards; counters are kept. */
gboolean lw_guards_reload(LwGuards *guards, GError **error);

/* Checks a request and records it. Returns TRUE when a guard tripped
 * (ret filled; free with lw_guard_verdict_clear). */
gboolean lw_guards_check(LwGuards *guards, guint64 run_id, const char *provider,
                         const char *path, const char *body, gsize body_len,
                         const LwRequestInfo *info, gint64 now_ms, LwGuardVerdict *ret);

/* Records settled spend for the spend-rate guard. */
void lw_guards_spent(LwGuards *guards, guint64 run_id, gint64 now_ms, gint64 cost_pusd);

/* Forgets a run (it ended); nothing when it has no bucket. NULL guards:
 * nothing. */
void lw_guards_forget(LwGuards *guards, guint64 run_id);

void lw_guard_verdict_clear(LwGuardVerdict *v);
