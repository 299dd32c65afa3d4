"""Exact usage and cost, end to end: a request through the collector to the
simulated provider, then the ledger row as `llmctl requests --json` shows it.

Every expected cost is computed by hand from data/prices.json (USD per 1M
tokens) and the simulator's usage formulas (tests/sim/README.md); costs are
compared exactly, as decimals (well inside the 1e-9 USD the issue asks).
Rates below are written in pico-USD per token, which is the per-1M price
times 1e6.
"""

import decimal
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import unittest

import lwtest
from lwtest import DEFAULT_TIMEOUT

D = decimal.Decimal
M = 1_000_000  # USD per 1M tokens -> pico-USD per token


def usd(pusd):
    return D(pusd) / D(10**12)


def chat(model, **kw):
    return dict({"model": model, "messages": [{"role": "user", "content": "hi"}]}, **kw)


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

# (name, provider, path, body, x-sim directives, extra headers, expected)
# expected: tokens (input, cached, cache_write, cache_write_1h, output,
# reasoning), cost in pico-USD (or None = unknown), cost_source.
CASES = [
    ("openai chat json cached", "openai", "/v1/chat/completions", chat("gpt-4.1"),
     "in=2006;cached=1920;out=300", {},
     # gpt-4.1: 2.00 in, 0.50 cached, 8.00 out
     ((2006, 1920, 0, 0, 300, 0), (2006 - 1920) * 2 * M + 1920 * M // 2 + 300 * 8 * M, "price")),
    ("openai chat stream reasoning (client asked usage)", "openai", "/v1/chat/completions",
     chat("o4-mini", stream=True, stream_options={"include_usage": True}),
     "in=1000;out=50;reasoning=200", {},
     # o4-mini: 1.10 in, 4.40 out; completion_tokens = 50 + 200
     ((1000, 0, 0, 0, 250, 200), 1000 * 1_100_000 + 250 * 4_400_000, "price")),
    ("openai chat stream, usage injected", "openai", "/v1/chat/completions",
     chat("gpt-4o-mini", stream=True), "in=100;out=10", {},
     # gpt-4o-mini: 0.15 in, 0.60 out
     ((100, 0, 0, 0, 10, 0), 100 * 150_000 + 10 * 600_000, "price")),
    ("openai responses stream", "openai", "/v1/responses",
     {"model": "gpt-5.4", "input": "hi", "stream": True},
     "in=5210;cached=4096;out=128;reasoning=512", {},
     # gpt-5.4: 2.50 in, 0.25 cached, 15.00 out; output 128 + 512
     ((5210, 4096, 0, 0, 640, 512),
      (5210 - 4096) * 2_500_000 + 4096 * 250_000 + 640 * 15 * M, "price")),
    ("openai embeddings", "openai", "/v1/embeddings",
     {"model": "text-embedding-3-small", "input": "hi"}, "in=8", {},
     ((8, 0, 0, 0, 0, 0), 8 * 20_000, "price")),
    ("openai legacy completions stream", "openai", "/v1/completions",
     {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "stream": True}, "in=10;out=5", {},
     # gpt-3.5-turbo-instruct: 1.50 in, 2.00 out
     ((10, 0, 0, 0, 5, 0), 10 * 1_500_000 + 5 * 2 * M, "price")),
    ("anthropic stream, 5m and 1h cache writes, thinking", "anthropic", "/v1/messages",
     {"model": "claude-sonnet-4-5", "max_tokens": 1000, "stream": True,
      "messages": [{"role": "user", "content": "hi"}]},
     "in=15014;cached=12000;cache_write=1000;cache_write_1h=2000;out=400;reasoning=100", {},
     # claude-sonnet-4-5: 3.00 in, 0.30 read, 3.75 write 5m, 6.00 write 1h, 15.00 out;
     # uncached = 15014 - 12000 - 3000 = 14; thinking is inside output_tokens (400 + 100),
     # and a stream's message_delta carries no thinking breakdown, so reasoning reads 0
     ((15014, 12000, 3000, 2000, 500, 0),
      14 * 3 * M + 12000 * 300_000 + 1000 * 3_750_000 + 2000 * 6 * M + 500 * 15 * M, "price")),
    ("anthropic json tool use", "anthropic", "/v1/messages",
     {"model": "claude-haiku-4-5", "max_tokens": 100,
      "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"name": "lookup", "input_schema": {"type": "object"}}]},
     "in=500;out=20;tools=1", {},
     # claude-haiku-4-5: 1.00 in, 5.00 out
     ((500, 0, 0, 0, 20, 0), 500 * M + 20 * 5 * M, "price")),
    ("gemini sse crlf, thoughts", "gemini",
     "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", GEMINI_BODY,
     "in=5210;cached=4096;out=44;reasoning=186", {},
     # gemini-2.5-flash: 0.30 in, 0.03 cached, 2.50 out (thoughts are output)
     ((5210, 4096, 0, 0, 230, 186),
      (5210 - 4096) * 300_000 + 4096 * 30_000 + 230 * 2_500_000, "price")),
    ("gemini json array stream", "gemini",
     "/v1beta/models/gemini-2.5-pro:streamGenerateContent", GEMINI_BODY, "in=1000;out=10", {},
     # gemini-2.5-pro: 1.25 in, 10.00 out
     ((1000, 0, 0, 0, 10, 0), 1000 * 1_250_000 + 10 * 10 * M, "price")),
    ("gemini generateContent json", "gemini",
     "/v1beta/models/gemini-2.0-flash:generateContent", GEMINI_BODY, "in=100;out=8", {},
     # gemini-2.0-flash: 0.10 in, 0.40 out
     ((100, 0, 0, 0, 8, 0), 100 * 100_000 + 8 * 400_000, "price")),
    ("gemini openai-compatible stream", "gemini", "/v1beta/openai/chat/completions",
     chat("gemini-2.5-flash", stream=True), "in=100;out=10", {},
     ((100, 0, 0, 0, 10, 0), 100 * 300_000 + 10 * 2_500_000, "price")),
    ("deepseek stream, keep-alives", "deepseek", "/chat/completions",
     chat("deepseek-chat", stream=True), "in=1200;cached=1024;out=300;keepalive=3", {},
     # deepseek-chat: 0.28 miss, 0.028 hit, 0.42 out
     ((1200, 1024, 0, 0, 300, 0), 176 * 280_000 + 1024 * 28_000 + 300 * 420_000, "price")),
    ("deepseek json, leading whitespace", "deepseek", "/chat/completions",
     chat("deepseek-chat"), "in=1200;cached=1024;out=300;lead_ws=3", {},
     ((1200, 1024, 0, 0, 300, 0), 176 * 280_000 + 1024 * 28_000 + 300 * 420_000, "price")),
    ("xai stream, additive reasoning, ticks", "xai", "/v1/chat/completions",
     chat("grok-4.3", stream=True), "in=2000;cached=1500;out=300;reasoning=700;ticks=34250000",
     {},
     # 1 tick = 100 pico-USD; the provider's cost wins
     ((2000, 1500, 0, 0, 1000, 700), 34250000 * 100, "provider")),
    ("openrouter stream, comments, cost", "openrouter", "/api/v1/chat/completions",
     chat("anthropic/claude-sonnet-4.5", stream=True),
     "in=1200;cached=1024;out=80;cost=0.000574;keepalive=2", {},
     ((1200, 1024, 0, 0, 80, 0), 574 * M, "provider")),
    ("groq stream, x_groq usage", "groq", "/openai/v1/chat/completions",
     chat("llama-3.3-70b-versatile", stream=True), "in=40;out=10", {},
     # llama-3.3-70b-versatile: 0.59 in, 0.79 out
     ((40, 0, 0, 0, 10, 0), 40 * 590_000 + 10 * 790_000, "price")),
    ("mistral stream, usage on the last chunk", "mistral", "/v1/chat/completions",
     chat("mistral-large-latest", stream=True), "in=100;out=10", {},
     ((100, 0, 0, 0, 10, 0), 100 * 500_000 + 10 * 1_500_000, "price")),
    ("together stream", "together", "/v1/chat/completions",
     chat("meta-llama/Llama-3.3-70B-Instruct-Turbo", stream=True), "in=100;out=10", {},
     ((100, 0, 0, 0, 10, 0), 100 * 880_000 + 10 * 880_000, "price")),
    ("fireworks stream, usage injected", "fireworks", "/inference/v1/chat/completions",
     chat("accounts/fireworks/models/gpt-oss-120b", stream=True), "in=100;out=10", {},
     ((100, 0, 0, 0, 10, 0), 100 * 150_000 + 10 * 600_000, "price")),
    ("perplexity json, provider cost", "perplexity", "/chat/completions", chat("sonar"),
     "in=9;out=120;cost=0.005129", {},
     ((9, 0, 0, 0, 120, 0), 5_129_000_000, "provider")),
    ("perplexity agent api, responses shape, provider cost", "perplexity", "/v1/agent",
     {"model": "perplexity/sonar", "input": "hi"}, "in=9;out=120;cost=0.0225", {},
     ((9, 0, 0, 0, 120, 0), 22_500_000_000, "provider")),
    ("gzip json", "openai", "/v1/chat/completions", chat("gpt-4o-mini"), "in=100;out=10;gzip=1",
     {"accept-encoding": "gzip"},
     ((100, 0, 0, 0, 10, 0), 100 * 150_000 + 10 * 600_000, "price")),
    ("gzip stream with usage", "openai", "/v1/chat/completions",
     chat("gpt-4o-mini", stream=True, stream_options={"include_usage": True}),
     "in=100;out=10;gzip=1", {"accept-encoding": "gzip"},
     ((100, 0, 0, 0, 10, 0), 100 * 150_000 + 10 * 600_000, "price")),
    ("unknown model: cost unknown, never guessed", "openai", "/v1/chat/completions",
     chat("mystery-model-9"), "in=100;out=10", {},
     ((100, 0, 0, 0, 10, 0), None, None)),
    # A dated snapshot the price table does not list yet: the requested
    # model's price (providers.md 1.2), and the row says so.
    ("served snapshot unlisted: priced as requested", "openai", "/v1/chat/completions",
     chat("gpt-5.2", stream=True), "in=1000;out=100;served=gpt-5.2-2099-12-11", {},
     # gpt-5.2: 1.75 in, 14.00 out
     ((1000, 0, 0, 0, 100, 0), 1000 * 1_750_000 + 100 * 14 * M, "price")),
]

# Rows of CASES whose warning says something: name -> what it contains.
WARNINGS = {
    "served snapshot unlisted: priced as requested":
        "no price for gpt-5.2-2099-12-11: priced as gpt-5.2",
}


class LedgerReads:
    """llmctl on the test collector's ledger."""

    def llmctl(self, *args):
        out = subprocess.run([lwtest.binary("LLMCTL"), *args], capture_output=True, text=True,
                             env=dict(os.environ, LLMWRAP_HOME=self.home),
                             timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def rows(self, parse_float=float):
        return json.loads(self.llmctl("requests", "--json"), parse_float=parse_float)

    def last_row(self):
        rows = json.loads(self.llmctl("requests", "--json", "--limit", "1"))
        return rows[0] if rows else None


class AccountingTest(LedgerReads, lwtest.CollectorTestCase):

    def test_golden_cases(self):
        for name, provider, path, body, sim, headers, expected in CASES:
            with self.subTest(name):
                before = len(self.rows())
                h = {"x-sim": sim, "x-api-key": "k", "x-goog-api-key": "k"}
                h.update(headers)
                status, _, _ = self.post(provider, path, body, h)
                self.assertEqual(status, 200)
                rows = self.rows()
                self.assertEqual(len(rows), before + 1)
                row = rows[0]
                tokens, pusd, source = expected
                got = (row["input_tokens"], row["cached_input_tokens"],
                       row["cache_write_tokens"], row["cache_write_1h_tokens"],
                       row["output_tokens"], row["reasoning_tokens"])
                self.assertEqual(got, tokens)
                self.assertEqual(row["provider"], provider)
                self.assertEqual(row["status"], 200)
                self.assertFalse(row["partial"])
                self.assertEqual(row["stream"], bool(body.get("stream") or "stream" in path))
                if pusd is None:
                    self.assertIsNone(row["cost_usd"])
                    self.assertIn("no price", row["warning"])
                else:
                    self.assertEqual(D(str(row["cost_usd"])), usd(pusd))
                    self.assertEqual(row["cost_source"], source)
                    if name in WARNINGS:
                        self.assertIn(WARNINGS[name], row["warning"] or "")
                    else:
                        self.assertIsNone(row["warning"])

    def test_usage_totals_by_model(self):
        for model, sim in (("gpt-4o-mini", "in=100;out=10"), ("gpt-4o-mini", "in=300;out=30"),
                           ("gpt-4.1", "in=1000;out=100")):
            self.post("openai", "/v1/chat/completions", chat(model), {"x-sim": sim})
        by_model = {r["key"]: r for r in json.loads(self.llmctl("usage", "--by", "model",
                                                                 "--json"))}
        self.assertEqual(by_model["gpt-4o-mini"]["requests"], 2)
        self.assertEqual(by_model["gpt-4o-mini"]["input_tokens"], 400)
        self.assertEqual(by_model["gpt-4o-mini"]["output_tokens"], 40)
        self.assertEqual(D(str(by_model["gpt-4o-mini"]["cost_usd"])),
                         usd(400 * 150_000 + 40 * 600_000))
        self.assertEqual(D(str(by_model["gpt-4.1"]["cost_usd"])),
                         usd(1000 * 2 * M + 100 * 8 * M))


# Charges beyond the tokens, reported by the simulated provider (searches=,
# geo=) or asked for by the request: (name, provider, path, body, x-sim,
# cost in pico-USD from the table alone, the row's warning).
RESPONSES_STREAM = {"model": "gpt-5.4", "input": "hi", "stream": True}
GEMINI_SSE = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
CHARGE_CASES = [
    ("responses stream, built-in web searches", "openai", "/v1/responses", RESPONSES_STREAM,
     "in=1000;out=10;searches=2",
     # gpt-5.4: 2.50 in, 15.00 out; the searches are billed per call on top
     1000 * 2_500_000 + 10 * 15 * M,
     "built-in tool calls not included in the cost (charged per call or session): "
     "2 web_search_call"),
    ("responses json, a built-in web search", "openai", "/v1/responses",
     {"model": "gpt-5.4", "input": "hi"}, "in=1000;out=10;searches=1",
     1000 * 2_500_000 + 10 * 15 * M,
     "built-in tool calls not included in the cost (charged per call or session): "
     "1 web_search_call"),
    ("gemini stream, Google Search grounding", "gemini", GEMINI_SSE, GEMINI_BODY,
     "in=100;out=3;searches=2",
     # gemini-2.5-flash: 0.30 in, 2.50 out; grounding is billed per query on top
     100 * 300_000 + 3 * 2_500_000,
     "2 Google Search grounding queries not included in the cost (charged per query)"),
    ("anthropic stream, US-only inference", "anthropic", "/v1/messages",
     {"model": "claude-opus-4-7", "max_tokens": 100, "stream": True,
      "messages": [{"role": "user", "content": "hi"}]}, "in=100;out=3;geo=us",
     # claude-opus-4-7: 5.00 in, 25.00 out, at global rates
     100 * 5 * M + 3 * 25 * M,
     "inference_geo 'us' priced at global rates (regional inference costs more on some "
     "models)"),
    ("anthropic json, fast mode", "anthropic", "/v1/messages",
     {"model": "claude-opus-4-7", "max_tokens": 100, "speed": "fast",
      "messages": [{"role": "user", "content": "hi"}]}, "in=100;out=3",
     100 * 5 * M + 3 * 25 * M,
     "speed 'fast' priced at standard rates (the provider charges more: up to 6x on some "
     "models)"),
    ("chat json, web_search_options", "openai", "/v1/chat/completions",
     chat("gpt-4o-mini", web_search_options={}), "in=100;out=10",
     100 * 150_000 + 10 * 600_000,
     "a web search (web_search_options or a search-preview model) not included in the cost "
     "(charged per call)"),
    # ... and nothing is named where there is nothing to name
    ("responses stream, no built-in tool", "openai", "/v1/responses", RESPONSES_STREAM,
     "in=1000;out=10", 1000 * 2_500_000 + 10 * 15 * M, None),
    ("gemini stream, not grounded", "gemini", GEMINI_SSE, GEMINI_BODY, "in=100;out=3",
     100 * 300_000 + 3 * 2_500_000, None),
    ("anthropic json, global inference at standard speed", "anthropic", "/v1/messages",
     {"model": "claude-opus-4-7", "max_tokens": 100, "speed": "standard",
      "messages": [{"role": "user", "content": "hi"}]}, "in=100;out=3;geo=global",
     100 * 5 * M + 3 * 25 * M, None),
]


class UnpricedChargesThroughSimTest(LedgerReads, lwtest.CollectorTestCase):
    """Charges the price table cannot express, end to end: the simulated
    provider reports them (or the request asks for them), the cost stays the
    table's, and the row names them."""

    providers = ("openai", "anthropic", "gemini", "perplexity")

    def test_charges_are_named(self):
        for name, provider, path, body, sim, pusd, warning in CHARGE_CASES:
            with self.subTest(name):
                status, _, _ = self.post(provider, path, body, {"x-sim": sim, "x-api-key": "k"})
                self.assertEqual(status, 200)
                row = self.last_row()
                self.assertFalse(row["partial"])
                self.assertEqual(row["cost_source"], "price")
                self.assertEqual(D(str(row["cost_usd"])), usd(pusd))
                self.assertEqual(row["warning"], warning)

    def drop(self, provider, path, body, sim):
        conn = self.via(provider)
        conn.request("POST", path, body=json.dumps(body),
                     headers={"authorization": "Bearer k", "content-type": "application/json",
                              "x-sim": sim})
        try:
            conn.getresponse().read()
        except Exception:
            pass
        conn.close()
        return lwtest.wait_for(self.last_row, what="ledger row")

    def test_searches_of_a_cut_responses_stream_are_named(self):
        # created, in_progress, then five events per search: the stream is
        # cut right after the second search's output_item.done
        row = self.drop("openai", "/v1/responses", RESPONSES_STREAM,
                        "in=1000;out=10;searches=2;fault=drop;drop_after=12")
        self.assertTrue(row["partial"])
        self.assertIn("built-in tool calls not included in the cost (charged per call or "
                      "session): 2 web_search_call", row["warning"] or "")

    def test_perplexity_fee_is_named_when_perplexity_reports_no_cost(self):
        # a complete answer carries Perplexity's own cost, fee included (the
        # golden cases); a cut one is priced from the table, without the fee
        row = self.drop("perplexity", "/chat/completions", chat("sonar", stream=True),
                        "in=9;out=20;fault=drop;drop_after=3")
        self.assertTrue(row["partial"])
        self.assertEqual(row["cost_source"], "price")
        self.assertIn("Perplexity's per-request fee not included in the cost",
                      row["warning"] or "")


class SpoolTest(LedgerReads, lwtest.CollectorTestCase):
    """A request row reaches SQLite through the ledger's spool: llmctl
    waits for a running collector to apply it, and applies a killed
    collector's spool itself."""

    providers = ("openai",)

    def lock_ledger(self):
        """Takes SQLite's write lock, as another process may: the spool's
        rows then stay in the spool."""
        db = sqlite3.connect(os.path.join(self.home, "ledger.db"), isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        return db

    def send(self):
        status, _, body = self.post("openai", "/v1/chat/completions", chat("gpt-4o-mini"),
                                    {"x-sim": "in=100;out=10"})
        self.assertEqual(status, 200)
        return json.loads(body)["id"]

    def spool_size(self):
        return os.path.getsize(os.path.join(self.home, "ledger.spool"))

    def test_llmctl_waits_for_a_running_collector(self):
        db = self.lock_ledger()
        rid = self.send()
        # llmctl reads only once the collector has applied its spool, which
        # it can do once the lock is gone; a read before would miss the row.
        proc = subprocess.Popen([lwtest.binary("LLMCTL"), "requests", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, LLMWRAP_HOME=self.home))
        self.addCleanup(lambda: proc.poll() is not None or (proc.kill(), proc.wait(5)))
        with self.assertRaises(subprocess.TimeoutExpired):
            proc.wait(0.3)
        # llmctl waits; the collector does not (it once did, up to 10 s).
        lwtest.ipc_status(self.home, timeout=2)
        rid2 = self.send()
        db.execute("ROLLBACK")
        db.close()
        out, err = proc.communicate(timeout=DEFAULT_TIMEOUT)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(rid, [r["upstream_request_id"] for r in json.loads(out)])
        self.assertEqual([r["upstream_request_id"] for r in self.rows()], [rid2, rid])

    def test_llmctl_warns_when_the_lock_outlasts_its_wait(self):
        # llmctl waits 5 s for another process's write lock, then answers
        # from what the ledger holds and says the newest rows may be missing.
        first = self.send()
        self.assertEqual(len(self.rows()), 1)  # in the ledger now
        db = self.lock_ledger()
        self.send()
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json"],
                             capture_output=True, text=True,
                             env=dict(os.environ, LLMWRAP_HOME=self.home),
                             timeout=DEFAULT_TIMEOUT)
        db.execute("ROLLBACK")
        db.close()
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("the newest requests may be missing", out.stderr)
        self.assertIn("locked by another process", out.stderr)
        self.assertEqual([r["upstream_request_id"] for r in json.loads(out.stdout)], [first])

    def test_llmctl_applies_a_killed_collectors_spool(self):
        first = self.send()
        self.assertEqual(len(self.rows()), 1)
        db = self.lock_ledger()
        rid = self.send()
        self.assertGreater(self.spool_size(), 0)
        self.collector.stop(signal.SIGKILL)
        db.execute("ROLLBACK")
        db.close()
        rows = self.rows()
        self.assertEqual([r["upstream_request_id"] for r in rows], [rid, first])
        self.assertEqual((rows[0]["input_tokens"], rows[0]["output_tokens"]), (100, 10))
        self.assertEqual(self.spool_size(), 0)
        # The next collector finds nothing left to apply, and goes on.
        self.collector.start()
        self.send()
        self.assertEqual(len(self.rows()), 3)


class IncludeUsageTest(lwtest.CollectorTestCase):
    providers = ("openai", "xai", "deepseek", "gemini", "groq")

    def test_injected_usage_is_invisible_to_the_client(self):
        """The client that did not ask for usage gets exactly the bytes the
        provider sends without it, and the ledger still has the usage."""
        for provider, model, path in (
                ("openai", "gpt-4o-mini", "/v1/chat/completions"),
                ("xai", "grok-4.3", "/v1/chat/completions"),
                ("deepseek", "deepseek-chat", "/chat/completions"),
                # usage would arrive on the content chunk: the member is cut
                ("gemini", "gemini-2.5-flash", "/v1beta/openai/chat/completions")):
            with self.subTest(provider=provider):
                raw = json.dumps(chat(model, stream=True)).encode()
                headers = {"content-type": "application/json", "authorization": "Bearer k",
                           "x-sim": "in=50;out=6"}
                self.sim.request("POST", "/_sim/reset")
                d_status, _, direct = self.sim.request("POST", path, body=raw, headers=headers)
                self.sim.request("POST", "/_sim/reset")
                c_status, _, proxied = self.post(provider, path, raw, headers)
                self.assertEqual((d_status, c_status), (200, 200))
                self.assertEqual(proxied, direct)
                self.assertNotIn(b'"usage":null', proxied)
                # ... and the simulator did see the injected option.
                seen = json.loads(self.sim.request("GET", "/_sim/requests?limit=1")[2])[0]
                self.assertTrue(seen["include_usage"])
                rows = json.loads(subprocess.run(
                    [lwtest.binary("LLMCTL"), "requests", "--json", "--limit", "1"],
                    capture_output=True, text=True, env=dict(os.environ, LLMWRAP_HOME=self.home),
                    timeout=DEFAULT_TIMEOUT).stdout)
                self.assertEqual((rows[0]["input_tokens"], rows[0]["output_tokens"]), (50, 6))
                self.assertFalse(rows[0]["partial"])

    def test_no_injection_where_usage_comes_anyway(self):
        """Groq reports usage in x_groq unasked: the request goes unchanged."""
        raw = json.dumps(chat("llama-3.3-70b-versatile", stream=True)).encode()
        status, _, _ = self.post("groq", "/openai/v1/chat/completions", raw,
                                 {"x-sim": "in=50;out=6"})
        self.assertEqual(status, 200)
        seen = json.loads(self.sim.request("GET", "/_sim/requests?limit=1")[2])[0]
        self.assertFalse(seen["include_usage"])


class PartialTest(lwtest.CollectorTestCase):
    providers = ("openai", "anthropic")

    def last_row(self):
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json", "--limit", "1"],
                             capture_output=True, text=True,
                             env=dict(os.environ, LLMWRAP_HOME=self.home),
                             timeout=DEFAULT_TIMEOUT)
        rows = json.loads(out.stdout)
        return rows[0] if rows else None

    def test_upstream_dropped_stream_is_partial(self):
        conn = self.via("openai")
        conn.request("POST", "/v1/chat/completions", body=json.dumps(chat("gpt-4o-mini",
                                                                           stream=True)),
                     headers={"authorization": "Bearer k", "content-type": "application/json",
                              "x-sim": "in=400;words=20;fault=drop;drop_after=6"})
        r = conn.getresponse()
        try:
            r.read()
        except Exception:
            pass
        conn.close()
        row = lwtest.wait_for(self.last_row, what="ledger row")
        self.assertTrue(row["partial"])
        # No usage arrived: input estimated from the body, output from the
        # text streamed before the drop (never zero).
        self.assertGreater(row["input_tokens"], 0)
        self.assertGreater(row["output_tokens"], 0)
        self.assertIsNotNone(row["cost_usd"])

    def test_client_gone_mid_stream_is_partial_with_known_input(self):
        s = socket.create_connection((self.collector.addr("anthropic"), self.collector.port),
                                     DEFAULT_TIMEOUT)
        import ssl
        ctx = ssl.create_default_context(cafile=self.collector.ca_file)
        s = ctx.wrap_socket(s, server_hostname="api.anthropic.com")
        body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 500, "stream": True,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: api.anthropic.com\r\nx-api-key: k\r\n"
                  b"content-type: application/json\r\nx-sim: in=3000;words=200;chunk_delay_ms=20"
                  b"\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        got = b""
        while b"content_block_delta" not in got:
            got += s.recv(4096)
        s.close()
        row = lwtest.wait_for(self.last_row, what="ledger row")
        self.assertTrue(row["partial"])
        # message_start reported the input: it is exact, not estimated.
        self.assertEqual(row["input_tokens"], 3000)
        self.assertGreaterEqual(row["output_tokens"], 1)
        self.assertLess(row["output_tokens"], 200)


class ScriptedProviderTestCase(LedgerReads, unittest.TestCase):
    """A collector whose providers (openai, anthropic) are a local
    plain-HTTP server written here, which answers with the body the
    request's x-answer header names (from ANSWERS: name -> (body,
    content-encoding or None)), whatever the request asked for, and records
    the Accept-Encoding it was sent."""

    ANSWERS = {}

    def setUp(self):
        import http.server

        seen = self.seen = []
        answers = self.ANSWERS

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", "0")))
                seen.append(self.headers.get_all("accept-encoding") or [])
                body, coding = answers[self.headers.get("x-answer")]
                self.send_response(200)
                self.send_header("content-type", "application/json")
                if coding:
                    self.send_header("content-encoding", coding)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        lwtest.start_scripted_upstream(self, Handler, ("openai", "anthropic"))

    def post(self, answer, accept=None, provider="openai", path="/v1/chat/completions",
             body=None):
        conn = lwtest.HTTPSViaCollector(self.collector, provider)
        try:
            h = {"authorization": "Bearer k", "x-api-key": "k",
                 "content-type": "application/json", "x-answer": answer}
            if accept is not None:
                h["accept-encoding"] = accept
            conn.request("POST", path, body=json.dumps(body or chat("gpt-4o-mini")), headers=h)
            r = conn.getresponse()
            return r.status, r.getheader("content-encoding"), r.read()
        finally:
            conn.close()



def _raw_deflate(data):
    import zlib
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush()


class EncodingTest(ScriptedProviderTestCase):
    """Compressed answers: the provider is asked only for codings the
    collector reads, raw deflate is read, and an answer in another coding
    (sent although not asked for) is booked as an estimate that says so."""

    ANSWER = json.dumps({"id": "chatcmpl-enc", "object": "chat.completion",
                         "model": "gpt-4o-mini", "choices": [],
                         "usage": {"prompt_tokens": 1000, "completion_tokens": 2000,
                                   "total_tokens": 3000}}).encode()
    ZSTD = b"\x28\xb5\x2f\xfd" + bytes(range(64))  # zstd's magic, then bytes nobody decodes
    ANSWERS = {"identity": (ANSWER, None), "raw-deflate": (_raw_deflate(ANSWER), "deflate"),
               "zstd": (ZSTD, "zstd")}

    def test_only_readable_codings_are_asked_for(self):
        for accept, upstream in (("br;q=1.0, zstd, gzip;q=0.8, deflate;q=0.5",
                                  ["gzip;q=0.8, deflate;q=0.5"]),
                                 ("gzip, deflate, br, zstd", ["gzip, deflate"]),
                                 ("br, zstd", ["identity"]),
                                 (None, ["identity"])):
            with self.subTest(accept=accept):
                status, _, _ = self.post("identity", accept)
                self.assertEqual(status, 200)
                self.assertEqual(self.seen[-1], upstream)

    def test_raw_deflate_answer_is_read(self):
        status, coding, body = self.post("raw-deflate", "deflate")
        self.assertEqual((status, coding), (200, "deflate"))
        import zlib
        self.assertEqual(zlib.decompress(body, -15), self.ANSWER)  # passed on as it came
        row = self.last_row()
        self.assertEqual((row["input_tokens"], row["output_tokens"]), (1000, 2000))
        self.assertFalse(row["partial"])
        self.assertIsNone(row["warning"])
        # gpt-4o-mini: 0.15 in, 0.60 out
        self.assertEqual(D(str(row["cost_usd"])), usd(1000 * 150_000 + 2000 * 600_000))

    def test_unreadable_coding_is_an_estimate_that_says_so(self):
        status, coding, body = self.post("zstd", "zstd, gzip")
        self.assertEqual((status, coding), (200, "zstd"))
        self.assertEqual(body, self.ZSTD)
        self.assertEqual(self.seen[-1], ["gzip"])
        row = self.last_row()
        self.assertTrue(row["partial"])
        self.assertIn("encoded as 'zstd'", row["warning"])
        self.assertIn("estimated", row["warning"])


def _tier_answer(tier):
    """A gpt-5.5 chat answer served in `tier`: 10000 tokens in, 1000 out."""
    return json.dumps({"id": "chatcmpl-t", "object": "chat.completion", "model": "gpt-5.5",
                       "service_tier": tier, "choices": [],
                       "usage": {"prompt_tokens": 10000, "completion_tokens": 1000,
                                 "total_tokens": 11000}}).encode(), None


class UnpricedChargesTest(ScriptedProviderTestCase):
    """Charges the price table cannot express (a service tier other than the
    standard one, Anthropic's web searches) are named on the row; the cost
    stays what the table says, nothing is made up."""

    ANSWERS = {
        "priority": _tier_answer("priority"),
        "flex": _tier_answer("flex"),
        "default": _tier_answer("default"),
        "searches": (json.dumps({
            "id": "msg_1", "type": "message", "model": "claude-sonnet-4-5", "content": [],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 100,
                      "server_tool_use": {"web_search_requests": 5, "web_fetch_requests": 0},
                      "service_tier": "standard"}}).encode(), None),
    }

    # gpt-5.5: 5.00 in, 30.00 out (standard rates; priority would be 10 / 60)
    GPT55 = 10000 * 5 * M + 1000 * 30 * M

    def test_service_tier_other_than_standard_is_named(self):
        for tier, says in (("priority", "the provider charges more"),
                           ("flex", "cost over-stated")):
            with self.subTest(tier=tier):
                status, _, _ = self.post(tier, body=chat("gpt-5.5", service_tier=tier))
                self.assertEqual(status, 200)
                row = self.last_row()
                self.assertEqual(D(str(row["cost_usd"])), usd(self.GPT55))
                self.assertIn(f"service tier '{tier}' priced at standard rates", row["warning"])
                self.assertIn(says, row["warning"])
        self.post("default", body=chat("gpt-5.5"))
        row = self.last_row()
        self.assertEqual(D(str(row["cost_usd"])), usd(self.GPT55))
        self.assertIsNone(row["warning"])

    def test_web_searches_are_named(self):
        status, _, _ = self.post("searches", provider="anthropic", path="/v1/messages",
                                 body={"model": "claude-sonnet-4-5", "max_tokens": 100,
                                       "messages": []})
        self.assertEqual(status, 200)
        row = self.last_row()
        # claude-sonnet-4-5: 3.00 in, 15.00 out; the searches ($0.01 each) are not priced
        self.assertEqual(D(str(row["cost_usd"])), usd(1000 * 3 * M + 100 * 15 * M))
        self.assertEqual(row["warning"],
                         "5 web searches not included in the cost (charged per search)")
        self.assertFalse(row["partial"])



class CutAfterTheLastEventTest(LedgerReads, unittest.TestCase):
    """A stream whose connection breaks after its last event (only the
    chunked terminator lost) had its whole answer: the row, still flagged
    partial, keeps the usage and the cost the provider reported with it
    (OpenRouter's usage.cost, for a model the price table does not have)."""

    EVENTS = (b'data: {"id":"gen-1","object":"chat.completion.chunk",'
              b'"model":"anthropic/claude-opus-4.1","choices":[{"index":0,'
              b'"delta":{"content":"Hi there, this answer is long enough to be noticed"}}]}\n\n'
              b'data: {"id":"gen-1","object":"chat.completion.chunk",'
              b'"model":"anthropic/claude-opus-4.1","choices":[],"usage":{"prompt_tokens":1000,'
              b'"completion_tokens":7,"total_tokens":1007,"cost":0.015525,"is_byok":false}}\n\n'
              b"data: [DONE]\n\n")

    def setUp(self):
        import http.server
        events = self.EVENTS

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", "0")))
                lwtest.write_sse_chunk(self.wfile, events)
                if self.headers.get("x-end") != "cut":
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        lwtest.start_scripted_upstream(self, Handler, ("openrouter",))

    def stream(self, end):
        conn = lwtest.HTTPSViaCollector(self.collector, "openrouter")
        try:
            conn.request("POST", "/api/v1/chat/completions",
                         body=json.dumps(chat("anthropic/claude-opus-4.1", stream=True)),
                         headers={"authorization": "Bearer k", "content-type": "application/json",
                                  "x-end": end})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            try:
                body = r.read()
            except http.client.IncompleteRead as e:
                body = e.partial
            self.assertIn(b"data: [DONE]\n\n", body)
        finally:
            conn.close()
        return self.last_row()

    def test_provider_cost_kept_when_only_the_end_is_lost(self):
        for end, partial in (("clean", False), ("cut", True)):
            with self.subTest(end=end):
                row = self.stream(end)
                self.assertEqual((row["input_tokens"], row["output_tokens"], row["partial"]),
                                 (1000, 7, partial))
                self.assertEqual(D(str(row["cost_usd"])), D("0.015525"))
                self.assertEqual(row["cost_source"], "provider")
                self.assertIsNone(row["warning"])


class RepriceKeepsBookedCostsTest(LedgerReads, lwtest.CollectorTestCase):
    """`llmctl reprice` with the prices the collector used changes nothing:
    every kind of row the collector writes, produced end to end, keeps the
    cost it was booked at, so a reprice can only ever apply a price change.
    The simulated provider serves OpenAI, Anthropic and OpenRouter; Gemini
    is a local server that answers any call (the simulator has no batch
    endpoint)."""

    providers = ("openai", "anthropic", "openrouter")

    def setUp(self):
        import http.server
        import threading

        class Batches(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", "0")))
                body = b'{"name": "batches/1", "metadata": {"state": "BATCH_STATE_PENDING"}}'
                lwtest.send_json(self, body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Batches)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.config_extra = "[provider.gemini]\nupstream = http://127.0.0.1:%d\n" % (
            server.server_address[1])
        super().setUp()

    def rows(self):
        return super().rows(parse_float=D)

    def send(self, provider, path, body, sim="", abandon=False):
        """One request, read to its end; with `abandon`, given up once the
        provider has it and before it answers (the collector then books it
        when it notices)."""
        before = len(self.rows())
        conn = lwtest.HTTPSViaCollector(self.collector, provider)
        try:
            conn.request("POST", path, body=json.dumps(body),
                         headers={"content-type": "application/json",
                                  "authorization": "Bearer k", "x-api-key": "k",
                                  "x-goog-api-key": "k", "x-sim": sim})
            if abandon:
                lwtest.wait_for(lambda: self.sim.stats()["active"] == 1,
                                what="the provider holding the request")
            else:
                conn.getresponse().read()
        except (ConnectionError, http.client.HTTPException):
            pass  # a stream the provider cut
        finally:
            conn.close()
        lwtest.wait_for(lambda: len(self.rows()) > before, what="the request's row")

    # (name, provider, path, body, x-sim, abandoned before the answer)
    KINDS = [
        ("priced", "openai", "/v1/chat/completions", chat("gpt-4.1"), "in=100;out=10", False),
        ("served a dated snapshot the table lists", "openai", "/v1/chat/completions",
         chat("gpt-4o-mini"), "in=100;out=10;snapshot=1", False),
        ("served a snapshot the table does not list", "openai", "/v1/chat/completions",
         chat("gpt-4.1"), "in=100;out=10;served=gpt-4.1-2099-01-01", False),
        ("cost reported by the provider", "openrouter", "/api/v1/chat/completions",
         chat("openai/gpt-4o-mini"), "in=100;out=10;cost=0.0123", False),
        ("refused by a budget", "openai", "/v1/chat/completions", chat("o3"), "", False),
        ("server error, not billed", "openai", "/v1/chat/completions", chat("gpt-4.1"),
         "status=500", False),
        ("free call", "anthropic", "/v1/messages/count_tokens",
         {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]},
         "in=10", False),
        ("cut short, estimated", "openai", "/v1/chat/completions",
         chat("gpt-4.1", stream=True), "in=100;out=50;fault=drop;drop_after=3", False),
        ("never answered, the worst case", "anthropic", "/v1/messages",
         {"model": "claude-sonnet-4-5", "max_tokens": 100,
          "messages": [{"role": "user", "content": "hi"}]}, "delay_ms=5000", True),
        ("model without a price", "openai", "/v1/chat/completions", chat("no-such-model"),
         "in=100;out=10", False),
        ("a call llmwrap cannot price", "gemini",
         "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
         {"batch": {"input_config": {"requests": {"requests": [
             {"request": {"contents": [{"parts": [{"text": "x" * 4000}]}]}}]}}}}, "", False),
        # A budget sends gpt-4o requests as gpt-4o-mini.
        ("downgraded", "openai", "/v1/chat/completions", chat("gpt-4o", max_tokens=100),
         "in=100;out=10", False),
        ("downgraded, never answered", "openai", "/v1/chat/completions",
         chat("gpt-4o", max_tokens=100), "delay_ms=5000", True),
        ("downgraded, served a snapshot the table does not list", "openai",
         "/v1/chat/completions", chat("gpt-4o", max_tokens=100),
         "in=100;out=10;served=gpt-4o-mini-2099-01-01", False),
        # Another lowers gpt-4.1-mini's max_tokens.
        ("clamped", "openai", "/v1/chat/completions", chat("gpt-4.1-mini", max_tokens=100000),
         "in=100;out=10", False),
        ("clamped, never answered", "openai", "/v1/chat/completions",
         chat("gpt-4.1-mini", max_tokens=100000), "delay_ms=5000", True),
    ]

    def test_reprice_with_unchanged_prices_changes_nothing(self):
        self.llmctl("budget", "set", "no-o3", "--limit", "0.000001", "--per", "request",
                    "--scope", "model:o3", "--action", "block")
        self.llmctl("budget", "set", "mini", "--limit", "0.0005", "--per", "request",
                    "--scope", "model:gpt-4o", "--action", "downgrade:gpt-4o-mini")
        self.llmctl("budget", "set", "short", "--limit", "0.001", "--per", "request",
                    "--scope", "model:gpt-4.1-mini", "--action", "clamp")
        for name, provider, path, body, sim, abandon in self.KINDS:
            with self.subTest(name):
                self.send(provider, path, body, sim, abandon)
        booked = {r["id"]: r for r in self.rows()}
        self.assertEqual(len(booked), len(self.KINDS))
        usage = self.llmctl("usage", "--by", "model", "--json")

        out = self.llmctl("reprice")
        self.assertIn(" 0 of ", out)
        self.assertIn(" requests changed, total $0.00.", out)
        for r in self.rows():
            with self.subTest(row=r["id"], model=r["model"], endpoint=r["endpoint"]):
                self.assertEqual((r["cost_usd"], r["cost_source"]),
                                 (booked[r["id"]]["cost_usd"], booked[r["id"]]["cost_source"]))
        self.assertEqual(self.llmctl("usage", "--by", "model", "--json"), usage)
        # Each kind was what it says (rows are numbered in the order sent).
        kinds = dict(zip((k[0] for k in self.KINDS), (booked[i] for i in sorted(booked))))
        self.assertEqual(kinds["refused by a budget"]["refused_by"], "budget no-o3")
        call = kinds["a call llmwrap cannot price"]
        self.assertEqual(call["unpriced_path"],
                         "/v1beta/models/gemini-2.5-flash:batchGenerateContent")
        self.assertIsNone(call["cost_usd"])
        self.assertIsNone(kinds["model without a price"]["cost_usd"])
        self.assertEqual(kinds["cost reported by the provider"]["cost_source"], "provider")
        for name in ("never answered, the worst case", "downgraded, never answered",
                     "clamped, never answered"):
            self.assertIn("charged the most it could cost", kinds[name]["warning"], name)
        for name in ("downgraded", "downgraded, never answered",
                     "downgraded, served a snapshot the table does not list"):
            row = kinds[name]
            self.assertEqual((row["model_requested"], row["model_sent"]),
                             ("gpt-4o", "gpt-4o-mini"), name)
        self.assertEqual(kinds["downgraded, never answered"]["model"], "gpt-4o-mini")
        self.assertIsNone(kinds["clamped"]["model_sent"])
        # gpt-4.1-mini at 1.60 per 1M out: the $0.001 limit holds ~600 tokens
        self.assertLess(kinds["clamped, never answered"]["output_tokens"], 1000)
        # gpt-4o-mini: 0.15 in, 0.60 out, the 100 output tokens sent at most
        self.assertEqual(kinds["downgraded, never answered"]["output_tokens"], 100)
        self.assertEqual(
            D(str(kinds["downgraded, never answered"]["cost_usd"])),
            usd(kinds["downgraded, never answered"]["input_tokens"] * 150_000 + 100 * 600_000))


if __name__ == "__main__":
    unittest.main()
