"""llmctl against ledgers with known rows.

Each test builds a private LLMWRAP_HOME, writes its ledger with
ledger-fixture (the real ledger API), pins the clock with LLMWRAP_NOW and
the price table with LLMWRAP_DATA_DIR, runs llmctl and checks what users
and scripts rely on: the pinned JSON shapes and exact values, CSV, table
layout, filters, reprice, exit statuses. `status` and `tail` talk to a
small fake collector speaking the real framing and protobuf encoding.

Binaries come from the environment meson sets: LLMCTL, LEDGER_FIXTURE.
"""

import calendar
import collections
import csv
import datetime
import io
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unicodedata
import unittest
from decimal import Decimal

TIMEOUT = 20.0
NOW = 1795262400  # 2026-11-21T12:00:00Z
NOW_MS = NOW * 1000
MIN = 60_000
HOUR = 3_600_000
PUSD = Decimal(10) ** 12


def binary(name):
    path = os.environ.get(name)
    if not path or not os.path.exists(path):
        raise unittest.SkipTest(f"{name} not set (run through meson test)")
    return path


# A price table whose rates make every cost below computable by hand.
PRICES = {
    "version": "2026-01-01",
    "source": "test",
    "unit": "USD per 1M tokens",
    "providers": {
        "openai": {
            "gpt-4o": {"input": 2.5, "output": 10, "cached_input": 1.25,
                       "snapshots": ["2024-08-06"]},
        },
        "anthropic": {
            "claude-x": {"input": 3, "output": 15, "cached_input": 0.3,
                         "cache_write": 3.75, "cache_write_1h": 6},
        },
    },
}

RUNS = [
    {"started_ms": NOW_MS - 4 * HOUR, "ended_ms": NOW_MS - 3 * HOUR + 61_000,
     "exit_status": 0, "argv": ["python3", "agent.py", "--task", "two words"],
     "cwd": "/home/u/proj", "pid": 100, "tags_json": '{"team":"a"}',
     "budget_pusd": 5 * 10**12},
    {"parent_id": 1, "started_ms": NOW_MS - 3 * HOUR - 10_000,
     "ended_ms": NOW_MS - 3 * HOUR, "exit_status": 3, "argv": ["child"],
     "pid": 101, "tags_json": '{"team":"b"}'},
    {"started_ms": NOW_MS - 51 * HOUR, "argv": ["still-running"], "pid": 102},
]

WEIRD_MODEL = 'weird, "quoted"\nmodel'

REQUESTS = [
    # r1: a served snapshot, priced
    {"time_ms": NOW_MS - 30 * MIN, "run_id": 1, "pid": 100, "provider": "openai",
     "host": "api.openai.com", "endpoint": "chat", "model_requested": "gpt-4o",
     "model_served": "gpt-4o-2024-08-06", "status": 200, "input_tokens": 1000,
     "cached_input_tokens": 100, "output_tokens": 200, "cost_pusd": 4_500_000_000,
     "cost_source": "price", "latency_ms": 812, "ttft_ms": 95, "tags_json": '{"team":"a"}',
     "upstream_request_id": "chatcmpl-1", "credential": "0123456789abcdef",
     "raw_usage": '{"prompt_tokens":1000,"completion_tokens":200}', "exe": "/usr/bin/python3"},
    # r2: cache tokens of every kind, a 12-digit cost, streamed and cut short
    {"time_ms": NOW_MS - 90 * MIN, "run_id": 1, "pid": 100, "provider": "anthropic",
     "endpoint": "messages", "model_requested": "claude-x", "model_served": "claude-x",
     "stream": True, "partial": True, "status": 200, "input_tokens": 2000,
     "cached_input_tokens": 500, "cache_write_tokens": 300, "cache_write_1h_tokens": 100,
     "output_tokens": 100, "reasoning_tokens": 50, "cost_pusd": 123_456_789_012,
     "cost_source": "price", "latency_ms": 5000, "tags_json": '{"team":"a"}'},
    # r3: a model without a price
    {"time_ms": NOW_MS - 3 * HOUR, "run_id": 2, "pid": 101, "provider": "openai",
     "endpoint": "chat", "model_requested": "mystery-model", "status": 200,
     "input_tokens": 400, "output_tokens": 50, "latency_ms": 100,
     "tags_json": '{"team":"b"}', "warning": "no price for model mystery-model"},
    # r4: yesterday, outside llmwrap, cost reported by the provider, a name
    # that needs CSV quoting
    {"time_ms": NOW_MS - 26 * HOUR, "pid": 555, "provider": "openrouter",
     "endpoint": "chat", "model_requested": WEIRD_MODEL, "status": 200,
     "input_tokens": 10, "output_tokens": 1, "cost_pusd": 1, "cost_source": "provider",
     "latency_ms": 40},
    # r5: two days ago, a server error, no price
    {"time_ms": NOW_MS - 50 * HOUR, "run_id": 3, "pid": 102, "provider": "openai",
     "endpoint": "chat", "model_requested": "mystery-model", "status": 500,
     "input_tokens": 10, "output_tokens": 0, "latency_ms": 30},
    # r6: served from the collector's cache
    {"time_ms": NOW_MS - 10 * MIN, "run_id": 2, "pid": 101, "provider": "openai",
     "endpoint": "chat", "model_requested": "gpt-4o", "model_served": "gpt-4o",
     "status": 200, "input_tokens": 300, "output_tokens": 30, "cost_pusd": 0,
     "cache_hit": True, "latency_ms": 0, "tags_json": '{"team":"b"}'},
    # r7: refused by a budget
    {"time_ms": NOW_MS - 5 * MIN, "run_id": 1, "pid": 100, "provider": "anthropic",
     "endpoint": "messages", "model_requested": "claude-x", "status": 429,
     "cost_pusd": 0, "cost_source": "price", "refused_by": "budget:daily", "latency_ms": 1,
     "tags_json": '{"team":"a"}'},
]


def model_of(r):
    return r.get("model_served") or r.get("model_requested")


def cost_of(r):
    return r.get("cost_pusd")


def utc(ms):
    return datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)


def key_of(r, by):
    if by == "model":
        return model_of(r)
    if by == "provider":
        return r.get("provider")
    if by == "run":
        return str(r["run_id"]) if r.get("run_id") else None
    if by == "day":
        return utc(r["time_ms"]).strftime("%Y-%m-%d")
    if by == "hour":
        return utc(r["time_ms"]).strftime("%Y-%m-%dT%H:00Z")
    if by.startswith("tag:"):
        tags = json.loads(r["tags_json"]) if r.get("tags_json") else {}
        return tags.get(by[4:])
    raise ValueError(by)


def expected_usage(rows, by):
    out = collections.OrderedDict()
    for r in rows:
        k = key_of(r, by)
        e = out.setdefault(k, collections.Counter())
        e["requests"] += 1
        for f in ("input_tokens", "output_tokens", "cached_input_tokens",
                  "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens"):
            e[f] += r.get(f, 0)
        e["cost_pusd"] += cost_of(r) or 0
        e["unpriced_requests"] += cost_of(r) is None
        e["partial_requests"] += bool(r.get("partial"))
    return out


def pusd(value):
    """cost_usd as parsed with Decimal (or a whole number) -> exact pico-USD."""
    assert isinstance(value, (Decimal, int)) and not isinstance(value, bool), value
    scaled = value * PUSD
    assert scaled == scaled.to_integral_value(), value
    return int(scaled)


class Home:
    """A private LLMWRAP_HOME with a ledger, a price table and a clock."""

    def __init__(self, requests=(), runs=(), ledger=True):
        self.dir = tempfile.mkdtemp(prefix="lw-ctl-")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        with open(os.path.join(self.data, "prices.json"), "w") as f:
            json.dump(PRICES, f)
        if ledger:
            fixture = os.path.join(self.dir, "fixture.json")
            with open(fixture, "w") as f:
                json.dump({"runs": list(runs), "requests": list(requests)}, f)
            subprocess.run([binary("LEDGER_FIXTURE"), os.path.join(self.dir, "ledger.db"),
                            fixture], check=True, timeout=TIMEOUT)

    def env(self, **extra):
        env = dict(os.environ)
        env.update({"LLMWRAP_HOME": self.dir, "LLMWRAP_NOW": str(NOW),
                    "LLMWRAP_DATA_DIR": self.data, "LC_ALL": "C.UTF-8"})
        env.update(extra)
        return env

    def run(self, *args, expect=0, env=None):
        p = subprocess.run([binary("LLMCTL"), *args], capture_output=True,
                           env=env or self.env(), timeout=TIMEOUT)
        out, err = p.stdout.decode(), p.stderr.decode()
        if expect is not None and p.returncode != expect:
            raise AssertionError(f"llmctl {' '.join(args)}: exit {p.returncode}, "
                                 f"wanted {expect}\nstdout:\n{out}\nstderr:\n{err}")
        return out, err, p.returncode

    def json(self, *args):
        out, _, _ = self.run(*args)
        return json.loads(out, parse_float=Decimal)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class LedgerTest(unittest.TestCase):
    def setUp(self):
        self.home = Home(REQUESTS, RUNS)
        self.addCleanup(self.home.cleanup)


class EmptyLedger(unittest.TestCase):
    def test_missing_ledger_is_no_data(self):
        home = Home(ledger=False)
        self.addCleanup(home.cleanup)
        for cmd in (["requests"], ["usage"], ["runs"], ["usage", "--by", "day"]):
            self.assertEqual(home.json(*cmd, "--json"), [], cmd)
        out, _, _ = home.run("usage", "--csv")
        self.assertEqual(out.count("\r\n"), 1)
        self.assertTrue(out.startswith("key,requests,"))
        out, _, _ = home.run("usage")
        self.assertIn("No requests", out)
        out, _, _ = home.run("reprice")
        self.assertIn("nothing to reprice", out)
        # Reading never creates the ledger.
        self.assertFalse(os.path.exists(os.path.join(home.dir, "ledger.db")))

    def test_default_limit_says_only_when_rows_were_left_out(self):
        row = {"provider": "openai", "endpoint": "chat", "model_requested": "gpt-4o",
               "status": 200, "input_tokens": 1, "output_tokens": 1, "latency_ms": 5}
        for n, note in ((50, False), (51, True)):
            home = Home(requests=[dict(row, time_ms=NOW_MS - i * MIN) for i in range(n)])
            self.addCleanup(home.cleanup)
            out, _, _ = home.run("requests")
            self.assertEqual(out.count(" openai "), 50, n)
            self.assertEqual("(the newest 50; --limit N shows more)" in out, note, n)

    def test_empty_ledger(self):
        home = Home(requests=[])
        self.addCleanup(home.cleanup)
        self.assertEqual(home.json("requests", "--json"), [])
        self.assertEqual(home.json("usage", "--json", "--by", "tag:team"), [])
        out, _, _ = home.run("requests")
        self.assertIn("No requests match", out)


class Requests(LedgerTest):
    def test_json_every_field(self):
        rows = self.home.json("requests", "--json")
        self.assertEqual(len(rows), len(REQUESTS))
        # Newest first.
        times = [r["time"] for r in rows]
        self.assertEqual(times, sorted(times, reverse=True))
        by_time = {r["time_ms"]: r for r in REQUESTS}
        pinned = ["id", "time", "provider", "model", "model_requested", "endpoint", "status",
                  "stream", "input_tokens", "output_tokens", "cached_input_tokens",
                  "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens",
                  "cost_usd", "cost_source", "cache_hit", "partial", "run_id", "pid",
                  "latency_ms", "ttft_ms", "upstream_request_id", "warning"]
        for row in rows:
            for f in pinned:
                self.assertIn(f, row)
            src = by_time[row["time_ms"]]
            t = utc(src["time_ms"]).strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"
            self.assertEqual(row["time"], t)
            self.assertEqual(row["provider"], src.get("provider"))
            self.assertEqual(row["model"], model_of(src))
            self.assertEqual(row["model_requested"], src.get("model_requested"))
            self.assertEqual(row["endpoint"], src.get("endpoint"))
            self.assertIs(type(row["status"]), int)
            self.assertEqual(row["status"], src["status"])
            for f in ("stream", "cache_hit", "partial"):
                self.assertIs(row[f], bool(src.get(f)), f)
            for f in ("input_tokens", "output_tokens", "cached_input_tokens",
                      "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens"):
                self.assertEqual(row[f], src.get(f, 0), f)
            if src.get("cost_pusd") is None:
                self.assertIsNone(row["cost_usd"])
            else:
                self.assertEqual(pusd(row["cost_usd"]), src["cost_pusd"])
            self.assertEqual(row["cost_source"], src.get("cost_source"))
            self.assertEqual(row["run_id"], src.get("run_id"))
            self.assertEqual(row["pid"], src["pid"])
            self.assertEqual(row["latency_ms"], src["latency_ms"])
            self.assertEqual(row["ttft_ms"], src.get("ttft_ms"))
            self.assertEqual(row["upstream_request_id"], src.get("upstream_request_id"))
            self.assertEqual(row["warning"], src.get("warning"))
            self.assertEqual(row["refused_by"], src.get("refused_by"))
        first = next(r for r in rows if r["time_ms"] == REQUESTS[0]["time_ms"])
        self.assertEqual(first["tags"], {"team": "a"})
        self.assertEqual(first["usage"], {"prompt_tokens": 1000, "completion_tokens": 200})
        self.assertEqual(first["model_served"], "gpt-4o-2024-08-06")

    def test_cost_usd_is_exact(self):
        out, _, _ = self.home.run("requests", "--json")
        # 12 fractional digits, straight from the integer, no float detour.
        self.assertIn('"cost_usd": 0.123456789012', out)
        self.assertIn('"cost_usd": 0.0045,', out)
        self.assertIn('"cost_usd": 0.000000000001,', out)
        self.assertIn('"cost_usd": 0,', out)

    def filtered(self, *args):
        return sorted(r["time_ms"] for r in self.home.json("requests", "--json", *args))

    def expect(self, pred):
        return sorted(r["time_ms"] for r in REQUESTS if pred(r))

    def test_filters(self):
        t = lambda r: r["time_ms"]
        self.assertEqual(self.filtered("--since", "2h"), self.expect(lambda r: t(r) >= NOW_MS - 2 * HOUR))
        self.assertEqual(self.filtered("--since", "2026-11-20"),
                         self.expect(lambda r: t(r) >= NOW_MS - 36 * HOUR))
        self.assertEqual(self.filtered("--until", "1d"), self.expect(lambda r: t(r) < NOW_MS - 24 * HOUR))
        self.assertEqual(self.filtered("--since", "2026-11-21T10:00", "--until", "2026-11-21T11:45:00Z"),
                         self.expect(lambda r: NOW_MS - 2 * HOUR <= t(r) < NOW_MS - 15 * MIN))
        # An offset: 12:45+01:00 is 11:45Z.
        self.assertEqual(self.filtered("--since", "2026-11-21T12:45+01:00"),
                         self.expect(lambda r: t(r) >= NOW_MS - 15 * MIN))
        self.assertEqual(self.filtered("--run", "1"), self.expect(lambda r: r.get("run_id") == 1))
        self.assertEqual(self.filtered("--run", "none"), self.expect(lambda r: not r.get("run_id")))
        self.assertEqual(self.filtered("--provider", "anthropic"),
                         self.expect(lambda r: r["provider"] == "anthropic"))
        self.assertEqual(self.filtered("--model", "gpt-4o"),
                         self.expect(lambda r: "gpt-4o" in (r.get("model_requested"), r.get("model_served"))))
        self.assertEqual(self.filtered("--tag", "team=b"),
                         self.expect(lambda r: r.get("tags_json") == '{"team":"b"}'))
        self.assertEqual(self.filtered("--tag", "team"), self.expect(lambda r: r.get("tags_json")))
        self.assertEqual(self.filtered("--status", "4xx"), self.expect(lambda r: 400 <= r["status"] < 500))
        self.assertEqual(self.filtered("--status", "500"), self.expect(lambda r: r["status"] == 500))
        self.assertEqual(self.filtered("--status", "200-499", "--provider", "openai"),
                         self.expect(lambda r: r["status"] < 500 and r["provider"] == "openai"))
        self.assertEqual(self.filtered("--partial"), self.expect(lambda r: r.get("partial")))
        newest = sorted(REQUESTS, key=t, reverse=True)[:2]
        self.assertEqual(self.filtered("--limit", "2"), sorted(t(r) for r in newest))
        self.assertEqual(self.filtered("--limit", "0"), [])

    def test_csv(self):
        out, _, _ = self.home.run("requests", "--csv")
        self.assertTrue(out.endswith("\r\n"))
        self.assertNotIn("\r\n\r\n", out)
        records = list(csv.reader(io.StringIO(out, newline="")))
        header, rows = records[0], records[1:]
        self.assertEqual(header[:4], ["id", "time", "provider", "model"])
        self.assertEqual(len(rows), len(REQUESTS))
        for row in rows:
            self.assertEqual(len(row), len(header))
        weird = [dict(zip(header, r)) for r in rows if r[header.index("provider")] == "openrouter"]
        self.assertEqual(len(weird), 1)
        self.assertEqual(weird[0]["model"], WEIRD_MODEL)  # comma, quotes, newline survive
        self.assertEqual(weird[0]["cost_usd"], "0.000000000001")
        self.assertEqual(weird[0]["run_id"], "")
        unknown = [dict(zip(header, r)) for r in rows if r[header.index("status")] == "500"]
        self.assertEqual(unknown[0]["cost_usd"], "")
        # Quoting per RFC 4180: the field in quotes, inner quotes doubled.
        self.assertIn('"weird, ""quoted""\nmodel"', out)

    def test_table(self):
        out, _, _ = self.home.run("requests")
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("TIME (UTC)"))
        # Unknown costs show as "?", with the footer naming the models.
        self.assertIn("?", out)
        self.assertIn("2 requests have no price (unknown model: mystery-model) — see llmctl pricing",
                      out)
        # Control characters from the ledger never reach the terminal.
        self.assertNotIn('"quoted"\nmodel', out)
        self.assertIn('weird, "quoted"?model', out)
        # Latency: whole milliseconds in the ledger, so 0 was under 1 ms.
        self.assertRegex(out, r"\s812ms\s")
        self.assertRegex(out, r"\s<1ms\s")
        self.assertNotRegex(out, r"\s0ms\s")


class Usage(LedgerTest):
    def check(self, by, rows, *args):
        got = self.home.json("usage", "--json", "--by", by, *args)
        want = expected_usage(rows, by)
        self.assertEqual(sorted((g["key"] is None, g["key"] or "") for g in got),
                         sorted((k is None, k or "") for k in want), by)
        for g in got:
            w = want[g["key"]]
            self.assertEqual(g["requests"], w["requests"], (by, g["key"]))
            for f in ("input_tokens", "output_tokens", "cached_input_tokens",
                      "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens",
                      "unpriced_requests", "partial_requests"):
                self.assertEqual(g[f], w[f], (by, g["key"], f))
            self.assertEqual(pusd(g["cost_usd"]), w["cost_pusd"], (by, g["key"]))
        return got

    def test_every_key(self):
        for by in ("model", "provider", "run", "day", "hour", "tag:team", "tag:absent"):
            self.check(by, REQUESTS)

    def test_default_is_by_model(self):
        self.assertEqual(self.home.json("usage", "--json"),
                         self.home.json("usage", "--json", "--by", "model"))

    def test_since_until(self):
        t = lambda r: r["time_ms"]
        self.check("model", [r for r in REQUESTS if t(r) >= NOW_MS - 2 * HOUR], "--since", "2h")
        self.check("day", [r for r in REQUESTS if t(r) >= NOW_MS - 7 * 24 * HOUR], "--since", "1w")
        self.check("hour", [r for r in REQUESTS if t(r) < NOW_MS - 26 * HOUR + 1], "--until",
                   "2026-11-20T10:00:00.001Z")
        self.check("provider", [r for r in REQUESTS if NOW_MS - 3 * HOUR <= t(r) < NOW_MS - 20 * MIN],
                   "--since", "180m", "--until", "20m")
        self.assertEqual(self.home.json("usage", "--json", "--since", "10s"), [])

    def test_day_keys_and_order(self):
        got = self.home.json("usage", "--json", "--by", "day")
        self.assertEqual([g["key"] for g in got], ["2026-11-19", "2026-11-20", "2026-11-21"])

    def test_table(self):
        out, _, _ = self.home.run("usage", "--by", "provider")
        lines = out.splitlines()
        table = lines[:lines.index("")] if "" in lines else lines
        self.assertEqual(table[0].split()[:3], ["PROVIDER", "REQUESTS", "INPUT"])
        # Right-aligned last column: every line of the table ends in the same column.
        self.assertEqual(len({len(line) for line in table}), 1, table)
        self.assertTrue(set(table[-2]) <= {"-", " "})
        self.assertTrue(table[-1].startswith("TOTAL"))
        # 0.0045 + 0.123456789012 + 1e-12 to three significant digits, and a
        # marker for the requests without a price.
        self.assertIn("$0.128+?", table[-1])
        self.assertIn("+?", out)  # openai: part priced, part not
        self.assertIn("2 requests have no price (unknown model: mystery-model) — see llmctl pricing",
                      out)

    def test_wide_characters_keep_the_columns(self):
        # A terminal gives a CJK character two columns, a combining mark none.
        row = {"time_ms": NOW_MS - MIN, "provider": "openai", "endpoint": "chat",
               "model_requested": "gpt-4o", "status": 200, "input_tokens": 1,
               "output_tokens": 1, "cost_pusd": 1, "latency_ms": 1}
        home = Home(requests=[dict(row, tags_json='{"team":"開発チーム"}'),
                              dict(row, tags_json='{"team":"cafe\u0301"}'),
                              dict(row, tags_json='{"team":"ops"}')])
        self.addCleanup(home.cleanup)
        out, _, _ = home.run("usage", "--by", "tag:team")

        def columns(line):
            return sum(0 if unicodedata.combining(c) else
                       2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
        table = out.splitlines()[:6]
        self.assertEqual(len({columns(line) for line in table}), 1, table)

    def test_csv(self):
        out, _, _ = self.home.run("usage", "--csv", "--by", "model")
        records = list(csv.reader(io.StringIO(out, newline="")))
        self.assertEqual(records[0][:5], ["key", "requests", "input_tokens", "output_tokens",
                                          "cached_input_tokens"])
        keys = {r[0] for r in records[1:]}
        self.assertEqual(keys, {model_of(r) for r in REQUESTS})


class Runs(LedgerTest):
    def test_json(self):
        runs = self.home.json("runs", "--json")
        self.assertEqual([r["id"] for r in runs], [3, 2, 1])
        r1 = runs[2]
        self.assertEqual(r1["argv"], RUNS[0]["argv"])
        self.assertIsNone(r1["parent_id"])
        self.assertEqual(r1["exit_status"], 0)
        self.assertEqual(r1["duration_ms"], RUNS[0]["ended_ms"] - RUNS[0]["started_ms"])
        self.assertEqual(r1["tags"], {"team": "a"})
        self.assertEqual(pusd(r1["budget_usd"]), 5 * 10**12)
        own = [r for r in REQUESTS if r.get("run_id") == 1]
        self.assertEqual(r1["requests"], len(own))
        self.assertEqual(pusd(r1["cost_usd"]), sum(cost_of(r) or 0 for r in own))
        self.assertEqual(runs[1]["parent_id"], 1)
        self.assertEqual(runs[1]["exit_status"], 3)
        self.assertEqual(runs[1]["unpriced_requests"], 1)
        self.assertIsNone(runs[0]["ended"])
        self.assertIsNone(runs[0]["exit_status"])
        self.assertEqual(len(self.home.json("runs", "--json", "--limit", "1")), 1)

    def test_table(self):
        out, _, _ = self.home.run("runs")
        self.assertIn("running", out)
        self.assertIn("python3 agent.py --task 'two words'", out)

    def test_limits(self):
        out, _, _ = self.home.run("runs", "--limit", "0")
        self.assertEqual(out, "No runs shown (--limit 0).\n")
        out, _, _ = self.home.run("runs", "--limit", "1")
        self.assertIn("still-running", out)
        self.assertNotIn("agent.py", out)

    def test_default_limit_says_only_when_runs_were_left_out(self):
        for n, note in ((20, False), (21, True)):
            home = Home(runs=[dict(RUNS[2], argv=[f"cmd{i}"]) for i in range(n)])
            self.addCleanup(home.cleanup)
            out, _, _ = home.run("runs")
            self.assertEqual(out.count(" cmd"), 20, n)
            self.assertEqual("(the newest 20; --limit N shows more)" in out, note, n)


class Reprice(LedgerTest):
    def test_reprice_after_override(self):
        with open(os.path.join(self.home.dir, "config.ini"), "w") as f:
            f.write("[price.mystery-model]\ninput = 1.5\noutput = 3\n")
        before = {r["time_ms"]: r for r in self.home.json("requests", "--json")}
        out, _, _ = self.home.run("reprice", "--since", "1d")
        self.assertIn("changed", out)
        after = {r["time_ms"]: r for r in self.home.json("requests", "--json")}
        # r3 (mystery-model, 3 hours ago): now priced by the override.
        r3 = after[REQUESTS[2]["time_ms"]]
        self.assertEqual(pusd(r3["cost_usd"]), 400 * 1_500_000 + 50 * 3_000_000)
        self.assertEqual(r3["cost_source"], "price")
        # r5 is older than --since: untouched.
        self.assertIsNone(after[REQUESTS[4]["time_ms"]]["cost_usd"])
        # r1 and r2: the table's prices, every token kind at its rate.
        self.assertEqual(pusd(after[REQUESTS[0]["time_ms"]]["cost_usd"]),
                         900 * 2_500_000 + 100 * 1_250_000 + 200 * 10_000_000)
        self.assertEqual(pusd(after[REQUESTS[1]["time_ms"]]["cost_usd"]),
                         1200 * 3_000_000 + 500 * 300_000 + 200 * 3_750_000 + 100 * 6_000_000
                         + 100 * 15_000_000)
        # Provider-reported costs, cache hits and refusals keep theirs.
        for i in (3, 5, 6):
            t = REQUESTS[i]["time_ms"]
            self.assertEqual(after[t]["cost_usd"], before[t]["cost_usd"], i)
        # Usage sums follow the repriced rows.
        usage = {u["key"]: u for u in self.home.json("usage", "--json")}
        self.assertEqual(usage["mystery-model"]["unpriced_requests"], 1)
        self.assertEqual(pusd(usage["mystery-model"]["cost_usd"]), 750_000_000)
        # Everything: r5 too.
        out, _, _ = self.home.run("reprice")
        self.assertIn("1 of", out)
        after = {r["time_ms"]: r for r in self.home.json("requests", "--json")}
        self.assertEqual(pusd(after[REQUESTS[4]["time_ms"]]["cost_usd"]), 10 * 1_500_000)

    def test_reprice_without_price_keeps_unknown(self):
        out, _, _ = self.home.run("reprice")
        self.assertIn("no price (unknown model: mystery-model)", out)

    def test_bad_config_is_usage_error(self):
        with open(os.path.join(self.home.dir, "config.ini"), "w") as f:
            f.write("[price.x]\ninput = cheap\noutput = 1\n")
        _, err, _ = self.home.run("reprice", expect=2)
        self.assertIn("cheap", err)


class UnpricedCalls(unittest.TestCase):
    """Calls llmwrap cannot price (images, audio, batches) keep an unknown
    cost, even when their model has a price, and the footers say why,
    apart from requests to a model without a price."""

    CALL = {"time_ms": NOW_MS - 3 * HOUR, "provider": "openai", "endpoint": "unpriced",
            "unpriced_path": "/v1/batches", "model_requested": "gpt-4o", "status": 200,
            "input_tokens": 100_000, "partial": True,
            "warning": "llmwrap cannot price POST /v1/batches: cost unknown"}
    ROWS = [
        CALL,
        dict(CALL, time_ms=NOW_MS - 2 * HOUR, unpriced_path="/v1/images/generations",
             warning="llmwrap cannot price POST /v1/images/generations: cost unknown"),
        {"time_ms": NOW_MS - 2 * HOUR, "provider": "openai", "endpoint": "chat",
         "model_requested": "mystery-model", "status": 200, "input_tokens": 10},
    ]
    CALLS_FOOTER = ("2 requests are calls llmwrap cannot price (POST /v1/batches, "
                    "POST /v1/images/generations): cost unknown")
    MODELS_FOOTER = "1 request has no price (unknown model: mystery-model) — see llmctl pricing"

    def setUp(self):
        self.home = Home(self.ROWS)
        self.addCleanup(self.home.cleanup)

    def test_footers(self):
        for cmd in (["requests"], ["usage"], ["usage", "--since", "150m"]):
            out, _, _ = self.home.run(*cmd)
            self.assertNotIn("unknown model: gpt-4o", out, cmd)
            if cmd[-1] == "150m":
                self.assertIn("1 request is a call llmwrap cannot price "
                              "(POST /v1/images/generations): cost unknown", out)
            else:
                self.assertIn(self.CALLS_FOOTER, out, cmd)
            self.assertIn(self.MODELS_FOOTER, out, cmd)
        rows = self.home.json("requests", "--json")
        self.assertEqual(sorted(r["unpriced_path"] or "" for r in rows),
                         ["", "/v1/batches", "/v1/images/generations"])

    def test_reprice_keeps_unknown(self):
        out, _, _ = self.home.run("reprice")
        self.assertIn("0 of 1 requests changed", out)
        self.assertIn(self.MODELS_FOOTER, out)
        self.assertNotIn("gpt-4o", out)
        for r in self.home.json("requests", "--json"):
            self.assertIsNone(r["cost_usd"], r)
            self.assertIsNone(r["cost_source"], r)
        self.assertEqual(sum(u["unpriced_requests"] for u in self.home.json("usage", "--json")), 3)


class Downgraded(unittest.TestCase):
    """A request a budget downgraded, whose answer never came: shown,
    counted and repriced as the model sent, with the one asked for kept."""

    ROW = {"time_ms": NOW_MS - 3 * HOUR, "provider": "anthropic", "endpoint": "messages",
           "model_requested": "claude-big", "model_sent": "claude-x", "status": 0,
           "input_tokens": 100, "output_tokens": 10, "partial": True,
           # claude-x: 3.00 in, 15.00 out
           "cost_pusd": 100 * 3_000_000 + 10 * 15_000_000, "cost_source": "price"}

    def setUp(self):
        self.home = Home([self.ROW])
        self.addCleanup(self.home.cleanup)

    def test_shown_counted_and_repriced_as_sent(self):
        out, _, _ = self.home.run("requests")
        self.assertIn("claude-x", out)
        self.assertIn("downgraded from claude-big", out)
        row = self.home.json("requests", "--json")[0]
        self.assertEqual((row["model"], row["model_requested"], row["model_sent"]),
                         ("claude-x", "claude-big", "claude-x"))
        self.assertEqual(len(self.home.json("requests", "--json", "--model", "claude-x")), 1)
        self.assertEqual([u["key"] for u in self.home.json("usage", "--json")], ["claude-x"])
        out, _, _ = self.home.run("reprice")
        self.assertIn("0 of 1 requests changed", out)


class Pricing(LedgerTest):
    def test_list_and_show(self):
        prices = self.home.json("pricing", "list", "--json")
        self.assertEqual({(p["provider"], p["model"]) for p in prices},
                         {("openai", "gpt-4o"), ("anthropic", "claude-x")})
        claude = next(p for p in prices if p["model"] == "claude-x")
        self.assertEqual(claude["cache_write_1h"], Decimal("6"))
        self.assertEqual(claude["cached_input"], Decimal("0.3"))
        self.assertEqual(self.home.json("pricing", "list", "--provider", "openai", "--json")[0]["model"],
                         "gpt-4o")
        shown = self.home.json("pricing", "show", "gpt-4o-2024-08-06", "--json")
        self.assertEqual(shown[0]["model"], "gpt-4o")
        out, _, _ = self.home.run("pricing", "list")
        self.assertIn("$2.50", out)
        _, err, _ = self.home.run("pricing", "show", "mystery-model", expect=1)
        self.assertIn("no price for 'mystery-model'", err)
        self.home.run("pricing", expect=2)
        self.home.run("pricing", "nope", expect=2)

    def test_partial_override(self):
        # Keys not given keep the table's values; a model the table lacks
        # needs input and output, and lacking one is a bad config.ini (exit
        # 2) named by file, line and key, for every command that prices.
        config = os.path.join(self.home.dir, "config.ini")
        with open(config, "w") as f:
            f.write("[price.gpt-4o]\ncached_input = 0.5\n")
        shown = self.home.json("pricing", "show", "gpt-4o", "--json")[0]
        self.assertEqual((shown["input"], shown["output"], shown["cached_input"]),
                         (Decimal("2.5"), Decimal("10"), Decimal("0.5")))
        with open(config, "w") as f:
            f.write("[budget]\nclamp_floor = 64\n\n[price.brand-new]\ninput = 1\n")
        for args in (("pricing", "list"), ("reprice",)):
            _, err, _ = self.home.run(*args, expect=2)
            self.assertIn(f"{config}:4: key 'output' missing in [price.brand-new]", err)


class Usage_errors(unittest.TestCase):
    def setUp(self):
        self.home = Home(ledger=False)
        self.addCleanup(self.home.cleanup)

    def test_bad_arguments(self):
        cases = [
            (["bogus"], "bogus"),
            (["usage", "--frobnicate"], "frobnicate"),
            (["usage", "--since", "yesterday"], "yesterday"),
            (["usage", "--until", "2026-13-01"], "2026-13-01"),
            (["usage", "--since", "2026-11-21T25:00"], "2026-11-21T25:00"),
            (["usage", "--by", "colour"], "colour"),
            (["usage", "--by", "tag:"], "tag:"),
            (["usage", "--json", "--csv"], "--csv"),
            (["requests", "--limit", "-1"], "-1"),
            (["requests", "--limit", "many"], "many"),
            (["requests", "--status", "7xx"], "7xx"),
            (["requests", "--run", "first"], "first"),
            (["requests", "surplus"], "surplus"),
            (["--nope"], "--nope"),
            (["help", "nope"], "nope"),
        ]
        for args, named in cases:
            _, err, _ = self.home.run(*args, expect=2)
            self.assertIn(named, err, args)

    def test_bad_clock(self):
        _, err, _ = self.home.run("usage", "--since", "1h",
                                  env=self.home.env(LLMWRAP_NOW="soon"), expect=2)
        self.assertIn("soon", err)

    def test_help_and_version(self):
        out, _, _ = self.home.run("--version")
        self.assertTrue(out.startswith("llmctl "))
        out, _, _ = self.home.run("help")
        for cmd in ("status", "usage", "requests", "runs", "tail", "pricing", "reprice"):
            self.assertIn(cmd, out)
        self.assertIn("UTC unless an offset", out)
        out, _, _ = self.home.run("help", "usage")
        self.assertIn("--since", out)
        _, _, rc = self.home.run(expect=2)

    def test_home_option(self):
        other = Home([REQUESTS[0]])
        self.addCleanup(other.cleanup)
        env = self.home.env()
        rows = json.loads(self.home.run("--home", other.dir, "requests", "--json", env=env)[0])
        self.assertEqual(len(rows), 1)
        rows = json.loads(self.home.run(f"--home={other.dir}", "requests", "--json", env=env)[0])
        self.assertEqual(len(rows), 1)


# ---- a fake collector for status and tail ----

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode(buf):
    """Top-level fields of a message: {number: [value, ...]}."""
    fields = collections.defaultdict(list)
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        fields[num].append(v)
    return fields


STATUS_REPLY = (field_varint(1, 4242) + field_bytes(2, "9.9.9") + field_varint(3, 123_456)
                + field_varint(4, 40123) + field_varint(5, 241)
                + field_bytes(6, field_bytes(1, "openai") + field_bytes(2, "127.241.0.1")
                              + field_varint(3, 40123))
                + field_bytes(6, field_bytes(1, "") + field_bytes(2, "127.0.0.1")
                              + field_varint(3, 8080))
                + field_bytes(7, field_varint(4, 17) + field_varint(5, 2) + field_varint(11, 1))
                + field_bytes(9, "/x/ca.pem"))


def request_event(time_ms, model, cost=None, run_id=7):
    e = (field_varint(1, time_ms) + field_varint(2, run_id) + field_bytes(3, "openai")
         + field_bytes(4, model) + field_bytes(5, "chat") + field_varint(6, 200)
         + field_varint(7, 1) + field_varint(8, 11) + field_varint(9, 22)
         + field_varint(12, 345) + field_varint(13, 99))
    if cost is not None:
        e += field_varint(10, cost) + field_varint(11, 1)
    else:
        e += field_varint(11, 0)
    return e


class FakeCollector:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.sock.settimeout(TIMEOUT)
        self.subscribed = threading.Event()
        self.conn = None
        self.closed = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def send(self, body_num, body, req_id=None):
        msg = (field_varint(1, req_id) if req_id is not None else b"") + field_bytes(body_num, body)
        self.conn.sendall(struct.pack(">I", len(msg)) + msg)

    def serve(self):
        # One client after another, as long as the socket listens.
        while self.serve_one():
            pass

    def serve_one(self):
        try:
            self.conn, _ = self.sock.accept()
            self.conn.settimeout(TIMEOUT)
            buf = b""
            while True:
                data = self.conn.recv(65536)
                if not data:
                    return True
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                    n = struct.unpack(">I", buf[:4])[0]
                    req, buf = decode(buf[4:4 + n]), buf[4 + n:]
                    req_id = req[1][0]
                    if 10 in req:
                        self.send(10, STATUS_REPLY, req_id)
                    elif 14 in req:
                        self.send(15, b"", req_id)
                        self.subscribed.set()
        except OSError:
            return not self.closed

    def close(self):
        # The listening socket first, as a collector that exits stops
        # answering before its clients see their connections end.
        self.closed = True
        for s in (self.sock, self.conn):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def read_line(proc, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            raise AssertionError(f"no line from llmctl within {timeout}s (got {line!r})")
        b = os.read(proc.stdout.fileno(), 1)
        if not b:
            raise AssertionError(f"llmctl closed stdout (got {line!r})")
        line += b
    return line.decode()


class Collector(unittest.TestCase):
    def setUp(self):
        self.home = Home(ledger=False)
        self.addCleanup(self.home.cleanup)
        os.makedirs(os.path.join(self.home.dir, "run"), mode=0o700)
        self.socket = os.path.join(self.home.dir, "run", "collector.sock")

    def test_status_not_running(self):
        out, _, _ = self.home.run("status", expect=3)
        self.assertIn("not running", out)
        status = json.loads(self.home.run("status", "--json", expect=3)[0])
        self.assertEqual(status, {"running": False, "state_dir": self.home.dir,
                                  "ledger": os.path.join(self.home.dir, "ledger.db")})

    def test_status_stale_socket_is_not_running(self):
        # A collector killed with -9 leaves its socket behind.
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.socket)
        s.close()
        out, _, _ = self.home.run("status", expect=3)
        self.assertIn("not running", out)

    def test_status_unreachable_is_an_error_not_not_running(self):
        # A socket llmctl cannot reach (another user's, a broken run
        # directory) is not "not running": scripts would start another.
        os.rmdir(os.path.join(self.home.dir, "run"))
        with open(os.path.join(self.home.dir, "run"), "w"):
            pass
        _, err, _ = self.home.run("status", expect=1)
        self.assertIn("cannot reach the collector", err)
        # Nor for kill, whose status 3 tells a script there is nothing to kill.
        _, err, _ = self.home.run("kill", "1", expect=1)
        self.assertIn("cannot reach the collector", err)
        self.assertNotIn("not running", err)

    def test_socket_path_too_long_is_an_error_not_not_running(self):
        # No collector can ever listen on such a path: "not running (it
        # starts with the first llmwrap)" would send the user the wrong way.
        home = os.path.join(self.home.dir, "h" * 120)
        os.makedirs(home)
        env = self.home.env(LLMWRAP_HOME=home)
        for args in (("status",), ("kill", "1")):
            out, err, _ = self.home.run(*args, expect=1, env=env)
            self.assertIn("too long for a unix socket", err)
            self.assertNotIn("not running", out + err)

    def test_status_running(self):
        fake = FakeCollector(self.socket)
        self.addCleanup(fake.close)
        status = json.loads(self.home.run("status", "--json")[0])
        self.assertIs(status["running"], True)
        self.assertEqual(status["pid"], 4242)
        self.assertEqual(status["version"], "9.9.9")
        self.assertEqual(status["uptime_s"], 123)
        self.assertEqual(status["ports"], {"synthetic": 40123, "listen": [8080]})
        self.assertEqual(status["listeners"][0],
                         {"provider": "openai", "address": "127.241.0.1", "port": 40123})
        self.assertEqual(status["counters"]["requests_total"], 17)
        self.assertEqual(status["counters"]["refused"], 1)
        self.assertEqual(status["state_dir"], self.home.dir)

    def test_status_running_table(self):
        fake = FakeCollector(self.socket)
        self.addCleanup(fake.close)
        out, _, _ = self.home.run("status")
        self.assertIn("is running (pid 4242", out)
        self.assertIn("17 total", out)

    def start_tail(self, *args):
        fake = FakeCollector(self.socket)
        self.addCleanup(fake.close)
        proc = subprocess.Popen([binary("LLMCTL"), "tail", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.home.env())
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.assertTrue(fake.subscribed.wait(TIMEOUT), "llmctl did not subscribe")
        return fake, proc

    def test_tail_until_signal(self):
        fake, proc = self.start_tail("--json")
        fake.send(14, request_event(NOW_MS, "gpt-4o", cost=4_500_000_000))
        fake.send(14, request_event(NOW_MS + 1000, "mystery"))
        first = json.loads(read_line(proc), parse_float=Decimal)
        self.assertEqual(first["model"], "gpt-4o")
        self.assertEqual(pusd(first["cost_usd"]), 4_500_000_000)
        self.assertEqual(first["time"], "2026-11-21T12:00:00.000Z")
        self.assertEqual((first["input_tokens"], first["output_tokens"]), (11, 22))
        self.assertEqual(first["run_id"], 7)
        self.assertIs(first["stream"], True)
        second = json.loads(read_line(proc))
        self.assertIsNone(second["cost_usd"])
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)

    def test_tail_human_and_collector_gone(self):
        fake, proc = self.start_tail()
        fake.send(14, request_event(NOW_MS, "gpt-4o", cost=123_000_000))
        line = read_line(proc)
        self.assertIn("gpt-4o", line)
        self.assertIn("$0.000123", line)
        fake.close()
        self.assertEqual(proc.wait(timeout=TIMEOUT), 1)
        self.assertIn("went away", proc.stderr.read().decode())

    def test_tail_dropped_by_a_running_collector(self):
        # The collector drops a tail that falls too far behind; it is still
        # running, so "went away" would send the user looking for a crash.
        fake, proc = self.start_tail()
        fake.conn.shutdown(socket.SHUT_RDWR)
        self.assertEqual(proc.wait(timeout=TIMEOUT), 1)
        err = proc.stderr.read().decode()
        self.assertIn("dropped this tail: it fell too far behind", err)
        fake.close()

    def test_tail_not_running(self):
        _, err, _ = self.home.run("tail", expect=1)
        self.assertIn("not running", err)


if __name__ == "__main__":
    unittest.main()
