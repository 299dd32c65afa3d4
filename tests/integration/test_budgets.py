"""Budgets and guards in the real collector, driven through llmctl.

Worst cases here follow collector/worst-case.c: input bound = request body
bytes, output bound = the max-tokens field (or the model's limit); priced at
the model's highest input-side rate and its output rate.
"""

import concurrent.futures
import decimal
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import unittest

import lwtest
from lwtest import DEFAULT_TIMEOUT, wait_for

D = decimal.Decimal
CHAT = "/v1/chat/completions"


def chat(model="gpt-4o-mini", **kw):
    return dict({"model": model, "messages": [{"role": "user", "content": "hi"}]}, **kw)


class BudgetTestCase(lwtest.CollectorTestCase):
    providers = ("openai", "anthropic", "gemini")

    def setUp(self):
        # The collector's clock comes from a file the test moves.
        self.clock_file = None
        super().setUp()

    def llmctl(self, *args, check=True):
        env = dict(os.environ, LLMWRAP_HOME=self.home)
        if self.clock_file:
            env["LLMWRAP_NOW_FILE"] = self.clock_file
        out = subprocess.run([lwtest.binary("LLMCTL"), *args], capture_output=True, text=True,
                             env=env, timeout=DEFAULT_TIMEOUT)
        if check:
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out

    def rows(self):
        return json.loads(self.llmctl("requests", "--json").stdout)

    def spent(self):
        return sum(D(str(r["cost_usd"])) for r in self.rows() if r["cost_usd"] is not None)

    def budget(self, name):
        for b in json.loads(self.llmctl("budget", "list", "--json").stdout):
            if b["name"] == name:
                return b
        raise AssertionError(f"no budget {name}")

    def held(self, name):
        """Spent plus reserved: what counts against the limit."""
        b = self.budget(name)
        return D(str(b["spent_usd"])) + D(str(b["reserved_usd"]))

    def send(self, body, sim="in=100;out=10", provider="openai", path=CHAT, headers=None):
        h = {"x-sim": sim}
        h.update(headers or {})
        return self.post(provider, path, body, h)


class ConcurrencyTest(BudgetTestCase):

    def test_hard_budget_holds_under_40_concurrent_requests(self):
        body = json.dumps(chat(max_tokens=100)).encode()
        # gpt-4o-mini: worst = len(body) x 0.15 + 100 x 0.60 (USD/1M); allow 10.5 of them.
        worst = D(len(body)) * D("0.15") / 10**6 + 100 * D("0.60") / 10**6
        limit = worst * D("10.5")
        self.llmctl("budget", "set", "ci", "--limit", str(limit), "--per", "day")
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            results = list(pool.map(lambda _: self.send(body, "in=100;out=100;delay_ms=200"),
                                    range(40)))
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] != 200]
        self.assertGreaterEqual(len(ok), 10)
        self.assertGreater(len(refused), 0)
        for status, headers, body_bytes in refused:
            self.assertEqual(status, 429)
            self.assertEqual(headers["x-should-retry"], "false")
            self.assertNotIn("retry-after", headers)
            err = json.loads(body_bytes)["error"]
            self.assertEqual(err["code"], "insufficient_quota")
            self.assertIn("'ci'", err["message"])
        self.assertLessEqual(self.spent(), limit)
        b = self.budget("ci")
        self.assertEqual(D(str(b["reserved_usd"])), 0)
        self.assertLessEqual(D(str(b["spent_usd"])), limit)
        # Refusals were answered by the collector: the provider saw only the admitted.
        self.assertEqual(self.sim.stats()["requests"], len(ok))

    def test_editing_a_budget_keeps_counting_its_requests_in_flight(self):
        body = json.dumps(chat(max_tokens=100)).encode()
        worst = D(len(body)) * D("0.15") / 10**6 + 100 * D("0.60") / 10**6
        limit = worst * D("10.5")
        args = ("budget", "set", "ci", "--limit", str(limit))
        self.llmctl(*args, "--per", "day")
        # The ten stay in flight (delay) through both edits below; the
        # checks hold whether they are still reserved or already settled.
        sim = "in=%d;out=100;delay_ms=4000" % len(body)
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            first = [pool.submit(self.send, body, sim) for _ in range(10)]
            wait_for(lambda: self.sim.stats()["active"] == 10, what="10 requests in flight")
            # An edit that changes nothing the spend counts: an alert.
            self.llmctl(*args, "--per", "day", "--alert", "90")
            self.assertEqual(self.held("ci"), 10 * worst)
            self.assertEqual(self.send(body, sim)[0], 429)
            # One that does: a new period, so a new window.
            self.llmctl(*args, "--per", "hour")
            self.assertEqual(self.held("ci"), 10 * worst)
            self.assertEqual(self.send(body, sim)[0], 429)
            self.assertEqual([f.result()[0] for f in first], [200] * 10)
        # Settled into the edited budget: counted in its spend, nothing left reserved.
        total = self.spent()
        self.assertEqual(total, 10 * worst)
        b = self.budget("ci")
        self.assertEqual(D(str(b["reserved_usd"])), 0)
        self.assertEqual(D(str(b["spent_usd"])), total)
        self.assertEqual(self.send(body, sim)[0], 429)
        self.assertEqual(self.sim.stats()["requests"], 10)

    def test_anthropic_refusal_shape(self):
        self.llmctl("budget", "set", "tiny", "--limit", "0.000001", "--per", "month")
        status, headers, body = self.send(
            {"model": "claude-haiku-4-5", "max_tokens": 100,
             "messages": [{"role": "user", "content": "hi"}]},
            provider="anthropic", path="/v1/messages", headers={"x-api-key": "k"})
        self.assertEqual(status, 402)
        self.assertEqual(headers["x-should-retry"], "false")
        self.assertTrue(headers["request-id"].startswith("req_llmwrap_"))
        doc = json.loads(body)
        self.assertEqual((doc["type"], doc["error"]["type"]), ("error", "billing_error"))

    def test_gemini_refusal_shape(self):
        self.llmctl("budget", "set", "tiny", "--limit", "0.000001", "--per", "month")
        status, headers, body = self.send(
            {"contents": [], "generationConfig": {"maxOutputTokens": 50}},
            provider="gemini", path="/v1beta/models/gemini-2.5-flash:generateContent",
            headers={"x-goog-api-key": "k"})
        self.assertEqual(status, 429)
        err = json.loads(body)["error"]
        self.assertEqual((err["code"], err["status"]), (429, "RESOURCE_EXHAUSTED"))


    def test_gemini_openai_endpoint_refusal_shape(self):
        # Gemini's OpenAI-compatible endpoint is used through OpenAI SDKs:
        # its refusals must be in OpenAI's shape.
        self.llmctl("budget", "set", "tiny", "--limit", "0.000001", "--per", "month")
        status, headers, body = self.send(
            chat("gemini-2.5-flash", max_tokens=50), provider="gemini",
            path="/v1beta/openai/chat/completions", headers={"authorization": "Bearer k"})
        self.assertEqual(status, 429)
        self.assertEqual(headers["x-should-retry"], "false")
        self.assertEqual(json.loads(body)["error"]["code"], "insufficient_quota")


class UnreadableSpendTest(BudgetTestCase):
    """A budget whose spend cannot be read from the ledger is not taken to
    be $0: hard budgets refuse in its name until the spend can be read."""

    config_extra = "\n[collector]\nlog_level = debug\n"

    def hide_rows_after_restart(self, body):
        """One request booked, a fresh collector, then the rows' table
        hidden the way a damaged file would hide it. Returns the SQLite
        connection that can bring it back."""
        self.llmctl("budget", "set", "daily", "--limit", "1", "--per", "day",
                    "--scope", "provider:openai")
        self.assertEqual(self.send(body, "in=100;out=10")[0], 200)
        # A fresh collector reads each budget's spend from the ledger when a
        # request first needs it.
        self.assertEqual(self.collector.stop(), 0)
        self.collector.start()
        db = sqlite3.connect(os.path.join(self.home, "ledger.db"), isolation_level=None,
                             timeout=DEFAULT_TIMEOUT)
        self.addCleanup(db.close)
        db.execute("ALTER TABLE requests RENAME TO requests_hidden")
        return db

    def test_hard_budget_refuses_while_its_spend_cannot_be_read(self):
        body = json.dumps(chat(max_tokens=10)).encode()
        one = (100 * D("0.15") + 10 * D("0.60")) / 10**6  # in=100, out=10
        db = self.hide_rows_after_restart(body)

        status, headers, refused = self.send(body, "in=100;out=10")
        self.assertEqual(status, 429)
        self.assertEqual(headers["x-should-retry"], "false")
        err = json.loads(refused)["error"]
        self.assertEqual(err["code"], "insufficient_quota")
        self.assertIn("'daily' cannot be enforced", err["message"])
        self.assertIn("cannot be read from the ledger", err["message"])
        # llmctl shows the spend as unknown, and why, not as $0.
        b = self.budget("daily")
        self.assertIsNone(b["spent_usd"])
        self.assertIsNone(b["remaining_usd"])
        self.assertIn("requests", b["spend_unknown"])
        table = self.llmctl("budget", "list").stdout
        self.assertIn("Budget 'daily': the collector cannot read its spend", table)
        # Requests outside the budget's scope still go through.
        anthropic = {"model": "claude-haiku-4-5", "max_tokens": 10,
                     "messages": [{"role": "user", "content": "hi"}]}
        self.assertEqual(self.send(anthropic, provider="anthropic", path="/v1/messages",
                                   headers={"x-api-key": "k"})[0], 200)

        db.execute("ALTER TABLE requests_hidden RENAME TO requests")
        # The spend is read again (at most a second later) and the request
        # passes; the spend is the ledger's, not the $0 it could not read.
        wait_for(lambda: self.send(body, "in=100;out=10")[0] == 200, timeout=DEFAULT_TIMEOUT,
                 what="the budget's spend read again")
        wait_for(lambda: D(str(self.budget("daily")["spent_usd"])) == 2 * one,
                 timeout=DEFAULT_TIMEOUT, what="two requests' spend in the budget")
        self.assertIsNone(self.budget("daily")["spend_unknown"])


    def test_unreadable_spend_is_read_again_with_backoff(self):
        # Each read may wait out the ledger's busy timeout on the loop (when
        # another process holds the ledger), so one per request would stall
        # the collector: the first read again comes after 1 s, the next
        # after 2 s more.
        body = json.dumps(chat(max_tokens=10)).encode()
        self.hide_rows_after_restart(body)
        mark = len(self.collector.read_log())
        sent = 0
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            self.assertEqual(self.send(body, "in=100;out=10")[0], 429)
            sent += 1
            time.sleep(0.05)
        reads = self.collector.read_log()[mark:].count("spend unknown; read again")
        self.assertGreater(sent, 10)
        self.assertEqual(reads, 2)


class RepriceTest(BudgetTestCase):
    """llmctl reprice changes costs under a running collector: its hard
    budgets must count the new costs, not the spend it read before."""

    prices = "\n[price.sim-open]\ninput = {}\noutput = {}\n"
    config_extra = prices.format(1, 10)

    def test_hard_budget_counts_repriced_costs(self):
        body = json.dumps(chat("sim-open", max_tokens=10)).encode()
        self.llmctl("budget", "set", "daily", "--limit", "0.01", "--per", "day")
        # 1,000 in and 100 out at $1 and $10 per 1M: $0.002.
        self.assertEqual(self.send(body, "in=1000;out=100")[0], 200)
        self.assertEqual(D(str(self.budget("daily")["spent_usd"])), D("0.002"))
        # Ten times the price: the request above cost $0.02, over the limit.
        lwtest.write_config(self.home, lwtest.sim_config(self.sim, self.providers,
                                                         self.prices.format(10, 100)))
        out = self.llmctl("reprice")
        self.assertIn("1 of 1 requests changed", out.stdout)
        self.assertIn("The running collector applied it", out.stdout)
        self.assertEqual(D(str(self.budget("daily")["spent_usd"])), D("0.02"))
        status, _, refused = self.send(body, "in=1000;out=100")
        self.assertEqual(status, 429, refused)
        self.assertIn("'daily'", json.loads(refused)["error"]["message"])
        self.assertEqual(self.sim.stats()["requests"], 1)


class ReloadPriceTest(unittest.TestCase):
    """A request in flight when a reload (SIGHUP) changes its price is booked
    at the price its worst case was reserved by: at the new one, a hard
    budget admitted it for a cost it did not cover."""

    prices = "\n[price.sim-open]\ninput = 1\noutput = {}\n"

    def setUp(self):
        import http.server
        import threading

        self.arrived = threading.Event()
        self.release = threading.Event()
        test = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                test.arrived.set()
                test.release.wait(DEFAULT_TIMEOUT)
                body = json.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "model": "sim-open",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "hi"}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 100,
                              "total_tokens": 110}}).encode()
                lwtest.send_json(self, body)

            def log_message(self, *args):
                pass

        lwtest.start_scripted_upstream(self, Handler)
        self.addCleanup(self.release.set)
        self.upstream = "[provider.openai]\nupstream = http://127.0.0.1:%d\n" % (
            self.server.server_address[1])
        self.reload(1)

    def reload(self, output_price):
        lwtest.write_config(self.home, self.upstream + self.prices.format(output_price))
        mark = len(self.collector.read_log())
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in self.collector.read_log()[mark:],
                 what="reload")

    def llmctl(self, *args):
        out = subprocess.run([lwtest.binary("LLMCTL"), *args], capture_output=True, text=True,
                             env=dict(os.environ, LLMWRAP_HOME=self.home),
                             timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out.stdout

    def test_request_in_flight_keeps_the_price_it_was_admitted_at(self):
        # 10 in and at most 100 out at $1 and $1 per 1M: $0.00011 at worst.
        self.llmctl("budget", "set", "hard", "--limit", "0.001", "--per", "day")
        body = json.dumps(chat("sim-open", max_tokens=100)).encode()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(self.post, body)
            self.assertTrue(self.arrived.wait(DEFAULT_TIMEOUT), "the request never came")
            # $100 per 1M out: its 100 tokens would cost $0.01, ten times the limit.
            self.reload(100)
            self.release.set()
            self.assertEqual(answer.result(DEFAULT_TIMEOUT), 200)
        budget = json.loads(self.llmctl("budget", "list", "--json"))[0]
        self.assertEqual(D(str(budget["spent_usd"])), D("0.00011"))
        # Requests that start after the reload are priced by the new table.
        self.llmctl("budget", "rm", "hard")
        self.assertEqual(self.post(body), 200)
        rows = json.loads(self.llmctl("requests", "--json"))
        self.assertEqual(sorted(D(str(r["cost_usd"])) for r in rows),
                         [D("0.00011"), D("0.01001")])

    def post(self, body):
        conn = lwtest.HTTPSViaCollector(self.collector, "openai")
        try:
            conn.request("POST", CHAT, body=body, headers={
                "content-type": "application/json", "authorization": "Bearer sk-test"})
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()


class UnansweredTest(BudgetTestCase):
    """A request the provider has but never answers (the client gave up, or
    the provider was too slow) may be billed in full: it is booked at its
    worst case, or retries of timed-out requests would pass a hard budget.
    An answer the provider stops sending mid-way is cut and booked."""

    upstream_extra = "first_byte_timeout = 1s\nstall_timeout = 1s"

    body = json.dumps(chat(max_tokens=100)).encode()
    # gpt-4o-mini: len(body) x 0.15 + 100 x 0.60 (USD/1M)
    worst = (D(len(body)) * D("0.15") + 100 * D("0.60")) / 10**6

    def check_row(self, status):
        row = wait_for(lambda: (self.rows() or [None])[0], timeout=DEFAULT_TIMEOUT,
                       what="the request's row")
        self.assertEqual(row["status"], status)
        self.assertTrue(row["partial"])
        self.assertEqual(D(str(row["cost_usd"])), self.worst)
        self.assertIn("may bill it", row["warning"])

    def test_client_that_gives_up_is_charged_the_worst_case(self):
        self.llmctl("budget", "set", "day", "--limit", str(self.worst * D("1.5")), "--per", "day")
        conn = self.via("openai")
        conn.request("POST", CHAT, body=self.body,
                      headers={"authorization": "Bearer k", "content-type": "application/json",
                               "x-sim": "in=50;out=100;delay_ms=5000"})
        wait_for(lambda: self.sim.stats()["active"] == 1, timeout=DEFAULT_TIMEOUT,
                 what="the provider holding the request")
        conn.close()  # as an SDK's timeout does
        self.check_row(0)
        self.assertEqual(D(str(self.budget("day")["spent_usd"])), self.worst)
        # Only half of a worst case is left: the retry is refused.
        self.assertEqual(self.send(self.body)[0], 429)

    def test_provider_too_slow_is_charged_the_worst_case(self):
        status, _, body = self.send(self.body, "in=50;out=100;delay_ms=5000")
        self.assertEqual(status, 504)
        self.assertIn("api.openai.com did not answer within [upstream] first_byte_timeout (1 s)",
                      json.loads(body)["error"]["message"])
        self.check_row(504)

    def test_provider_stalled_mid_answer_is_cut_and_charged(self):
        # The head is out, then nothing: without the collector's own cut, a
        # client with no read timeout (curl) would wait for ever.
        conn = self.via("openai")
        conn.request("POST", CHAT, body=json.dumps(chat(max_tokens=100, stream=True)),
                     headers={"authorization": "Bearer k", "content-type": "application/json",
                              "x-sim": "in=50;out=100;fault=stall"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        t0 = time.monotonic()
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        self.assertLess(time.monotonic() - t0, DEFAULT_TIMEOUT)
        conn.close()
        row = wait_for(lambda: (self.rows() or [None])[0], timeout=DEFAULT_TIMEOUT,
                       what="the request's row")
        self.assertEqual(row["status"], 200)
        self.assertTrue(row["partial"])
        self.assertGreater(row["cost_usd"], 0)
        self.assertEqual(self.send(self.body)[0], 200)

    def test_client_reading_slowly_is_not_a_stall(self):
        # A client that does not read pauses the provider's transfer; that
        # silence is the client's, and must not cut its answer.
        words = 100000  # one SSE event each: ~15 MB, more than any socket buffer
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(DEFAULT_TIMEOUT)
        sock.connect(("127.0.0.1", self.collector.listen_port()))
        self.addCleanup(sock.close)
        body = json.dumps(chat(stream=True, stream_options={"include_usage": True})).encode()
        sock.sendall(b"POST %s HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
                     b"content-type: application/json\r\nx-sim: out=%d\r\n"
                     b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                     % (CHAT.encode(), words, len(body), body))
        first = sock.recv(4096)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
        time.sleep(2.5)  # over the 1 s stall_timeout, reading nothing
        data = bytearray(first)
        while chunk := sock.recv(1 << 20):
            data += chunk
        self.assertTrue(data.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), bytes(data[-200:]))
        row = wait_for(lambda: (self.rows() or [None])[0], timeout=DEFAULT_TIMEOUT,
                       what="the request's row")
        self.assertFalse(row["partial"])
        self.assertEqual(row["output_tokens"], words)

    def test_request_never_sent_costs_nothing(self):
        dead = lwtest.free_port()
        lwtest.write_config(self.home, lwtest.sim_config(
            self.sim, ("anthropic", "gemini"),
            f"\n[provider.openai]\nupstream = https://127.0.0.1:{dead}\n", self.upstream_extra))
        self.collector.stop()
        self.collector.start()
        self.assertEqual(self.send(self.body)[0], 502)
        row = self.rows()[0]
        self.assertEqual(D(str(row["cost_usd"])), 0)
        self.assertFalse(row["partial"])


class FileClockTestCase(BudgetTestCase):
    """The collector reads "now" from a file the test moves."""

    def setUp(self):
        super().setUp()
        self.clock_file = os.path.join(self.workdir, "now")
        self.set_clock("2026-11-21T10:59:58Z")
        # Restart the collector with the file clock.
        self.collector.stop()
        self.collector.env["LLMWRAP_NOW_FILE"] = self.clock_file
        self.collector.start()

    def set_clock(self, iso):
        import datetime
        t = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        with open(self.clock_file + ".tmp", "w") as f:
            f.write(str(t))
        os.replace(self.clock_file + ".tmp", self.clock_file)


class WindowTest(FileClockTestCase):

    def test_hourly_window_rolls_over_at_the_hour(self):
        body = json.dumps(chat(max_tokens=10)).encode()
        worst = D(len(body)) * D("0.15") / 10**6 + 10 * D("0.60") / 10**6
        self.llmctl("budget", "set", "hourly", "--limit", str(worst * 3), "--per", "hour")
        statuses = [self.send(body, "in=%d;out=10" % len(body))[0] for _ in range(6)]
        # Actual cost = worst case here (in = body bytes, out = max_tokens): 3 fit.
        self.assertEqual(statuses, [200, 200, 200, 429, 429, 429])
        b = self.budget("hourly")
        self.assertEqual(b["window_start"], "2026-11-21T10:00:00.000Z")
        self.set_clock("2026-11-21T11:00:01Z")
        self.assertEqual(self.send(body, "in=%d;out=10" % len(body))[0], 200)
        b = self.budget("hourly")
        self.assertEqual(b["window_start"], "2026-11-21T11:00:00.000Z")
        self.assertEqual(D(str(b["spent_usd"])), worst)

    def test_state_survives_a_restart(self):
        body = json.dumps(chat(max_tokens=10)).encode()
        self.llmctl("budget", "set", "daily", "--limit", "1", "--per", "day")
        for _ in range(3):
            self.assertEqual(self.send(body, "in=100;out=10")[0], 200)
        before = self.budget("daily")
        self.assertEqual(self.collector.stop(), 0)
        self.collector.start()
        after = self.budget("daily")
        self.assertEqual(after["spent_usd"], before["spent_usd"])
        self.assertEqual(D(str(after["reserved_usd"])), 0)
        self.assertEqual(D(str(after["spent_usd"])), 3 * (100 * D("0.15") + 10 * D("0.60")) / 10**6)


class ActionsTest(BudgetTestCase):
    config_extra = "\n[budget]\nclamp_floor = 5\n[price.sim-open]\ninput = 1\noutput = 10\n"

    def test_downgrade_is_recorded_as_requested_vs_served(self):
        body = json.dumps(chat("gpt-4.1", max_tokens=100)).encode()
        # gpt-4.1 worst: len(body) x 2 + 100 x 8; mini: len(body) x 0.15 + 100 x 0.6 (USD/1M)
        limit = (D(len(body)) * D("0.15") + 100 * D("0.60")) / 10**6 * 2
        self.llmctl("budget", "set", "cheap", "--limit", str(limit), "--per", "day",
                    "--action", "downgrade:gpt-4o-mini")
        status, _, resp = self.send(body, "in=50;out=5")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(resp)["model"], "gpt-4o-mini")
        row = self.rows()[0]
        self.assertEqual(row["model_requested"], "gpt-4.1")
        self.assertEqual(row["model"], "gpt-4o-mini")
        self.assertEqual(D(str(row["cost_usd"])), (50 * D("0.15") + 5 * D("0.60")) / 10**6)

    def test_gemini_thinking_budget_is_reserved_on_top_of_max_output(self):
        # Google documents thinking as apart from maxOutputTokens, and the
        # sim bills it so: 10 answer tokens and 1,000 thoughts. A reservation
        # of the 10 alone let the answer pass the limit.
        body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                           "generationConfig": {"maxOutputTokens": 10,
                                                "thinkingConfig": {"thinkingBudget": 1000}}}
                          ).encode()
        path = "/v1beta/models/gemini-2.5-flash:generateContent"
        worst = (D(len(body)) * D("0.30") + 1010 * D("2.50")) / 10**6
        self.llmctl("budget", "set", "think", "--limit", str(worst - D("0.000001")),
                    "--per", "day")
        sim = "in=50;out=10;reasoning=1000"
        status, _, resp = self.send(body, sim, provider="gemini", path=path,
                                    headers={"x-goog-api-key": "k"})
        self.assertEqual(status, 429, resp)
        self.assertEqual(self.sim.stats()["requests"], 0)
        self.llmctl("budget", "set", "think", "--limit", str(worst), "--per", "day")
        status, _, resp = self.send(body, sim, provider="gemini", path=path,
                                    headers={"x-goog-api-key": "k"})
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp)["usageMetadata"]["thoughtsTokenCount"], 1000)
        self.assertEqual(D(str(self.rows()[0]["cost_usd"])),
                         (50 * D("0.30") + 1010 * D("2.50")) / 10**6)
        self.assertLessEqual(self.spent(), worst)
        # A clamp writes the answer's share: what is left less the thinking.
        self.llmctl("budget", "rm", "think")
        body = body.replace(b'"maxOutputTokens": 10', b'"maxOutputTokens": 500')
        limit = self.spent() + (D(len(body)) * D("0.30") + 1100 * D("2.50")) / 10**6
        self.llmctl("budget", "set", "clampy", "--limit", str(limit), "--per", "day",
                    "--action", "clamp")
        status, _, resp = self.send(body, "in=50;words=500;reasoning=1000", provider="gemini",
                                    path=path, headers={"x-goog-api-key": "k"})
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp)["usageMetadata"]["candidatesTokenCount"], 100)
        self.assertLessEqual(self.spent(), limit)

    def test_downgrade_of_gemini_rewrites_the_path(self):
        # Gemini names the model in the path, not in the body.
        body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                           "generationConfig": {"maxOutputTokens": 100}}).encode()
        # Twice flash's worst case (len(body) x 0.30 + 100 x 2.50 USD/1M, with
        # room for a dearer input-side rate); pro's (x 1.25, x 10) is over it.
        limit = (D(len(body)) * D("0.5") + 100 * D("2.50")) / 10**6 * 2
        self.llmctl("budget", "set", "cheap", "--limit", str(limit), "--per", "day",
                    "--action", "downgrade:gemini-2.5-flash")
        status, _, resp = self.send(body, "in=50;out=5", provider="gemini",
                                    path="/v1beta/models/gemini-2.5-pro:generateContent",
                                    headers={"x-goog-api-key": "k"})
        self.assertEqual(status, 200, resp)
        self.assertEqual(self.sim.stats()["by_path"],
                         {"/v1beta/models/gemini-2.5-flash:generateContent": 1})
        row = self.rows()[0]
        self.assertEqual(row["model_requested"], "gemini-2.5-pro")
        self.assertEqual(D(str(row["cost_usd"])), (50 * D("0.30") + 5 * D("2.50")) / 10**6)

    def test_clamp_lowers_max_tokens_to_what_remains(self):
        body = json.dumps(chat(max_tokens=100000)).encode()
        # Room for the input bound plus 20 output tokens (after the clamp
        # rewrite the body grows by at most the digits it loses).
        limit = (D(len(body)) * D("0.15") + 20 * D("0.60")) / 10**6
        self.llmctl("budget", "set", "clampy", "--limit", str(limit), "--per", "day",
                    "--action", "clamp")
        status, _, resp = self.send(body, "in=30;words=500")
        self.assertEqual(status, 200)
        out = json.loads(resp)["usage"]["completion_tokens"]
        self.assertGreaterEqual(out, 5)
        self.assertLessEqual(out, 20)
        self.assertEqual(json.loads(resp)["choices"][0]["finish_reason"], "length")
        self.assertLessEqual(self.spent(), limit)
        # Below the floor: refused.
        self.llmctl("budget", "set", "clampy", "--limit", str(D(len(body)) * D("0.15") / 10**6),
                    "--per", "day", "--action", "clamp")
        self.assertEqual(self.send(body, "in=30;words=500")[0], 429)

    def test_clamped_request_never_answered_is_charged_within_the_limit(self):
        # The client gives up before the answer: the request is booked at
        # its worst case as sent, with the clamped max_tokens, which is what
        # the budget admitted; not at the 100000 tokens the program asked.
        body = json.dumps(chat(max_tokens=100000)).encode()
        limit = (D(len(body)) * D("0.15") + 20 * D("0.60")) / 10**6
        self.llmctl("budget", "set", "clampy", "--limit", str(limit), "--per", "day",
                    "--action", "clamp")
        conn = self.via("openai")
        conn.request("POST", CHAT, body=body,
                     headers={"authorization": "Bearer k", "content-type": "application/json",
                              "x-sim": "in=30;words=500;delay_ms=5000"})
        wait_for(lambda: self.sim.stats()["active"] == 1, timeout=DEFAULT_TIMEOUT,
                 what="the provider holding the request")
        conn.close()
        row = wait_for(lambda: (self.rows() or [None])[0], timeout=DEFAULT_TIMEOUT,
                       what="the request's row")
        self.assertIn("may bill it", row["warning"])
        self.assertGreaterEqual(row["output_tokens"], 5)
        self.assertLessEqual(row["output_tokens"], 20)
        self.assertLessEqual(D(str(row["cost_usd"])), limit)
        self.assertLessEqual(D(str(self.budget("clampy")["spent_usd"])), limit)

    def test_unbounded_stream_is_ended_at_the_cap(self):
        # sim-open has a price but no output limit and the request no
        # max-tokens field: the stream is admitted and metered.
        limit = D("0.0005")
        self.llmctl("budget", "set", "meter", "--limit", str(limit), "--per", "day")
        status, text = self.stream(chat("sim-open", stream=True), "in=100;words=5000")
        self.assertEqual(status, 200)
        events = [e for e in text.split("\n\n") if e.strip()]
        last = json.loads(events[-1][len("data: "):])
        self.assertEqual(last["error"]["code"], "insufficient_quota")
        self.assertNotIn("[DONE]", text)
        self.assertLess(len(events), 5000)
        row = self.rows()[0]
        self.assertTrue(row["partial"])
        self.assertLessEqual(self.spent(), limit)
        # The budget is now (nearly) used up: the next one is refused or cut short.
        spent = D(str(self.budget("meter")["spent_usd"]))
        self.assertLessEqual(spent, limit)
        self.assertEqual(spent, self.spent())
        # Read again from the ledger, by a fresh collector, the stream still
        # counts: it was charged, though marked as stopped by the budget.
        self.assertEqual(row["refused_by"], "budget meter")
        self.assertEqual(self.collector.stop(), 0)
        self.collector.start()
        self.assertEqual(D(str(self.budget("meter")["spent_usd"])), spent)

    def stream(self, body, sim):
        conn = self.via("openai")
        try:
            conn.request("POST", CHAT, body=json.dumps(body).encode(),
                         headers={"authorization": "Bearer k", "content-type": "application/json",
                                  "x-sim": sim})
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def assert_streams_share_the_limit(self, results, limit):
        for status, text in results:
            if status == 200:
                # Cut by the budget (5000 words would cost far more).
                self.assertIn("insufficient_quota", text)
                self.assertNotIn("[DONE]", text)
            else:
                self.assertEqual(status, 429, text)
        total = self.spent()
        self.assertLessEqual(total, limit)
        b = self.budget("meter")
        self.assertEqual(D(str(b["reserved_usd"])), 0)
        self.assertEqual(D(str(b["spent_usd"])), total)

    def test_concurrent_unbounded_streams_share_the_cap(self):
        # Eight metered streams at once: each reserved only its input, and
        # each must see the others' output as it grows, or together they
        # spend several times the limit.
        body = chat("sim-open", stream=True)
        limit = D("0.01")
        self.llmctl("budget", "set", "meter", "--limit", str(limit), "--per", "day")
        sim = "in=100;words=5000;delay_ms=300;chunk_delay_ms=5"
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: self.stream(body, sim), range(8)))
        self.assert_streams_share_the_limit(results, limit)

    def test_unbounded_streams_share_the_cap_across_an_edit(self):
        # Four streams admitted, then the budget edited (an alert), then four
        # more: the first four, held by the budget's old state, and the
        # others still share one limit.
        body = chat("sim-open", stream=True)
        limit = D("0.01")
        args = ("budget", "set", "meter", "--limit", str(limit), "--per", "day")
        self.llmctl(*args)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            first = [pool.submit(self.stream, body, "in=100;words=5000;delay_ms=600;"
                                 "chunk_delay_ms=5") for _ in range(4)]
            wait_for(lambda: self.sim.stats()["active"] == 4, what="4 streams admitted")
            self.llmctl(*args, "--alert", "50")
            second = [pool.submit(self.stream, body, "in=100;words=5000;chunk_delay_ms=5")
                      for _ in range(4)]
            results = [f.result() for f in first + second]
        self.assert_streams_share_the_limit(results, limit)

    def test_unbounded_stream_is_ended_at_a_per_request_cap(self):
        # A per-request budget has no state of its own to meter against.
        limit = D("0.0005")
        self.llmctl("budget", "set", "each", "--limit", str(limit), "--per", "request")
        status, text = self.stream(chat("sim-open", stream=True), "in=100;words=5000")
        self.assertEqual(status, 200)
        self.assertFalse("[DONE]" in text, "the stream ran to its end")
        self.assertIn("'each'", text[-2000:])
        row = self.rows()[0]
        self.assertTrue(row["partial"])
        self.assertEqual(row["refused_by"], "budget each")
        self.assertLessEqual(D(str(row["cost_usd"])), limit)

    def test_warn_forwards_with_a_header(self):
        self.llmctl("budget", "set", "soft", "--limit", "0.000001", "--per", "day",
                    "--action", "warn")
        status, headers, _ = self.send(chat(max_tokens=10))
        self.assertEqual(status, 200)
        self.assertIn("soft", headers["x-llmwrap-warning"])

    def test_unknown_price_cannot_pass_a_hard_budget(self):
        self.llmctl("budget", "set", "hard", "--limit", "1", "--per", "day")
        status, _, body = self.send(chat("mystery-model", max_tokens=10))
        self.assertEqual(status, 429)
        self.assertIn("no price", json.loads(body)["error"]["message"])

    def test_unpriced_endpoint_cannot_pass_a_hard_budget(self):
        # An image generation costs money llmwrap cannot compute: a hard
        # budget cannot hold it, so it refuses; free calls still pass.
        self.llmctl("budget", "set", "hard", "--limit", "1", "--per", "day")
        path = "/v1/images/generations?key=SECRET"
        status, _, body = self.send({"model": "gpt-image-1", "prompt": "a cat"}, path=path)
        self.assertEqual(status, 429)
        message = json.loads(body)["error"]["message"]
        self.assertIn("cannot be enforced for POST /v1/images/generations", message)
        self.assertNotIn("SECRET", message)
        self.assertEqual(self.sim.stats()["requests"], 0)
        for free in ("/v1/files", "/v1/moderations", "/v1/responses/resp_1/cancel"):
            self.assertNotEqual(self.send({}, path=free)[0], 429, free)
        self.llmctl("budget", "set", "hard", "--limit", "1", "--per", "day", "--action", "warn")
        status, headers, _ = self.send({"model": "gpt-image-1", "prompt": "a cat"}, path=path)
        self.assertNotEqual(status, 429)
        self.assertIn("cost of POST /v1/images/generations unknown",
                      headers["x-llmwrap-warning"])

    def test_embeddings_are_bounded_by_their_input(self):
        # An embedding has no max-tokens field and its model no output limit,
        # but it has no output either: its worst case is its input alone.
        body = json.dumps({"model": "text-embedding-3-small", "input": "hi"}).encode()
        worst = D(len(body)) * D("0.02") / 10**6  # text-embedding-3-small: 0.02 in
        self.llmctl("budget", "set", "emb", "--limit", format(worst, "f"), "--per", "day")
        status, _, answer = self.send(body, "in=5", path="/v1/embeddings")
        self.assertEqual(status, 200, answer)
        self.assertEqual(D(str(self.budget("emb")["spent_usd"])), 5 * D("0.02") / 10**6)
        # What is left no longer holds a whole body's worth of input.
        status, _, answer = self.send(body, "in=5", path="/v1/embeddings")
        self.assertEqual(status, 429)
        self.assertIn("could cost up to", json.loads(answer)["error"]["message"])
        # Gemini's embedContent is bounded the same way.
        self.llmctl("budget", "set", "emb", "--limit", "1", "--per", "day")
        status, _, answer = self.send({"content": {"parts": [{"text": "hi"}]}}, provider="gemini",
                                      path="/v1beta/models/gemini-embedding-001:embedContent")
        self.assertNotEqual(status, 429, answer)
        self.assertEqual(self.sim.stats()["requests"], 2)

    def test_input_beyond_a_window_with_a_tier_above_it_is_reserved(self):
        # claude-sonnet-4-5 lists a 200k-token window and a price for input
        # above 200k (its 1M-token beta): asked for the beta, a body that can
        # hold more than 200k tokens is reserved at the tier's rates, whole,
        # not as 200k tokens at the base rate, which the answer's cost then
        # passed.
        body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [
            {"role": "user", "content": "lorem ipsum dolor sit amet " * 40000}]}).encode()
        sim = "in=260000;out=10"
        beta = {"anthropic-beta": "files-api-2025-04-14, context-1m-2025-08-07"}
        cost = (260000 * 6 + 10 * D("22.5")) / 10**6  # the tier: 6.00 in, 22.50 out
        self.llmctl("budget", "set", "day", "--limit", "1.25", "--per", "day")
        status, _, answer = self.send(body, sim, provider="anthropic", path="/v1/messages",
                                      headers=beta)
        self.assertEqual(status, 402, answer)
        self.assertEqual(self.sim.stats()["requests"], 0)
        # The whole body at the tier's highest input rate (12.00, 1-hour
        # cache writes) is the bound.
        limit = (len(body) * 12 + 10 * D("22.5")) / 10**6
        self.llmctl("budget", "set", "day", "--limit", format(limit, "f"), "--per", "day")
        status, _, answer = self.send(body, sim, provider="anthropic", path="/v1/messages",
                                      headers=beta)
        self.assertEqual(status, 200, answer)
        self.assertEqual(D(str(self.budget("day")["spent_usd"])), cost)

    def test_window_bounds_referenced_input_unless_the_long_context_beta_is_asked(self):
        # Without the beta the provider refuses input beyond the 200k window,
        # so the window bounds an image by URL; with it, nothing does.
        body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}
        ]}).encode()
        self.llmctl("budget", "set", "hard", "--limit", "5", "--per", "day")
        status, _, answer = self.send(body, "in=100;out=10", provider="anthropic",
                                      path="/v1/messages")
        self.assertEqual(status, 200, answer)
        status, _, answer = self.send(body, "in=100;out=10", provider="anthropic",
                                      path="/v1/messages",
                                      headers={"anthropic-beta": "context-1m-2025-08-07"})
        self.assertEqual(status, 402, answer)
        self.assertIn("no upper bound (it references input", answer.decode())
        self.assertEqual(self.sim.stats()["requests"], 1)

    def test_refusal_of_unbounded_input_names_the_input(self):
        # The input of an image by URL is bounded only by the model's
        # window, which gpt-5.4's entry does not give: the refusal says so
        # instead of asking for the max-tokens field the request has.
        self.llmctl("budget", "set", "hard", "--limit", "5", "--per", "day")
        status, _, answer = self.send(chat("gpt-5.4", max_tokens=10, messages=[
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]))
        self.assertEqual(status, 429, answer)
        message = json.loads(answer)["error"]["message"]
        self.assertIn("no upper bound (it references input", message)
        self.assertNotIn("max-tokens", message)
        self.assertEqual(self.sim.stats()["requests"], 0)

    def test_unlisted_snapshot_counts_against_a_hard_budget(self):
        # Admitted at the requested model's price, answered by a dated
        # snapshot the table does not list: its cost must still count.
        body = json.dumps(chat("gpt-5.2", max_tokens=100)).encode()
        sim = "in=1000;out=100;served=gpt-5.2-2099-12-11"
        cost = (1000 * D("1.75") + 100 * 14) / 10**6  # gpt-5.2: 1.75 in, 14.00 out
        self.llmctl("budget", "set", "day", "--limit", str(cost * D("2.05")), "--per", "day")
        statuses = [self.send(body, sim)[0] for _ in range(4)]
        self.assertEqual(statuses, [200, 200, 429, 429])
        self.assertEqual(D(str(self.budget("day")["spent_usd"])), 2 * cost)

    def test_alerts_fire_once_per_threshold(self):
        marker = os.path.join(self.workdir, "alerts")
        body = json.dumps(chat(max_tokens=10)).encode()
        unit = (100 * D("0.15") + 10 * D("0.60")) / 10**6  # actual cost of one request
        self.llmctl("budget", "set", "watch", "--limit", str(unit * 10), "--per", "day",
                    "--action", "warn", "--alert", "50,80",
                    "--alert-command", f"echo \"$LLMWRAP_BUDGET $LLMWRAP_BUDGET_THRESHOLD\" "
                                       f">> {marker}")
        for _ in range(12):
            self.assertEqual(self.send(body, "in=100;out=10")[0], 200)

        def lines():
            try:
                with open(marker) as f:
                    got = f.read().split("\n")
                return got if len([x for x in got if x]) >= 2 else None
            except FileNotFoundError:
                return None

        got = [x for x in wait_for(lines, what="two alerts") if x]
        self.assertEqual(sorted(got), ["watch 50", "watch 80"])
        # More spend (still the same window) fires nothing again, also after a restart.
        self.collector.stop()
        self.collector.start()
        for _ in range(2):
            self.send(body, "in=100;out=10")
        time.sleep(0.5)  # give a (wrong) extra alert the time to show up
        with open(marker) as f:
            self.assertEqual(len([x for x in f.read().split("\n") if x]), 2)


    def test_a_limit_lowered_under_the_spend_alerts(self):
        # No request settles once the budget blocks: the thresholds the new
        # limit puts the spend past are alerted when it applies.
        marker = os.path.join(self.workdir, "alerts")
        body = json.dumps(chat(max_tokens=10)).encode()
        args = ("budget", "set", "b", "--per", "day", "--alert", "50,80",
                "--alert-command", f"echo \"$LLMWRAP_BUDGET_THRESHOLD\" >> {marker}")
        self.llmctl(*args, "--limit", "1")
        for _ in range(2):
            self.assertEqual(self.send(body, "in=100;out=10")[0], 200)
        self.assertFalse(os.path.exists(marker))
        self.llmctl(*args, "--limit", "0.00001")
        self.assertEqual(self.send(body, "in=100;out=10")[0], 429)

        def alerts():
            try:
                with open(marker) as f:
                    got = sorted(x for x in f.read().split("\n") if x)
                return got if len(got) >= 2 else None
            except FileNotFoundError:
                return None

        self.assertEqual(wait_for(alerts, what="the alerts"), ["50", "80"])


class GuardTest(BudgetTestCase):
    config_extra = "\n[guard.loop]\ntype = loop\nthreshold = 3\nwindow = 60s\naction = block\n"

    def test_loop_guard_blocks_the_third_identical_request(self):
        body = chat(max_tokens=10)
        statuses = [self.send(body)[0] for _ in range(3)]
        self.assertEqual(statuses, [200, 200, 429])
        status, _, resp = self.send(body)
        self.assertIn("guard 'loop'", json.loads(resp)["error"]["message"])
        # A different request still goes through.
        self.assertEqual(self.send(chat(max_tokens=11))[0], 200)
        refused = [r for r in self.rows() if r.get("refused_by")]
        self.assertEqual(len(refused), 2)

    def test_loop_guard_lets_polling_through(self):
        # An SDK helper polls a batch's status with the same GET: free, not
        # a runaway. Nor does the polling push model calls out of the
        # guard's history: the loop is still caught after it.
        body = chat(max_tokens=10)
        self.assertEqual(self.send(body)[0], 200)
        conn = self.via("openai")
        self.addCleanup(conn.close)
        for _ in range(5):
            conn.request("GET", "/v1/batches/batch_1", headers={"authorization": "Bearer k"})
            r = conn.getresponse()
            answer = r.read()
            self.assertNotEqual(r.status, 429, answer)
        self.assertEqual([self.send(body)[0] for _ in range(2)], [200, 429])


class GuardKindsTest(FileClockTestCase):
    """rate, spend-rate, size and growth, set with llmctl as a user would."""

    def guard(self, name, *args):
        self.llmctl("guard", "set", name, *args)

    def refused_by(self, reply):
        status, _, body = reply
        self.assertEqual(status, 429, body)
        return json.loads(body)["error"]["message"]

    def test_rate_guard_counts_requests_in_its_window(self):
        self.guard("burst", "--type", "rate", "--threshold", "3", "--window", "60s")
        for i in range(3):
            self.assertEqual(self.send(chat(max_tokens=10 + i))[0], 200)
        self.assertIn("guard 'burst': 4 requests", self.refused_by(self.send(chat(max_tokens=20))))
        self.set_clock("2026-11-21T11:01:00Z")  # the three have left the window
        self.assertEqual(self.send(chat(max_tokens=21))[0], 200)

    def test_spend_rate_guard_counts_settled_spend(self):
        unit = (100 * D("0.15") + 10 * D("0.60")) / 10**6  # one request's actual cost
        self.guard("burn", "--type", "spend-rate", "--threshold", str(2 * unit),
                   "--window", "60s")
        for i in range(2):
            self.assertEqual(self.send(chat(max_tokens=10 + i))[0], 200)
        message = self.refused_by(self.send(chat(max_tokens=20)))
        self.assertIn("guard 'burn': $0.000042 spent", message)
        self.set_clock("2026-11-21T11:01:00Z")
        self.assertEqual(self.send(chat(max_tokens=21))[0], 200)

    def send_many(self, n, sim="in=1;out=1"):
        """n requests, one after the other on one connection: their statuses."""
        conn = self.via("openai")
        self.addCleanup(conn.close)
        body = json.dumps(chat(max_tokens=10)).encode()
        statuses = []
        for _ in range(n):
            conn.request("POST", CHAT, body=body, headers={
                "content-type": "application/json", "authorization": "Bearer sk-test",
                "x-sim": sim})
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
        return statuses

    def test_rate_guard_counts_past_a_thousand_requests(self):
        # More requests in a window than the loop guard's history keeps
        # (LW_GUARD_HISTORY) still all count.
        self.guard("burst", "--type", "rate", "--threshold", "1100", "--window", "1h")
        self.assertEqual(self.send_many(1102), [200] * 1100 + [429] * 2)

    def test_spend_rate_guard_counts_past_a_thousand_spends(self):
        unit = (1 * D("0.15") + 1 * D("0.60")) / 10**6  # in=1, out=1
        self.guard("burn", "--type", "spend-rate", "--threshold", str(1100 * unit),
                   "--window", "1h")
        self.assertEqual(self.send_many(1102), [200] * 1100 + [429] * 2)
        self.assertEqual(self.spent(), 1100 * unit)

    def test_a_guard_in_the_ledger_and_in_config_counts_apart(self):
        # The same name in both (config.ini edited after `guard set`): two
        # guards, each counting each request once.
        self.guard("burst", "--type", "rate", "--threshold", "3", "--window", "60s")
        lwtest.write_config(self.home, lwtest.sim_config(
            self.sim, self.providers,
            "\n[guard.burst]\ntype = rate\nthreshold = 3\nwindow = 60s\n"))
        mark = len(self.collector.read_log())
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in self.collector.read_log()[mark:],
                 what="reload")
        self.assertEqual(self.send_many(4), [200, 200, 200, 429])

    def test_size_guard_blocks_or_warns_on_a_big_input(self):
        self.guard("big", "--type", "size", "--threshold", "100")  # ~400 bytes of body
        self.assertEqual(self.send(chat(max_tokens=10))[0], 200)
        huge = chat(max_tokens=10, messages=[{"role": "user", "content": "x" * 1000}])
        self.assertIn("guard 'big': about 2", self.refused_by(self.send(huge)))
        self.guard("big", "--type", "size", "--threshold", "100", "--action", "warn")
        status, headers, _ = self.send(huge)
        self.assertEqual(status, 200)
        self.assertIn("big", headers["x-llmwrap-warning"])

    def test_size_and_growth_guards_leave_file_uploads_alone(self):
        # A file the collector streams unread is no model input: a 1 MB
        # upload passes a blocking size guard of 100 tokens, and does not
        # become the first input a growth guard compares with.
        self.guard("big", "--type", "size", "--threshold", "100")
        self.guard("swell", "--type", "growth", "--threshold", "4")
        upload = b"--x\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n" + \
            b"y" * 1_000_000 + b"\r\n--x--\r\n"
        status, _, answer = self.post("openai", "/v1/files", upload,
                                      {"content-type": "multipart/form-data; boundary=x"})
        self.assertEqual(status, 200, answer)
        self.assertEqual(json.loads(answer)["bytes"], len(upload))
        self.assertEqual(self.send(chat(max_tokens=10))[0], 200)

    def test_growth_guard_compares_with_the_first_request(self):
        self.guard("swell", "--type", "growth", "--threshold", "4")
        first = chat(max_tokens=10, messages=[{"role": "user", "content": "x" * 200}])
        self.assertEqual(self.send(first)[0], 200)
        three_times = chat(max_tokens=10, messages=[{"role": "user", "content": "x" * 700}])
        self.assertEqual(self.send(three_times)[0], 200)
        five_times = chat(max_tokens=10, messages=[{"role": "user", "content": "x" * 1300}])
        self.assertIn("guard 'swell': input grew", self.refused_by(self.send(five_times)))
        refused = [r for r in self.rows() if r.get("refused_by")]
        self.assertEqual([r["refused_by"] for r in refused], ["guard swell"])


if __name__ == "__main__":
    unittest.main()
