"""`kill -9` of the collector at random moments during a loop of requests
loses none that completed.

A client under llmwrap sends a loop of chat requests (JSON, streams with and
without include_usage) through the real provider URL and writes the
response id of every answer it saw complete (a JSON body parsed whole, or a
stream that reached `data: [DONE]`) to a file, flushed at once. Meanwhile
the test SIGKILLs the collector at random moments; llmwrap restarts it on
the same port and the client retries what failed. The collector appends a
request's ledger row to the spool before it sends the bytes that end the
answer, and the next collector applies what the spool holds, so every id
the client wrote must be in the ledger, exactly once, with its exact usage.

Random kills alone almost never land between a row's append and its
commit to SQLite, so some kills come while the test holds SQLite's write
lock: rows of answers that end meanwhile stay in the spool, and the kill
lands with completed answers whose rows only the spool holds. A row lost
from the spool, or applied twice, fails the test.

The kill schedule comes from a printed seed (set LW_TEST_SEED to replay
one).
"""

import collections
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

import lwtest
from lwtest import DEFAULT_TIMEOUT, wait_for
from test_wrap import PYTHON, RUN_TIMEOUT, WrapCase

ROUNDS = 3
REQUESTS = 120  # per round
WORKERS = 4  # requests at once
KILLS = 25  # per round, at most
# Seconds for one round's program, kills included (about 12 s here, 22 s
# in a sanitizer build).
ROUND_TIMEOUT = 80 if lwtest.SANITIZED else 40
KILL_GAP = (0.05, 0.4)  # seconds between a collector being up and its kill
HELD_SHARE = 0.3  # of the kills come while the ledger's write lock is held ...
HOLD = (0.1, 0.25)  # ... for this long (under the collector's 5 s busy timeout)
RESTART_TIMEOUT = 10  # llmwrap restarts it within a second; allow for load
MAX_ATTEMPTS = 200  # per request, 50 ms apart
KILLS_IN_RESTART = 6  # replacements killed as soon as they show
# kind: (stream, include_usage, input tokens, output tokens, sim delays).
# The slow ones make kills land mid-request; the fast ones keep some
# answer ending at almost any moment, so a held ledger always has answers
# waiting for their commit.
KINDS = {
    "json": (False, False, 310, 5, ""),
    "json_slow": (False, False, 300, 7, "delay_ms=60"),
    "stream": (True, False, 220, 6, ""),
    "stream_slow": (True, False, 200, 12, "chunk_delay_ms=12"),
    "stream_usage": (True, True, 250, 12, "chunk_delay_ms=8"),
}

# argv: the output file, the plan (a JSON list of kinds), KINDS as JSON,
# the number of workers and MAX_ATTEMPTS. Workers take the plan's requests
# in turn; a line is "index kind id", written and flushed once the answer
# is complete.
CLIENT_PY = r"""
import http.client, json, sys, threading, time

out_path, plan, KINDS = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
WORKERS, MAX_ATTEMPTS = int(sys.argv[4]), int(sys.argv[5])


class Incomplete(Exception):
    pass


def one(kind):
    stream, include_usage, inp, words, delays = KINDS[kind]
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    c = http.client.HTTPSConnection("api.openai.com", timeout=10)
    try:
        c.request("POST", "/v1/chat/completions", json.dumps(body),
                  {"content-type": "application/json", "authorization": "Bearer sk-test",
                   "x-sim": f"in={inp};out={words};{delays}"})
        r = c.getresponse()
        if r.status != 200:
            raise Incomplete(f"status {r.status}")
        if not stream:
            # A short body raises IncompleteRead or fails to parse.
            answer = json.loads(r.read())
            if answer["usage"]["completion_tokens"] != words:
                raise Incomplete("wrong usage")
            return answer["id"]
        rid = None
        while True:
            line = r.readline()
            if not line:
                raise Incomplete("stream ended before [DONE]")
            line = line.rstrip(b"\r\n")
            if line == b"data: [DONE]":
                return rid
            if line.startswith(b"data: "):
                rid = json.loads(line[6:])["id"]
    finally:
        c.close()


lock = threading.Lock()
state = {"next": 0, "failures": 0, "gave_up": 0}
out = open(out_path, "a")


def worker():
    while True:
        with lock:
            index = state["next"]
            state["next"] += 1
        if index >= len(plan):
            return
        kind = plan[index]
        for attempt in range(MAX_ATTEMPTS):
            try:
                rid = one(kind)
                break
            except (OSError, http.client.HTTPException, ValueError, KeyError, Incomplete):
                with lock:
                    state["failures"] += 1
                time.sleep(0.05)
        else:
            with lock:
                state["gave_up"] += 1
            continue
        with lock:
            out.write(f"{index} {kind} {rid}\n")
            out.flush()


threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(state))
sys.exit(1 if state["gave_up"] else 0)
"""


RESTARTED = re.compile(r"llmwrap: collector (?:restarted|back) \(pid (\d+), port \d+\)")
RESTART_MS = re.compile(r"llmwrap: collector (?:restarted|back) \(pid \d+, port \d+\) "
                        r"after (\d+) ms")


def read_lines(path):
    try:
        with open(path) as f:
            return [line.split() for line in f if line.endswith("\n")]
    except FileNotFoundError:
        return []


class DurabilityTest(WrapCase):
    providers = ("openai",)

    def serving_collector(self, proc, err_path, kills):
        """The pid of the collector that serves once llmwrap has brought it
        back after `kills` kills (it says so on stderr); None if the
        program ended first. Waiting for llmwrap, not just for a new pid,
        keeps the kills off llmwrap's own restart handshake: this test is
        about what the ledger keeps, not about restarting."""
        def up():
            if proc.poll() is not None:
                return -1
            if kills == 0:
                pid = lwtest.collector_pid(self.home)
                return pid if pid and lwtest.pid_alive(pid) else None
            with open(err_path, errors="replace") as f:
                back = RESTARTED.findall(f.read())
            return int(back[kills - 1]) if len(back) >= kills else None
        pid = wait_for(up, timeout=RESTART_TIMEOUT, what=f"the collector's restart #{kills}")
        return None if pid == -1 else pid

    def run_round(self, seed, index):
        rng = random.Random(seed)
        plan = [rng.choice(tuple(KINDS)) for _ in range(REQUESTS)]
        out_path = os.path.join(self.workdir, f"completed-{index}.txt")
        summary_path = os.path.join(self.workdir, f"summary-{index}.json")
        client = self.script("client.py", CLIENT_PY)
        err_path = os.path.join(self.workdir, f"llmwrap-{index}.err")
        err = open(err_path, "w+b")
        self.addCleanup(err.close)
        proc = subprocess.Popen(
            [self.llmwrap, "--quiet", "--json-summary", summary_path, "--", PYTHON, client,
             out_path, json.dumps(plan), json.dumps(KINDS), str(WORKERS), str(MAX_ATTEMPTS)],
            env=self.env(), stdout=subprocess.PIPE, stderr=err)
        self.addCleanup(lambda: proc.poll() is not None or (proc.kill(), proc.wait(5)))

        kills = []
        start = time.monotonic()
        deadline = start + ROUND_TIMEOUT
        # The client opens its file first thing: by then llmwrap has opened
        # the run, and the kills hit requests, not llmwrap's start.
        wait_for(lambda: os.path.exists(out_path) or proc.poll() is not None,
                 what="the client's start")
        while len(kills) < KILLS and time.monotonic() < deadline:
            pid = self.serving_collector(proc, err_path, len(kills))
            if pid is None:
                break
            pause = time.monotonic() + rng.uniform(*KILL_GAP)
            while time.monotonic() < pause and proc.poll() is None:
                time.sleep(0.005)
            # Kill only while requests are outstanding: a kill while
            # llmwrap closes the run is another test's business.
            if proc.poll() is not None or len(read_lines(out_path)) >= REQUESTS:
                break
            held = rng.random() < HELD_SHARE and self.hold_ledger(rng.uniform(*HOLD))
            os.kill(pid, signal.SIGKILL)
            if held:
                held.rollback()
                held.close()
            kills.append(f"{time.monotonic() - start:.3f}{'h' if held else ''}")
        try:
            stdout, _ = proc.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            err.seek(0)
            self.fail(f"round {index} (seed {seed}) did not finish in {ROUND_TIMEOUT}s; "
                      f"{len(read_lines(out_path))} done, kills at {kills}\n"
                      + err.read().decode(errors="replace"))
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        self.assertEqual(proc.returncode, 0, f"seed {seed}:\n{stderr}")
        completed = sorted((int(i), kind, rid) for i, kind, rid in read_lines(out_path))
        self.assertEqual([(i, kind) for i, kind, _ in completed], list(enumerate(plan)))
        completed = [(kind, rid) for _, kind, rid in completed]
        with open(summary_path) as f:
            run_id = json.load(f)["run_id"]
        restarts = [int(ms) for ms in RESTART_MS.findall(stderr)]
        print(f"  {len(kills)} kills at {kills} s; restarts took {restarts} ms; "
              f"{json.loads(stdout)['failures']} failed attempts retried; "
              f"{time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
        return completed, json.loads(stdout)["failures"], kills, run_id

    def hold_ledger(self, seconds):
        """Takes the ledger's write lock for `seconds` (as another writer,
        say a sqlite3 shell, may), then returns the connection still
        holding it. Rows of requests that end meanwhile wait in the spool,
        so the kill that follows lands with completed answers that are not
        in SQLite yet. None if the lock was busy."""
        db = sqlite3.connect(os.path.join(self.home, "ledger.db"), timeout=0.2,
                             isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            db.close()
            return None
        time.sleep(seconds)
        return db

    def ledger(self):
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json"],
                             capture_output=True, env=self.env(), timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_kill_9_loses_no_completed_request(self):
        base = int(os.environ.get("LW_TEST_SEED") or random.SystemRandom().randrange(2**32))
        total_failures = 0
        for index in range(ROUNDS):
            seed = base + index
            print(f"durability round {index}: seed {seed}", file=sys.stderr, flush=True)
            completed, failures, kills, run_id = self.run_round(seed, index)
            self.assertGreaterEqual(len(kills), 2, f"seed {seed}")
            total_failures += failures

            rows = self.ledger()
            ids = collections.Counter(r["upstream_request_id"] for r in rows
                                      if r["upstream_request_id"] is not None)
            self.assertEqual([i for i, n in ids.items() if n > 1], [], f"seed {seed}")
            by_id = {r["upstream_request_id"]: r for r in rows}
            lost = [rid for _, rid in completed if rid not in by_id]
            self.assertEqual(lost, [], f"seed {seed}: completed but not in the ledger")
            # Recorded, but killed before the client had the end (then the
            # client retried): allowed, and shown to tell how kills landed.
            unseen = len([r for r in rows if r["run_id"] == run_id]) - len(completed)
            print(f"  {unseen} recorded but cut before the client saw the end",
                  file=sys.stderr, flush=True)
            for kind, rid in completed:
                row = by_id[rid]
                self.assertEqual(
                    (row["status"], row["partial"], row["stream"], row["input_tokens"],
                     row["output_tokens"], row["run_id"]),
                    (200, False, KINDS[kind][0], *KINDS[kind][2:4], run_id),
                    f"seed {seed}: {rid}")
        # The kills did land mid-request (else nothing was tested).
        self.assertGreater(total_failures, 0)


# argv: a file to create once running, a file to wait for; then one chat
# request, retried while no collector answers; prints the response id.
GATED_PY = r"""
import http.client, json, os, sys, time
open(sys.argv[1], "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[2]):
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.01)
for attempt in range(100):
    try:
        c = http.client.HTTPSConnection("api.openai.com", timeout=10)
        c.request("POST", "/v1/chat/completions",
                  json.dumps({"model": "gpt-4o-mini",
                              "messages": [{"role": "user", "content": "hi"}]}),
                  {"content-type": "application/json", "authorization": "Bearer sk-test",
                   "x-sim": "in=40;out=3"})
        r = c.getresponse()
        if r.status == 200:
            print(json.loads(r.read())["id"])
            sys.exit(0)
    except (OSError, http.client.HTTPException):
        pass
    time.sleep(0.05)
sys.exit("no answer")
"""


class RestartWindowTest(WrapCase):
    """A collector that dies again while llmwrap brings it back (before
    llmwrap has reached it) is restarted as well: the program's later
    requests still work and are recorded."""

    providers = ("openai",)

    def test_kill_during_restart(self):
        ready = os.path.join(self.workdir, "ready")
        go = os.path.join(self.workdir, "go")
        client = self.script("gated.py", GATED_PY)
        err_path = os.path.join(self.workdir, "llmwrap.err")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([self.llmwrap, "--quiet", "--", PYTHON, client, ready, go],
                                    env=self.env(), stdout=subprocess.PIPE, stderr=err)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(lambda: proc.poll() is not None or (proc.kill(), proc.wait(5)))

        def llmwrap_said():
            with open(err_path, errors="replace") as f:
                return f.read()

        wait_for(lambda: os.path.exists(ready) or proc.poll() is not None,
                 what="the program's start")
        self.assertIsNone(proc.poll())

        def new_collector(old):
            """The pid file's next live collector, polled every half
            millisecond (wait_for backs off): the replacement is to be
            caught before llmwrap has connected to it."""
            deadline = time.monotonic() + RESTART_TIMEOUT
            while time.monotonic() < deadline:
                pid = lwtest.collector_pid(self.home)
                if pid and pid != old and lwtest.pid_alive(pid):
                    return pid
                time.sleep(0.0005)
            self.fail(f"no collector {RESTART_TIMEOUT} s after pid {old} was killed; "
                      f"llmwrap said:\n{llmwrap_said()}")

        pid = new_collector(None)
        for _ in range(KILLS_IN_RESTART):
            os.kill(pid, signal.SIGKILL)
            pid = new_collector(pid)
        with open(go, "w"):
            pass
        stdout, _ = proc.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, llmwrap_said())
        rid = stdout.decode().strip()
        rows = json.loads(subprocess.run(
            [lwtest.binary("LLMCTL"), "requests", "--json"], capture_output=True,
            env=self.env(), timeout=DEFAULT_TIMEOUT).stdout)
        self.assertEqual([r["upstream_request_id"] for r in rows], [rid])


if __name__ == "__main__":
    unittest.main()
