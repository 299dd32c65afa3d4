/* ledger-fixture.c - see ledger-fixture.h. */
#include "ledger-fixture.h"

#include <glib/gstdio.h>

void fixture_setup(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    f->dir = g_dir_make_tmp("test-ledger-XXXXXX", &error);
    g_assert_no_error(error);
    f->path = g_build_filename(f->dir, "ledger.db", NULL);
}

void fixture_teardown(Fixture *f, gconstpointer data)
{
    /* The ledger, what SQLite and the spool put next to it, and whatever a
     * test made there. */
    g_autoptr(GDir) dir = g_dir_open(f->dir, 0, NULL);
    for (const char *name; dir != NULL && (name = g_dir_read_name(dir)) != NULL;) {
        g_autofree char *p = g_build_filename(f->dir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

LwLedger *open_rw(const Fixture *f)
{
    GError *error = NULL;
    LwLedger *l = lw_ledger_open(f->path, FALSE, &error);
    g_assert_no_error(error);
    g_assert_nonnull(l);
    return l;
}

LwLedgerRequest fixture_full_row(void)
{
    return (LwLedgerRequest){
        .time_ms = G_GINT64_CONSTANT(1795219200000) + 13 * 3600000 + 45 * 60000 + 1123 /* 2026-11-21T13:45:01.123Z */,
        .run_id = 77,
        .pid = 4242,
        .exe = "/usr/bin/python3",
        .tags_json = "{\"team\":\"search\",\"job\":\"nightly \\\"quoted\\\"\"}",
        .provider = "anthropic",
        .host = "api.anthropic.com",
        .endpoint = "messages",
        .unpriced_path = "/v1/messages/batches",
        .model_requested = "claude-sonnet-4",
        .model_served = "claude-sonnet-4-20250514",
        .model_sent = "claude-haiku-4",
        .stream = TRUE,
        .status = 200,
        .input_tokens = 12000,
        .cached_input_tokens = 8000,
        .cache_write_tokens = 3000,
        .cache_write_1h_tokens = 1000,
        .output_tokens = 900,
        .reasoning_tokens = 400,
        .cost = {TRUE, 123456789012},
        .cost_source = "price",
        .latency_ms = 3456,
        .ttft_ms = 321,
        .bytes_in = 54321,
        .bytes_out = 65432,
        .cache_hit = TRUE,
        .partial = TRUE,
        .upstream_request_id = "msg_01ABC",
        .credential = "0123456789abcdef",
        .raw_usage = "{\"input_tokens\":1000,\"output_tokens\":900}",
        .refused_by = "budget:daily",
        .warning = "cut short: client went away",
    };
}

void fixture_assert_same_row(const LwLedgerRequest *a, const LwLedgerRequest *b)
{
    g_assert_cmpint(a->time_ms, ==, b->time_ms);
    g_assert_cmpuint(a->run_id, ==, b->run_id);
    g_assert_cmpuint(a->pid, ==, b->pid);
    g_assert_cmpstr(a->exe, ==, b->exe);
    g_assert_cmpstr(a->provider, ==, b->provider);
    g_assert_cmpstr(a->host, ==, b->host);
    g_assert_cmpstr(a->endpoint, ==, b->endpoint);
    g_assert_cmpstr(a->unpriced_path, ==, b->unpriced_path);
    g_assert_cmpstr(a->model_requested, ==, b->model_requested);
    g_assert_cmpstr(a->model_served, ==, b->model_served);
    g_assert_cmpstr(a->model_sent, ==, b->model_sent);
    g_assert_cmpint(a->stream, ==, b->stream);
    g_assert_cmpint(a->status, ==, b->status);
    g_assert_cmpint(a->input_tokens, ==, b->input_tokens);
    g_assert_cmpint(a->cached_input_tokens, ==, b->cached_input_tokens);
    g_assert_cmpint(a->cache_write_tokens, ==, b->cache_write_tokens);
    g_assert_cmpint(a->cache_write_1h_tokens, ==, b->cache_write_1h_tokens);
    g_assert_cmpint(a->output_tokens, ==, b->output_tokens);
    g_assert_cmpint(a->reasoning_tokens, ==, b->reasoning_tokens);
    g_assert_cmpint(a->cost.known, ==, b->cost.known);
    if (a->cost.known)
        g_assert_cmpint(a->cost.pusd, ==, b->cost.pusd);
    g_assert_cmpstr(a->cost_source, ==, b->cost_source);
    g_assert_cmpint(a->latency_ms, ==, b->latency_ms);
    g_assert_cmpint(a->ttft_ms, ==, b->ttft_ms);
    g_assert_cmpint(a->bytes_in, ==, b->bytes_in);
    g_assert_cmpint(a->bytes_out, ==, b->bytes_out);
    g_assert_cmpint(a->cache_hit, ==, b->cache_hit);
    g_assert_cmpint(a->partial, ==, b->partial);
    g_assert_cmpstr(a->upstream_request_id, ==, b->upstream_request_id);
    g_assert_cmpstr(a->credential, ==, b->credential);
    g_assert_cmpstr(a->refused_by, ==, b->refused_by);
    g_assert_cmpstr(a->warning, ==, b->warning);
}
