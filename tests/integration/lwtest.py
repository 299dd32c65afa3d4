"""Harness for llmwrap integration tests.

Starts the simulated provider and a collector in a private LLMWRAP_HOME,
waits for readiness (never sleeps for a fixed time), and tears everything
down. Every wait is bounded. Traffic goes only to loopback.

Binaries come from the environment meson sets: LLM_SIM, LLM_COLLECTOR,
LLMCTL, LLMWRAP, LLMWRAP_PRELOAD_PATH.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

SYNTHETIC_NET = 241
DEFAULT_TIMEOUT = 20.0

# Set in a sanitizer build (tests/preload/meson.build): its binaries are
# several times slower and ASan's quarantine keeps freed memory resident,
# so latency bounds widen and memory checks turn the quarantine off.
SANITIZED = bool(os.environ.get("LW_TEST_ASAN_RUNTIME"))
# What "at once" means for a latency a user sees.
PROMPT_S = 3.0 if SANITIZED else 1.0

# Slots of the built-in providers (common/providers.c).
SLOTS = {
    "openai": 1, "anthropic": 2, "gemini": 3, "xai": 4, "openrouter": 5,
    "deepseek": 6, "groq": 7, "mistral": 8, "together": 9, "fireworks": 10,
    "perplexity": 11,
}
HOSTS = {
    "openai": "api.openai.com", "anthropic": "api.anthropic.com",
    "gemini": "generativelanguage.googleapis.com", "xai": "api.x.ai",
    "openrouter": "openrouter.ai", "deepseek": "api.deepseek.com",
    "groq": "api.groq.com", "mistral": "api.mistral.ai",
    "together": "api.together.xyz", "fireworks": "api.fireworks.ai",
    "perplexity": "api.perplexity.ai",
}


def binary(name):
    path = os.environ.get(name)
    if not path or not os.path.exists(path):
        raise unittest.SkipTest(f"{name} not set (run through meson test)")
    return path


def wait_for(predicate, timeout=DEFAULT_TIMEOUT, what="condition", interval=0.01):
    """Polls predicate() until it returns a truthy value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, 0.1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    """The simulated provider on a free loopback port."""

    def __init__(self, workdir, extra_args=()):
        self.dir = os.path.join(workdir, "sim")
        os.makedirs(self.dir, exist_ok=True)
        ready = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "sim.log"), "wb")
        self.proc = subprocess.Popen(
            [binary("LLM_SIM"), "--listen", "127.0.0.1:0", "--cert-dir", self.dir,
             "--ready-file", ready, *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = int(wait_for(lambda: _read(ready), what="llm-sim ready file"))
        self.ca_file = os.path.join(self.dir, "sim-ca.pem")
        self.url = f"https://127.0.0.1:{self.port}"

    def context(self):
        return ssl.create_default_context(cafile=self.ca_file)

    def request(self, method, path, body=None, headers=None, timeout=DEFAULT_TIMEOUT):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(),
                                           timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def stats(self):
        status, _, body = self.request("GET", "/_sim/stats")
        assert status == 200, status
        return json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def read_head(conn):
    """Bytes from `conn` up to and including the blank line that ends an
    HTTP head (what a stand-in proxy reads first); fewer if it closes."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _read(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return text or None
    except FileNotFoundError:
        return None


class Collector:
    """llm-collector in the foreground, with its own LLMWRAP_HOME."""

    def __init__(self, home, extra_args=(), env=None):
        self.home = home
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, LLMWRAP_HOME=home, **(env or {}))
        self.env.pop("LD_PRELOAD", None)
        self.proc = None
        self.log_path = os.path.join(home, "collector-test.log")

    def start(self, port=None):
        args = [binary("LLM_COLLECTOR"), *self.extra_args]
        if port is not None:
            args += ["--port", str(port)]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        pid_file = os.path.join(self.home, "run", "collector.pid")

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"llm-collector exited with {self.proc.returncode}:\n"
                                     + self.read_log())
            text = _read(pid_file)
            if not text or len(text.split()) < 2 or int(text.split()[0]) != self.proc.pid:
                return None
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(os.path.join(self.home, "run", "collector.sock"))
            except OSError:
                return None
            return int(text.split()[1])

        self.port = wait_for(ready, what="collector ready")
        return self

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    @property
    def ca_file(self):
        return os.path.join(self.home, "ca", "root.pem")

    def listen_port(self):
        """Port of the first [collector] listen address, from the log."""
        for line in reversed(self.read_log().splitlines()):
            if " ready: " in line and "listen 127.0.0.1:" in line:
                return int(line.split("listen 127.0.0.1:")[1].split()[0].rstrip(","))
        raise AssertionError("no listen address in the collector log")

    def addr(self, provider):
        return f"127.{SYNTHETIC_NET}.0.{SLOTS[provider]}"

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc


class HTTPSViaCollector(http.client.HTTPSConnection):
    """An HTTPS connection that speaks to `host` (SNI and Host) but connects
    to the collector's synthetic address for that host."""

    def __init__(self, collector, provider, timeout=DEFAULT_TIMEOUT):
        ctx = ssl.create_default_context(cafile=collector.ca_file)
        super().__init__(HOSTS[provider], 443, context=ctx, timeout=timeout)
        self._target = (collector.addr(provider), collector.port)

    def connect(self):
        sock = socket.create_connection(self._target, self.timeout)
        # As http.client's own connect() does: without it a request's body
        # waits for the ACK of its head, 40 ms of delayed ACK each time.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def start_scripted_upstream(test, handler, providers=("openai",)):
    """A plain-HTTP server running `handler` (an http.server request handler
    class) on a free loopback port, and a collector whose `providers` all
    forward to it, both stopped when `test` ends. Sets test.server,
    test.workdir, test.home and test.collector."""
    import http.server
    import threading

    test.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=test.server.serve_forever, daemon=True).start()
    test.addCleanup(test.server.server_close)
    test.addCleanup(test.server.shutdown)
    test.workdir = tempfile.mkdtemp(prefix="lw-", dir="/tmp")
    test.addCleanup(shutil.rmtree, test.workdir, ignore_errors=True)
    test.home = os.path.join(test.workdir, "home")
    url = "http://127.0.0.1:%d" % test.server.server_address[1]
    write_config(test.home, "".join(f"[provider.{p}]\nupstream = {url}\n" for p in providers))
    test.collector = Collector(test.home).start()
    test.addCleanup(test.collector.stop)


def send_json(handler, body):
    """Answers an http.server request `handler` 200 with the JSON `body`
    (bytes)."""
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def write_sse_chunk(wfile, events):
    """Writes an event-stream answer's head, then `events` as one chunk and
    no chunked terminator: the caller ends the answer (b"0\\r\\n\\r\\n") or cuts
    it."""
    wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
                b"%x\r\n%s\r\n" % (len(events), events))


def write_config(home, text):
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "config.ini"), "w") as f:
        f.write(text)


def sim_config(sim, providers=("openai", "anthropic", "gemini"), extra="", upstream=""):
    """config.ini for `providers` served by the sim; `upstream` adds keys to
    [upstream], `extra` adds sections."""
    parts = ["[upstream]", f"ca_file = {sim.ca_file}", upstream, ""]
    for p in providers:
        parts += [f"[provider.{p}]", f"upstream = {sim.url}", ""]
    return "\n".join(parts) + extra


class CollectorTestCase(unittest.TestCase):
    """Per-test sim + collector in a fresh temporary LLMWRAP_HOME."""

    providers = tuple(SLOTS)
    config_extra = ""
    upstream_extra = ""
    collector_args = ()
    collector_env = {}

    def setUp(self):
        # Short base path: unix socket paths must fit in 108 bytes.
        self.workdir = tempfile.mkdtemp(prefix="lw-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.sim = Sim(self.workdir)
        self.addCleanup(self.sim.stop)
        self.home = os.path.join(self.workdir, "home")
        write_config(self.home, sim_config(self.sim, self.providers, self.config_extra,
                                           self.upstream_extra))
        self.collector = Collector(self.home, self.collector_args, env=self.collector_env)
        self.collector.start()
        self.addCleanup(self._stop_collector)

    def _stop_collector(self):
        if self.collector.proc is not None:
            rc = self.collector.stop()
            if rc not in (0, None):
                print(self.collector.read_log())

    def via(self, provider="openai", timeout=DEFAULT_TIMEOUT):
        return HTTPSViaCollector(self.collector, provider, timeout=timeout)

    def post(self, provider, path, body, headers=None):
        conn = self.via(provider)
        try:
            h = {"content-type": "application/json", "authorization": "Bearer sk-test"}
            h.update(headers or {})
            conn.request("POST", path, body=body if isinstance(body, bytes) else
                         json.dumps(body).encode(), headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


# ---- IPC status, for tests that check the collector's counters ----
#
# A minimal protobuf reader: just enough of proto/llmwrap.proto to send a
# StatusRequest and read StatusReply's scalars and counters (no protobuf
# module in Debian's python3 by default).

COUNTER_FIELDS = {
    1: "connections_accepted", 2: "connections_active", 3: "connections_rejected",
    4: "requests_total", 5: "requests_active", 6: "requests_bad", 7: "upstream_errors",
    8: "bytes_in", 9: "bytes_out", 10: "ipc_bad_frames", 11: "refused",
}


def _read_varint(buf, pos):
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def pb_decode(buf):
    """Protobuf wire format -> {field number: [int or bytes, ...]}."""
    fields = {}
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value = bytes(buf[pos:pos + length])
            pos += length
        elif wire == 1:
            value = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wire == 5:
            value = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def ipc_status(home, timeout=DEFAULT_TIMEOUT):
    """The collector's StatusReply as a dict: pid, synthetic_port,
    synthetic_net, hosts, ca_file, counters (a dict by name) and listeners
    (a list of (provider, address, port); provider "" for the listen
    addresses)."""
    request = b"\x08\x01\x52\x00"  # Request{id=1, status={}}
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(os.path.join(home, "run", "collector.sock"))
        s.sendall(len(request).to_bytes(4, "big") + request)
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("the collector closed the IPC connection")
            data += chunk
    resp = pb_decode(data[4:4 + int.from_bytes(data[:4], "big")])
    if 2 in resp:
        raise AssertionError(f"IPC error: {pb_decode(resp[2][0])}")
    st = pb_decode(resp[10][0])
    counters = pb_decode(st.get(7, [b""])[0])
    listeners = [pb_decode(b) for b in st.get(6, [])]
    return {
        "pid": st.get(1, [0])[0],
        "synthetic_port": st.get(4, [0])[0],
        "synthetic_net": st.get(5, [0])[0],
        "hosts": st.get(8, [b""])[0].decode(),
        "ca_file": st.get(9, [b""])[0].decode(),
        "counters": {name: counters.get(n, [0])[0] for n, name in COUNTER_FIELDS.items()},
        "listeners": [(l.get(1, [b""])[0].decode(), l.get(2, [b""])[0].decode(),
                       l.get(3, [0])[0]) for l in listeners],
    }


def pid_alive(pid):
    """Whether pid runs (a zombie does not count: a daemon's parent may never
    reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def collector_pid(home):
    """The pid in run/collector.pid, or None."""
    text = _read(os.path.join(home, "run", "collector.pid"))
    return int(text.split()[0]) if text else None


def stop_daemon(home, timeout=10):
    """Stops the collector an llmwrap started for `home` (SIGTERM, then
    SIGKILL after `timeout`), waiting until it is gone."""
    pid = collector_pid(home)
    if not pid or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), timeout=timeout, what="collector exit")
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), timeout=5, what="collector exit after SIGKILL")
    except ProcessLookupError:
        pass
