"""llmctl budget, guard, kill and ca.

Budgets and guards are written by llmctl itself into a private
LLMWRAP_HOME; request rows come from ledger-fixture (the real ledger API),
the clock is pinned with LLMWRAP_NOW. The exchanges with a collector
(ReloadRequest, KillRunRequest, BudgetStatusRequest) run against a fake
collector speaking the real framing and protobuf encoding, which records
what it was sent.

Binaries come from the environment meson sets: LLMCTL, LEDGER_FIXTURE.
"""

import base64
import calendar
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import threading
import unittest
from decimal import Decimal

from test_llmctl import (HOUR, MIN, STATUS_REPLY, TIMEOUT, Home, decode, field_bytes,
                         field_varint, pusd)

PUSD = 10**12  # an int: the protobuf encoder below takes ints only


def ms(*args):
    """Unix ms of a UTC time (y, mo, d, h=0, mi=0, s=0)."""
    return calendar.timegm(datetime.datetime(*args).timetuple()) * 1000


def now_env(home, t_ms):
    return home.env(LLMWRAP_NOW=str(t_ms // 1000))


# ---- a fake collector that answers what these commands send ----

def budget_state(name, limit, spent, reserved, start=0, end=0, run_id=None, refused=None):
    m = (field_bytes(1, name) + field_varint(2, limit) + field_varint(3, spent)
         + field_varint(4, reserved) + field_varint(5, start) + field_varint(6, end))
    if run_id is not None:
        m += field_varint(7, run_id)
    if refused is not None:
        m += field_varint(8, refused)
    return m


class FakeCollector:
    """Serves any number of llmctl connections, one after the other, and
    records the body field number (and body) of every request."""

    def __init__(self, path, budgets=(), reload_error=None, known_runs=(7,)):
        self.budgets = list(budgets)
        self.reload_error = reload_error
        self.known_runs = set(known_runs)
        self.requests = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(TIMEOUT)
        self.closed = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def sent(self, body_num):
        with self.lock:
            return [body for num, body in self.requests if num == body_num]

    @staticmethod
    def reply(conn, req_id, body_num=None, body=b"", error=None):
        msg = field_varint(1, req_id)
        if error is not None:
            msg += field_bytes(2, field_bytes(1, error))
        else:
            msg += field_bytes(body_num, body)
        conn.sendall(struct.pack(">I", len(msg)) + msg)

    def answer(self, conn, req):
        req_id = req[1][0]
        for num in (10, 15, 16, 17):
            if num in req:
                with self.lock:
                    self.requests.append((num, req[num][0]))
                break
        else:
            return self.reply(conn, req_id, error="unexpected request")
        if 10 in req:
            self.reply(conn, req_id, 10, STATUS_REPLY)
        elif 15 in req:
            if self.reload_error:
                self.reply(conn, req_id, error=self.reload_error)
            else:
                self.reply(conn, req_id, 15)
        elif 16 in req:
            run = decode(req[16][0])[1][0]
            if run in self.known_runs:
                self.reply(conn, req_id, 15)
            else:
                self.reply(conn, req_id, error="no such run")
        elif 17 in req:
            body = b"".join(field_bytes(1, b) for b in self.budgets)
            self.reply(conn, req_id, 16, body)

    def serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(TIMEOUT)
                buf = b""
                try:
                    while True:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buf += data
                        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                            n = struct.unpack(">I", buf[:4])[0]
                            req, buf = decode(buf[4:4 + n]), buf[4 + n:]
                            self.answer(conn, req)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(TIMEOUT)


class BudgetHome(unittest.TestCase):
    requests = ()
    runs = ()

    def setUp(self):
        self.home = Home(self.requests, self.runs)
        self.addCleanup(self.home.cleanup)
        self.run_dir = os.path.join(self.home.dir, "run")
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        self.socket = os.path.join(self.run_dir, "collector.sock")

    def llmctl(self, *args, expect=0, now=None):
        env = now_env(self.home, now) if now is not None else None
        return self.home.run(*args, expect=expect, env=env)

    def budgets(self, now=None):
        out, _, _ = self.llmctl("budget", "list", "--json", now=now)
        return json.loads(out, parse_float=Decimal)

    def fake(self, **kw):
        f = FakeCollector(self.socket, **kw)
        self.addCleanup(f.close)
        return f


# ---- definitions ----

class Definitions(BudgetHome):
    def test_set_list_rm_round_trip(self):
        out, _, _ = self.llmctl("budget", "set", "daily", "--limit", "5", "--per", "day",
                                "--alert", "80,50", "--alert-command", "echo \"$LLMWRAP_BUDGET\"")
        self.assertIn("Budget 'daily' created", out)
        self.assertIn("No collector is running", out)
        self.llmctl("budget", "set", "oai", "--limit", "0.000000000001", "--per", "month",
                    "--scope", "provider:openai", "--action", "downgrade:gpt-4o")
        self.llmctl("budget", "set", "m", "--limit", "12.345678901234", "--per", "hour",
                    "--scope", "model:gpt-4o", "--action", "warn")
        self.llmctl("budget", "set", "team-a", "--limit", "2", "--per", "run",
                    "--scope", "tag:team=a b", "--action", "clamp", "--alert", "95")
        self.llmctl("budget", "set", "each", "--limit", "0.5", "--per", "request")
        got = self.budgets()
        common = {"reserved_usd": 0, "refused": None, "spend_unknown": None, "run_id": None,
                  "runs": [], "live": False, "alert_command": None, "alerts": []}
        self.assertEqual([b["name"] for b in got], ["daily", "each", "m", "oai", "team-a"])
        daily = dict(common, name="daily", limit_usd=5, period="day", scope="global",
                     action="block", alerts=[50, 80], alert_command="echo \"$LLMWRAP_BUDGET\"",
                     spent_usd=0, remaining_usd=5, window_start="2026-11-21T00:00:00.000Z",
                     next_reset="2026-11-22T00:00:00.000Z")
        self.assertEqual(got[0], daily)
        self.assertEqual(got[3], dict(common, name="oai", limit_usd=Decimal("0.000000000001"),
                                      period="month", scope="provider:openai",
                                      action="downgrade:gpt-4o", spent_usd=0,
                                      remaining_usd=Decimal("0.000000000001"),
                                      window_start="2026-11-01T00:00:00.000Z",
                                      next_reset="2026-12-01T00:00:00.000Z"))
        self.assertEqual(got[2]["limit_usd"], Decimal("12.345678901234"))
        self.assertEqual(got[2]["window_start"], "2026-11-21T12:00:00.000Z")
        self.assertEqual(got[2]["next_reset"], "2026-11-21T13:00:00.000Z")
        per_run = dict(common, name="team-a", limit_usd=2, period="run", scope="tag:team=a b",
                       action="clamp", alerts=[95], spent_usd=None, reserved_usd=None,
                       remaining_usd=None, window_start=None, next_reset=None)
        self.assertEqual(got[4], per_run)
        self.assertEqual((got[1]["period"], got[1]["spent_usd"], got[1]["next_reset"]),
                         ("request", None, None))

        # Replacing: a new definition, reported as an update.
        out, _, _ = self.llmctl("budget", "set", "daily", "--limit", "7.25", "--per", "day")
        self.assertIn("Budget 'daily' updated", out)
        daily.update(limit_usd=Decimal("7.25"), remaining_usd=Decimal("7.25"), alerts=[],
                     alert_command=None)
        self.assertEqual(self.budgets()[0], daily)

        out, _, _ = self.llmctl("budget", "rm", "m")
        self.assertIn("removed", out)
        self.assertEqual([b["name"] for b in self.budgets()], ["daily", "each", "oai", "team-a"])
        _, err, _ = self.llmctl("budget", "rm", "m", expect=1)
        self.assertIn("'m'", err)
        _, err, _ = self.llmctl("budget", "reset", "nope", expect=1)
        self.assertIn("'nope'", err)

        out, _, _ = self.llmctl("budget", "list")
        self.assertIn("daily", out)
        self.assertIn("$7.25", out)
        self.assertIn("Collector not running", out)

    def test_empty(self):
        self.assertEqual(self.budgets(), [])
        out, _, _ = self.llmctl("budget", "list")
        self.assertIn("No budgets", out)
        self.assertEqual(json.loads(self.llmctl("guard", "list", "--json")[0]), [])

    def test_no_ledger_yet(self):
        home = Home(ledger=False)
        self.addCleanup(home.cleanup)
        self.assertEqual(json.loads(home.run("budget", "list", "--json")[0]), [])
        self.assertFalse(os.path.exists(os.path.join(home.dir, "ledger.db")))
        home.run("budget", "rm", "x", expect=1)
        # Setting one creates the ledger: a collector reads it when it starts.
        home.run("budget", "set", "x", "--limit", "1", "--per", "day")
        self.assertEqual([b["name"] for b in json.loads(home.run("budget", "list", "--json")[0])],
                         ["x"])

    def test_bad_values_name_themselves(self):
        base = ["budget", "set", "b", "--limit", "5", "--per", "day"]
        cases = [
            (["budget", "set", "a b", "--limit", "5", "--per", "day"], "a b"),
            (["budget", "set", "run:1", "--limit", "5", "--per", "day"], "run:1"),
            (["budget", "set", "--limit", "5", "--per", "day"], "which budget"),
            (["budget", "set", "b", "--per", "day"], "--limit"),
            (["budget", "set", "b", "--limit", "5"], "--per"),
            (["budget", "set", "b", "--limit", "cheap", "--per", "day"], "cheap"),
            (["budget", "set", "b", "--limit", "0", "--per", "day"], "'0'"),
            (["budget", "set", "b", "--limit", "-1", "--per", "day"], "-1"),
            (["budget", "set", "b", "--limit", "1e3", "--per", "day"], "1e3"),
            (["budget", "set", "b", "--limit", "0.0000000000001", "--per", "day"],
             "0.0000000000001"),
            (["budget", "set", "b", "--limit", "5", "--per", "week"], "week"),
            (base + ["--scope", "region:eu"], "region:eu"),
            (base + ["--scope", "provider:nope"], "nope"),
            (base + ["--scope", "tag:team"], "tag:team"),
            (base + ["--action", "stop"], "stop"),
            (base + ["--action", "downgrade:"], "downgrade:"),
            (base + ["--alert", "50,150"], "50,150"),
            (base + ["--alert", "50,50"], "50,50"),
            (base + ["--alert", ""], "--alert"),
            (base + ["--alert-command", "true"], "--alert-command"),
            # A per-request budget keeps no spend: its alert would never fire.
            (["budget", "set", "b", "--limit", "5", "--per", "request", "--alert", "50"],
             "--per request"),
            (base + ["extra"], "extra"),
            (["budget", "frob"], "frob"),
            (["budget", "rm", "a/b"], "a/b"),
            (["budget", "list", "--frob"], "frob"),
        ]
        for args, named in cases:
            _, err, _ = self.llmctl(*args, expect=2)
            self.assertIn(named, err, args)
        # Nothing was written by any of them.
        self.assertEqual(self.budgets(), [])

    def test_unknown_provider_lists_the_known(self):
        _, err, _ = self.llmctl("budget", "set", "b", "--limit", "1", "--per", "day",
                                "--scope", "provider:nope", expect=2)
        self.assertIn("openai", err)
        # A provider added in config.ini is known.
        with open(os.path.join(self.home.dir, "config.ini"), "w") as f:
            f.write("[provider.nope]\nhost = api.nope.example\n")
        self.llmctl("budget", "set", "b", "--limit", "1", "--per", "day",
                    "--scope", "provider:nope")

    def test_bad_config_is_usage_error(self):
        with open(os.path.join(self.home.dir, "config.ini"), "w") as f:
            f.write("[collector]\nfrobnicate = 1\n")
        _, err, _ = self.llmctl("budget", "set", "b", "--limit", "1", "--per", "day", expect=2)
        self.assertIn("frobnicate", err)

    def test_downgrade_to_unpriced_model_warns(self):
        _, err, _ = self.llmctl("budget", "set", "b", "--limit", "1", "--per", "day",
                                "--action", "downgrade:mystery-model")
        self.assertIn("warning", err)
        self.assertIn("mystery-model", err)
        self.assertEqual(self.budgets()[0]["action"], "downgrade:mystery-model")
        # A priced one (a snapshot priced as its family) does not.
        _, err, _ = self.llmctl("budget", "set", "b", "--limit", "1", "--per", "day",
                                "--action", "downgrade:gpt-4o-2024-08-06")
        self.assertEqual(err, "")

    def test_older_ledger_is_migrated(self):
        # A version-1 ledger: llmctl budget commands upgrade it in place and
        # keep its rows.
        path = os.path.join(self.home.dir, "ledger.db")
        self.home.run("budget", "set", "x", "--limit", "1", "--per", "day")
        db = sqlite3.connect(path)
        db.executescript("DROP TABLE budgets; DROP TABLE guards; DROP TABLE budget_alerts;"
                         "DROP INDEX requests_refused; DROP INDEX requests_unpriced_calls;"
                         "ALTER TABLE requests DROP COLUMN unpriced_path;"
                         "ALTER TABLE requests DROP COLUMN model_sent;"
                         "ALTER TABLE runs DROP COLUMN killed_ms;"
                         "PRAGMA user_version = 1;")
        db.close()
        self.assertEqual(self.budgets(), [])
        self.llmctl("budget", "set", "y", "--limit", "1", "--per", "day")
        self.assertEqual([b["name"] for b in self.budgets()], ["y"])


# ---- spend from the ledger, without a collector ----

T10 = ms(2026, 11, 21, 10)
RUNS = [
    {"started_ms": T10, "argv": ["a"], "pid": 1, "tags_json": '{"team":"a"}'},
    {"parent_id": 1, "started_ms": T10, "argv": ["b"], "pid": 2, "tags_json": '{"team":"a"}'},
]


def row(t, cost, provider="openai", model="gpt-4o", tags='{"team":"a"}', run_id=1, **kw):
    r = {"time_ms": t, "run_id": run_id, "pid": 1, "provider": provider, "endpoint": "chat",
         "model_requested": model, "status": 200, "input_tokens": 1, "output_tokens": 1,
         "cost_pusd": cost, "latency_ms": 1, "tags_json": tags}
    r.update(kw)
    return r


ROWS = [
    row(ms(2026, 10, 31, 23, 59, 59), 1),                # the month before
    row(ms(2026, 11, 1), 2),                             # first second of November
    row(T10 - 1000, 4),                                  # 09:59:59
    row(T10 + 59 * MIN + 59_000, 8),                     # 10:59:59: the 10:00 hour
    row(T10 + HOUR, 16),                                 # 11:00:00: the 11:00 hour
    row(T10 + HOUR + 1000, 32, provider="anthropic", model="claude-x", tags='{"team":"b"}',
        run_id=2),
    row(T10 + HOUR + 2000, 64, model="mystery", model_served="gpt-4o"),
    row(T10 + HOUR + 3000, 0, refused_by="budget:x", status=429),
    row(T10 + HOUR + 4000, None),                        # no price
    row(ms(2026, 11, 21, 23, 59, 59), 128, run_id=None, tags=None),
    row(ms(2026, 11, 22), 256),                          # tomorrow
]


def expected_spent(start, end, pred=lambda r: True, since=0):
    return sum(r["cost_pusd"] or 0 for r in ROWS
               if start <= r["time_ms"] < end and r["time_ms"] >= since
               and not r.get("refused_by") and pred(r))


class LedgerSpend(BudgetHome):
    requests = ROWS
    runs = RUNS

    def setUp(self):
        super().setUp()
        for args in (["hourly", "--per", "hour"],
                     ["daily", "--per", "day"],
                     ["monthly", "--per", "month"],
                     ["oai", "--per", "day", "--scope", "provider:openai"],
                     ["model", "--per", "day", "--scope", "model:gpt-4o"],
                     ["team-b", "--per", "day", "--scope", "tag:team=b"]):
            self.llmctl("budget", "set", args[0], "--limit", "1", *args[1:])

    def spent(self, now):
        return {b["name"]: b for b in self.budgets(now=now)}

    def test_hour_edges(self):
        # At 10:30 the 10:00 hour holds the row of 10:59:59, not 09:59:59.
        got = self.spent(T10 + 30 * MIN)["hourly"]
        self.assertEqual(pusd(got["spent_usd"]), 8)
        self.assertEqual(got["window_start"], "2026-11-21T10:00:00.000Z")
        self.assertEqual(got["next_reset"], "2026-11-21T11:00:00.000Z")
        self.assertEqual(pusd(got["remaining_usd"]), PUSD - 8)
        # The table never shows more left than there is: $0.999999999992
        # left is $0.999, not $1.00.
        out, _, _ = self.llmctl("budget", "list", now=T10 + 30 * MIN)
        row = next(line for line in out.splitlines() if line.startswith("hourly"))
        self.assertIn("$0.999", row.split())
        # The last second of the hour, then the first of the next: the row
        # of 11:00:00 and after (not the refused one, not the unpriced one).
        self.assertEqual(pusd(self.spent(T10 + HOUR - 1000)["hourly"]["spent_usd"]), 8)
        at11 = self.spent(T10 + HOUR)["hourly"]
        self.assertEqual(pusd(at11["spent_usd"]), expected_spent(T10 + HOUR, T10 + 2 * HOUR))
        self.assertEqual(pusd(at11["spent_usd"]), 16 + 32 + 64)
        self.assertEqual(at11["window_start"], "2026-11-21T11:00:00.000Z")

    def test_day_month_and_scopes(self):
        now = T10 + 90 * MIN
        got = self.spent(now)
        day = (ms(2026, 11, 21), ms(2026, 11, 22))
        self.assertEqual(pusd(got["daily"]["spent_usd"]), expected_spent(*day))
        self.assertEqual(pusd(got["monthly"]["spent_usd"]),
                         expected_spent(ms(2026, 11, 1), ms(2026, 12, 1)))
        self.assertEqual(got["monthly"]["window_start"], "2026-11-01T00:00:00.000Z")
        self.assertEqual(pusd(got["oai"]["spent_usd"]),
                         expected_spent(*day, lambda r: r["provider"] == "openai"))
        # Model scope: what the program asked for ("mystery" served as
        # gpt-4o does not count).
        self.assertEqual(pusd(got["model"]["spent_usd"]),
                         expected_spent(*day, lambda r: r["model_requested"] == "gpt-4o"))
        self.assertEqual(pusd(got["team-b"]["spent_usd"]), 32)
        # December: a new month, nothing yet.
        dec = self.spent(ms(2026, 12, 1))["monthly"]
        self.assertEqual(dec["spent_usd"], 0)
        self.assertEqual(dec["next_reset"], "2027-01-01T00:00:00.000Z")

    def test_reset(self):
        reset_at = T10 + HOUR + 1500  # LLMWRAP_NOW holds seconds: 11:00:01
        out, _, _ = self.llmctl("budget", "reset", "daily", now=reset_at)
        self.assertIn("2026-11-21 11:00:01", out)
        got = self.spent(T10 + 2 * HOUR)
        day = (ms(2026, 11, 21), ms(2026, 11, 22))
        self.assertEqual(pusd(got["daily"]["spent_usd"]),
                         expected_spent(*day, since=reset_at // 1000 * 1000))
        # From 11:00:01 on; not 11:00:00 nor before.
        self.assertEqual(pusd(got["daily"]["spent_usd"]), 32 + 64 + 128)
        # Only that budget.
        self.assertEqual(pusd(got["oai"]["spent_usd"]),
                         expected_spent(*day, lambda r: r["provider"] == "openai"))
        # Replacing the definition keeps the reset.
        self.llmctl("budget", "set", "daily", "--limit", "3", "--per", "day")
        self.assertEqual(pusd(self.spent(T10 + 2 * HOUR)["daily"]["spent_usd"]), 32 + 64 + 128)

    def test_table(self):
        out, _, _ = self.llmctl("budget", "list", now=T10 + 30 * MIN)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("NAME"))
        hourly = next(line for line in lines if line.startswith("hourly"))
        self.assertIn("2026-11-21 11:00:00", hourly)
        self.assertIn("Collector not running", out)


# ---- guards ----

class Guards(BudgetHome):
    def test_set_list_rm(self):
        self.llmctl("guard", "set", "loops", "--type", "loop", "--threshold", "5")
        self.llmctl("guard", "set", "storm", "--type", "rate", "--threshold", "100",
                    "--window", "10s", "--action", "warn")
        self.llmctl("guard", "set", "spend", "--type", "spend-rate", "--threshold", "0.25",
                    "--window", "5m")
        self.llmctl("guard", "set", "big", "--type", "size", "--threshold", "200000")
        out, _, _ = self.llmctl("guard", "set", "grow", "--type", "growth",
                                "--threshold", "2.5")
        self.assertIn("Guard 'grow' created", out)
        got = json.loads(self.llmctl("guard", "list", "--json")[0], parse_float=Decimal)
        self.assertEqual(got, [
            {"name": "big", "type": "size", "threshold": 200000, "unit": "tokens",
             "window_ms": None, "action": "block", "source": "ledger"},
            {"name": "grow", "type": "growth", "threshold": Decimal("2.5"), "unit": "x",
             "window_ms": None, "action": "block", "source": "ledger"},
            {"name": "loops", "type": "loop", "threshold": 5, "unit": "requests",
             "window_ms": 60000, "action": "block", "source": "ledger"},
            {"name": "spend", "type": "spend-rate", "threshold": Decimal("0.25"),
             "unit": "USD", "window_ms": 300000, "action": "block", "source": "ledger"},
            {"name": "storm", "type": "rate", "threshold": 100, "unit": "requests",
             "window_ms": 10000, "action": "warn", "source": "ledger"},
        ])
        # Stored exactly: growth x1000, spend-rate in pico-USD.
        db = sqlite3.connect(os.path.join(self.home.dir, "ledger.db"))
        stored = dict(db.execute("SELECT name, threshold FROM guards").fetchall())
        db.close()
        self.assertEqual(stored["grow"], 2500)
        self.assertEqual(stored["spend"], PUSD // 4)

        out, _, _ = self.llmctl("guard", "set", "loops", "--type", "loop", "--threshold", "3",
                                "--window", "30s")
        self.assertIn("updated", out)
        out, _, _ = self.llmctl("guard", "list")
        self.assertIn("2.5x", out)
        self.assertIn("200,000 tokens", out)
        self.llmctl("guard", "rm", "big")
        got = json.loads(self.llmctl("guard", "list", "--json")[0])
        self.assertEqual([g["name"] for g in got], ["grow", "loops", "spend", "storm"])
        self.assertEqual((got[1]["threshold"], got[1]["window_ms"]), (3, 30000))
        _, err, _ = self.llmctl("guard", "rm", "big", expect=1)
        self.assertIn("'big'", err)

    def test_bad_values_name_themselves(self):
        g = ["guard", "set", "g"]
        cases = [
            (g + ["--threshold", "5"], "--type"),
            (g + ["--type", "loop"], "--threshold"),
            (g + ["--type", "loops", "--threshold", "5"], "loops"),
            (g + ["--type", "loop", "--threshold", "0"], "'0'"),
            (g + ["--type", "loop", "--threshold", "2.5"], "2.5"),
            (g + ["--type", "rate", "--threshold", "many"], "many"),
            (g + ["--type", "spend-rate", "--threshold", "-1"], "-1"),
            (g + ["--type", "spend-rate", "--threshold", "0"], "'0'"),
            (g + ["--type", "size", "--threshold", "1e6"], "1e6"),
            (g + ["--type", "growth", "--threshold", "1"], "'1'"),
            (g + ["--type", "growth", "--threshold", "2.0001"], "2.0001"),
            (g + ["--type", "loop", "--threshold", "5", "--window", "soon"], "soon"),
            (g + ["--type", "loop", "--threshold", "5", "--window", "0s"], "0s"),
            (g + ["--type", "size", "--threshold", "5", "--window", "1m"], "1m"),
            (g + ["--type", "loop", "--threshold", "5", "--action", "kill"], "kill"),
            (["guard", "set", "a b", "--type", "loop", "--threshold", "5"], "a b"),
            (["guard", "frob"], "frob"),
        ]
        for args, named in cases:
            _, err, _ = self.llmctl(*args, expect=2)
            self.assertIn(named, err, args)
        self.assertEqual(json.loads(self.llmctl("guard", "list", "--json")[0]), [])

    def test_config_guards_are_listed_read_only(self):
        with open(os.path.join(self.home.dir, "config.ini"), "w") as f:
            f.write("[guard.cfg]\ntype = loop\nthreshold = 4\nwindow = 20s\naction = warn\n")
        out, err, rc = self.llmctl("guard", "list", "--json", expect=None)
        if rc == 2 and "guard.cfg" in err:
            self.skipTest("this build's config.ini does not define guards yet")
        self.assertEqual(rc, 0, err)
        got = json.loads(out)
        self.assertIn({"name": "cfg", "type": "loop", "threshold": 4, "unit": "requests",
                       "window_ms": 20000, "action": "warn", "source": "config"}, got)
        _, err, _ = self.llmctl("guard", "rm", "cfg", expect=1)
        self.assertIn("config.ini", err)
        self.llmctl("guard", "set", "cfg", "--type", "loop", "--threshold", "5", expect=2)


# ---- the collector side ----

class Collector(BudgetHome):
    requests = [row(ms(2026, 11, 21, 11, 30), 5 * 10**9)]
    runs = RUNS[:1]

    def test_changes_reload_the_collector(self):
        fake = self.fake()
        changes = [
            ["budget", "set", "daily", "--limit", "5", "--per", "day"],
            ["budget", "reset", "daily"],
            ["budget", "rm", "daily"],
            ["guard", "set", "loops", "--type", "loop", "--threshold", "5"],
            ["guard", "rm", "loops"],
        ]
        for i, args in enumerate(changes, 1):
            out, _, _ = self.llmctl(*args)
            self.assertIn("The running collector applied it", out, args)
            self.assertEqual(len(fake.sent(15)), i, args)
        # Reading sends nothing that changes state.
        self.llmctl("guard", "list")
        self.assertEqual(len(fake.sent(15)), len(changes))

    def test_failed_reload_is_an_error_but_saved(self):
        self.fake(reload_error="budgets: cannot read the ledger")
        _, err, _ = self.llmctl("budget", "set", "daily", "--limit", "5", "--per", "day",
                                expect=1)
        self.assertIn("saved", err)
        self.assertIn("cannot read the ledger", err)
        self.assertEqual(self.home.json("budget", "list", "--json")[0]["name"], "daily")

    def test_kill(self):
        fake = self.fake(known_runs={7})
        out, _, _ = self.llmctl("kill", "7")
        self.assertIn("Run 7 killed", out)
        self.assertEqual([decode(b)[1] for b in fake.sent(16)], [[7]])
        _, err, _ = self.llmctl("kill", "8", expect=1)
        self.assertIn("no such run", err)
        self.assertEqual([decode(b)[1] for b in fake.sent(16)], [[7], [8]])

    def test_kill_needs_a_collector(self):
        _, err, _ = self.llmctl("kill", "7", expect=3)
        self.assertIn("not running", err)
        for bad in ("0", "seven", "-1"):
            _, err, _ = self.llmctl("kill", bad, expect=2)
            self.assertIn(bad, err)
        self.llmctl("kill", expect=2)

    def test_live_view(self):
        self.llmctl("budget", "set", "daily", "--limit", "5", "--per", "day", "--alert", "50")
        self.llmctl("budget", "set", "perrun", "--limit", "1", "--per", "run")
        self.llmctl("budget", "set", "hourly", "--limit", "2", "--per", "hour")
        day = (ms(2026, 11, 21), ms(2026, 11, 22))
        fake = self.fake(budgets=[
            budget_state("daily", 5 * PUSD, 3 * PUSD, PUSD // 2, *day, refused=2),
            # A past window the collector still holds: not shown.
            budget_state("daily", 5 * PUSD, 4 * PUSD, 0, ms(2026, 11, 20), day[0]),
            budget_state("perrun", PUSD, 7, 3, run_id=4),
            budget_state("perrun", PUSD, 5, 0, run_id=3),
            budget_state("run:9", 2 * PUSD, PUSD, 10**9, run_id=9, refused=1),
        ])
        got = {b["name"]: b for b in self.budgets()}
        self.assertEqual(len(fake.sent(17)), 1)
        self.assertEqual(list(got), ["daily", "hourly", "perrun", "run:9"])
        d = got["daily"]
        self.assertEqual((pusd(d["spent_usd"]), pusd(d["reserved_usd"]), pusd(d["remaining_usd"])),
                         (3 * PUSD, PUSD // 2, 5 * PUSD - 3 * PUSD - PUSD // 2))
        self.assertEqual((d["refused"], d["live"], d["alerts"]), (2, True, [50]))
        self.assertEqual(d["next_reset"], "2026-11-22T00:00:00.000Z")
        # Not in the live view: rebuilt from the ledger, marked as such.
        h = got["hourly"]
        self.assertEqual((pusd(h["spent_usd"]), h["live"]), (0, False))
        # Per-run budgets list their runs, by run.
        self.assertEqual([(r["run_id"], pusd(r["spent_usd"]), pusd(r["reserved_usd"]))
                          for r in got["perrun"]["runs"]], [(3, 5, 0), (4, 7, 3)])
        self.assertIsNone(got["perrun"]["spent_usd"])
        # llmwrap --budget.
        r9 = got["run:9"]
        self.assertEqual((r9["run_id"], r9["period"], pusd(r9["limit_usd"]), pusd(r9["spent_usd"]),
                          pusd(r9["reserved_usd"]), r9["refused"]),
                         (9, "run", 2 * PUSD, PUSD, 10**9, 1))
        out, _, _ = self.llmctl("budget", "list")
        self.assertIn("Live view", out)
        self.assertIn("run 4", out)
        self.assertIn("run:9", out)

    def test_live_view_unavailable_falls_back_to_the_ledger(self):
        self.llmctl("budget", "set", "daily", "--limit", "5", "--per", "day")
        fake = self.fake()

        def no_status(conn, req, orig=fake.answer):
            if 17 in req:
                return fake.reply(conn, req[1][0], error="not supported")
            return orig(conn, req)
        fake.answer = no_status
        out, err, _ = self.llmctl("budget", "list", "--json")
        self.assertIn("not supported", err)
        got = json.loads(out, parse_float=Decimal)
        self.assertEqual((pusd(got[0]["spent_usd"]), got[0]["live"]), (5 * 10**9, False))


# ---- the CA ----

HOSTS = ["api.openai.com", "api.anthropic.com"]


class Ca(BudgetHome):
    def make_ca(self):
        if shutil.which("openssl") is None:
            self.skipTest("no openssl command")
        ca = os.path.join(self.home.dir, "ca")
        os.makedirs(ca, mode=0o700)
        constraints = ("critical,permitted;DNS:" + ",permitted;DNS:".join(HOSTS)
                       + ",excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                        os.path.join(ca, "root.key"), "-out", os.path.join(ca, "root.pem"),
                        "-days", "30", "-subj", "/O=llmwrap test/CN=test root",
                        "-addext", "nameConstraints=" + constraints],
                       check=True, capture_output=True, timeout=TIMEOUT)
        for name in ("intermediate.pem", "intermediate.key"):
            shutil.copy(os.path.join(ca, "root.pem"), os.path.join(ca, name))
        return ca

    def test_show(self):
        ca = self.make_ca()
        with open(os.path.join(ca, "root.pem")) as f:
            pem = f.read()
        der = base64.b64decode("".join(line for line in pem.splitlines()
                                       if not line.startswith("-----")))
        fp = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        got = json.loads(self.llmctl("ca", "show", "--json")[0])
        self.assertEqual(got["path"], os.path.join(ca, "root.pem"))
        self.assertEqual(got["sha256"], fp)
        self.assertEqual(got["permitted_hosts"], HOSTS)
        self.assertIs(got["excludes_ip"], True)
        self.assertIn("CN=test root", got["subject"])
        nb = datetime.datetime.strptime(got["not_before"], "%Y-%m-%dT%H:%M:%S.000Z")
        na = datetime.datetime.strptime(got["not_after"], "%Y-%m-%dT%H:%M:%S.000Z")
        self.assertEqual(na - nb, datetime.timedelta(days=30))
        self.assertEqual(got["intermediate"]["path"], os.path.join(ca, "intermediate.pem"))
        out, _, _ = self.llmctl("ca", "show")
        self.assertIn(fp, out)
        self.assertIn("api.openai.com, api.anthropic.com (IP addresses excluded)", out)

    def test_show_without_ca(self):
        _, err, _ = self.llmctl("ca", "show", expect=1)
        self.assertIn("no CA yet", err)
        ca = os.path.join(self.home.dir, "ca")
        os.makedirs(ca)
        with open(os.path.join(ca, "root.pem"), "w") as f:
            f.write("not a certificate\n")
        _, err, _ = self.llmctl("ca", "show", expect=1)
        self.assertIn("root.pem", err)

    def test_rotate(self):
        ca = self.make_ca()
        out, _, _ = self.llmctl("ca", "rotate")
        self.assertIn("generates a new one", out)
        for name in ("root.pem", "intermediate.pem", "intermediate.key"):
            self.assertFalse(os.path.exists(os.path.join(ca, name)), name)
        # Files that are not the CA's stay.
        self.assertTrue(os.path.exists(os.path.join(ca, "root.key")))
        out, _, _ = self.llmctl("ca", "rotate")
        self.assertIn("no CA", out)

    def test_rotate_refused_while_a_collector_runs(self):
        ca = self.make_ca()
        # A collector holds its pid file locked for as long as it runs.
        pid_file = os.path.join(self.run_dir, "collector.pid")
        with open(pid_file, "w") as f:
            f.write("4242\n40123\n")
        held = open(pid_file)
        self.addCleanup(held.close)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _, err, _ = self.llmctl("ca", "rotate", expect=1)
        self.assertIn("running (pid 4242)", err)
        self.assertTrue(os.path.exists(os.path.join(ca, "root.pem")))
        fcntl.flock(held, fcntl.LOCK_UN)
        # Or one answering on the socket.
        self.fake()
        _, err, _ = self.llmctl("ca", "rotate", expect=1)
        self.assertIn("running", err)
        self.assertTrue(os.path.exists(os.path.join(ca, "root.pem")))


class Help(unittest.TestCase):
    def test_commands_listed(self):
        home = Home(ledger=False)
        self.addCleanup(home.cleanup)
        out, _, _ = home.run("help")
        for cmd in ("budget", "guard", "kill", "ca"):
            self.assertIn(f"  {cmd} ", out)
        for args in (["budget", "--help"], ["guard", "--help"], ["ca", "--help"],
                     ["help", "kill"], ["budget", "set", "--help"]):
            out, _, _ = home.run(*args)
            self.assertIn("Usage", out)
        # The options listed are the command's: they go after its name.
        out, _, _ = home.run("budget", "set", "--help")
        self.assertIn("llmctl budget set [OPTION…] NAME\n", out)
        out, _, _ = home.run("help", "kill")
        self.assertIn("llmctl kill [OPTION…] RUN\n", out)


class UnreadableSpool(BudgetHome):
    def test_warned_once(self):
        # An older ledger is opened twice (read-only refuses to migrate it),
        # and a directory where the spool should be fails to apply.
        path = os.path.join(self.home.dir, "ledger.db")
        self.llmctl("budget", "set", "b", "--limit", "1", "--per", "day")
        db = sqlite3.connect(path)
        db.executescript("ALTER TABLE requests DROP COLUMN model_sent;"
                         "ALTER TABLE runs DROP COLUMN killed_ms; PRAGMA user_version = 3;")
        db.close()
        os.mkdir(os.path.join(self.home.dir, "ledger.spool"))
        _, err, _ = self.llmctl("budget", "list")
        self.assertEqual(err.count("the newest requests may be missing"), 1, err)


if __name__ == "__main__":
    unittest.main()
