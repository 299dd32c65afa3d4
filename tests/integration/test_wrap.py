"""llmwrap end to end: real clients under llmwrap against the simulated provider.

Each test has its own LLMWRAP_HOME whose config.ini points every provider at
llm-sim (with the sim's CA as [upstream] ca_file); llmwrap starts the
collector itself. The clients use the real provider URLs
(https://api.openai.com/...) with no CA option and no resolve override:
name resolution, redirection and trust all come from llmwrap. Traffic
stays on loopback (127.0.0.1 and the synthetic 127.241.0.i).
"""

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import socket
import sqlite3
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import hashlib

import lwtest
from lwtest import DEFAULT_TIMEOUT, wait_for

PYTHON = "/usr/bin/python3"

# Starts the raw-socket scripts: one HTTP/1.1 POST with "Connection: close"
# over a connected TLS socket, read to EOF; returns the status line.
RAW_POST = r"""
def post(t, host, path, headers, body):
    t.sendall(b"POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\n"
              b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
              % (path, host, headers, len(body), body))
    data = b""
    while True:
        chunk = t.recv(65536)
        if not chunk:
            return data.split(b"\r\n")[0].decode()
        data += chunk
"""
RUN_TIMEOUT = 120  # seconds, for every wrapped command
CHAT_URL = "https://api.openai.com/v1/chat/completions"
CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
SHIM_VARS = ("LLMWRAP_HOSTS", "LLMWRAP_NET", "LLMWRAP_PORT", "LLMWRAP_LISTEN", "LLMWRAP_RUN_ID",
             "LLMWRAP_ATTRIB_SOCK", "LLMWRAP_CA_DER", "LLMWRAP_PRELOAD", "LLMWRAP_FAIL_OPEN",
             "LLMWRAP_COLLECTOR")
ASAN_RUNTIME = os.environ.get("LW_TEST_ASAN_RUNTIME", "")
# The trust variables llmwrap sets: those that replace a program's trust
# store, then the two additive ones (Node, Deno).
TRUST_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
              "AWS_CA_BUNDLE", "CARGO_HTTP_CAINFO", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
              "NODE_EXTRA_CA_CERTS", "DENO_CERT")

# One chat request with a stdlib client that reads SSL_CERT_FILE; prints the
# HTTP status and the usage the provider reported. argv: [model].
CHAT_PY = r"""
import http.client, json, sys
model = sys.argv[1] if len(sys.argv) > 1 else "gpt-4o-mini"
body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
c = http.client.HTTPSConnection("api.openai.com", timeout=30)
c.request("POST", "/v1/chat/completions", body,
          {"content-type": "application/json", "authorization": "Bearer sk-test"})
r = c.getresponse()
data = r.read()
usage = json.loads(data).get("usage", {}) if r.status == 200 else {}
print(json.dumps({"status": r.status, "usage": usage}))
sys.exit(0 if r.status == 200 else 1)
"""


# A long chat stream; touches argv[1] once the first event arrived, then
# prints how the stream ended.
STREAM_PY = r"""
import http.client, json, sys
body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                   "messages": [{"role": "user", "content": "hi"}]})
c = http.client.HTTPSConnection("api.openai.com", timeout=30)
c.request("POST", "/v1/chat/completions", body,
          {"content-type": "application/json", "authorization": "Bearer sk-test",
           "x-sim": "words=5000;chunk_delay_ms=5"})
r = c.getresponse()
first = r.readline()
open(sys.argv[1], "w").close()
rest = r.read().decode()
print(json.dumps({"status": r.status, "done": "[DONE]" in rest,
                  "killed": "llmctl kill" in rest}))
"""


# Two chat requests: touches argv[1] after the first, waits (bounded) for
# argv[2] to exist before the second, then prints both statuses.
TWICE_PY = r"""
import http.client, json, os, sys, time
first, go = sys.argv[1], sys.argv[2]
def chat():
    c = http.client.HTTPSConnection("api.openai.com", timeout=30)
    c.request("POST", "/v1/chat/completions",
              '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
              {"content-type": "application/json", "authorization": "Bearer sk-test"})
    return c.getresponse().status
s1 = chat()
open(first, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.01)
print(s1, chat())
"""


def curl_chat(*extra):
    return ["curl", "-sS", "--fail", "--max-time", "30", CHAT_URL,
            "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test",
            "-d", json.dumps(CHAT_BODY), *extra]


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name: state, ppid,
    pgrp, ..."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def collector_processes(home):
    """Pids of llm-collector processes serving `home`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
            if os.path.basename(argv0) != b"llm-collector":
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if b"LLMWRAP_HOME=" + home.encode() in env and lwtest.pid_alive(int(entry)):
            pids.append(int(entry))
    return pids


class WrapCase(unittest.TestCase):
    """A sim and a fresh LLMWRAP_HOME; llmwrap starts the collector."""

    providers = ("openai", "anthropic", "gemini")
    config_extra = ""

    def setUp(self):
        self.llmwrap = lwtest.binary("LLMWRAP")
        self.workdir = tempfile.mkdtemp(prefix="lw-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.sim = lwtest.Sim(self.workdir)
        self.addCleanup(self.sim.stop)
        self.home = os.path.join(self.workdir, "home")
        lwtest.write_config(self.home, lwtest.sim_config(self.sim, self.providers,
                                                         self.config_extra))
        self.addCleanup(lwtest.stop_daemon, self.home)
        self.script("chat.py", CHAT_PY)

    def script(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def env(self, **extra):
        env = dict(os.environ, LLMWRAP_HOME=self.home)
        for k in SHIM_VARS:
            env.pop(k, None)
        env.pop("LD_PRELOAD", None)
        if ASAN_RUNTIME:
            # Programs that are not sanitized need the runtime loaded first.
            env["LD_PRELOAD"] = ASAN_RUNTIME
            env["ASAN_OPTIONS"] = "detect_leaks=0:verify_asan_link_order=0"
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def wrap(self, *args, env=None, timeout=RUN_TIMEOUT, **kw):
        return subprocess.run([self.llmwrap, *args], env=env or self.env(),
                              capture_output=True, timeout=timeout, **kw)

    def assertRan(self, p, status=0):
        self.assertEqual(p.returncode, status,
                         f"stdout:\n{p.stdout.decode(errors='replace')}\n"
                         f"stderr:\n{p.stderr.decode(errors='replace')}")

    def status(self):
        return lwtest.ipc_status(self.home)

    def counters(self):
        return self.status()["counters"]

    def skip_under_asan_for_curl(self):
        if ASAN_RUNTIME:
            self.skipTest("curl does not run with the sanitizer runtime preloaded")


class TestClients(WrapCase):
    """Real clients, each talking to the provider's real URL."""

    def test_curl_without_ca_or_resolve_options(self):
        self.skip_under_asan_for_curl()
        p = self.wrap("--", *curl_chat())
        self.assertRan(p)
        answer = json.loads(p.stdout)
        self.assertEqual(answer["model"], "gpt-4o-mini")
        self.assertEqual(answer["id"], "chatcmpl-sim-000001")
        self.assertEqual(self.sim.stats()["requests"], 1)
        c = self.counters()
        self.assertEqual(c["requests_total"], 1)
        self.assertEqual(c["connections_accepted"], 1)

    def test_python_urllib_http_client_requests_httpx(self):
        path = self.script("clients.py", r"""
import http.client, json, sys, urllib.request
import httpx, requests
URL = "https://api.openai.com/v1/chat/completions"
BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
H = {"content-type": "application/json", "authorization": "Bearer sk-test"}
out = {}
r = urllib.request.urlopen(urllib.request.Request(URL, data=BODY.encode(), headers=H), timeout=30)
out["urllib"] = (r.status, json.loads(r.read())["object"])
c = http.client.HTTPSConnection("api.openai.com", timeout=30)
c.request("POST", "/v1/chat/completions", BODY, H)
r = c.getresponse()
out["http.client"] = (r.status, json.loads(r.read())["object"])
r = requests.post(URL, data=BODY, headers=H, timeout=30)
out["requests"] = (r.status_code, r.json()["object"])
r = httpx.post(URL, content=BODY, headers=H, timeout=30)
out["httpx"] = (r.status_code, r.json()["object"])
print(json.dumps(out))
""")
        p = self.wrap(PYTHON, path)
        self.assertRan(p)
        out = json.loads(p.stdout)
        for client in ("urllib", "http.client", "requests", "httpx"):
            self.assertEqual(out[client], [200, "chat.completion"], client)
        self.assertEqual(self.counters()["requests_total"], 4)
        self.assertEqual(self.sim.stats()["requests"], 4)

    def test_sh_then_python_chain(self):
        p = self.wrap("sh", "-c", f'exec "$0" "$1"', PYTHON, os.path.join(self.workdir, "chat.py"))
        self.assertRan(p)
        self.assertEqual(json.loads(p.stdout)["status"], 200)
        self.assertEqual(self.counters()["requests_total"], 1)

    def test_child_started_with_env_i(self):
        # env -i drops every variable; the shim's exec hooks restore its own
        # and the trust variables in the child.
        if ASAN_RUNTIME:
            self.skipTest("env -i also drops the sanitizer runtime, which the shim does not "
                          "restore")
        p = self.wrap("sh", "-c", f'env -i {PYTHON} "$0"', os.path.join(self.workdir, "chat.py"))
        self.assertRan(p)
        self.assertEqual(json.loads(p.stdout)["status"], 200)
        self.assertEqual(self.counters()["requests_total"], 1)

    def test_fork_then_connect(self):
        path = self.script("fork.py", r"""
import http.client, os, sys
pids = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        try:
            c = http.client.HTTPSConnection("api.openai.com", timeout=30)
            c.request("POST", "/v1/chat/completions",
                      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
                      {"content-type": "application/json", "authorization": "Bearer sk-test"})
            os._exit(0 if c.getresponse().status == 200 else 1)
        except Exception as e:
            print(e, file=sys.stderr)
            os._exit(2)
    pids.append(pid)
codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
print(codes)
sys.exit(max(codes))
""")
        p = self.wrap(PYTHON, path)
        self.assertRan(p)
        self.assertEqual(self.counters()["requests_total"], 3)

    def test_nonblocking_connect_with_epoll(self):
        path = self.script("epoll.py", RAW_POST + r"""
import errno, select, socket, ssl, sys
family, type_, proto, _, addr = socket.getaddrinfo("api.openai.com", 443, socket.AF_INET,
                                                   socket.SOCK_STREAM)[0]
s = socket.socket(family, type_, proto)
s.setblocking(False)
rc = s.connect_ex(addr)
assert rc in (0, errno.EINPROGRESS), rc
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLOUT)
assert ep.poll(30), "connect did not complete"
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
s.setblocking(True)
s.settimeout(30)
t = ssl.create_default_context().wrap_socket(s, server_hostname="api.openai.com")
body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
print(addr[0], post(t, b"api.openai.com", b"/v1/chat/completions",
                    b"Authorization: Bearer sk-test\r\n", body))
""")
        p = self.wrap(PYTHON, path)
        self.assertRan(p)
        self.assertEqual(p.stdout.decode().split(), ["127.241.0.1", "HTTP/1.1", "200", "OK"])
        self.assertEqual(self.counters()["requests_total"], 1)

    def test_af_inet6_only_hints(self):
        path = self.script("v6.py", RAW_POST + r"""
import socket, ssl
family, type_, proto, _, addr = socket.getaddrinfo("api.anthropic.com", 443, socket.AF_INET6,
                                                   socket.SOCK_STREAM)[0]
s = socket.socket(family, type_, proto)
s.settimeout(30)
s.connect(addr)
t = ssl.create_default_context().wrap_socket(s, server_hostname="api.anthropic.com")
body = (b'{"model":"claude-sonnet-4-5","max_tokens":16,'
        b'"messages":[{"role":"user","content":"hi"}]}')
print(family == socket.AF_INET6, addr[0],
      post(t, b"api.anthropic.com", b"/v1/messages",
           b"x-api-key: k\r\nanthropic-version: 2023-06-01\r\n", body))
""")
        p = self.wrap(PYTHON, path)
        self.assertRan(p)
        self.assertEqual(p.stdout.decode().split(),
                         ["True", "::ffff:127.241.0.2", "HTTP/1.1", "200", "OK"])
        self.assertEqual(self.counters()["requests_total"], 1)


class TestAttribution(WrapCase):
    """Each connection's requests are booked to the run of the process that
    opened it, and held to that run's budget."""

    providers = ("openai", "xai")
    config_extra = """
[price.lw-test-model]
input = 1.5
output = 2.25
"""

    def test_one_local_port_to_two_providers(self):
        # Linux gives one local port to connections to different addresses
        # (two providers' synthetic addresses) by itself once many are
        # open; bind() makes it happen here. The second request asks for
        # more output than the run's budget allows: refused, if its
        # connection is known to be the run's.
        path = self.script("same-port.py", RAW_POST + r"""
import json, socket, ssl
def connect(host, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.settimeout(30)
    s.connect((host, 443))
    return s
a = connect("api.openai.com", 0)
b = connect("api.x.ai", a.getsockname()[1])
assert a.getsockname() == b.getsockname(), (a.getsockname(), b.getsockname())
ctx = ssl.create_default_context()
a = ctx.wrap_socket(a, server_hostname="api.openai.com")
b = ctx.wrap_socket(b, server_hostname="api.x.ai")
def body(max_tokens):
    return json.dumps({"model": "lw-test-model", "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
key = b"Authorization: Bearer sk-test\r\n"
print(post(a, b"api.openai.com", b"/v1/chat/completions", key, body(5)))
print(post(b, b"api.x.ai", b"/v1/chat/completions", key, body(100000)))
""")
        summary = os.path.join(self.workdir, "summary.json")
        p = self.wrap("--quiet", "--budget", "0.01", "--json-summary", summary, PYTHON, path)
        self.assertEqual(p.stdout.decode().splitlines(),
                         ["HTTP/1.1 200 OK", "HTTP/1.1 429 Too Many Requests"], p.stderr)
        with open(summary) as f:
            s = json.load(f)
        self.assertEqual(s["requests"], 2)
        # The program exited 0; llmwrap says the run's budget refused one.
        self.assertRan(p, 86)
        self.assertIn(b"1 request was refused by budget run:%d;" % s["run_id"], p.stderr)
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json"],
                             capture_output=True, env=self.env(), timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = json.loads(out.stdout)
        self.assertEqual(sorted((r["provider"], r["run_id"]) for r in rows),
                         [("openai", s["run_id"]), ("xai", s["run_id"])])
        self.assertEqual(self.sim.stats()["requests"], 1)

    def test_base_url_at_the_listen_address(self):
        # A program whose base URL points at the collector's listen address
        # (plain HTTP, by address, by "localhost", which resolves to ::1
        # first: refused, as nothing listens there, and by 0.0.0.0, which
        # Linux connects to 127.0.0.1) belongs to the run as a provider
        # connection does: booked with its run and tags, held to its
        # budget. The same address from outside llmwrap books no run.
        path = self.script("base-url.py", r"""
import http.client, json, sys, urllib.parse
for url, max_tokens in zip(sys.argv[1::2], sys.argv[2::2]):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    body = json.dumps({"model": "lw-test-model", "max_tokens": int(max_tokens),
                       "messages": [{"role": "user", "content": "hi"}]})
    c.request("POST", u.path + "/chat/completions", body,
              {"content-type": "application/json", "authorization": "Bearer sk-test"})
    r = c.getresponse()
    error = json.loads(r.read()).get("error") or {}
    print(r.status, r.getheader("x-should-retry"), error.get("code"))
""")
        self.assertRan(self.wrap("--quiet", "true"))
        ports = [port for provider, address, port in self.status()["listeners"]
                 if provider == "" and address == "127.0.0.1"]
        self.assertEqual(len(ports), 1, self.status()["listeners"])
        base = "http://127.0.0.1:%d/v1" % ports[0]
        by_name = "http://localhost:%d/openai/v1" % ports[0]
        unspecified = "http://0.0.0.0:%d/v1" % ports[0]
        summary = os.path.join(self.workdir, "summary.json")
        p = self.wrap("--quiet", "--budget", "0.01", "--tag", "team=a", "--json-summary",
                      summary, PYTHON, path, base, "5", by_name, "5", unspecified, "5",
                      by_name, "100000")
        self.assertEqual(p.stdout.decode().splitlines(),
                         ["200 None None"] * 3 + ["429 false insufficient_quota"], p.stderr)
        with open(summary) as f:
            s = json.load(f)
        self.assertEqual(s["requests"], 4)
        self.assertRan(p, 86)
        self.assertIn(b"1 request was refused by budget run:%d;" % s["run_id"], p.stderr)
        outside = subprocess.run([PYTHON, path, base, "5"], env=self.env(),
                                 capture_output=True, timeout=RUN_TIMEOUT)
        self.assertRan(outside)
        self.assertEqual(outside.stdout.decode().splitlines(), ["200 None None"])
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json"],
                             capture_output=True, env=self.env(), timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = sorted(json.loads(out.stdout), key=lambda r: r["id"])
        run = (s["run_id"], {"team": "a"})
        self.assertEqual([(r["status"], r["run_id"], r["tags"]) for r in rows],
                         [(200, *run)] * 3 + [(429, *run), (200, None, None)])
        self.assertEqual(self.sim.stats()["requests"], 4)

    def test_program_at_its_open_file_limit_is_told_why(self):
        # The attribution message takes a descriptor of its own: a program
        # with none left gets its provider connection refused (else the
        # request would escape the run), and the message must say why
        # rather than blame the collector.
        path = self.script("fdlimit.py", r"""
import errno, os, resource, socket
addr = socket.getaddrinfo("api.openai.com", 443, socket.AF_INET, socket.SOCK_STREAM)[0][4]
s = socket.socket()
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while len(held) < 64:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE, e
try:
    s.connect(addr)
    print("connected")
except OSError as e:
    print(errno.errorcode[e.errno])
""")
        p = self.wrap("--quiet", PYTHON, path)
        self.assertRan(p)
        self.assertEqual(p.stdout.decode().split(), ["ECONNREFUSED"])
        self.assertIn(b"at its limit of open files (EMFILE)", p.stderr)
        self.assertEqual(self.sim.stats()["requests"], 0)

    def test_tcp_fast_open_plain_http(self):
        # A Fast Open send whose bytes are the request itself (plain HTTP
        # to the listen address or to a provider host) came before the
        # attribution message: booked with no run, past the run's budget.
        path = self.script("fastopen-plain.py", r"""
import json, socket, sys
body = json.dumps({"model": "lw-test-model", "max_tokens": 5,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
listen = ("127.0.0.1", int(sys.argv[1]))
provider = socket.getaddrinfo("api.openai.com", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4]
for addr in [listen, provider] * 10:
    s = socket.socket()  # blocking: a timeout would make the Fast Open send EINPROGRESS
    s.sendto(b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
             b"Authorization: Bearer sk-test\r\nContent-Type: application/json\r\n"
             b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
             socket.MSG_FASTOPEN, addr)
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    print(answer.split(b"\r\n", 1)[0].decode())
""")
        self.assertRan(self.wrap("--quiet", "true"))
        port = [port for provider, address, port in self.status()["listeners"]
                if provider == "" and address == "127.0.0.1"][0]
        self.assert_all_answered_and_booked_to_the_run(path, 20, str(port))

    def assert_all_answered_and_booked_to_the_run(self, script, n, *args):
        """Runs `script` under llmwrap: its n requests are answered 200 (one
        status line each on stdout) and every row carries the run's id."""
        summary = os.path.join(self.workdir, "summary.json")
        p = self.wrap("--quiet", "--json-summary", summary, PYTHON, script, *args)
        self.assertRan(p)
        self.assertEqual(p.stdout.decode().splitlines(), ["HTTP/1.1 200 OK"] * n)
        with open(summary) as f:
            s = json.load(f)
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json"],
                             capture_output=True, env=self.env(), timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual([r["run_id"] for r in json.loads(out.stdout)], [s["run_id"]] * n)

    def test_tcp_fast_open_connections(self):
        # With MSG_FASTOPEN the program's first bytes (its ClientHello)
        # travel with the connect, before the shim can send the connection's
        # attribution message: the collector must still find the message
        # when the request comes. When it did not, a few connections in a
        # hundred went unattributed (more on a busy machine): 300.
        path = self.script("fastopen.py", r"""
import socket, ssl, sys
ctx = ssl.create_default_context()
body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
           b"Authorization: Bearer sk-test\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
addr = socket.getaddrinfo("api.openai.com", 443, socket.AF_INET, socket.SOCK_STREAM)[0][4]
for _ in range(int(sys.argv[1])):
    s = socket.socket()  # blocking: a timeout would make the Fast Open send EINPROGRESS
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="api.openai.com")
    first = True
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = outgoing.read()
            if first:
                s.sendto(data, socket.MSG_FASTOPEN, addr)
                s.settimeout(30)
                first = False
            elif data:
                s.sendall(data)
            incoming.write(s.recv(65536) or sys.exit("closed in the handshake"))
    tls.write(request)
    s.sendall(outgoing.read())
    answer = b""
    while True:
        try:
            chunk = tls.read(65536)
            if not chunk:
                break
            answer += chunk
        except ssl.SSLWantReadError:
            data = s.recv(65536)
            if not data:
                break
            incoming.write(data)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
    s.close()
    print(answer.split(b"\r\n", 1)[0].decode())
""")
        self.assert_all_answered_and_booked_to_the_run(path, 300, "300")


class _Echo:
    """A loopback server (plain TCP, or TLS with the sim's certificate) that
    reads exactly `expect` bytes, answers with `answer` and records what it
    read."""

    def __init__(self, answer, expect, tls_dir=None):
        self.answer, self.expect = answer, expect
        self.received = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(DEFAULT_TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if tls_dir:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(os.path.join(tls_dir, "sim-server.pem"),
                                     os.path.join(tls_dir, "sim-server.key"))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(DEFAULT_TIMEOUT)
            if self.ctx:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            while len(self.received) < self.expect:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.received += chunk
            conn.sendall(self.answer)
            conn.close()
        except OSError:
            pass
        finally:
            self.sock.close()


class _Proxy:
    """A stand-in HTTP proxy on loopback: records each request line and
    answers 502."""

    def __init__(self):
        self.seen = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(DEFAULT_TIMEOUT)
                try:
                    head = lwtest.read_head(conn)
                    self.seen.append(head.split(b"\r\n")[0].decode())
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(DEFAULT_TIMEOUT)


class TestOtherTrafficUntouched(WrapCase):

    def test_plain_http_and_own_ca_https_pass_byte_for_byte(self):
        send = os.urandom(100_000)
        answer = os.urandom(150_000)
        plain = _Echo(answer, len(send))
        tls = _Echo(answer, len(send), tls_dir=self.sim.dir)
        with open(os.path.join(self.workdir, "send.bin"), "wb") as f:
            f.write(send)
        path = self.script("other.py", r"""
import hashlib, socket, ssl, sys
send = open(sys.argv[1], "rb").read()
plain_port, tls_port, ca = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def exchange(sock):
    sock.sendall(send)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
a = exchange(socket.create_connection(("127.0.0.1", plain_port), 30))
ctx = ssl.create_default_context(cafile=ca)
b = exchange(ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), 30),
                             server_hostname="127.0.0.1"))
print(hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest())
""")
        p = self.wrap(PYTHON, path, os.path.join(self.workdir, "send.bin"), str(plain.port),
                      str(tls.port), self.sim.ca_file)
        self.assertRan(p)
        plain.thread.join(DEFAULT_TIMEOUT)
        tls.thread.join(DEFAULT_TIMEOUT)
        digest = hashlib.sha256(answer).hexdigest()
        self.assertEqual(p.stdout.decode().split(), [digest, digest])
        self.assertEqual(plain.received, send)
        self.assertEqual(tls.received, send)
        c = self.counters()
        self.assertEqual(c["connections_accepted"], 0)
        self.assertEqual(c["requests_total"], 0)

    def test_direct_https_to_a_loopback_provider_is_not_recorded(self):
        # The sim is an HTTPS server with its own CA on 127.0.0.1: a client
        # using it by address is not provider traffic for llmwrap.
        path = self.script("direct.py", r"""
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=30)
c.request("POST", "/v1/chat/completions",
          '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
          {"content-type": "application/json", "authorization": "Bearer sk-test"})
print(c.getresponse().status)
""")
        p = self.wrap(PYTHON, path, str(self.sim.port), self.sim.ca_file)
        self.assertRan(p)
        self.assertEqual(p.stdout.strip(), b"200")
        self.assertEqual(self.sim.stats()["requests"], 1)
        c = self.counters()
        self.assertEqual(c["connections_accepted"], 0)
        self.assertEqual(c["requests_total"], 0)

    def test_a_wrapped_tls_server_refuses_client_certificates_from_the_llmwrap_ca(self):
        # The shim adds llmwrap's root to every OpenSSL store in the
        # program, a server's included. Name constraints bind only the names
        # a certificate carries, and a client certificate needs none: only
        # the CA's server-only key usage stops one signed with
        # intermediate.key from logging in to a wrapped server.
        self.assertRan(self.wrap("--quiet", "--", "true"))
        ca = os.path.join(self.home, "ca")
        w = self.workdir

        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True,
                           timeout=DEFAULT_TIMEOUT)

        def client_cert(name, issuer_pem, issuer_key):
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", f"{w}/{name}.key", "-out", f"{w}/{name}.csr",
                    "-subj", "/CN=admin")
            openssl("x509", "-req", "-in", f"{w}/{name}.csr", "-CA", issuer_pem,
                    "-CAkey", issuer_key, "-CAcreateserial", "-out", f"{w}/{name}.pem",
                    "-days", "2", "-extfile", f"{w}/client.cnf")
            with open(f"{w}/{name}.pem") as cert, open(issuer_pem) as issuer:
                with open(f"{w}/{name}-chain.pem", "w") as chain:
                    chain.write(cert.read() + issuer.read())

        with open(f"{w}/client.cnf", "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=clientAuth\n")
        # The server's own client CA, the only one it means to trust.
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{w}/own.key", "-out", f"{w}/own.pem", "-subj", "/CN=own client CA",
                "-days", "2")
        client_cert("legit", f"{w}/own.pem", f"{w}/own.key")
        client_cert("forged", f"{ca}/intermediate.pem", f"{ca}/intermediate.key")

        server = self.script("mtls-server.py", r"""
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1] + "/sim-server.pem", sys.argv[1] + "/sim-server.key")
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(cafile=sys.argv[2])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(2)
print(s.getsockname()[1], flush=True)
for _ in range(2):
    c, _ = s.accept()
    c.settimeout(30)
    try:
        t = ctx.wrap_socket(c, server_side=True)
        print("accepted", flush=True)
        t.close()
    except (ssl.SSLError, OSError) as e:
        print("refused:", getattr(e, "verify_message", None) or e, flush=True)
        c.close()
""")
        p = subprocess.Popen([self.llmwrap, "--quiet", "--", PYTHON, server, self.sim.dir,
                              f"{w}/own.pem"], env=self.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        port = int(p.stdout.readline())

        def present(name):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(f"{w}/{name}-chain.pem", f"{w}/{name}.key")
            with socket.create_connection(("127.0.0.1", port), timeout=DEFAULT_TIMEOUT) as s:
                try:
                    with ctx.wrap_socket(s) as t:
                        t.recv(1)  # the server's verdict on a TLS 1.3 client certificate
                except (ssl.SSLError, OSError):
                    pass

        # Control: the server accepts a certificate from its own CA.
        present("legit")
        present("forged")
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "accepted", out + err)
        self.assertEqual(lines[1], "refused: unsuitable certificate purpose", out + err)


class TestExitAndSignals(WrapCase):

    def runs(self):
        out = subprocess.run([lwtest.binary("LLMCTL"), "runs", "--json"], capture_output=True,
                             text=True, env=self.env(), timeout=RUN_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_llmctl_kill_ends_a_stream_in_flight(self):
        # `llmctl kill` is the way to stop a run's spending now: a stream
        # already running must end too, not only the requests after it.
        self.script("stream.py", STREAM_PY)
        marker = os.path.join(self.workdir, "streaming")
        proc = subprocess.Popen([self.llmwrap, "--quiet", PYTHON,
                                 os.path.join(self.workdir, "stream.py"), marker],
                                env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        wait_for(lambda: os.path.exists(marker), what="the stream started")
        run = self.runs()[0]
        out = subprocess.run([lwtest.binary("LLMCTL"), "kill", str(run["id"])],
                             capture_output=True, text=True, env=self.env(), timeout=RUN_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        result = json.loads(stdout)
        self.assertEqual(result, {"status": 200, "done": False, "killed": True}, stderr)
        self.assertEqual(self.runs()[0]["requests"], 1)

    def test_llmctl_kill_outlasts_a_collector_restart(self):
        # llmwrap restarts a collector that dies mid-run: the new one must
        # refuse the killed run too, not serve it again.
        first = os.path.join(self.workdir, "first")
        go = os.path.join(self.workdir, "go")
        path = self.script("twice.py", TWICE_PY)
        proc = subprocess.Popen([self.llmwrap, "--quiet", PYTHON, path, first, go],
                                env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        wait_for(lambda: os.path.exists(first), what="first request done")
        run = self.runs()[0]
        out = subprocess.run([lwtest.binary("LLMCTL"), "kill", str(run["id"])],
                             capture_output=True, text=True, env=self.env(), timeout=RUN_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        old_pid = self.status()["pid"]
        os.kill(old_pid, signal.SIGKILL)

        def restarted():
            try:
                return lwtest.ipc_status(self.home, timeout=1)["pid"] != old_pid
            except OSError:
                return False

        wait_for(restarted, what="a restarted collector")
        open(go, "w").close()
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(stdout.split(), [b"200", b"429"], stderr)
        self.assertEqual(proc.returncode, 86, stderr)
        self.assertEqual(self.sim.stats()["requests"], 1)

    def start_sleeping_run(self, stderr=subprocess.DEVNULL):
        """llmwrap sleep 30, in a session of its own; returns it and its run
        once the run is open."""
        proc = subprocess.Popen([self.llmwrap, "sleep", "30"], env=self.env(),
                                stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        self.addCleanup(lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL))
        return proc, wait_for(lambda: next(iter(self.runs()), None), what="the run opened")

    def assert_killed_run_ends(self, proc, run):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(RUN_TIMEOUT)
        ended = wait_for(lambda: self.runs()[0]["ended"] is not None and self.runs()[0],
                         what="the run ended")
        self.assertEqual(ended["id"], run["id"])
        self.assertIsNone(ended["exit_status"])

    def test_run_of_a_killed_llmwrap_ends(self):
        # kill -9 leaves no llmwrap to close its run: the collector ends it
        # when llmwrap's connection goes, with the exit status unknown,
        # rather than showing it running for ever.
        proc, run = self.start_sleeping_run()
        self.assertIsNone(run["ended"])
        self.assert_killed_run_ends(proc, run)

    def test_run_of_a_killed_llmwrap_ends_after_a_collector_restart(self):
        # The restarted collector never saw the run open: llmwrap reattaches
        # its run to the new connection, so a kill -9 still ends it.
        proc, run = self.start_sleeping_run(stderr=subprocess.PIPE)
        old_pid = self.status()["pid"]
        os.kill(old_pid, signal.SIGKILL)
        err = b""
        deadline = time.monotonic() + 10
        while b"collector restarted" not in err and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 0.1)[0]:
                err += os.read(proc.stderr.fileno(), 4096)
        self.assertIn(b"collector restarted", err)
        self.assertNotIn(b"does not know run", err)
        self.assert_killed_run_ends(proc, run)

    def test_exit_statuses(self):
        notexec = self.script("notexec.sh", "#!/bin/sh\nexit 0\n")
        os.chmod(notexec, 0o644)
        cases = [
            (["true"], 0, None),
            (["sh", "-c", "exit 3"], 3, None),
            # The signals a user ends a program with end llmwrap too (a
            # negative returncode: killed by that signal); others are 128+N.
            (["sh", "-c", "kill -TERM $$"], -signal.SIGTERM, None),
            (["sh", "-c", "kill -INT $$"], -signal.SIGINT, None),
            (["sh", "-c", "kill -HUP $$"], -signal.SIGHUP, None),
            (["sh", "-c", "kill -QUIT $$"], -signal.SIGQUIT, None),
            (["sh", "-c", "kill -KILL $$"], 128 + signal.SIGKILL, None),
            (["sh", "-c", "kill -USR1 $$"], 128 + signal.SIGUSR1, None),
            (["no-such-command-lw"], 127, b"llmwrap: no-such-command-lw: command not found"),
            ([notexec], 126, b"Permission denied"),
            ([self.workdir], 126, b"Is a directory"),
        ]
        for argv, status, message in cases:
            with self.subTest(argv=argv):
                p = self.wrap("--quiet", "--", *argv)
                self.assertRan(p, status)
                if message:
                    self.assertIn(message, p.stderr)

    def _start_with_handlers(self):
        marker = os.path.join(self.workdir, "marker")
        ready = os.path.join(self.workdir, "ready")
        path = self.script("handlers.py", r"""
import os, signal, sys, time
marker, ready = sys.argv[1], sys.argv[2]
def note(text):
    with open(marker, "a") as f:
        f.write(text + "\n")
def on_usr1(signo, frame):
    note("USR1")
def on_term(signo, frame):
    note("TERM")
    sys.exit(7)
signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGTERM, on_term)
open(ready, "w").close()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    signal.pause() if hasattr(signal, "pause") else time.sleep(0.1)
sys.exit(3)
""")
        proc = subprocess.Popen([self.llmwrap, "--quiet", PYTHON, path, marker, ready],
                                env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        wait_for(lambda: os.path.exists(ready), what="wrapped program ready")
        return proc, marker

    def test_started_with_sigchld_ignored(self):
        # A caller that ignores SIGCHLD passes that on through exec: the
        # kernel then reaped the program as it exited, and llmwrap waited
        # for ever for a status it could no longer get (even timeout's
        # SIGTERM could not end it).
        def ignore_sigchld():
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)

        p = self.wrap("--quiet", "sh", "-c", "exit 5", preexec_fn=ignore_sigchld, timeout=30)
        self.assertRan(p, 5)
        p = self.wrap("--quiet", "sh", "-c", "sleep 0.2 & wait $!; exit 6",
                      preexec_fn=ignore_sigchld, timeout=30)
        self.assertRan(p, 6)
        db = sqlite3.connect(f"file:{os.path.join(self.home, 'ledger.db')}?mode=ro", uri=True)
        self.addCleanup(db.close)
        self.assertEqual(db.execute("SELECT exit_status FROM runs ORDER BY id").fetchall(),
                         [(5,), (6,)])

    def test_a_program_that_stops_itself_stops_llmwrap(self):
        # A full-screen program given Ctrl-Z restores the terminal and sends
        # itself SIGTSTP. llmwrap went on waiting, so the shell running it
        # never got the terminal back. Now llmwrap stops too (in a process
        # group of its own, as a shell's job), and once continued, by the
        # shell's fg (SIGCONT to the group) or by a SIGCONT to llmwrap
        # alone, continues the program.
        for resume in ("group", "llmwrap"):
            with self.subTest(resume=resume):
                proc = subprocess.Popen(
                    [self.llmwrap, "--quiet", "sh", "-c", "kill -TSTP $$; echo resumed; exit 4"],
                    env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    process_group=0)
                self.addCleanup(lambda p=proc: p.poll() is None and
                                os.killpg(p.pid, signal.SIGKILL))

                def stopped():
                    pid, status = os.waitpid(proc.pid, os.WNOHANG | os.WUNTRACED)
                    return pid == proc.pid and os.WIFSTOPPED(status) and \
                        os.WSTOPSIG(status) == signal.SIGTSTP

                wait_for(stopped, what="llmwrap stopped as its program did")
                if resume == "group":
                    os.killpg(proc.pid, signal.SIGCONT)
                else:
                    os.kill(proc.pid, signal.SIGCONT)
                out, err = proc.communicate(timeout=DEFAULT_TIMEOUT)
                self.assertEqual((proc.returncode, out), (4, b"resumed\n"), err)

    def test_sigusr1_and_sigterm_reach_the_child(self):
        proc, marker = self._start_with_handlers()
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: lwtest._read(marker) == "USR1", what="USR1 marker")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=DEFAULT_TIMEOUT)
        self.assertEqual(proc.returncode, 7, err)
        self.assertEqual(lwtest._read(marker).split(), ["USR1", "TERM"])

    def _in_terminal(self, argv, env=None):
        """Starts argv as the session leader of a new terminal; returns the
        process and the terminal's master side."""
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)

        def make_controlling_tty():
            import fcntl
            import termios
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = subprocess.Popen(argv, env=env or self.env(), stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True, preexec_fn=make_controlling_tty)
        os.close(slave)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc, master

    def _drain(self, proc, master):
        """Reads the terminal until proc exits (bounded); returns the output."""
        out = b""
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
        proc.wait(DEFAULT_TIMEOUT)
        return out.decode(errors="replace")

    def test_ctrl_c_stops_a_shell_loop_around_llmwrap(self):
        # bash, waiting for a command when Ctrl-C comes, stops its loop
        # only if the command died of SIGINT: llmwrap must die of it too,
        # not exit 130. The program runs once (later iterations would
        # return at once), so a loop that goes on finishes quickly.
        ready = os.path.join(self.workdir, "ready")
        program = '[ -e "$0" ] && exit 0; : > "$0"; exec sleep 60'
        loop = ('for i in 1 2 3; do "$0" -q sh -c \'%s\' "$1"; echo "after $i: $?"; done; '
                'echo LOOP FINISHED' % program)
        proc, master = self._in_terminal(["/bin/bash", "-c", loop, self.llmwrap, ready])
        wait_for(lambda: os.path.exists(ready), what="wrapped program ready")
        os.write(master, b"\x03")
        out = self._drain(proc, master)
        self.assertEqual(proc.returncode, -signal.SIGINT, out)
        self.assertNotIn("after 1", out)
        self.assertNotIn("LOOP FINISHED", out)

    def test_ctrl_c_while_starting_does_not_run_the_program(self):
        # A Ctrl-C typed while llmwrap waits for the collector to start is
        # held by llmwrap's signal mask; it must stop the run, not be
        # dropped. The collector's start is held until the SIGINT is
        # pending in llmwrap.
        started = os.path.join(self.workdir, "started")
        go = os.path.join(self.workdir, "go")
        ran = os.path.join(self.workdir, "ran")
        os.mkfifo(go)
        # llmwrap bounds the wait (it kills a collector that does not start).
        slow = self.script("slow-collector", "#!/bin/sh\ntrap '' INT\n: > %s\nread _ < %s\n"
                           'exec %s "$@"\n' % (started, go, lwtest.binary("LLM_COLLECTOR")))
        os.chmod(slow, 0o755)
        proc, master = self._in_terminal(
            [self.llmwrap, "sh", "-c", ': > "$0"', ran],
            env=self.env(LLMWRAP_COLLECTOR_BIN=slow))
        wait_for(lambda: os.path.exists(started), what="the collector starting")
        os.write(master, b"\x03")

        def sigint_pending():
            with open(f"/proc/{proc.pid}/status") as f:
                fields = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
            return int(fields["ShdPnd"], 16) & (1 << (signal.SIGINT - 1))

        wait_for(sigint_pending, what="SIGINT pending in llmwrap")
        os.close(os.open(go, os.O_WRONLY))
        out = self._drain(proc, master)
        self.assertEqual(proc.returncode, -signal.SIGINT, out)
        self.assertFalse(os.path.exists(ran), out)
        self.assertIn("not running sh", out)

    def test_terminal_ctrl_c_is_not_delivered_twice(self):
        # Under a terminal, Ctrl-C signals the whole foreground process
        # group: the program gets it from the kernel, and llmwrap must not
        # forward its own copy. SIGUSR1 from a process (forwarded) then
        # makes the program report how many SIGINTs it saw: a forwarded
        # duplicate would be pending before it (signals are delivered
        # lowest number first).
        counts = os.path.join(self.workdir, "counts")
        ready = os.path.join(self.workdir, "ready")
        path = self.script("ctrlc.py", self.COUNT_PY)
        proc, master = self._in_terminal([self.llmwrap, "--quiet", PYTHON, path, counts, ready])
        wait_for(lambda: os.path.exists(ready), what="wrapped program ready")
        os.write(master, b"\x03")
        wait_for(lambda: lwtest._read(counts) == "1", what="the first SIGINT")
        proc.send_signal(signal.SIGUSR1)
        # Drain the terminal so the program never blocks writing to it.
        self._drain(proc, master)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(lwtest._read(counts + ".final"), "1")

    # Counts the SIGINTs it gets; on SIGUSR1 writes the count
    # to COUNTS.final and exits. Writes llmwrap's pid (its parent) to READY.
    # argv: COUNTS READY [setsid]
    COUNT_PY = r"""
import os, signal, sys, time
counts, ready = sys.argv[1], sys.argv[2]
n = 0
def on_int(signo, frame):
    global n
    n += 1
    with open(counts, "w") as f:
        f.write(str(n))
def on_usr1(signo, frame):
    with open(counts + ".final", "w") as f:
        f.write(str(n))
    sys.exit(0)
signal.signal(signal.SIGINT, on_int)
signal.signal(signal.SIGUSR1, on_usr1)
if sys.argv[3:] == ["setsid"]:
    os.setsid()
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getppid()))
os.rename(ready + ".tmp", ready)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    signal.pause()
sys.exit(3)
"""

    def count_signals(self, send, prefix=(), program_args=(), stop_llmwrap=False):
        """Runs COUNT_PY under llmwrap (behind `prefix`), in a session of
        its own; once it is ready calls send(llmwrap_pid), waits for the
        program's first signal, then sends SIGUSR1 to llmwrap alone. Returns
        how many SIGINTs the program got, and its exit status. A copy
        llmwrap passed on would be delivered before the SIGUSR1: llmwrap
        passes signals on in the order it got them, and the kernel delivers
        lower numbers first. With stop_llmwrap, llmwrap is stopped until the
        program has its first signal, so a copy llmwrap passed on could not
        merge with it."""
        path = self.script("count.py", self.COUNT_PY)
        counts = os.path.join(self.workdir, "counts")
        ready = os.path.join(self.workdir, "ready")
        proc = subprocess.Popen([*prefix, self.llmwrap, "--quiet", PYTHON, path, counts, ready,
                                 *program_args],
                                env=self.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL))
        llmwrap_pid = int(wait_for(lambda: lwtest._read(ready), what="wrapped program ready"))
        if stop_llmwrap:
            os.kill(llmwrap_pid, signal.SIGSTOP)
            wait_for(lambda: proc_stat(llmwrap_pid)[0] == "T", what="llmwrap stopped")
        send(llmwrap_pid)
        wait_for(lambda: os.path.exists(counts), what="the program's first signal")
        if stop_llmwrap:
            os.kill(llmwrap_pid, signal.SIGCONT)
        os.kill(llmwrap_pid, signal.SIGUSR1)
        proc.wait(DEFAULT_TIMEOUT)
        return lwtest._read(counts + ".final"), proc.returncode

    def test_signal_sent_to_the_process_group_is_not_delivered_twice(self):
        # kill -INT -PGID, a shell's `kill %1`: the program gets it from the
        # kernel; llmwrap, which got it too, must not pass it on.
        self.assertEqual(self.count_signals(lambda pid: os.killpg(pid, signal.SIGINT),
                                            stop_llmwrap=True), ("1", 0))

    def test_signal_sent_to_every_process_is_not_delivered_twice(self):
        # systemd stopping a unit signals each process of its control group,
        # the main one first (with KillSignal=SIGINT here: the count below
        # needs a signal numbered below SIGUSR1).
        def every_process_of_the_group(pgid):
            pids = []
            for entry in os.listdir("/proc"):
                try:
                    if int(proc_stat(int(entry))[2]) == pgid:
                        pids.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
            for pid in sorted(pids):
                os.kill(pid, signal.SIGINT)

        self.assertEqual(self.count_signals(every_process_of_the_group, stop_llmwrap=True),
                         ("1", 0))

    def test_timeout_signal_is_not_delivered_twice(self):
        # timeout(1) signals its child (llmwrap), then the whole group. Its
        # SIGALRM is what its timer raises.
        def expire(llmwrap_pid):
            os.kill(int(proc_stat(llmwrap_pid)[1]), signal.SIGALRM)

        self.assertEqual(self.count_signals(expire, prefix=("timeout", "-s", "INT", "60")),
                         ("1", 124))

    def test_signal_sent_to_llmwrap_alone_is_delivered_once(self):
        self.assertEqual(self.count_signals(lambda pid: os.kill(pid, signal.SIGINT)), ("1", 0))

    def test_group_signal_reaches_a_program_that_left_the_group(self):
        # A program in a session of its own (daemons, Ray) does not get what
        # llmwrap's group gets: llmwrap passes it on.
        self.assertEqual(self.count_signals(lambda pid: os.killpg(pid, signal.SIGINT),
                                            program_args=("setsid",)), ("1", 0))


class TestCollectorLifecycle(WrapCase):

    def test_concurrent_llmwraps_share_one_collector(self):
        n = 8
        procs = [subprocess.Popen([self.llmwrap, PYTHON, os.path.join(self.workdir, "chat.py")],
                                  env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(n)]
        results = [(p, *p.communicate(timeout=RUN_TIMEOUT)) for p in procs]
        run_ids = set()
        for p, out, err in results:
            self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
            self.assertEqual(json.loads(out)["status"], 200)
            line = [l for l in err.decode().splitlines() if l.startswith("llmwrap: run ")][0]
            run_ids.add(int(line.split()[2].rstrip(":")))
        self.assertEqual(len(run_ids), n)
        self.assertEqual(len(collector_processes(self.home)), 1)
        self.assertEqual(self.counters()["requests_total"], n)
        self.assertEqual(self.sim.stats()["requests"], n)

    def test_collector_killed_mid_run_is_restarted_on_the_same_port(self):
        first = os.path.join(self.workdir, "first")
        go = os.path.join(self.workdir, "go")
        path = self.script("twice.py", TWICE_PY)
        proc = subprocess.Popen([self.llmwrap, PYTHON, path, first, go], env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        wait_for(lambda: os.path.exists(first), what="first request done")
        before = self.status()
        old_pid = before["pid"]
        t0 = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)

        def restarted():
            try:
                st = lwtest.ipc_status(self.home, timeout=1)
            except OSError:
                return None
            return st if st["pid"] != old_pid else None

        after = wait_for(restarted, timeout=10, what="a restarted collector", interval=0.002)
        elapsed = time.monotonic() - t0
        # At once, not at a later check: a margin for a loaded machine.
        self.assertLess(elapsed, 3 * lwtest.PROMPT_S,
                        "the collector was restarted only after %.3fs" % elapsed)
        self.assertEqual(after["synthetic_port"], before["synthetic_port"])
        open(go, "w").close()
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, err.decode(errors="replace"))
        self.assertEqual(out.split(), [b"200", b"200"])
        self.assertIn(b"restarting it on port %d" % before["synthetic_port"], err)
        self.assertEqual(self.counters()["requests_total"], 1)  # the new collector's count
        self.assertEqual(collector_processes(self.home), [after["pid"]])

    def assert_collector_keeps_no_inherited_descriptor(self, argv):
        """Runs argv, which starts the collector, with a locked file and a
        pipe's write end open without close-on-exec, as `( flock 9; ... )
        9>job.lock` or a pipe on fd 3 leave them. Once argv has exited the
        collector alone runs: the lock must be free and the pipe at EOF."""
        lock = os.path.join(self.workdir, "job.lock")
        rfd, wfd = os.pipe()
        self.addCleanup(os.close, rfd)
        with open(lock, "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            p = subprocess.run(argv, env=self.env(), pass_fds=(held.fileno(), wfd),
                               capture_output=True, timeout=RUN_TIMEOUT)
        os.close(wfd)
        self.assertRan(p)
        self.assertTrue(lwtest.pid_alive(lwtest.collector_pid(self.home)))
        with open(lock) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.fail("the collector holds the caller's lock")
        os.set_blocking(rfd, False)
        try:
            self.assertEqual(os.read(rfd, 1), b"")
        except BlockingIOError:
            self.fail("the collector holds the caller's pipe open")

    def test_collector_started_by_llmwrap_keeps_no_inherited_descriptor(self):
        self.assert_collector_keeps_no_inherited_descriptor([self.llmwrap, "--quiet", "true"])

    def test_collector_daemon_keeps_no_inherited_descriptor(self):
        self.assert_collector_keeps_no_inherited_descriptor(
            [lwtest.binary("LLM_COLLECTOR"), "--daemon"])

    def collector_log(self):
        self.status()  # one IPC round trip: what earlier clients sent has been read
        return lwtest._read(os.path.join(self.home, "log", "collector.log"))

    def test_llmwrap_started_with_stderr_closed(self):
        # With descriptor 2 closed (2>&-), llmwrap's IPC socket must not
        # take it: every message llmwrap prints (the exit summary here)
        # would be written into the collector's protocol stream, which drops
        # the connection ("frame too large"), mid-run ending the run as
        # gone away. The program still gets descriptor 2 closed, as given.
        path = self.script("fd2.py", "import os\n"
                           "print(os.readlink('/proc/%d/fd/2' % os.getppid()))\n"
                           "try:\n    os.fstat(2)\n    print('open')\n"
                           "except OSError:\n    print('closed')\n")
        p = subprocess.run(["sh", "-c", 'exec 2>&-; exec "$0" "$@"', self.llmwrap, PYTHON, path],
                           env=self.env(), capture_output=True, timeout=RUN_TIMEOUT)
        self.assertRan(p)
        self.assertEqual(p.stdout.split(), [b"/dev/null", b"closed"])
        self.assertEqual(self.runs_ended(), [0])
        self.assertNotIn("frame too large", self.collector_log())

    def runs_ended(self):
        out = subprocess.run([lwtest.binary("LLMCTL"), "runs", "--json"], capture_output=True,
                             text=True, env=self.env(), timeout=RUN_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return [r["exit_status"] for r in json.loads(out.stdout)]

    def test_collector_daemon_started_with_stderr_closed(self):
        # The pid file must not become descriptor 2, which daemon mode
        # replaces with the log: the pid would go into the log and the lock
        # that keeps the collector unique would be released.
        collector = lwtest.binary("LLM_COLLECTOR")
        p = subprocess.run(["sh", "-c", 'exec 2>&-; exec "$0" --daemon', collector],
                           env=self.env(), capture_output=True, timeout=RUN_TIMEOUT)
        self.assertRan(p)
        pid = self.status()["pid"]
        # Stopped by its pid: a regression would leave the pid file empty.
        self.addCleanup(lambda: lwtest.pid_alive(pid) and os.kill(pid, signal.SIGTERM))
        self.assertEqual(lwtest.collector_pid(self.home), pid)
        p = subprocess.run([collector, "--daemon"], env=self.env(), capture_output=True,
                           timeout=RUN_TIMEOUT)
        self.assertRan(p, 3)
        self.assertIn(b"already running", p.stderr)

    def test_run_started_while_the_collector_drains_waits_for_the_next_one(self):
        # A collector draining to stop (SIGTERM) has closed its listeners:
        # a run opened there had every provider connection refused.
        with open(os.path.join(self.home, "config.ini"), "a") as f:
            f.write("\n[collector]\ndrain_timeout = 1s\n")
        old = lwtest.Collector(self.home).start()
        self.addCleanup(old.stop)
        # A request the sim answers in 10 minutes holds the drain to its timeout.
        conn = lwtest.HTTPSViaCollector(old, "openai")
        self.addCleanup(conn.close)
        conn.request("POST", "/v1/chat/completions", json.dumps(CHAT_BODY), {
            "content-type": "application/json", "authorization": "Bearer sk-test",
            "x-sim": "delay_ms=600000"})
        wait_for(lambda: self.counters()["requests_active"] == 1, what="the request in flight")
        old.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining: " in old.read_log(), what="the drain")
        p = self.wrap(PYTHON, os.path.join(self.workdir, "chat.py"))
        self.assertRan(p)
        self.assertEqual(json.loads(p.stdout)["status"], 200)
        self.assertIn(b"the collector is stopping; waiting", p.stderr)
        self.assertEqual(old.proc.wait(DEFAULT_TIMEOUT), 0)
        new = self.status()["pid"]
        self.assertNotEqual(new, old.proc.pid)
        self.assertEqual(collector_processes(self.home), [new])

    def test_llmwrap_waits_for_a_collector_slow_to_start(self):
        # A collector that holds the lock but does not serve yet (here it
        # waits for the spool, which llmctl may hold for up to 5 s) named no
        # live pid: a second llmwrap gave up after its 20 attempts, in about
        # a second, saying it had waited its 10 s.
        env = self.env()
        subprocess.run([lwtest.binary("LLMCTL"), "budget", "list"], env=env,
                       capture_output=True, timeout=RUN_TIMEOUT)
        pid_file = os.path.join(self.home, "run", "collector.pid")

        def locked():
            try:
                inode = os.stat(pid_file).st_ino
            except FileNotFoundError:
                return False
            with open("/proc/locks") as f:
                return any(l.split()[1] == "FLOCK" and l.split()[5].endswith(":%d" % inode)
                           for l in f)

        chat = os.path.join(self.workdir, "chat.py")
        with open(os.path.join(self.home, "ledger.spool"), "a") as spool:
            fcntl.flock(spool, fcntl.LOCK_EX)
            first = subprocess.Popen([self.llmwrap, "--quiet", PYTHON, chat], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.addCleanup(lambda: first.poll() is None and first.kill())
            wait_for(locked, what="the collector holding its lock")
            second = subprocess.Popen([self.llmwrap, "--quiet", PYTHON, chat], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.addCleanup(lambda: second.poll() is None and second.kill())
            try:
                second.wait(3)  # well within the start timeout and the spool's wait
            except subprocess.TimeoutExpired:
                pass
        for p in (first, second):
            out, err = p.communicate(timeout=RUN_TIMEOUT)
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(json.loads(out)["status"], 200)
        self.assertEqual(len(collector_processes(self.home)), 1)

    def test_relative_xdg_directories_are_ignored(self):
        # The XDG spec says to ignore a relative path in these variables.
        # Taken as they were, llmwrap looked for the collector under its
        # working directory and the daemon (started in "/") made its state
        # under "/": every run failed after the start timeout.
        user = os.path.join(self.workdir, "user")
        cwd = os.path.join(self.workdir, "cwd")
        os.makedirs(cwd)
        rel = "lw-relative-xdg-%d" % os.getpid()
        env = self.env(LLMWRAP_HOME=None, XDG_RUNTIME_DIR=None, HOME=user,
                       XDG_CONFIG_HOME=rel + "/config", XDG_DATA_HOME=rel + "/data",
                       XDG_STATE_HOME=rel + "/state", XDG_CACHE_HOME=rel + "/cache")
        state = os.path.join(user, ".local", "state", "llmwrap")
        pid_file = os.path.join(state, "run", "collector.pid")

        def stop():
            pid = lwtest._read(pid_file)
            if pid and lwtest.pid_alive(int(pid.split()[0])):
                os.kill(int(pid.split()[0]), signal.SIGTERM)
                wait_for(lambda: not lwtest.pid_alive(int(pid.split()[0])), what="exit")

        self.addCleanup(stop)
        p = subprocess.run([self.llmwrap, "--quiet", "true"], env=env, cwd=cwd,
                           capture_output=True, timeout=RUN_TIMEOUT)
        self.assertRan(p)
        self.assertEqual(os.listdir(cwd), [])
        self.assertTrue(os.path.exists(os.path.join(user, ".local", "share", "llmwrap",
                                                    "ledger.db")))
        p = subprocess.run([lwtest.binary("LLMCTL"), "runs", "--json"], env=env, cwd=cwd,
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(json.loads(p.stdout)), 1)

    def test_runtime_directory_of_another_user_is_ignored(self):
        # `su` keeps the caller's XDG_RUNTIME_DIR: sockets put there could be
        # replaced by that user's own, and that user's llmwrap could no
        # longer make its run directory there.
        if os.geteuid() == 0:
            runtime = os.path.join(self.workdir, "runtime-of-nobody")
            os.mkdir(runtime, 0o700)
            os.chown(runtime, 65534, 65534)
        else:
            runtime = "/"
        user = os.path.join(self.workdir, "user")
        env = self.env(LLMWRAP_HOME=None, XDG_RUNTIME_DIR=runtime, HOME=user,
                       XDG_CONFIG_HOME=None, XDG_DATA_HOME=None, XDG_STATE_HOME=None,
                       XDG_CACHE_HOME=None)
        run_dir = os.path.join(user, ".local", "state", "llmwrap", "run")

        def stop():
            pid = lwtest._read(os.path.join(run_dir, "collector.pid"))
            if pid and lwtest.pid_alive(int(pid.split()[0])):
                os.kill(int(pid.split()[0]), signal.SIGTERM)
                wait_for(lambda: not lwtest.pid_alive(int(pid.split()[0])), what="exit")

        self.addCleanup(stop)
        self.assertRan(subprocess.run([self.llmwrap, "--quiet", "true"], env=env,
                                      capture_output=True, timeout=RUN_TIMEOUT))
        self.assertFalse(os.path.exists(os.path.join(runtime, "llmwrap")))
        self.assertTrue(stat.S_ISSOCK(os.stat(os.path.join(run_dir, "collector.sock")).st_mode))

    def test_state_another_user_can_change_is_refused(self):
        # Whoever can change config.ini sends the program's API keys where
        # they like (an upstream); whoever can change the state directory
        # can put their own collector's sockets in it.
        config = os.path.join(self.home, "config.ini")
        cases = [("home every user may write", self.home, os.chmod, (0o777,), (0o755,),
                  "every user may write it"),
                 ("config.ini every user may write", config, os.chmod, (0o666,), (0o644,),
                  "every user may write it")]
        if os.geteuid() == 0:
            cases.append(("home of another user", self.home, os.chown, (65534, 65534), (0, 0),
                          "belongs to uid 65534, not to the current user"))
        collector = lwtest.binary("LLM_COLLECTOR")
        for what, path, change, bad, good, message in cases:
            with self.subTest(what):
                change(path, *bad)
                try:
                    for argv, status in (([self.llmwrap, "--quiet", "true"], 125),
                                         ([collector], 1)):
                        p = subprocess.run(argv, env=self.env(), capture_output=True,
                                           timeout=RUN_TIMEOUT)
                        self.assertEqual(p.returncode, status, p.stderr)
                        self.assertIn(message.encode(), p.stderr)
                        self.assertIn(path.encode(), p.stderr)
                finally:
                    change(path, *good)
        self.assertRan(self.wrap("--quiet", "true"))
        # Nor is a collector already serving there joined.
        os.chmod(self.home, 0o777)
        try:
            p = self.wrap("--quiet", "true")
            self.assertEqual(p.returncode, 125, p.stderr)
            self.assertIn(b"every user may write it", p.stderr)
        finally:
            os.chmod(self.home, 0o755)

    def test_daemon_log_rotates_at_its_size(self):
        # A daemon logs a line per request: at log_max_size its log moves to
        # collector.log.1 (replacing the one before) and a new one begins.
        with open(os.path.join(self.home, "config.ini"), "a") as f:
            f.write("\n[collector]\nlog_max_size = 4KiB\n")
        loop = self.script("loop.py", "import runpy, sys\n"
                           "for _ in range(int(sys.argv[1])):\n"
                           "    sys.argv = [sys.argv[0]]\n"
                           "    try:\n"
                           "        runpy.run_path(%r)\n"
                           "    except SystemExit:\n"
                           "        pass\n" % os.path.join(self.workdir, "chat.py"))
        log = os.path.join(self.home, "log", "collector.log")
        for _ in range(4):  # each round writes more than 4 KiB
            self.assertRan(self.wrap("--quiet", PYTHON, loop, "40"))
        self.status()  # the last request's line is written
        for path in (log, log + ".1"):
            st = os.stat(path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, path)
            self.assertLess(st.st_size, 4096 + 512, path)  # the size, and one line over it
        self.assertGreaterEqual(os.stat(log + ".1").st_size, 4096)
        self.assertFalse(os.path.exists(log + ".2"))
        self.assertIn("POST /v1/chat/completions -> 200", lwtest._read(log))

    def test_program_name_cannot_forge_a_log_line(self):
        # The run's program name goes into the collector's log. A newline in
        # a file name must not start a line of its own, nor an escape
        # sequence reach the terminal of someone reading the log.
        path = self.script("prog\nrun 99 closed with status 0\x1b[2J", "#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o755)
        self.assertRan(self.wrap("--quiet", path))
        log = self.collector_log()
        self.assertIn("opened: " + path.replace("\n", "\\n").replace("\x1b", "\\x1b"), log)
        self.assertNotIn("\x1b", log)
        for line in log.splitlines():
            self.assertFalse(line.startswith("run 99"), line)

    def test_llmctl_started_with_stderr_closed(self):
        # Its error message must not go into its IPC socket.
        self.assertRan(self.wrap("--quiet", "true"))
        p = subprocess.run(["sh", "-c", 'exec 2>&-; exec "$0" kill 12345', lwtest.binary("LLMCTL")],
                           env=self.env(), capture_output=True, timeout=RUN_TIMEOUT)
        self.assertRan(p, 1)
        self.assertNotIn("frame too large", self.collector_log())

    def test_collector_never_preloads_the_shim(self):
        shim = os.environ.get("LLMWRAP_PRELOAD_PATH")
        if not shim:
            self.skipTest("LLMWRAP_PRELOAD_PATH not set")
        preload = (ASAN_RUNTIME + ":" if ASAN_RUNTIME else "") + shim
        p = self.wrap("--quiet", "true", env=self.env(LD_PRELOAD=preload))
        self.assertRan(p)
        pid = lwtest.collector_pid(self.home)
        with open(f"/proc/{pid}/maps") as f:
            self.assertNotIn("libllmwrap-preload", f.read())
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        self.assertNotIn(b"libllmwrap-preload", env.get(b"LD_PRELOAD", b""))
        self.assertNotIn(b"LLMWRAP_HOSTS", env)

    def test_unreachable_collector_fails_closed_unless_fail_open(self):
        env = self.env(LLMWRAP_COLLECTOR_BIN="/bin/false")
        p = self.wrap("sh", "-c", "echo ran", env=env)
        self.assertRan(p, 125)
        self.assertNotIn(b"ran", p.stdout)
        self.assertIn(b"/bin/false exited with status 1", p.stderr)
        p = self.wrap("--fail-open", "sh", "-c", "echo ran; exit 4", env=env)
        self.assertRan(p, 4)
        self.assertEqual(p.stdout, b"ran\n")
        self.assertIn(b"unmetered", p.stderr)

    def test_shim_path_that_ld_preload_would_split_is_refused(self):
        # ld.so splits LD_PRELOAD at spaces and colons: such a shim path
        # would load nothing and the program would run unmetered.
        shim = os.environ.get("LLMWRAP_PRELOAD_PATH")
        if not shim:
            self.skipTest("LLMWRAP_PRELOAD_PATH not set")
        ran = os.path.join(self.workdir, "ran")
        for dirname in ("my build", "a:b"):
            with self.subTest(dir=dirname):
                d = os.path.join(self.workdir, dirname)
                os.mkdir(d)
                copy = os.path.join(d, "libllmwrap-preload.so")
                shutil.copy(shim, copy)
                p = self.wrap("--budget", "1", "sh", "-c", ': > "$0"', ran,
                              env=self.env(LLMWRAP_PRELOAD_PATH=copy))
                self.assertRan(p, 125)
                self.assertFalse(os.path.exists(ran))
                self.assertIn(b"LD_PRELOAD cannot hold", p.stderr)

    def test_fail_open_is_passed_only_when_asked(self):
        show = ["sh", "-c", 'echo "${LLMWRAP_FAIL_OPEN-unset}"']
        self.assertEqual(self.wrap("-q", *show).stdout, b"unset\n")
        self.assertEqual(self.wrap("-q", "--fail-open", *show).stdout, b"1\n")
        # An outer run's fail-open does not leak into a budgeted inner one.
        p = self.wrap("-q", "--budget", "1", *show, env=self.env(LLMWRAP_FAIL_OPEN="1"))
        self.assertEqual(p.stdout, b"unset\n")
        p = self.wrap("--budget", "1", "--fail-open", "true")
        self.assertRan(p, 2)


class TestSanitized(WrapCase):

    def test_llmwrap_itself_is_leak_free(self):
        # Meaningful in the sanitizer build: the other tests turn leak
        # detection off for the wrapped programs (Python, Node), which
        # inherit llmwrap's ASAN_OPTIONS; `true` leaks nothing.
        self.assertRan(self.wrap("--quiet", "true"))  # the collector runs from here on
        env = self.env()
        if ASAN_RUNTIME:
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:verify_asan_link_order=0"
        summary = os.path.join(self.workdir, "s.json")
        for argv in (["--json-summary", summary, "--tag", "a=b", "true"],
                     ["--doctor", PYTHON], ["--doctor", "true"], ["--bogus"],
                     ["no-such-command-lw"]):
            with self.subTest(argv=argv):
                p = self.wrap(*argv, env=env)
                self.assertNotIn(b"LeakSanitizer", p.stderr)
                self.assertNotIn(b"AddressSanitizer", p.stderr)
                self.assertIn(p.returncode, (0, 1, 2, 127), p.stderr)


class TestEnvironment(WrapCase):

    def test_contract_variables(self):
        # With no trust variable of the user's: all get the defaults.
        p = self.wrap("-q", "env", env=self.env(GODEBUG="http2client=0", SSL_CERT_DIR=None,
                                                **{v: None for v in TRUST_VARS}))
        self.assertRan(p)
        env = dict(l.split("=", 1) for l in p.stdout.decode().splitlines() if "=" in l)
        st = self.status()
        self.assertEqual(env["LLMWRAP_HOSTS"], st["hosts"])
        self.assertEqual(env["LLMWRAP_NET"], str(st["synthetic_net"]))
        self.assertEqual(env["LLMWRAP_PORT"], str(st["synthetic_port"]))
        self.assertEqual(env["LLMWRAP_LISTEN"], ",".join(
            "%s:%d" % (address, port) for provider, address, port in st["listeners"]
            if provider == ""))
        self.assertEqual(env["LLMWRAP_ATTRIB_SOCK"], os.path.join(self.home, "run", "attrib.sock"))
        self.assertEqual(env["LLMWRAP_HOME"], self.home)
        self.assertGreater(int(env["LLMWRAP_RUN_ID"]), 0)
        self.assertTrue(env["LD_PRELOAD"].split(":")[-1].endswith("libllmwrap-preload.so"))
        self.assertEqual(env["LLMWRAP_PRELOAD"], env["LD_PRELOAD"].split(":")[-1])
        self.assertEqual(env["GODEBUG"], "http2client=0,netdns=go")
        self.assertEqual(env["GRPC_DNS_RESOLVER"], "native")
        trust = os.path.join(self.home, "run", "trust")
        for var in TRUST_VARS[:-2]:
            self.assertEqual(env[var], os.path.join(trust, "combined.pem"), var)
        for var in TRUST_VARS[-2:]:
            self.assertEqual(env[var], os.path.join(trust, "ca.pem"), var)
        # LLMWRAP_CA_DER is the root certificate the collector serves under.
        with open(st["ca_file"]) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        import base64
        self.assertEqual(base64.b64decode(env["LLMWRAP_CA_DER"]), der)

    def test_user_preloads_are_kept_after_the_shim(self):
        zlib = "/lib/x86_64-linux-gnu/libz.so.1"
        if not os.path.exists(zlib):
            self.skipTest("no libz.so.1 at the Debian path")
        base = (ASAN_RUNTIME + ":" if ASAN_RUNTIME else "") + zlib
        p = self.wrap("-q", "sh", "-c", 'echo "$LD_PRELOAD"', env=self.env(LD_PRELOAD=base))
        self.assertRan(p)
        parts = p.stdout.decode().strip().split(":")
        shim_at = [i for i, e in enumerate(parts) if e.endswith("libllmwrap-preload.so")]
        self.assertEqual(len(shim_at), 1)
        self.assertEqual(parts[shim_at[0] + 1:], [zlib])

    def test_trust_files(self):
        p = self.wrap("-q", "true", env=self.env(SSL_CERT_FILE=None))
        self.assertRan(p)
        trust = os.path.join(self.home, "run", "trust")
        self.assertEqual(stat.S_IMODE(os.stat(trust).st_mode), 0o700)
        combined = os.path.join(trust, "combined.pem")
        ca = os.path.join(trust, "ca.pem")
        for f in (combined, ca):
            self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o644)
        with open(self.status()["ca_file"]) as f:
            root_der = ssl.PEM_cert_to_DER_cert(f.read())
        with open(ca) as f:
            ca_text = f.read()
        self.assertEqual(ca_text.count("BEGIN CERTIFICATE"), 1)
        self.assertEqual(ssl.PEM_cert_to_DER_cert(ca_text), root_der)
        with open(combined) as f:
            combined_text = f.read()
        self.assertTrue(combined_text.endswith(ca_text))
        # The system bundle comes first, whole.
        system = ssl.get_default_verify_paths().openssl_cafile
        with open(system) as f:
            system_text = f.read()
        self.assertTrue(combined_text.startswith(system_text))
        # A second run rewrites nothing (same inodes: no rename happened).
        inodes = (os.stat(combined).st_ino, os.stat(ca).st_ino)
        self.assertRan(self.wrap("-q", "true", env=self.env(SSL_CERT_FILE=None)))
        self.assertEqual((os.stat(combined).st_ino, os.stat(ca).st_ino), inodes)
        # The user's own bundle replaces the system's, in a file of its own.
        own = os.path.join(self.workdir, "own.pem")
        with open(own, "w") as f:
            f.write(ca_text + "\n# user bundle\n")
        p = self.wrap("-q", "sh", "-c", 'cat "$SSL_CERT_FILE"', env=self.env(SSL_CERT_FILE=own))
        self.assertRan(p)
        self.assertTrue(p.stdout.decode().startswith(ca_text + "\n# user bundle\n"))
        self.assertTrue(p.stdout.decode().endswith(ca_text))

    def test_trust_variables_the_user_set_keep_their_bundle(self):
        # A trust variable the user set (their own CA for a service that
        # is not a provider; the sim on 127.0.0.1 stands in for it) gets
        # that bundle plus our root: both the service and the providers
        # are trusted. Variables the user did not set get the defaults.
        self.skip_under_asan_for_curl()
        own = os.path.join(self.workdir, "own-ca.pem")
        shutil.copy(self.sim.ca_file, own)
        with open(own) as f:
            own_text = f.read()
        names = ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS")
        env = self.env(SSL_CERT_FILE=None, AWS_CA_BUNDLE=None, DENO_CERT=None,
                       **{n: own for n in names})
        show = 'for v in %s AWS_CA_BUNDLE DENO_CERT; do eval "echo $v=\\$$v"; done' % " ".join(names)
        p = self.wrap("-q", "sh", "-c", show, env=env)
        self.assertRan(p)
        got = dict(l.split("=", 1) for l in p.stdout.decode().splitlines())
        trust = os.path.join(self.home, "run", "trust")
        with open(os.path.join(trust, "ca.pem")) as f:
            ca_text = f.read()
        for n in names:
            with self.subTest(var=n):
                self.assertEqual(os.path.dirname(got[n]), trust)
                with open(got[n]) as f:
                    text = f.read()
                self.assertTrue(text.startswith(own_text), text[:200])
                self.assertTrue(text.endswith(ca_text))
        self.assertEqual(got["AWS_CA_BUNDLE"], os.path.join(trust, "combined.pem"))
        self.assertEqual(got["DENO_CERT"], os.path.join(trust, "ca.pem"))
        # curl trusts both the user's service and the collector.
        p = self.wrap("-q", "sh", "-c",
                      'curl -sS --fail --max-time 30 -o /dev/null "$0" && "$@"',
                      self.sim.url + "/_sim/stats", *curl_chat("-o", "/dev/null"), env=env)
        self.assertRan(p)
        self.assertEqual(self.counters()["requests_total"], 1)
        if shutil.which("node"):
            js = ("require('https').get(process.argv[1], r => { console.log(r.statusCode); "
                  "process.exit(0); })"
                  ".on('error', e => { console.log(e.code); process.exit(1); })")
            p = self.wrap("-q", "node", "-e", js, self.sim.url + "/_sim/stats", env=env)
            self.assertRan(p)
            self.assertEqual(p.stdout, b"200\n")

    def test_the_users_own_trust_settings_keep_working(self):
        # The user's own CA (the sim on 127.0.0.1 stands in for an internal
        # host signed by a private CA) given the ways clients accept it:
        # each client still reaches the internal host as it does without
        # llmwrap, and the provider through the collector. With the SSL_new
        # hook off, our root reaches OpenSSL through the variables alone.
        cadir = os.path.join(self.workdir, "cadir")
        os.makedirs(cadir)
        shutil.copy(self.sim.ca_file, cadir)
        subprocess.run(["openssl", "rehash", cadir], check=True, timeout=RUN_TIMEOUT)
        corp = os.path.join(self.workdir, "corp.pem")
        shutil.copy(self.sim.ca_file, corp)
        script = self.script("trust.py", r"""
import json, sys
import httpx, requests
client, internal = sys.argv[1], sys.argv[2]
H = {"content-type": "application/json", "authorization": "Bearer sk-test"}
def get(url, **kw):
    if client == "httpx":
        return httpx.request(kw.pop("method", "GET"), url, timeout=30, **kw).status_code
    return requests.request(kw.pop("method", "GET"), url, timeout=30, **kw).status_code
out = {}
for name, url, kw in (("internal", internal, {}),
                      ("provider", "https://api.openai.com/v1/chat/completions",
                       {"method": "POST", "headers": H, "content": sys.argv[3]})):
    if client == "requests" and "content" in kw:
        kw["data"] = kw.pop("content")
    try:
        out[name] = get(url, **kw)
    except Exception as e:
        out[name] = type(e).__name__
print(json.dumps(out))
""")
        clear = {v: None for v in TRUST_VARS + ("SSL_CERT_DIR",)}
        internal = self.sim.url + "/_sim/stats"
        cases = (("requests", {"REQUESTS_CA_BUNDLE": cadir}),
                 ("requests", {"CURL_CA_BUNDLE": corp}),
                 ("httpx", {"SSL_CERT_DIR": cadir}))
        for client, user in cases:
            for hook in ("1", "0"):
                with self.subTest(client=client, user=user, hook=hook):
                    env = self.env(LLMWRAP_TLS_HOOK=hook, **dict(clear, **user))
                    p = self.wrap("-q", PYTHON, script, client, internal, json.dumps(CHAT_BODY),
                                  env=env)
                    self.assertRan(p)
                    self.assertEqual(json.loads(p.stdout), {"internal": 200, "provider": 200})
        if not ASAN_RUNTIME:
            # curl reads SSL_CERT_DIR when CURL_CA_BUNDLE and SSL_CERT_FILE
            # are unset: llmwrap leaves them unset.
            env = self.env(LLMWRAP_TLS_HOOK="0", **dict(clear, SSL_CERT_DIR=cadir))
            p = self.wrap("-q", "sh", "-c",
                          'curl -sS --fail --max-time 30 -o /dev/null "$0" && "$@"',
                          internal, *curl_chat("-o", "/dev/null"), env=env)
            self.assertRan(p)

    def test_a_trust_variable_llmwrap_cannot_add_to_is_left_as_set(self):
        # A bundle that does not exist fails closed without llmwrap; under
        # it, it must not become the system bundle, nor be hidden by a
        # variable the client reads first.
        clear = {v: None for v in TRUST_VARS + ("SSL_CERT_DIR",)}
        show = ('for v in SSL_CERT_FILE CURL_CA_BUNDLE REQUESTS_CA_BUNDLE; do '
                'eval "echo $v=\\${$v-unset}"; done')
        trust = os.path.join(self.home, "run", "trust")
        for user, want in (
                ({"CURL_CA_BUNDLE": "/nonexistent/corp.pem"},
                 {"SSL_CERT_FILE": os.path.join(trust, "combined.pem"),
                  "CURL_CA_BUNDLE": "/nonexistent/corp.pem", "REQUESTS_CA_BUNDLE": "unset"}),
                ({"SSL_CERT_FILE": "/nonexistent/corp.pem"},
                 {"SSL_CERT_FILE": "/nonexistent/corp.pem", "CURL_CA_BUNDLE": "unset",
                  "REQUESTS_CA_BUNDLE": os.path.join(trust, "combined.pem")})):
            with self.subTest(user=user):
                p = self.wrap("-q", "sh", "-c", show, env=self.env(**dict(clear, **user)))
                self.assertRan(p)
                got = dict(l.split("=", 1) for l in p.stdout.decode().splitlines())
                self.assertEqual(got, want)

    def test_provider_hosts_bypass_the_users_proxy(self):
        # With HTTPS_PROXY set, a client would send CONNECT api.openai.com
        # to the proxy, past the collector. The provider hosts are added to
        # NO_PROXY/no_proxy, after the user's own exceptions.
        self.skip_under_asan_for_curl()
        proxy = _Proxy()
        self.addCleanup(proxy.close)
        url = "http://127.0.0.1:%d" % proxy.port
        env = self.env(HTTPS_PROXY=url, https_proxy=url, ALL_PROXY=url, NO_PROXY="corp.example",
                       no_proxy=None)
        p = self.wrap("-q", "sh", "-c", 'echo "$NO_PROXY"; echo "$no_proxy"; "$@" -o /dev/null',
                      "sh", *curl_chat(), env=env)
        self.assertRan(p)
        hosts = self.status()["hosts"]
        self.assertEqual(p.stdout.decode().splitlines(), ["corp.example," + hosts] * 2)
        self.assertEqual(self.counters()["requests_total"], 1)
        self.assertEqual(proxy.seen, [])
        # Other hosts still go through the proxy, as the user asked.
        p = self.wrap("-q", "curl", "-sS", "--max-time", "30", "-o", "/dev/null",
                      "https://example.com/", env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(proxy.seen, ["CONNECT example.com:443 HTTP/1.1"])


class TestNesting(WrapCase):

    def test_a_parent_the_ledger_lacks_is_dropped(self):
        # The first run of a fresh ledger gets id 1: were it kept as its
        # own parent, every question about its run tree would loop for ever
        # in the collector (its summary at exit among them).
        summary = os.path.join(self.workdir, "summary.json")
        env = self.env(LLMWRAP_RUN_ID="1",
                       LLMWRAP_ATTRIB_SOCK=os.path.join(self.home, "run", "attrib.sock"))
        p = self.wrap("--json-summary", summary, "true", env=env)
        self.assertRan(p)
        with open(summary) as f:
            self.assertEqual(json.load(f)["run_id"], 1)
        db = sqlite3.connect(f"file:{os.path.join(self.home, 'ledger.db')}?mode=ro", uri=True)
        self.addCleanup(db.close)
        self.assertEqual(db.execute("SELECT parent_id FROM runs").fetchall(), [(None,)])
        self.assertEqual(self.counters()["requests_total"], 0)  # and it still answers

    def test_nested_llmwrap_joins_the_outer_run(self):
        outer_json = os.path.join(self.workdir, "outer.json")
        inner_json = os.path.join(self.workdir, "inner.json")
        p = self.wrap("--json-summary", outer_json, "sh", "-c",
                      '"$0" --json-summary "$1" -- "$2" "$3"; echo "outer=$LLMWRAP_RUN_ID"',
                      self.llmwrap, inner_json, PYTHON, os.path.join(self.workdir, "chat.py"))
        self.assertRan(p)
        with open(outer_json) as f:
            outer = json.load(f)
        with open(inner_json) as f:
            inner = json.load(f)
        self.assertIn(b"outer=%d" % outer["run_id"], p.stdout)
        self.assertNotEqual(inner["run_id"], outer["run_id"])
        self.assertEqual(len(collector_processes(self.home)), 1)
        db = sqlite3.connect(f"file:{os.path.join(self.home, 'ledger.db')}?mode=ro", uri=True)
        self.addCleanup(db.close)
        parent = db.execute("SELECT parent_id FROM runs WHERE id = ?",
                            (inner["run_id"],)).fetchone()
        self.assertEqual(parent, (outer["run_id"],))
        # The outer run's spend includes its nested run's request.
        self.assertEqual(inner["requests"], 1)
        self.assertEqual(outer["requests"], 1)

    def test_a_nested_run_inherits_the_outer_runs_tags(self):
        # A tagged harness whose steps run llmwrap themselves: the steps'
        # requests are still the tag's, for its budgets and for usage.
        llmctl = lwtest.binary("LLMCTL")
        subprocess.run([llmctl, "budget", "set", "team-a", "--limit", "0.000001", "--per", "day",
                        "--scope", "tag:team=a"], env=self.env(), check=True,
                       capture_output=True, timeout=RUN_TIMEOUT)
        chat = os.path.join(self.workdir, "chat.py")
        p = self.wrap("--tag", "team=a", "--tag", "env=ci", "--", "sh", "-c",
                      '"$0" --quiet --tag env=dev -- "$1" "$2" gpt-4o-mini; echo "inner=$?"',
                      self.llmwrap, PYTHON, chat)
        self.assertIn(b"inner=1", p.stdout, p.stderr)  # refused by the outer run's tag budget
        self.assertIn(b'"status": 429', p.stdout)
        db = sqlite3.connect(f"file:{os.path.join(self.home, 'ledger.db')}?mode=ro", uri=True)
        self.addCleanup(db.close)
        runs = db.execute("SELECT id, parent_id, tags FROM runs ORDER BY id").fetchall()
        self.assertEqual(len(runs), 2)
        outer, inner = runs
        self.assertEqual(json.loads(outer[2]), {"team": "a", "env": "ci"})
        self.assertEqual(inner[1], outer[0])
        # The inner run's own value wins over the inherited one.
        self.assertEqual(json.loads(inner[2]), {"team": "a", "env": "dev"})
        rows = db.execute("SELECT run_id, refused_by, tags FROM requests").fetchall()
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][:2], (inner[0], "budget team-a"))
        self.assertEqual(json.loads(rows[0][2]), {"team": "a", "env": "dev"})


class TestNestedGuards(WrapCase):
    config_extra = "\n[guard.loop]\ntype = loop\nthreshold = 3\nwindow = 60s\naction = block\n"

    def test_a_loop_across_nested_runs_trips_the_outer_runs_guard(self):
        # A harness that runs each step under an llmwrap of its own: the
        # same request from five nested runs is the outer run's loop.
        chat = os.path.join(self.workdir, "chat.py")
        p = self.wrap("--quiet", "--", "sh", "-c",
                      'for i in 1 2 3 4 5; do "$0" --quiet -- "$1" "$2"; echo "step=$?"; done',
                      self.llmwrap, PYTHON, chat)
        steps = [line for line in p.stdout.split(b"\n") if line.startswith(b"step=")]
        self.assertEqual(steps, [b"step=0", b"step=0", b"step=1", b"step=1", b"step=1"],
                         p.stdout + p.stderr)
        db = sqlite3.connect(f"file:{os.path.join(self.home, 'ledger.db')}?mode=ro", uri=True)
        self.addCleanup(db.close)
        refused = db.execute("SELECT refused_by FROM requests WHERE refused_by IS NOT NULL")
        self.assertEqual(refused.fetchall(), [("guard loop",)] * 3)


class TestRunBudgetsEnd(WrapCase):

    def budgets(self):
        out = subprocess.run([lwtest.binary("LLMCTL"), "budget", "list", "--json"],
                             env=self.env(), capture_output=True, text=True,
                             timeout=RUN_TIMEOUT, check=True)
        return {b["name"]: [r["run_id"] for r in b["runs"]] for b in json.loads(out.stdout)}

    def test_an_ended_run_leaves_the_budget_list(self):
        # Its --budget and its share of a per-run budget are listed while it
        # goes on, not for as long as the collector serves.
        subprocess.run([lwtest.binary("LLMCTL"), "budget", "set", "each", "--limit", "1",
                        "--per", "run"], env=self.env(), check=True, capture_output=True,
                       timeout=RUN_TIMEOUT)
        chat = os.path.join(self.workdir, "chat.py")
        for _ in range(2):
            self.assertRan(self.wrap("--quiet", "--budget", "0.5", "--", PYTHON, chat))
        self.assertEqual(self.budgets(), {"each": []})
        go = os.path.join(self.workdir, "go")
        p = subprocess.Popen([self.llmwrap, "--quiet", "--budget", "0.5", "--", "sh", "-c",
                              '"$0" "$1" && while [ ! -e "$2" ]; do sleep 0.01; done',
                              PYTHON, chat, go],
                             env=self.env(), stdout=subprocess.DEVNULL)
        self.addCleanup(p.kill)
        wait_for(lambda: self.budgets() == {"each": [3], "run:3": []}, what="run 3 listed")
        open(go, "w").close()
        self.assertEqual(p.wait(RUN_TIMEOUT), 0)
        self.assertEqual(self.budgets(), {"each": []})


class TestSummary(WrapCase):
    # Prices for made-up models, so the expected cost comes from this file.
    config_extra = """
[price.lw-test-model]
input = 1.5
output = 2.25
"""

    def test_json_summary_is_exact(self):
        out = os.path.join(self.workdir, "summary.json")
        chat = os.path.join(self.workdir, "chat.py")
        p = self.wrap("--json-summary", out, "--tag", "team=core", "sh", "-c",
                      f'{PYTHON} "$0" lw-test-model && {PYTHON} "$0" lw-test-model && '
                      f'{PYTHON} "$0" lw-unpriced-model', chat)
        self.assertRan(p)
        usages = [json.loads(l)["usage"] for l in p.stdout.decode().splitlines()]
        with open(out) as f:
            s = json.load(f)
        self.assertEqual(s["exit_status"], 0)
        self.assertEqual(s["requests"], 3)
        priced = [u for u in usages[:2]]
        pusd = sum(u["prompt_tokens"] * 1_500_000 + u["completion_tokens"] * 2_250_000
                   for u in priced)
        expected = "%d.%012d" % divmod(pusd, 10**12)
        with open(out) as f:
            raw = f.read()
        self.assertIn('"cost_usd": %s,' % expected.rstrip("0").rstrip("."), raw)
        models = {m["model"]: m for m in s["models"]}
        m = models["lw-test-model"]
        self.assertEqual(m["provider"], "openai")
        self.assertEqual(m["requests"], 2)
        self.assertEqual(m["input_tokens"], sum(u["prompt_tokens"] for u in priced))
        self.assertEqual(m["output_tokens"], sum(u["completion_tokens"] for u in priced))
        self.assertEqual(m["unpriced"], 0)
        self.assertEqual(models["lw-unpriced-model"]["unpriced"], 1)
        self.assertTrue(any("lw-unpriced-model" in w for w in s["warnings"]), s["warnings"])
        # The stderr summary says the same.
        self.assertIn(b"3 requests, $%s + 1 unpriced" % expected.rstrip("0").rstrip(".").encode(),
                      p.stderr)

    def test_json_summary_is_written_through_its_name(self):
        # The file is written through the name it is given, not replaced by
        # a renamed new file: that put a regular file in place of a symlink
        # or a FIFO (the text never reached the caller) and, run as root,
        # replaced /dev/stdout itself.
        real = os.path.join(self.workdir, "real.json")
        link = os.path.join(self.workdir, "link.json")
        with open(real, "w") as f:
            f.write("x" * 4096)
        os.symlink(real, link)
        self.assertRan(self.wrap("-q", "--json-summary", link, "true"))
        self.assertTrue(os.path.islink(link))
        with open(real) as f:
            self.assertEqual(json.load(f)["exit_status"], 0)

        # A FIFO, its reader already there (opened without waiting).
        fifo = os.path.join(self.workdir, "summary.fifo")
        os.mkfifo(fifo)
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, rfd)
        self.assertRan(self.wrap("-q", "--json-summary", fifo, "true"))
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        self.assertEqual(json.loads(os.read(rfd, 65536))["exit_status"], 0)

        # A link to stdout (as /dev/stdout is): a pipe gets the text, a
        # regular file gets it after the program's output.
        out = os.path.join(self.workdir, "out")
        os.symlink("/proc/self/fd/1", out)
        p = self.wrap("-q", "--json-summary", out, "echo", "hello")
        self.assertRan(p)
        first, rest = p.stdout.split(b"\n", 1)
        self.assertEqual(first, b"hello")
        self.assertEqual(json.loads(rest)["exit_status"], 0)
        stdout_file = os.path.join(self.workdir, "stdout.txt")
        with open(stdout_file, "w") as f:
            p = subprocess.run([self.llmwrap, "-q", "--json-summary", out, "echo", "hello"],
                               env=self.env(), stdout=f, stderr=subprocess.PIPE,
                               timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(stdout_file, "rb") as f:
            first, rest = f.read().split(b"\n", 1)
        self.assertEqual(first, b"hello")
        self.assertEqual(json.loads(rest)["exit_status"], 0)

    def test_request_without_a_model_is_named(self):
        # A model listing (or a file upload) has no model: the summary names
        # it as llmctl usage does, not as an empty word.
        p = self.wrap(PYTHON, "-c",
                      "import http.client\n"
                      "c = http.client.HTTPSConnection('api.openai.com', timeout=30)\n"
                      "c.request('GET', '/v1/models', headers={'authorization': 'Bearer k'})\n"
                      "c.getresponse().read()\n")
        self.assertRan(p)
        self.assertIn(b"llmwrap:   openai (no model): 1 request,", p.stderr)

    def test_secrets_on_the_command_line_stay_off_disk(self):
        # The run's argv goes to the ledger and to the step summary: a key
        # in it (curl -H 'Authorization: Bearer ...', --api-key ...) must
        # not.
        key, other = "sk-live-TOPSECRET1234567", "hunter2-secret-value"
        step = os.path.join(self.workdir, "step-summary.md")
        env = self.env(GITHUB_STEP_SUMMARY=step)
        p = self.wrap("-q", "sh", "-c", "exit 0", "curl", "-H", "Authorization: Bearer " + key,
                      "--api-key", other, "https://api.openai.com/v1/models", env=env)
        self.assertRan(p)
        with open(step) as f:
            summary = f.read()
        self.assertIn("-H Authorization: Bearer [redacted] --api-key [redacted]`", summary)
        db = sqlite3.connect(f"file:{os.path.join(self.home, 'ledger.db')}?mode=ro", uri=True)
        self.addCleanup(db.close)
        (argv,), = db.execute("SELECT argv FROM runs").fetchall()
        self.assertEqual(json.loads(argv)[4:8], ["-H", "Authorization: Bearer [redacted]",
                                                 "--api-key", "[redacted]"])
        # Nowhere in the state directory (ledger, its WAL, spool, logs).
        lwtest.stop_daemon(self.home)
        for root, _, files in os.walk(self.home):
            for name in files:
                path = os.path.join(root, name)
                if not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                self.assertNotIn(key.encode(), data, path)
                self.assertNotIn(other.encode(), data, path)

    def test_a_command_line_of_megabytes_runs_and_is_recorded_cut(self):
        # xargs and generated file lists make command lines of megabytes;
        # one longer than an IPC frame (1 MiB) could not open its run, and
        # llmwrap refused to run the program at all (exit 125).
        args = [str(i) + "x" * 49999 for i in range(30)]
        p = self.wrap("-q", "sh", "-c", 'echo "$#"', "sh", *args)
        self.assertRan(p)
        self.assertEqual(p.stdout, b"30\n")
        db = sqlite3.connect(f"file:{os.path.join(self.home, 'ledger.db')}?mode=ro", uri=True)
        self.addCleanup(db.close)
        (argv,), = db.execute("SELECT argv FROM runs").fetchall()
        argv = json.loads(argv)
        self.assertEqual(argv[:4], ["sh", "-c", 'echo "$#"', "sh"])
        self.assertEqual(argv[4], args[0])
        self.assertTrue(args[1].startswith(argv[5]))
        self.assertRegex(argv[-1], r"^\[\d+ more bytes not recorded\]$")
        self.assertLessEqual(sum(len(a.encode()) + 1 for a in argv[:-1]), 64 * 1024)

    def test_quiet_prints_no_summary(self):
        p = self.wrap("--quiet", "true")
        self.assertRan(p)
        self.assertEqual(p.stderr, b"")
        p = self.wrap("true")
        self.assertIn(b"no LLM requests", p.stderr)


class TestOptions(WrapCase):

    def test_usage_errors(self):
        cases = [
            ["--bogus", "true"],
            [],
            ["--tag", "novalue", "true"],
            ["--tag", "=x", "true"],
            ["--tag", "k=v", "--tag", "k=w", "true"],
            ["--tag", "bad key=v", "true"],
            ["--budget", "1.0000000000001", "true"],
            ["--budget", "-1", "true"],
            ["--budget", "abc", "true"],
            ["--json-summary"],
            ["--doctor"],
        ]
        for argv in cases:
            with self.subTest(argv=argv):
                p = self.wrap(*argv)
                self.assertRan(p, 2)
                self.assertTrue(p.stderr.startswith(b"llmwrap: "), p.stderr)

    def test_malformed_shim_knobs_are_usage_errors(self):
        # The knobs a user may set reach every process of the run: one the
        # shim cannot read would have made it inert, provider traffic
        # unmetered even under --budget. llmwrap refuses to start instead.
        marker = os.path.join(self.workdir, "ran")
        for var, value in (("LLMWRAP_TLS_HOOK", "true"), ("LLMWRAP_TLS_HOOK", "off"),
                           ("LLMWRAP_PROPAGATE", "yes"), ("LLMWRAP_TEST_REAL_ADDR", "x")):
            with self.subTest(var=var, value=value):
                p = self.wrap("--budget", "0.01", "--", "touch", marker,
                              env=self.env(**{var: value}))
                self.assertRan(p, 2)
                self.assertIn(("llmwrap: %s=%s: expected" % (var, value)).encode(), p.stderr)
                self.assertFalse(os.path.exists(marker))
        self.assertEqual(collector_processes(self.home), [])
        # Valid values (and an empty one: the default) run as before.
        for value in ("0", "1", ""):
            with self.subTest(value=value):
                p = self.wrap("-q", "sh", "-c", 'echo "$LLMWRAP_TLS_HOOK"',
                              env=self.env(LLMWRAP_TLS_HOOK=value))
                self.assertRan(p)
                self.assertEqual(p.stdout.decode(), value + "\n")

    def test_options_end_at_the_first_non_option(self):
        p = self.wrap("-q", "sh", "-c", 'echo "$@"', "x", "--tag", "--bogus")
        self.assertRan(p)
        self.assertEqual(p.stdout, b"--tag --bogus\n")
        p = self.wrap("-q", "--", "sh", "-c", "echo ok")
        self.assertEqual(p.stdout, b"ok\n")

    def test_version_and_help(self):
        p = self.wrap("--version")
        self.assertRan(p)
        self.assertTrue(p.stdout.startswith(b"llmwrap "))
        p = self.wrap("--help")
        self.assertRan(p)
        self.assertIn(b"--doctor", p.stdout)


class TestDoctor(WrapCase):

    def doctor(self, cmd, env=None):
        return self.wrap("--doctor", cmd, env=env)

    def test_curl_python_node_are_intercepted_and_trusted(self):
        for cmd in ("curl", PYTHON, "node"):
            if shutil.which(cmd) is None:
                continue
            with self.subTest(cmd=cmd):
                p = self.doctor(cmd)
                self.assertRan(p, 0)
                self.assertIn(b"will be intercepted and trusted", p.stdout.splitlines()[0])
        self.assertIn(b"NODE_EXTRA_CA_CERTS", self.doctor("node").stdout)
        self.assertIn(b"SSL_CERT_FILE", self.doctor(PYTHON).stdout)
        self.assertIn(b"CURL_CA_BUNDLE", self.doctor("curl").stdout)

    def _static_binary(self):
        src = self.script("static.c", "int main(void) { return 0; }\n")
        exe = os.path.join(self.workdir, "static-prog")
        r = subprocess.run(["gcc", "-static", "-o", exe, src], capture_output=True)
        if r.returncode != 0:
            self.skipTest("gcc -static failed: " + r.stderr.decode(errors="replace"))
        return exe

    def test_static_binary_is_not_intercepted_and_warned_about(self):
        exe = self._static_binary()
        p = self.doctor(exe)
        self.assertRan(p, 1)
        self.assertIn(b"will NOT be intercepted", p.stdout)
        self.assertIn(b"statically linked", p.stdout)
        # Running it warns at start and in the summary, and still runs it.
        p = self.wrap(exe)
        self.assertRan(p, 0)
        # Once before the program runs, once again in the exit summary.
        self.assertEqual(p.stderr.count(b"warning: " + exe.encode() + b": statically linked"), 2,
                         p.stderr)

    def test_go_binary_is_not_intercepted(self):
        # A Go build-ID note is what identifies Go programs (no Go toolchain
        # is needed to make one).
        src = self.script("go.c", r"""
struct note { unsigned namesz, descsz, type; char name[4]; char desc[8]; };
__attribute__((section(".note.go.buildid"), used, aligned(4)))
static const struct note go_note = {3, 8, 4, "Go", "abcdefgh"};
int main(void) { return 0; }
""")
        exe = os.path.join(self.workdir, "go-prog")
        subprocess.run(["gcc", "-o", exe, src], check=True, capture_output=True)
        p = self.doctor(exe)
        self.assertRan(p, 1)
        self.assertIn(b"a Go program", p.stdout)

    def test_setuid_binary_is_not_intercepted(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a setuid copy owned by another user")
        exe = os.path.join(self.workdir, "suid-true")
        shutil.copy("/bin/true", exe)
        os.chown(exe, 65534, 65534)
        os.chmod(exe, 0o4755)
        p = self.doctor(exe)
        self.assertRan(p, 1)
        self.assertIn(b"secure-execution mode", p.stdout)

    def test_script_interpreters_are_followed(self):
        script = self.script("tool", "#!/usr/bin/env python3\nprint(1)\n")
        os.chmod(script, 0o755)
        env = self.env(PATH="/usr/bin:/bin")
        p = self.doctor(script, env=env)
        self.assertRan(p, 0)
        self.assertIn(b"a script run by /usr/bin/python3", p.stdout)
        self.assertIn(b"(Python)", p.stdout)

    def test_not_found_and_usage(self):
        p = self.doctor("no-such-command-lw")
        self.assertRan(p, 1)
        self.assertIn(b"not found", p.stdout)
        self.assertRan(self.wrap("--doctor", "a", "b"), 2)

    def test_double_dash_before_the_command(self):
        # "llmwrap --doctor -- CMD" is "llmwrap --doctor CMD", as for a run.
        plain = self.doctor(PYTHON)
        p = self.wrap("--doctor", "--", PYTHON)
        self.assertRan(p, plain.returncode)
        self.assertEqual(p.stdout, plain.stdout)
        for argv in (["--doctor", "--"], ["--doctor", "--", "a", "b"]):
            with self.subTest(argv=argv):
                p = self.wrap(*argv)
                self.assertRan(p, 2)
                self.assertTrue(p.stderr.startswith(b"llmwrap: --doctor"), p.stderr)


if __name__ == "__main__":
    unittest.main()
