/* account.c - accounting for one exchange. See account.h. */
#define G_LOG_DOMAIN "account"

#include "account.h"

#include <string.h>
#include <time.h>

#include "budget.h"
#include "clock.h"
#include "guard.h"
#include "ipc-server.h"
#include "json.h"
#include "ledger.h"
#include "ledger-spool.h"
#include "loop.h"
#include "pricing.h"
#include "refusal.h"
#include "runs.h"
#include "worst-case.h"

struct _LwAccount {
    LwServer *server;
    const LwProvider *provider;
    LwRequestInfo info;
    LwObserver *observer;
    gboolean strip_usage;
    gboolean settled;
    LwAttribution attribution;
    gboolean have_attribution;
    char *credential; /* salted hash */
    gint64 time_ms;   /* wall clock at start */
    guint64 start_us;
    guint64 first_byte_us;
    gint64 bytes_in;
    gint64 bytes_out;
    int upstream_status;
    LwReservation *reservation;
    /* The price table of the request's start, which admission reserved its
     * worst case by: a reload (SIGHUP) that changes a price mid-request must
     * not book it at a cost its reservation did not cover, past a hard
     * budget. NULL when there is none. */
    LwPricing *pricing;
    gboolean metered;
    char *downgraded_to;
    char *ended_by;        /* budget that ended a metered stream */
    gboolean ended_by_kill; /* llmctl kill ended the stream */
    gboolean discard_tail; /* the stream was cut by us: drop a partial event */
    GBytes *unanswered;    /* during lw_account_settle_unanswered: the body sent */
    char *unpriced_path;   /* LW_ENDPOINT_UNPRICED: the path, without its query */
    char *path;            /* the path, without its query (which may hold key=) */
};

/* Stream usage has to be asked for (stream_options.include_usage) from
 * these built-in providers; an added provider is assumed to behave like
 * OpenAI. The others send it on their own: OpenRouter and Together always,
 * Groq in x_groq, Mistral and Perplexity on the last chunk (and may reject
 * the option). Injecting only where it is needed is also what lets the
 * strip remove every usage member the answer then carries. */
static gboolean needs_include_usage(const LwProvider *p)
{
    static const char *const sends_usage[] = {"openrouter", "together", "groq", "mistral",
                                              "perplexity"};
    if (!p->is_builtin)
        return TRUE;
    for (guint i = 0; i < G_N_ELEMENTS(sends_usage); i++) {
        if (strcmp(p->name, sends_usage[i]) == 0)
            return FALSE;
    }
    return TRUE;
}

static const char *find_header(const LwHttpRequest *req, const char *name, size_t *ret_len)
{
    const LwHttpHeader *h = lw_http1_find_header(req, name);
    if (h == NULL)
        return NULL;
    *ret_len = h->value_len;
    return h->value;
}

/* Does the request ask for Anthropic's 1M-token context beta? Its flag is
 * one of the comma-separated anthropic-beta values, in any of the fields. */
static gboolean asks_long_context(const LwHttpRequest *req)
{
    static const char flag[] = "context-1m-";
    for (size_t i = 0; i < req->num_headers; i++) {
        const LwHttpHeader *h = &req->headers[i];
        if (h->name_len != strlen("anthropic-beta") ||
            g_ascii_strncasecmp(h->name, "anthropic-beta", h->name_len) != 0)
            continue;
        for (size_t k = 0; k + strlen(flag) <= h->value_len; k++) {
            gboolean starts = k == 0 || h->value[k - 1] == ',' || h->value[k - 1] == ' ';
            if (starts && g_ascii_strncasecmp(h->value + k, flag, strlen(flag)) == 0)
                return TRUE;
        }
    }
    return FALSE;
}

/* The credential the request carries, hashed; NULL when none. The secret
 * itself never leaves this function. */
static char *credential_hash(LwServer *server, const LwHttpRequest *req, const char *path)
{
    if (server->ledger == NULL)
        return NULL;
    size_t len = 0;
    const char *v = find_header(req, "authorization", &len);
    if (v != NULL) {
        if (len > 7 && g_ascii_strncasecmp(v, "Bearer ", 7) == 0)
            return lw_ledger_credential_hash(server->ledger, v + 7, len - 7);
        return lw_ledger_credential_hash(server->ledger, v, len);
    }
    static const char *const key_headers[] = {"x-api-key", "x-goog-api-key", "api-key"};
    for (guint i = 0; i < G_N_ELEMENTS(key_headers); i++) {
        v = find_header(req, key_headers[i], &len);
        if (v != NULL)
            return lw_ledger_credential_hash(server->ledger, v, len);
    }
    const char *q = strchr(path, '?');
    while (q != NULL) {
        q++;
        if (g_str_has_prefix(q, "key=")) {
            const char *end = strchr(q, '&');
            gsize klen = end != NULL ? (gsize)(end - q - 4) : strlen(q + 4);
            return lw_ledger_credential_hash(server->ledger, q + 4, klen);
        }
        q = strchr(q, '&');
    }
    return NULL;
}

LwAccount *lw_account_begin(LwServer *server, const LwAccountRequest *r, GBytes **ret_body,
                            gboolean *ret_identity_encoding)
{
    LwAccount *a = g_new0(LwAccount, 1);
    a->server = server;
    a->provider = r->provider;
    a->time_ms = lw_clock_now_ms(); /* the clock budget windows use */
    a->start_us = lw_loop_now_us();
    a->pricing = server->pricing != NULL ? lw_pricing_ref(server->pricing) : NULL;
    if (r->attribution != NULL) {
        a->attribution = *r->attribution;
        a->have_attribution = TRUE;
    }
    gsize body_len = 0;
    const char *body = r->body != NULL ? g_bytes_get_data(r->body, &body_len) : NULL;
    a->bytes_in = (gint64)body_len;
    g_autofree char *method = g_strndup(r->req->method, r->req->method_len);
    /* OpenAI-format streams (whatever the provider's native format: Gemini
     * has an OpenAI-compatible endpoint) carry no usage unless asked. */
    GBytes *rewritten = NULL;
    if (needs_include_usage(r->provider))
        rewritten = lw_inspect_request_adding_usage(r->provider->format, method, r->path, body,
                                                    body_len, &a->info);
    else
        lw_inspect_request(r->provider->format, method, r->path, body, body_len, &a->info);
    a->info.long_context = asks_long_context(r->req);
    if (r->body_streamed) {
        a->info.body_unread = TRUE;
        a->info.body_bytes = MAX(r->body_length, 0);
    }
    a->credential = credential_hash(server, r->req, r->path);
    a->path = g_strndup(r->path, strcspn(r->path, "?#"));
    if (a->info.endpoint == LW_ENDPOINT_UNPRICED)
        a->unpriced_path = lw_path_for_display(r->path);

    *ret_body = rewritten;
    /* An answer that will be edited must come unencoded. */
    *ret_identity_encoding = rewritten != NULL;
    a->strip_usage = rewritten != NULL;
    return a;
}

void lw_account_free(LwAccount *a)
{
    if (a == NULL)
        return;
    if (a->reservation != NULL) /* never settled (cannot happen): release it */
        lw_budgets_settle(a->server->budgets, a->reservation, FALSE, 0);
    lw_pricing_free(a->pricing);
    g_free(a->downgraded_to);
    g_free(a->ended_by);
    lw_observer_free(a->observer);
    lw_request_info_clear(&a->info);
    g_free(a->credential);
    g_free(a->unpriced_path);
    g_free(a->path);
    g_free(a);
}

const LwRequestInfo *lw_account_info(const LwAccount *a)
{
    return &a->info;
}

const LwProvider *lw_account_provider(const LwAccount *a)
{
    return a->provider;
}

guint64 lw_account_run_id(const LwAccount *a)
{
    return a->have_attribution ? a->attribution.run_id : 0;
}

void lw_account_set_reservation(LwAccount *a, LwReservation *res, gboolean metered,
                                const char *downgraded_to)
{
    a->reservation = res;
    a->metered = metered && res != NULL;
    g_free(a->downgraded_to);
    a->downgraded_to = g_strdup(downgraded_to);
}

static gboolean over_budget(LwAccount *a)
{
    if (!a->metered)
        return FALSE;
    const LwUsage *u = lw_observer_usage(a->observer);
    /* No tokeniser makes more tokens than bytes of text: a bound. */
    gint64 out = MAX(u->output_text_bytes, u->have_usage ? u->tokens.output_tokens : 0);
    gint64 rate = lw_reservation_output_rate(a->reservation);
    gint64 running = lw_reservation_base_pusd(a->reservation);
    running = out > 0 && rate > G_MAXINT64 / out ? G_MAXINT64 : running + out * rate;
    const char *over = lw_budget_meter(a->server->budgets, a->reservation, running);
    if (over == NULL)
        return FALSE;
    a->ended_by = g_strdup(over);
    return TRUE;
}

gboolean lw_account_must_end_stream(LwAccount *a)
{
    if (a->observer == NULL || a->ended_by != NULL || a->ended_by_kill)
        return FALSE;
    /* Only a stream can be ended with an event; a JSON answer is whole or
     * nothing, and what it cost is spent already. */
    if (a->info.sse && a->upstream_status >= 200 && a->upstream_status < 300 &&
        lw_runs_killed(a->server->runs, lw_account_run_id(a))) {
        a->ended_by_kill = TRUE;
        return TRUE;
    }
    return over_budget(a);
}

GString *lw_account_end_stream(LwAccount *a)
{
    a->discard_tail = TRUE;
    g_autofree char *msg =
        a->ended_by_kill
            ? g_strdup_printf("llmwrap run %" G_GUINT64_FORMAT " was stopped with `llmctl "
                              "kill`: the stream was ended",
                              lw_account_run_id(a))
            : g_strdup_printf("llmwrap budget '%s' reached: the stream was ended before it "
                              "could exceed the limit",
                              a->ended_by != NULL ? a->ended_by : "?");
    g_warning("%s", msg);
    return lw_refusal_stream_event(a->provider->format, a->info.endpoint, msg);
}

void lw_account_response(LwAccount *a, int status, const char *content_type,
                         const char *content_encoding, const LwObserverSink *sink,
                         void *sink_data)
{
    a->upstream_status = status;
    /* Only a successful answer carries the usage chunk we asked for. */
    gboolean strip = a->strip_usage && status >= 200 && status < 300;
    a->observer = lw_observer_new(a->provider->format, &a->info, status, content_type,
                                  content_encoding, strip, sink, sink_data);
}

gboolean lw_account_rewrites(const LwAccount *a)
{
    return a->observer != NULL && lw_observer_rewrites(a->observer);
}

void lw_account_streamed_in(LwAccount *a, gsize len)
{
    a->bytes_in += (gint64)len;
}

void lw_account_body(LwAccount *a, const char *buf, gsize len)
{
    if (a->first_byte_us == 0)
        a->first_byte_us = lw_loop_now_us();
    a->bytes_out += (gint64)len;
    lw_observer_feed(a->observer, buf, len);
}

static gboolean is_billable(LwEndpoint e)
{
    return e != LW_ENDPOINT_OTHER && e != LW_ENDPOINT_COUNT_TOKENS;
}

/* The answer's price; the model sent is the one admission priced. */
static const LwPrice *price_of(const LwAccount *a, const char *served, const char **ret_model)
{
    const char *sent = a->downgraded_to != NULL ? a->downgraded_to : a->info.model;
    *ret_model = served != NULL ? served : sent;
    if (a->pricing == NULL)
        return NULL;
    return lw_pricing_lookup_answer(a->pricing, a->provider->name, served, sent, ret_model);
}

static gint64 ceil_div4(gint64 n)
{
    return (n + 3) / 4;
}

static void publish(LwAccount *a, const LwLedgerRequest *row)
{
    if (a->server->ipc == NULL)
        return;
    Lw__RequestEvent ev = LW__REQUEST_EVENT__INIT;
    ev.has_time_ms = TRUE;
    ev.time_ms = row->time_ms;
    ev.has_run_id = row->run_id != 0;
    ev.run_id = row->run_id;
    ev.provider = (char *)row->provider;
    ev.model = (char *)(row->model_served != NULL ? row->model_served
                        : row->model_sent != NULL ? row->model_sent
                                                  : row->model_requested);
    ev.endpoint = (char *)row->endpoint;
    ev.has_status = TRUE;
    ev.status = (uint32_t)row->status;
    ev.has_stream = TRUE;
    ev.stream = row->stream;
    ev.has_input_tokens = TRUE;
    ev.input_tokens = (uint64_t)row->input_tokens;
    ev.has_output_tokens = TRUE;
    ev.output_tokens = (uint64_t)row->output_tokens;
    ev.has_cost_known = TRUE;
    ev.cost_known = row->cost.known;
    ev.has_cost_pusd = row->cost.known;
    ev.cost_pusd = row->cost.pusd;
    ev.has_latency_ms = TRUE;
    ev.latency_ms = (uint32_t)MIN(row->latency_ms, G_MAXUINT32);
    ev.has_pid = row->pid != 0;
    ev.pid = row->pid;
    lw_ipc_server_publish(a->server->ipc, &ev);
}

static void commit(LwAccount *a, LwLedgerRequest *row)
{
    LwServer *s = a->server;
    const LwRun *run = row->run_id != 0 ? lw_runs_get(s->runs, row->run_id) : NULL;
    row->tags_json = run != NULL ? run->tags_json : NULL;
    if (s->spool != NULL) {
        g_autoptr(GError) error = NULL;
        if (lw_spool_append(s->spool, row, &error) == 0)
            g_critical("ledger: cannot record %s %s: %s", row->provider,
                       row->model_requested ? row->model_requested : "-", error->message);
    }
    if (a->reservation != NULL) {
        lw_budgets_settle(s->budgets, a->reservation, row->cost.known, row->cost.pusd);
        a->reservation = NULL;
    }
    if (s->guards != NULL && row->cost.known)
        lw_guards_spent(s->guards, lw_runs_root(s->runs, row->run_id), lw_clock_now_ms(),
                        row->cost.pusd);
    publish(a, row);
}

static void fill_common(LwAccount *a, LwLedgerRequest *row, int client_status)
{
    row->time_ms = a->time_ms;
    if (a->have_attribution) {
        row->run_id = a->attribution.run_id;
        row->pid = a->attribution.pid;
        row->exe = a->attribution.exe[0] != '\0' ? a->attribution.exe : NULL;
    }
    row->provider = a->provider->name;
    row->host = a->provider->host;
    row->endpoint = lw_endpoint_name(a->info.endpoint);
    row->unpriced_path = a->unpriced_path;
    row->model_requested = a->info.model;
    /* Kept beside the model asked for: reprice and usage go by the model
     * sent, as price_of() does. */
    if (g_strcmp0(a->downgraded_to, a->info.model) != 0)
        row->model_sent = a->downgraded_to;
    row->stream = a->info.stream;
    row->status = client_status;
    row->latency_ms = (gint64)((lw_loop_now_us() - a->start_us) / 1000);
    row->ttft_ms = a->first_byte_us != 0 ? (gint64)((a->first_byte_us - a->start_us) / 1000) : -1;
    row->bytes_in = a->bytes_in;
    row->bytes_out = a->bytes_out;
    row->credential = a->credential;
}

/* A request the provider had but never answered is booked at the most it
 * can cost (worst-case.h): what it did is unknown, and a smaller guess
 * would let retries of timed-out requests pass a hard budget. An unbounded
 * part (no output limit) keeps the estimate in `t`. The output bound is
 * the body's as sent: a clamp budget lowered it, and reserved (and so
 * admitted) no more than that. */
static void take_worst_case(const LwAccount *a, const LwPrice *price, LwTokens *t)
{
    gsize len = 0;
    const char *body = g_bytes_get_data(a->unanswered, &len);
    LwRequestInfo sent;
    lw_inspect_request(a->provider->format, "POST", a->path, body, len, &sent);
    LwWorstCase w;
    lw_worst_case(price, &a->info, body, len, sent.max_output, &w);
    lw_request_info_clear(&sent);
    if (w.input_bounded)
        t->input_tokens = MAX(t->input_tokens, w.input_tokens);
    if (w.output_bounded)
        t->output_tokens = MAX(t->output_tokens, w.output_tokens);
}

/* Appends `more` to the row's warning (transfer full of both). */
static char *add_warning(char *warning, char *more)
{
    if (warning == NULL)
        return more;
    char *both = g_strconcat(warning, "; ", more, NULL);
    g_free(warning);
    g_free(more);
    return both;
}

/* The price table has standard rates only; other tiers are priced
 * otherwise (priority about 2x, flex and batch about half). NULL for a
 * standard tier. */
static char *tier_warning(const char *tier)
{
    static const char *const standard[] = {"", "default", "standard", "auto", "on_demand"};
    for (guint i = 0; i < G_N_ELEMENTS(standard); i++) {
        if (strcmp(tier, standard[i]) == 0)
            return NULL;
    }
    const char *effect = "";
    if (strcmp(tier, "priority") == 0)
        effect = " (the provider charges more)";
    else if (strcmp(tier, "flex") == 0 || strcmp(tier, "batch") == 0)
        effect = " (the provider charges less: cost over-stated)";
    return g_strdup_printf("service tier '%s' priced at standard rates%s", tier, effect);
}

/* Regional inference is priced with a multiplier the table does not hold
 * (US-only 1.1x on the models the reference names, other regions not
 * given), so it is named, not applied: data/README.md says why. NULL for
 * global inference. */
static char *geo_warning(const char *geo)
{
    if (geo[0] == '\0' || strcmp(geo, "global") == 0)
        return NULL;
    return g_strdup_printf("inference_geo '%s' priced at global rates (regional inference "
                           "costs more on some models)",
                           geo);
}

/* The Responses built-in tools the answer called, each billed per call or
 * session outside the tokens: "2 web_search_call, 1 mcp_call". NULL when
 * none. */
static char *tool_calls_warning(const LwUsage *u)
{
    g_autoptr(GString) calls = g_string_new(NULL);
    for (int t = 0; t < LW_TOOL_COUNT; t++) {
        if (u->tool_calls[t] > 0)
            g_string_append_printf(calls, "%s%" G_GINT64_FORMAT " %s", calls->len > 0 ? ", " : "",
                                   u->tool_calls[t], lw_usage_json_tool_item((LwTool)t));
    }
    if (calls->len == 0)
        return NULL;
    return g_strdup_printf("built-in tool calls not included in the cost (charged per call or "
                           "session): %s",
                           calls->str);
}

/* What the answer says it used beyond the tokens. */
static char *answer_warnings(const LwUsage *u, char *warning)
{
    char *more = tier_warning(u->service_tier);
    if (more != NULL)
        warning = add_warning(warning, more);
    if (u->web_searches > 0)
        warning = add_warning(warning, g_strdup_printf("%" G_GINT64_FORMAT " web search%s not "
                                                       "included in the cost (charged per search)",
                                                       u->web_searches,
                                                       u->web_searches == 1 ? "" : "es"));
    if ((more = geo_warning(u->inference_geo)) != NULL)
        warning = add_warning(warning, more);
    if ((more = tool_calls_warning(u)) != NULL)
        warning = add_warning(warning, more);
    if (u->search_queries > 0)
        warning = add_warning(warning,
                              g_strdup_printf("%" G_GINT64_FORMAT " Google Search grounding quer%s "
                                              "not included in the cost (charged per query)",
                                              u->search_queries,
                                              u->search_queries == 1 ? "y" : "ies"));
    return warning;
}

/* What the request asked for that costs beyond the tokens, where the answer
 * does not say it happened: fast mode (the answer does not echo its
 * speed), a chat web search (the answer does not count it), Perplexity's
 * per-request fee (in the cost Perplexity reports, which this row lacks). */
static char *request_warnings(const LwAccount *a, char *warning)
{
    if (a->info.fast_mode)
        warning = add_warning(warning, g_strdup("speed 'fast' priced at standard rates (the "
                                                "provider charges more: up to 6x on some "
                                                "models)"));
    gboolean perplexity = strcmp(a->provider->name, "perplexity") == 0;
    if (perplexity && a->info.endpoint == LW_ENDPOINT_CHAT)
        warning = add_warning(warning, g_strdup("Perplexity's per-request fee not included in "
                                                "the cost"));
    else if (a->info.web_search)
        warning = add_warning(warning, g_strdup("a web search (web_search_options or a "
                                                "search-preview model) not included in the "
                                                "cost (charged per call)"));
    return warning;
}

/* What the usage leaves out, said on the row so a cost that looks exact
 * is not taken for one. A cost the provider reported covers the charges
 * the table cannot express. What the request asked for is said only of a
 * cost the table made: an error the provider does not bill costs nothing
 * either way. */
static char *usage_warnings(const LwAccount *a, const LwUsage *u, const LwLedgerRequest *row,
                            char *warning)
{
    if (u != NULL && row->partial && u->unreadable[0] != '\0')
        warning = add_warning(warning, g_strdup_printf("usage not read: %s; tokens estimated",
                                                       u->unreadable));
    if (g_strcmp0(row->cost_source, "provider") == 0)
        return warning;
    if (u != NULL)
        warning = answer_warnings(u, warning);
    if (g_strcmp0(row->cost_source, "price") == 0)
        warning = request_warnings(a, warning);
    return warning;
}

void lw_account_settle(LwAccount *a, int client_status, gboolean cut)
{
    if (a->settled)
        return;
    a->settled = TRUE;
    if (a->observer != NULL && !a->discard_tail)
        lw_observer_finish(a->observer);
    const LwUsage *u = a->observer != NULL ? lw_observer_usage(a->observer) : NULL;

    LwLedgerRequest row = {0};
    fill_common(a, &row, client_status);
    row.model_served = u != NULL ? u->model_served : NULL;
    row.raw_usage = u != NULL ? u->raw_usage : NULL;
    row.upstream_request_id = u != NULL ? u->response_id : NULL;

    LwTokens t = {0};
    gboolean have_usage = u != NULL && u->have_usage;
    if (have_usage)
        t = u->tokens;
    gboolean success = a->upstream_status >= 200 && a->upstream_status < 300;
    /* The provider's answer came to its end (its last event): its usage is
     * final even when the connection then broke or stalled, which costs
     * the client only the framing. */
    gboolean answered = u != NULL && u->complete;
    gboolean complete = answered && !cut;
    g_autofree char *warning = NULL;

    if (!is_billable(a->info.endpoint) || (!success && !have_usage && a->unanswered == NULL)) {
        /* Free endpoints, and errors the provider does not bill. */
        row.cost = (LwCost){TRUE, 0};
    } else {
        if (!complete || !have_usage)
            row.partial = TRUE;
        if (!answered || !have_usage) {
            /* Cut short or no usage report: what is known, plus an estimate
             * of the rest (about 4 bytes per token). */
            if (t.input_tokens == 0)
                t.input_tokens = ceil_div4(a->info.body_bytes);
            gint64 out_estimate = ceil_div4(u != NULL ? u->output_text_bytes : 0);
            t.output_tokens = MAX(t.output_tokens, out_estimate);
        }
        if (u != NULL && u->have_provider_cost && answered) {
            row.cost = (LwCost){TRUE, u->provider_cost_pusd};
            row.cost_source = "provider";
        } else if (a->info.endpoint == LW_ENDPOINT_UNPRICED) {
            row.cost = (LwCost){FALSE, 0};
            warning = g_strdup_printf("llmwrap cannot price POST %s: cost unknown",
                                      a->unpriced_path);
        } else {
            const char *model;
            const LwPrice *price = price_of(a, row.model_served, &model);
            warning = lw_pricing_note(price, a->provider->name, row.model_served, model);
            if (price != NULL) {
                if (a->unanswered != NULL && !have_usage)
                    take_worst_case(a, price, &t);
                row.cost = (LwCost){TRUE, lw_pricing_cost(price, &t)};
                row.cost_source = "price";
            } else {
                row.cost = (LwCost){FALSE, 0};
                g_warning("%s: cost unknown (add [price.%s] to config.ini)", warning,
                          model != NULL ? model : "MODEL");
            }
        }
    }
    row.input_tokens = t.input_tokens;
    row.cached_input_tokens = t.cached_input_tokens;
    row.cache_write_tokens = t.cache_write_tokens;
    row.cache_write_1h_tokens = t.cache_write_1h_tokens;
    row.output_tokens = t.output_tokens;
    row.reasoning_tokens = t.reasoning_tokens;
    g_autofree char *refused_by = NULL;
    if (a->ended_by != NULL || a->ended_by_kill) {
        /* Charged for what it used, and marked as stopped by us. */
        refused_by = a->ended_by_kill ? g_strdup("kill")
                                      : g_strdup_printf("budget %s", a->ended_by);
        row.refused_by = refused_by;
        row.partial = TRUE;
    }
    if (a->unanswered != NULL && !have_usage && warning == NULL)
        warning = g_strdup("no answer came back, but the provider had the request and may bill "
                           "it: charged the most it could cost");
    warning = usage_warnings(a, u, &row, warning);
    row.warning = warning;
    commit(a, &row);
}

void lw_account_settle_unanswered(LwAccount *a, int client_status, GBytes *body)
{
    a->unanswered = body != NULL ? body : g_bytes_new_static("", 0);
    lw_account_settle(a, client_status, TRUE);
    if (body == NULL)
        g_bytes_unref(a->unanswered);
    a->unanswered = NULL;
}

void lw_account_settle_local(LwAccount *a, int client_status, const char *refused_by)
{
    if (a->settled)
        return;
    a->settled = TRUE;
    LwLedgerRequest row = {0};
    fill_common(a, &row, client_status);
    row.cost = (LwCost){TRUE, 0};
    row.refused_by = refused_by;
    commit(a, &row);
}
