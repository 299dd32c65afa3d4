/* ledger-fixture.c - writes a ledger for llmctl's tests through the real
 * ledger API (lw_ledger_run_start/_end, lw_ledger_insert), so the tests
 * read exactly what the collector would have written.
 *
 *   ledger-fixture LEDGER FIXTURE.json
 *
 * FIXTURE.json: {"runs": [RUN...], "requests": [REQUEST...]}. A RUN has
 * the fields of LwLedgerRun (parent_id, started_ms, argv, cwd, pid,
 * tags_json, budget_pusd) plus ended_ms and exit_status to end it; runs
 * get ids 1, 2, ... in order. A REQUEST has the fields of LwLedgerRequest
 * by name, with cost_pusd (null or absent: unknown). Strings holding JSON
 * (tags_json, raw_usage) are given as strings.
 */
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "ledger.h"

static yajl_val field(yajl_val obj, const char *name)
{
    const char *path[] = {name, NULL};
    return yajl_tree_get(obj, path, yajl_t_any);
}

static const char *str(yajl_val obj, const char *name)
{
    yajl_val v = field(obj, name);
    return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

static gint64 num(yajl_val obj, const char *name, gint64 fallback)
{
    yajl_val v = field(obj, name);
    return YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : fallback;
}

static gboolean flag(yajl_val obj, const char *name)
{
    return YAJL_IS_TRUE(field(obj, name));
}

static int fail(const char *what, GError *error)
{
    fprintf(stderr, "ledger-fixture: %s: %s\n", what, error != NULL ? error->message : "?");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ledger-fixture LEDGER FIXTURE.json\n");
        return 2;
    }
    GError *error = NULL;
    g_autofree char *text = NULL;
    if (!g_file_get_contents(argv[2], &text, NULL, &error))
        return fail(argv[2], error);
    char errbuf[256] = "";
    yajl_val root = yajl_tree_parse(text, errbuf, sizeof errbuf);
    if (root == NULL || !YAJL_IS_OBJECT(root)) {
        fprintf(stderr, "ledger-fixture: %s: %s\n", argv[2], errbuf);
        return 1;
    }
    g_autoptr(LwLedger) ledger = lw_ledger_open(argv[1], FALSE, &error);
    if (ledger == NULL)
        return fail(argv[1], error);

    yajl_val runs = field(root, "runs");
    for (size_t i = 0; YAJL_IS_ARRAY(runs) && i < YAJL_GET_ARRAY(runs)->len; i++) {
        yajl_val r = YAJL_GET_ARRAY(runs)->values[i];
        yajl_val av = field(r, "argv");
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        for (size_t k = 0; YAJL_IS_ARRAY(av) && k < YAJL_GET_ARRAY(av)->len; k++)
            g_ptr_array_add(args, YAJL_GET_STRING(YAJL_GET_ARRAY(av)->values[k]));
        g_ptr_array_add(args, NULL);
        LwLedgerRun run = {
            .parent_id = (guint64)num(r, "parent_id", 0),
            .started_ms = num(r, "started_ms", 0),
            .argv = (char **)args->pdata,
            .cwd = str(r, "cwd"),
            .pid = (guint32)num(r, "pid", 0),
            .tags_json = str(r, "tags_json"),
            .budget_pusd = num(r, "budget_pusd", -1),
        };
        guint64 id = lw_ledger_run_start(ledger, &run, &error);
        if (id == 0)
            return fail("run", error);
        if (field(r, "ended_ms") != NULL &&
            !lw_ledger_run_end(ledger, id, num(r, "ended_ms", 0), (int)num(r, "exit_status", 0),
                               &error))
            return fail("run end", error);
    }

    yajl_val reqs = field(root, "requests");
    for (size_t i = 0; YAJL_IS_ARRAY(reqs) && i < YAJL_GET_ARRAY(reqs)->len; i++) {
        yajl_val q = YAJL_GET_ARRAY(reqs)->values[i];
        yajl_val cost = field(q, "cost_pusd");
        LwLedgerRequest r = {
            .time_ms = num(q, "time_ms", 0),
            .run_id = (guint64)num(q, "run_id", 0),
            .pid = (guint32)num(q, "pid", 0),
            .exe = str(q, "exe"),
            .tags_json = str(q, "tags_json"),
            .provider = str(q, "provider"),
            .host = str(q, "host"),
            .endpoint = str(q, "endpoint"),
            .unpriced_path = str(q, "unpriced_path"),
            .model_requested = str(q, "model_requested"),
            .model_served = str(q, "model_served"),
            .model_sent = str(q, "model_sent"),
            .stream = flag(q, "stream"),
            .status = (int)num(q, "status", 200),
            .input_tokens = num(q, "input_tokens", 0),
            .cached_input_tokens = num(q, "cached_input_tokens", 0),
            .cache_write_tokens = num(q, "cache_write_tokens", 0),
            .cache_write_1h_tokens = num(q, "cache_write_1h_tokens", 0),
            .output_tokens = num(q, "output_tokens", 0),
            .reasoning_tokens = num(q, "reasoning_tokens", 0),
            .cost = {YAJL_IS_INTEGER(cost), YAJL_IS_INTEGER(cost) ? YAJL_GET_INTEGER(cost) : 0},
            .cost_source = str(q, "cost_source"),
            .latency_ms = num(q, "latency_ms", 0),
            .ttft_ms = num(q, "ttft_ms", -1),
            .bytes_in = num(q, "bytes_in", 0),
            .bytes_out = num(q, "bytes_out", 0),
            .cache_hit = flag(q, "cache_hit"),
            .partial = flag(q, "partial"),
            .upstream_request_id = str(q, "upstream_request_id"),
            .credential = str(q, "credential"),
            .raw_usage = str(q, "raw_usage"),
            .refused_by = str(q, "refused_by"),
            .warning = str(q, "warning"),
        };
        if (lw_ledger_insert(ledger, &r, &error) == 0)
            return fail("request", error);
    }
    yajl_tree_free(root);
    return 0;
}
