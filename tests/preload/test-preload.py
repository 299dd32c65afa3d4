#!/usr/bin/python3
"""The preload shim inside real programs.

Runs tests/preload/preload-probe (and python3, curl, env) with
libllmwrap-preload.so preloaded, with listeners standing in for the collector
on the synthetic addresses, and checks what the programs observed. Traffic
stays on loopback: 127.0.0.1 and the synthetic 127.241.0.i addresses.

Usage: test-preload.py [unittest arguments, e.g. TestConnect]
Environment: LW_TEST_SHIM (the .so), LW_TEST_PROBE (preload-probe),
LW_TEST_ASAN_RUNTIME (libasan to preload first in sanitizer builds), LW_TEST_NM.
"""
import base64
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

SHIM = os.path.realpath(os.environ["LW_TEST_SHIM"])
PROBE = os.path.realpath(os.environ["LW_TEST_PROBE"])
EARLY = os.path.realpath(os.environ["LW_TEST_EARLY"])
TLS_MULTI = os.path.realpath(os.environ["LW_TEST_TLS_MULTI"])
FAKE_SSL_USER = os.path.realpath(os.environ["LW_TEST_FAKE_SSL_USER"])
ASAN_RUNTIME = os.environ.get("LW_TEST_ASAN_RUNTIME", "")
NM = os.environ.get("LW_TEST_NM") or shutil.which("nm")
PYTHON = "/usr/bin/python3"
TIMEOUT = 30  # seconds, for every child process
WAIT = 10  # seconds, for every socket wait

NET = 241
HOSTS = [
    "api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com", "api.x.ai",
    "openrouter.ai", "api.deepseek.com", "api.groq.com", "api.mistral.ai", "api.together.xyz",
    "api.fireworks.ai", "api.perplexity.ai",
]


def synth(slot):
    return "127.%d.0.%d" % (NET, slot)


def parse(out):
    """key=value lines -> dict (a repeated key keeps every value, in order)."""
    d = {}
    for line in out.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            d.setdefault(k, []).append(v)
    return {k: v[0] if len(v) == 1 else v for k, v in d.items()}


def listener(addr, port=0, backlog=128):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(backlog)
    s.settimeout(WAIT)
    return s


def free_port(addr):
    """A port nothing listens on at addr right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ShimCase(unittest.TestCase):
    """Sets up a stand-in collector on 127.241.0.1:PORT (and slot 2)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lw-preload-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.collector = listener(synth(1))
        self.addCleanup(self.collector.close)
        self.port = self.collector.getsockname()[1]
        try:
            self.collector2 = listener(synth(2), self.port)
            self.addCleanup(self.collector2.close)
        except OSError:
            self.collector2 = None

    def env(self, **extra):
        preload = SHIM if not ASAN_RUNTIME else ASAN_RUNTIME + ":" + SHIM
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LD_PRELOAD": preload,
            "LLMWRAP_PRELOAD": SHIM,
            "LLMWRAP_HOSTS": ",".join(HOSTS),
            "LLMWRAP_NET": str(NET),
            "LLMWRAP_PORT": str(self.port),
            "LLMWRAP_RUN_ID": "424242424242",
        }
        if ASAN_RUNTIME:
            env["ASAN_OPTIONS"] = "detect_leaks=0:verify_asan_link_order=0"
            env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def run_prog(self, argv, env, check=True):
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        if check and p.returncode != 0:
            self.fail("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                      % (argv, p.returncode, p.stdout, p.stderr))
        return p

    def probe(self, *args, env=None, check=True):
        p = self.run_prog([PROBE] + list(args), env if env is not None else self.env(), check)
        return parse(p.stdout), p

    def accept_line(self, lsock=None):
        """Accepts one connection; returns (local addr, peer addr, first line)."""
        lsock = lsock or self.collector
        conn, peer = lsock.accept()
        with conn:
            conn.settimeout(WAIT)
            local = conn.getsockname()
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
        return local, peer, data.decode(errors="replace").strip()

    def assert_nothing_pending(self, lsock):
        lsock.setblocking(False)
        try:
            with self.assertRaises(BlockingIOError):
                lsock.accept()
        finally:
            lsock.settimeout(WAIT)


class TestResolve(ShimCase):
    def test_resolution_family(self):
        r, _ = self.probe("resolve")
        a1 = synth(1)
        # AF_UNSPEC: IPv4 first, then the v4-mapped IPv6 form
        self.assertEqual(r["gai_unspec"],
                         "0;inet/%s/8443/stream,inet6/::ffff:%s/8443/stream" % (a1, a1))
        self.assertEqual(r["gai_inet"], "0;inet/%s/8443/stream" % a1)
        self.assertEqual(r["gai_inet6"], "0;inet6/::ffff:%s/8443/stream" % a1)
        self.assertEqual(r["gai_inet6_v4mapped"], "0;inet6/::ffff:%s/8443/stream" % a1)
        self.assertEqual(r["gai_inet6_all"], "0;inet6/::ffff:%s/8443/stream" % a1)
        # NULL hints: AF_UNSPEC, every socket type, for each family
        self.assertEqual(r["gai_null_hints"],
                         "0;inet/{0}/0/stream,inet/{0}/0/dgram,inet/{0}/0/raw,"
                         "inet6/::ffff:{0}/0/stream,inet6/::ffff:{0}/0/dgram,inet6/::ffff:{0}/0/raw"
                         .format(a1))
        self.assertEqual(r["gai_canon"],
                         "0;inet/%s/443/stream,inet6/::ffff:%s/443/stream;canon=api.openai.com"
                         % (a1, a1))
        self.assertEqual(r["gai_addrconfig"],
                         "0;inet/%s/443/stream,inet6/::ffff:%s/443/stream" % (a1, a1))
        self.assertEqual(r["gai_numerichost"], "EAI_NONAME")
        self.assertEqual(r["gai_numericserv_bad"], "EAI_NONAME")
        self.assertEqual(r["gai_dgram"], "0;inet/%s/443/dgram" % a1)
        self.assertEqual(r["gai_last"], "0;inet/%s/1/dgram" % synth(11))
        self.assertEqual(r["gai_literal"], "0;inet/127.0.0.1/80/dgram")

        self.assertEqual(r["ghbn"], "api.anthropic.com;inet;4;%s;aliases=0" % synth(2))
        self.assertEqual(r["ghbn2_inet"], "api.openai.com;inet;4;%s;aliases=0" % a1)
        self.assertEqual(r["ghbn2_inet6"], "api.openai.com;inet6;16;::ffff:%s;aliases=0" % a1)
        self.assertEqual(r["ghbn_r_rc"], "0;herr=0")
        self.assertEqual(r["ghbn_r"], "api.x.ai;inet;4;%s;aliases=0" % synth(4))
        self.assertEqual(r["ghbn2_r_rc"], "0;herr=0")
        self.assertEqual(r["ghbn2_r"], "api.x.ai;inet6;16;::ffff:%s;aliases=0" % synth(4))
        self.assertEqual(r["ghbn_r_small"], "ERANGE;errno=ERANGE;herr=-1;result=NULL")

        self.assertEqual(r["gni"], "0;api.anthropic.com;443")
        self.assertEqual(r["gni_namereqd"], "0;api.anthropic.com")
        self.assertEqual(r["gni_numeric"], "0;%s;443" % synth(2))
        self.assertEqual(r["gni_small"], "EAI_OVERFLOW")
        self.assertEqual(r["gni_v6"], "0;api.anthropic.com;8443")
        self.assertEqual(r["ghba"], "api.anthropic.com;inet;4;%s;aliases=0" % synth(2))
        self.assertEqual(r["ghba_v6"], "api.anthropic.com;inet6;16;::ffff:%s;aliases=0" % synth(2))
        self.assertEqual(r["ghba_r_rc"], "0")
        self.assertEqual(r["ghba_r"], "api.anthropic.com;inet;4;%s;aliases=0" % synth(2))

    def test_threads(self):
        r, _ = self.probe("threads", *HOSTS[:8])
        for i in range(8):
            self.assertEqual(r["thread_%d" % i], synth(i + 1))
        self.assertEqual(r["mismatches"], "0")

    def test_other_net(self):
        r, _ = self.probe("resolve", env=self.env(LLMWRAP_NET="7"))
        self.assertEqual(r["gai_inet"], "0;inet/127.7.0.1/8443/stream")

    def test_python_resolves(self):
        code = ("import socket; print(socket.getaddrinfo('api.openai.com', 443, "
                "type=socket.SOCK_STREAM)[0][4][0]); print(socket.gethostbyname('api.groq.com'))")
        p = self.run_prog([PYTHON, "-c", code], self.env())
        self.assertEqual(p.stdout.split(), [synth(1), synth(7)])


IPV6_ONLY_CLIENT = """
import socket, sys
# What curl -6 does: ask for any family, keep the IPv6 answers.
addrs = [a for a in socket.getaddrinfo("api.openai.com", 443, type=socket.SOCK_STREAM)
         if a[0] == socket.AF_INET6]
print("addrs=" + ",".join(a[4][0] for a in addrs))
with socket.socket(socket.AF_INET6) as s:
    s.settimeout(10)
    s.connect(addrs[0][4])
    print("peer=%s:%d" % s.getpeername()[:2])
    s.sendall(b"ipv6-only\\n")
"""


class TestConnect(ShimCase):
    def check_redirected(self, r, family="inet"):
        if r["errno"] != "EINPROGRESS":
            self.assertEqual(r["connect_rc"], "0")
        peer = ("::ffff:" if family == "inet6" else "") + "%s:%d" % (synth(1), self.port)
        self.assertEqual(r["peer"], peer)
        local, peer_addr, line = self.accept_line()
        self.assertEqual(local, (synth(1), self.port))
        self.assertEqual(str(peer_addr[1]), r["local"].rsplit(":", 1)[1])
        self.assertEqual(line, "probe %s" % r["pid"])

    def test_blocking_name(self):
        r, _ = self.probe("connect", "api.openai.com", "443", "send")
        self.assertEqual(r["target"], "%s:443" % synth(1))
        self.assertEqual(r["errno"], "kept")
        self.check_redirected(r)

    def test_blocking_numeric(self):
        r, _ = self.probe("connect", synth(1), "443", "send")
        self.check_redirected(r)

    def test_slot_2(self):
        if self.collector2 is None:
            self.skipTest("could not bind %s:%d" % (synth(2), self.port))
        r, _ = self.probe("connect", "api.anthropic.com", "443", "send")
        self.assertEqual(r["peer"], "%s:%d" % (synth(2), self.port))
        local, _, _ = self.accept_line(self.collector2)
        self.assertEqual(local, (synth(2), self.port))

    def test_dual_stack_v4_mapped(self):
        r, _ = self.probe("connect", "api.openai.com", "443", "v6", "send")
        self.assertEqual(r["target"], "::ffff:%s:443" % synth(1))
        self.check_redirected(r, "inet6")

    def test_ipv6_only_client(self):
        """A client that resolves AF_UNSPEC and keeps only IPv6 addresses
        finds the v4-mapped one and reaches the collector with it."""
        p = self.run_prog([PYTHON, "-c", IPV6_ONLY_CLIENT], self.env())
        r = parse(p.stdout)
        self.assertEqual(r["addrs"], "::ffff:%s" % synth(1))
        self.assertEqual(r["peer"], "::ffff:%s:%d" % (synth(1), self.port))
        local, _, line = self.accept_line()
        self.assertEqual(local, (synth(1), self.port))
        self.assertEqual(line, "ipv6-only")

    def test_curl_ipv6_only(self):
        if not shutil.which("curl"):
            self.skipTest("curl not found")
        if ASAN_RUNTIME:
            self.skipTest("curl does not run with the sanitizer runtime preloaded")
        # curl -6 asks getaddrinfo for AF_UNSPEC and drops the IPv4 answers.
        curl = subprocess.Popen(["curl", "-6", "-sS", "--max-time", "10", "--noproxy", "*",
                                 "http://api.openai.com/"], env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(curl.kill)
        try:
            local, _, line = self.accept_line()
        finally:
            _, err = curl.communicate(timeout=TIMEOUT)
        self.assertEqual(local, (synth(1), self.port), err)
        self.assertEqual(line.splitlines()[0], "GET / HTTP/1.1")
        self.assertEqual(curl.returncode, 52, err)  # CURLE_GOT_NOTHING: we answered nothing

    def test_nonblocking_epoll(self):
        r, _ = self.probe("connect", "api.openai.com", "443", "nonblock", "send")
        self.assertIn(r["errno"], ("EINPROGRESS", "kept"))
        if r["errno"] == "EINPROGRESS":
            self.assertEqual(r["epoll"], "1;events=out")
            self.assertEqual(r["so_error"], "0")
        self.assertEqual(r["nonblock_kept"], "1")
        self.check_redirected(r)

    def test_non_provider_untouched(self):
        plain = listener("127.0.0.1")
        self.addCleanup(plain.close)
        port = plain.getsockname()[1]
        r, _ = self.probe("connect", "127.0.0.1", str(port), "send")
        self.assertEqual(r["peer"], "127.0.0.1:%d" % port)
        local, _, _ = self.accept_line(plain)
        self.assertEqual(local, ("127.0.0.1", port))
        self.assert_nothing_pending(self.collector)

    def test_beyond_table_untouched(self):
        # 127.241.0.12 is past the 11 hosts: its port must stay as given.
        beyond = listener(synth(12))
        self.addCleanup(beyond.close)
        port = beyond.getsockname()[1]
        r, _ = self.probe("connect", synth(12), str(port), "send")
        self.assertEqual(r["peer"], "%s:%d" % (synth(12), port))
        self.accept_line(beyond)
        zero = free_port(synth(0))
        r, _ = self.probe("connect", synth(0), str(zero))
        self.assertEqual(r["errno"], "ECONNREFUSED")
        self.assert_nothing_pending(self.collector)

    def test_udp_untouched(self):
        r, _ = self.probe("connect", synth(1), "443", "udp")
        self.assertEqual(r["connect_rc"], "0")
        self.assertEqual(r["peer"], "%s:443" % synth(1))

    def test_fork_child_redirected(self):
        r, _ = self.probe("fork-connect", "api.openai.com", "443")
        self.assertEqual(r["child_status"], "0")
        self.assertEqual(r["peer"], "%s:%d" % (synth(1), self.port))
        local, _, line = self.accept_line()
        self.assertEqual(local, (synth(1), self.port))
        self.assertEqual(line, "probe %s" % r["child_pid"])

    def test_before_constructor(self):
        # A library constructor runs before the shim's: its calls reach libc
        # unchanged (raw syscall, lazy lookup); later calls are redirected.
        closed = free_port(synth(1))
        p = self.run_prog([EARLY], self.env(LW_EARLY_PORT=str(closed)))
        r = parse(p.stdout)
        self.assertEqual(r["early_ran"], "1")
        self.assertEqual(r["early_gai"], "0")
        self.assertEqual(r["early_connect"], "ECONNREFUSED")
        self.assertEqual(r["late_connect"], "0")
        local, _, _ = self.accept_line()
        self.assertEqual(local, (synth(1), self.port))

    def fastopen(self, *extra):
        r, p = self.probe("fastopen", "api.openai.com", "443", *extra)
        if r["errno"] in ("EOPNOTSUPP", "Operation not supported"):
            self.skipTest("the kernel refuses TCP Fast Open on loopback (%s)" % r["errno"])
        self.assertEqual(r["errno"], "0", p.stderr)
        self.assertEqual(r["peer"], "%s:%d" % (synth(1), self.port))
        local, _, line = self.accept_line()
        self.assertEqual(local, (synth(1), self.port))
        self.assertEqual(line, "tfo-hello")

    def test_fastopen_sendto(self):
        self.fastopen()

    def test_fastopen_sendmsg(self):
        self.fastopen("sendmsg")


def decode_attribution(data):
    """lw.Attribution wire format -> dict, independent of the shim's encoder."""
    fields = {}
    i = 0

    def varint():
        nonlocal i
        v = shift = 0
        while True:
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    names = {1: "version", 2: "run_id", 3: "pid", 4: "ppid", 5: "exe", 6: "local_port",
             7: "local_addr", 8: "remote_addr", 9: "remote_port"}
    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            fields[names[field]] = varint()
        elif wire == 2:
            n = varint()
            value = data[i:i + n]
            if field in (7, 8):  # addresses: 4 or 16 bytes, as text
                family = socket.AF_INET if n == 4 else socket.AF_INET6
                fields[names[field]] = socket.inet_ntop(family, value)
            else:
                fields[names[field]] = value.decode()
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return fields


class TestAttribution(ShimCase):
    def setUp(self):
        super().setUp()
        self.sock_path = os.path.join(self.tmp, "attrib.sock")
        self.listening = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(self.listening.close)
        self.listening.bind(self.sock_path)
        self.listening.listen(64)
        self.listening.settimeout(WAIT)

    def message(self):
        """The next attribution message (one per connection)."""
        conn, _ = self.listening.accept()
        with conn:
            conn.settimeout(WAIT)
            return conn.recv(4096)

    def assert_names_connection(self, a, r):
        """The message names both ends of the probe's connection."""
        self.assertEqual("%s:%d" % (a["local_addr"], a["local_port"]), r["local"])
        self.assertEqual("%s:%d" % (a["remote_addr"], a["remote_port"]), r["peer"])

    def test_datagram(self):
        env = self.env(LLMWRAP_ATTRIB_SOCK=self.sock_path)
        r, _ = self.probe("connect", "api.openai.com", "443", "send", env=env)
        self.accept_line()
        a = decode_attribution(self.message())
        self.assertEqual(a["version"], 2)
        self.assertEqual(a["run_id"], 424242424242)
        self.assertEqual(a["pid"], int(r["pid"]))
        self.assertEqual(a["ppid"], int(r["ppid"]))
        self.assertEqual(a["exe"], PROBE)
        self.assert_names_connection(a, r)
        self.assertEqual(r["peer"], "%s:%d" % (synth(1), self.port))

    def test_nonblocking_datagram(self):
        env = self.env(LLMWRAP_ATTRIB_SOCK=self.sock_path)
        r, _ = self.probe("connect", "api.openai.com", "443", "nonblock", env=env)
        self.assert_names_connection(decode_attribution(self.message()), r)

    def test_v6_socket_names_its_v4_mapped_ends(self):
        env = self.env(LLMWRAP_ATTRIB_SOCK=self.sock_path)
        r, _ = self.probe("connect", "api.anthropic.com", "443", "v6", env=env)
        a = decode_attribution(self.message())
        self.assertEqual(a["remote_addr"], "::ffff:" + synth(2))
        self.assert_names_connection(a, r)

    def test_connect_again_sends_one_message(self):
        """A connect() that only reports on a connection already made
        (0 once a non-blocking connect completed, then EISCONN) sends no
        second message, which the collector could give a later
        connection."""
        env = self.env(LLMWRAP_ATTRIB_SOCK=self.sock_path, LLMWRAP_ATTRIB_REQUIRED="1")
        r, p = self.probe("connect", "api.openai.com", "443", "nonblock", "again", "send",
                          env=env)
        self.assertEqual(r["again_rc"], ["0", "-1"], p.stdout)
        self.assertEqual(r["again_errno"], ["0", "EISCONN"])
        self.assertEqual(r["sent"], str(len("probe %s\n" % r["pid"])))
        self.accept_line()
        self.assert_names_connection(decode_attribution(self.message()), r)
        # The probe has exited: a second message would already be queued.
        self.assert_nothing_pending(self.listening)

    def test_connect_interrupted_by_a_signal_sends_its_message(self):
        """A blocking connect() a signal interrupts (EINTR) goes on in the
        background; the program's retry finds the socket connecting and
        waits for it, so the message must go with the interrupted call."""
        # A stand-in collector whose accept queue is full: the probe's SYN
        # is dropped, and its connect() waits for a retransmit, which the
        # probe's alarm interrupts first.
        self.collector.close()
        full = listener(synth(1), self.port, backlog=0)
        self.addCleanup(full.close)
        filler = socket.create_connection((synth(1), self.port), timeout=WAIT)
        self.addCleanup(filler.close)
        env = self.env(LLMWRAP_ATTRIB_SOCK=self.sock_path, LLMWRAP_ATTRIB_REQUIRED="1")
        p = subprocess.Popen([PROBE, "connect", "api.openai.com", "443", "eintr", "send"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        # The message comes while the connection still waits in SYN_SENT.
        a = decode_attribution(self.message())
        # Room in the queue: the probe's next SYN gets in.
        full.accept()[0].close()
        conn, _ = full.accept()
        self.addCleanup(conn.close)
        out, err = p.communicate(timeout=TIMEOUT)
        r = parse(out)
        self.assertEqual(r["connect_rc"], "0", out + err)
        self.assertGreaterEqual(int(r["interrupted"]), 1)
        self.assert_names_connection(a, r)
        # One message for the connection, not one per call.
        self.assert_nothing_pending(self.listening)

    def test_none_for_other_traffic(self):
        plain = listener("127.0.0.1")
        self.addCleanup(plain.close)
        env = self.env(LLMWRAP_ATTRIB_SOCK=self.sock_path)
        self.probe("connect", "127.0.0.1", str(plain.getsockname()[1]), env=env)
        # The probe has exited: a connection it made would already be queued.
        self.listening.setblocking(False)
        with self.assertRaises(BlockingIOError):
            self.listening.accept()

    def test_missing_socket_is_harmless(self):
        env = self.env(LLMWRAP_ATTRIB_SOCK=os.path.join(self.tmp, "absent.sock"))
        r, p = self.probe("connect", "api.openai.com", "443", "send", env=env)
        self.assertEqual(r["errno"], "kept")
        self.assertEqual(p.stderr, "")
        self.accept_line()

    def test_required_attribution_fails_closed(self):
        """Under llmwrap a connection the collector cannot attribute is
        refused, so it cannot escape the run's budget."""
        env = self.env(LLMWRAP_ATTRIB_SOCK=os.path.join(self.tmp, "absent.sock"),
                       LLMWRAP_ATTRIB_REQUIRED="1")
        r, p = self.probe("connect", "api.openai.com", "443", "count=2", env=env)
        self.assertEqual(r["connect_rc"], ["-1"] * 2)
        self.assertEqual(r["errno"], ["ECONNREFUSED"] * 2)
        self.assertEqual(p.stderr.count("no request escapes the run's budget"), 1, p.stderr)

    def test_required_attribution_without_a_socket_fails_closed(self):
        """Attribution required, and no socket to deliver it to: nothing
        can name the connection's run, so it is refused like the rest."""
        env = self.env(LLMWRAP_ATTRIB_REQUIRED="1")
        env.pop("LLMWRAP_ATTRIB_SOCK", None)
        r, p = self.probe("connect", "api.openai.com", "443", env=env)
        self.assertEqual(r["connect_rc"], "-1")
        self.assertEqual(r["errno"], "ECONNREFUSED")
        self.assertIn("no request escapes the run's budget", p.stderr)

    def test_malformed_attribution_fails_closed(self):
        """A run id or socket path that does not parse: the connection
        cannot be attributed, so under LLMWRAP_ATTRIB_REQUIRED it is
        refused, rather than made by a shim gone inert, unmetered."""
        for var, value in (("LLMWRAP_ATTRIB_SOCK", "relative.sock"),
                           ("LLMWRAP_RUN_ID", "12a")):
            with self.subTest(var=var):
                env = self.env(**{"LLMWRAP_ATTRIB_SOCK": self.sock_path, var: value,
                                  "LLMWRAP_ATTRIB_REQUIRED": "1"})
                r, p = self.probe("connect", "api.openai.com", "443", env=env)
                self.assertEqual(r["connect_rc"], "-1")
                self.assertEqual(r["errno"], "ECONNREFUSED")
                self.assertIn("%s is malformed" % var, p.stderr)
                self.assertIn("no request escapes the run's budget", p.stderr)

    def listen_env(self, listen, **extra):
        return self.env(**{"LLMWRAP_ATTRIB_SOCK": self.sock_path, "LLMWRAP_ATTRIB_REQUIRED": "1",
                           "LLMWRAP_LISTEN": listen, **extra})

    def test_listen_address_attributed(self):
        """A connection to one of the collector's listen addresses (a base
        URL pointed at it) keeps its destination and gets the message a
        provider connection gets, however the program connects."""
        plain = listener("127.0.0.1")
        self.addCleanup(plain.close)
        port = plain.getsockname()[1]
        exact = "127.0.0.1:%d" % port
        cases = (
            (exact, "127.0.0.1", ()),
            (exact, "127.0.0.1", ("nonblock", "again")),  # one message, not three
            (exact, "127.0.0.1", ("v6",)),  # ::ffff:127.0.0.1
            ("[::1]:%d,0.0.0.0:%d" % (port, port), "127.0.0.1", ()),  # the wildcard
            ("bad,%s" % exact, "0.0.0.0", ()),  # Linux connects it to 127.0.0.1
        )
        for listen, host, opts in cases:
            with self.subTest(listen=listen, host=host, opts=opts):
                r, p = self.probe("connect", host, str(port), *opts, "send",
                                  env=self.listen_env(listen))
                prefix = "::ffff:" if "v6" in opts else ""
                self.assertEqual(r["peer"], "%s127.0.0.1:%d" % (prefix, port), p.stderr)
                self.assertEqual(self.accept_line(plain)[2], "probe %s" % r["pid"])
                a = decode_attribution(self.message())
                self.assertEqual(a["run_id"], 424242424242)
                self.assertEqual(a["pid"], int(r["pid"]))
                self.assert_names_connection(a, r)
                self.assert_nothing_pending(self.listening)
                # A malformed entry is reported; the others still count.
                self.assertEqual(p.stderr.count("LLMWRAP_LISTEN is malformed"),
                                 1 if "bad" in listen else 0, p.stderr)
        self.assert_nothing_pending(self.collector)

    def test_no_message_for_other_ports_and_addresses(self):
        plain = listener("127.0.0.1")
        self.addCleanup(plain.close)
        port = plain.getsockname()[1]
        other = listener("127.0.0.2", port)
        self.addCleanup(other.close)
        for listen in ("127.0.0.1:%d" % (port % 65535 + 1), "[::1]:%d" % port,
                       "127.0.0.2:%d" % port):
            with self.subTest(listen=listen):
                r, p = self.probe("connect", "127.0.0.1", str(port), "send",
                                  env=self.listen_env(listen))
                self.assertEqual(r["peer"], "127.0.0.1:%d" % port, p.stderr)
                self.accept_line(plain)
                self.assert_nothing_pending(self.listening)
        r, p = self.probe("connect", "127.0.0.2", str(port), "send",
                          env=self.listen_env("127.0.0.1:%d" % port))
        self.accept_line(other)
        self.assert_nothing_pending(self.listening)

    def test_listen_address_required_attribution_fails_closed(self):
        plain = listener("127.0.0.1")
        self.addCleanup(plain.close)
        port = str(plain.getsockname()[1])
        env = self.listen_env("127.0.0.1:" + port,
                              LLMWRAP_ATTRIB_SOCK=os.path.join(self.tmp, "absent.sock"))
        r, p = self.probe("connect", "127.0.0.1", port, env=env)
        self.assertEqual((r["connect_rc"], r["errno"]), ("-1", "ECONNREFUSED"))
        self.assertIn("a connection to its listen address belongs to", p.stderr)
        self.assertIn("no request escapes the run's budget", p.stderr)

    def test_fast_open_is_attributed_before_its_bytes(self):
        """A Fast Open send would carry the program's first bytes (a plain
        HTTP request to a listen address or a provider host) with the
        connect, ahead of the message: the collector booked the request
        with no run. The message goes first, then the bytes; and a
        connection the shim refuses as unattributable sends none."""
        plain = listener("127.0.0.1")
        self.addCleanup(plain.close)
        port = str(plain.getsockname()[1])
        for opts in ((), ("sendmsg",)):
            with self.subTest(opts=opts):
                r, p = self.probe("fastopen", "127.0.0.1", port, *opts,
                                  env=self.listen_env("127.0.0.1:" + port))
                self.assertEqual((r["fastopen_rc"], r["errno"]), ("10", "0"), p.stderr)
                self.assertEqual(self.accept_line(plain)[2], "tfo-hello")
                self.assertEqual(decode_attribution(self.message())["local_port"],
                                 int(r["local"].rsplit(":", 1)[1]))
                absent = self.listen_env("127.0.0.1:" + port,
                                         LLMWRAP_ATTRIB_SOCK=os.path.join(self.tmp, "absent.sock"))
                r, p = self.probe("fastopen", "127.0.0.1", port, *opts, env=absent)
                self.assertEqual((r["fastopen_rc"], r["errno"]), ("-1", "ECONNREFUSED"))
                self.assertIn("no request escapes the run's budget", p.stderr)
                self.assertEqual(self.accept_line(plain)[2], "")
        r, p = self.probe("fastopen", "api.openai.com", "443",
                          env=self.env(LLMWRAP_ATTRIB_SOCK=os.path.join(self.tmp, "absent.sock"),
                                       LLMWRAP_ATTRIB_REQUIRED="1"))
        self.assertEqual(r["errno"], "ECONNREFUSED")
        self.assertEqual(self.accept_line()[2], "")

    def test_listen_address_refused_is_not_failed_open(self):
        """Nothing on a listen address: the program's connect fails as it
        would without the shim; there is no provider to fail open to."""
        port = str(free_port("127.0.0.1"))
        for opts in ((), ("nonblock",)):
            with self.subTest(opts=opts):
                env = self.listen_env("127.0.0.1:" + port, LLMWRAP_FAIL_OPEN="1")
                r, p = self.probe("connect", "127.0.0.1", port, *opts, env=env)
                self.assertEqual(r["connect_rc"], "-1")
                if r["errno"] == "EINPROGRESS":
                    self.assertEqual(r["so_error"], "ECONNREFUSED")
                else:
                    self.assertEqual(r["errno"], "ECONNREFUSED")
                self.assertEqual(p.stderr, "")
                self.assert_nothing_pending(self.listening)

    def test_burst_of_connections_all_attributed(self):
        """Far more connections at once than a datagram queue holds (10):
        every one is attributed."""
        env = self.env(LLMWRAP_ATTRIB_SOCK=self.sock_path, LLMWRAP_ATTRIB_REQUIRED="1")
        r, p = self.probe("connect", "api.openai.com", "443", "count=40", env=env)
        self.assertEqual(r["connect_rc"], ["0"] * 40, p.stderr)
        ports = {decode_attribution(self.message())["local_port"] for _ in range(40)}
        self.assertEqual(len(ports), 40)


class TestRefused(ShimCase):
    MESSAGE = "the llmwrap collector is unreachable"

    def setUp(self):
        super().setUp()
        # The collector's port, with nothing listening on it.
        self.collector.close()
        if self.collector2 is not None:
            self.collector2.close()
        self.port = free_port(synth(1))

    def test_fail_closed_blocking(self):
        r, p = self.probe("connect", "api.openai.com", "443", "count=3")
        self.assertEqual(r["connect_rc"], ["-1"] * 3)
        self.assertEqual(r["errno"], ["ECONNREFUSED"] * 3)
        self.assertEqual(p.stderr.count(self.MESSAGE), 1, p.stderr)
        self.assertIn("api.openai.com", p.stderr)

    def test_fail_closed_nonblocking(self):
        r, p = self.probe("connect", "api.openai.com", "443", "nonblock", "count=2")
        # Loopback refusals are known before connect() returns; the shim
        # reports them synchronously, like a blocking socket.
        self.assertEqual(r["errno"], ["ECONNREFUSED"] * 2)
        self.assertEqual(r["nonblock_kept"], ["1"] * 2)
        self.assertEqual(p.stderr.count(self.MESSAGE), 1, p.stderr)

    def test_fail_open(self):
        real = listener("127.0.0.1")
        self.addCleanup(real.close)
        real_port = real.getsockname()[1]
        env = self.env(LLMWRAP_FAIL_OPEN="1", LLMWRAP_TEST_REAL_ADDR="127.0.0.1:%d" % real_port)
        r, p = self.probe("connect", "api.openai.com", "443", "count=2", "send", env=env)
        self.assertEqual(r["connect_rc"], ["0", "0"])
        self.assertEqual(r["peer"], ["127.0.0.1:%d" % real_port] * 2)
        for _ in range(2):
            local, _, line = self.accept_line(real)
            self.assertEqual(local, ("127.0.0.1", real_port))
        self.assertEqual(p.stderr.count("unmetered"), 1, p.stderr)
        self.assertEqual(p.stderr.count(self.MESSAGE), 1, p.stderr)

    def test_fail_open_nonblocking(self):
        real = listener("127.0.0.1")
        self.addCleanup(real.close)
        real_port = real.getsockname()[1]
        env = self.env(LLMWRAP_FAIL_OPEN="1", LLMWRAP_TEST_REAL_ADDR="127.0.0.1:%d" % real_port)
        r, p = self.probe("connect", "api.openai.com", "443", "nonblock", "send", env=env)
        self.assertIn(r["errno"], ("EINPROGRESS", "kept"))
        self.assertEqual(r["nonblock_kept"], "1")
        self.assertEqual(r["peer"], "127.0.0.1:%d" % real_port)
        self.accept_line(real)

    def test_fail_open_dual_stack(self):
        real = listener("127.0.0.1")
        self.addCleanup(real.close)
        real_port = real.getsockname()[1]
        env = self.env(LLMWRAP_FAIL_OPEN="1", LLMWRAP_TEST_REAL_ADDR="127.0.0.1:%d" % real_port)
        r, _ = self.probe("connect", "api.openai.com", "443", "v6", "send", env=env)
        self.assertEqual(r["peer"], "::ffff:127.0.0.1:%d" % real_port)
        self.accept_line(real)


class TestInert(ShimCase):
    def not_redirected(self, env, argv0=PROBE):
        """A connect to slot 1 on a closed port stays on that port."""
        closed = free_port(synth(1))
        p = self.run_prog([argv0, "connect", synth(1), str(closed)], env)
        r = parse(p.stdout)
        self.assertEqual(r["errno"], "ECONNREFUSED")
        self.assert_nothing_pending(self.collector)
        return p

    def test_active_control(self):
        # The same connect without the sentinel is redirected: the checks
        # below would notice a shim that stayed active.
        closed = free_port(synth(1))
        r, _ = self.probe("connect", synth(1), str(closed))
        self.assertEqual(r["connect_rc"], "0")
        self.accept_line()

    def test_collector_sentinel(self):
        p = self.not_redirected(self.env(LLMWRAP_COLLECTOR="1"))
        self.assertEqual(p.stderr, "")

    def test_exempt_executables(self):
        for name in ("llm-collector", "llmwrap"):
            copy = os.path.join(self.tmp, name)
            shutil.copy(PROBE, copy)
            self.not_redirected(self.env(), copy)

    def test_malformed_values(self):
        # Without the hosts or the port there is nothing to redirect to.
        for var, value in (("LLMWRAP_PORT", "https"), ("LLMWRAP_HOSTS", "a.com,,b.com")):
            with self.subTest(var=var):
                p = self.not_redirected(self.env(**{var: value}))
                self.assertIn("%s is malformed" % var, p.stderr)

    def test_malformed_knobs_keep_redirection(self):
        # Any other malformed value is replaced by its safe one: a typo in
        # a knob must not send provider traffic past the collector.
        for var, value in (("LLMWRAP_TLS_HOOK", "true"), ("LLMWRAP_TLS_HOOK", "off"),
                           ("LLMWRAP_PROPAGATE", "yes"), ("LLMWRAP_FAIL_OPEN", "2"),
                           ("LLMWRAP_ATTRIB_REQUIRED", "no"), ("LLMWRAP_NET", "300"),
                           ("LLMWRAP_CA_DER", "!!"), ("LLMWRAP_PRELOAD", "relative.so"),
                           ("LLMWRAP_TEST_REAL_ADDR", "localhost:80"),
                           ("LLMWRAP_LISTEN", "localhost:80")):
            with self.subTest(var=var, value=value):
                r, p = self.probe("connect", "api.openai.com", "443", "send",
                                  env=self.env(**{var: value}))
                self.assertEqual(p.stderr.count("%s is malformed" % var), 1, p.stderr)
                if var == "LLMWRAP_ATTRIB_REQUIRED":
                    # Its safe value is 1, and there is no attribution
                    # socket here: refused, not made unattributed.
                    self.assertEqual((r["connect_rc"], r["errno"]), ("-1", "ECONNREFUSED"))
                    continue
                self.assertEqual(r["connect_rc"], "0", p.stderr)
                self.assertEqual(r["peer"], "%s:%d" % (synth(1), self.port))
                self.accept_line()

    def test_not_under_llmwrap(self):
        p = self.not_redirected(self.env(LLMWRAP_HOSTS=None, LLMWRAP_PORT=None))
        self.assertEqual(p.stderr, "")


class TestExec(ShimCase):
    EXTRA = {"SSL_CERT_FILE": "/lw/combined.pem", "GODEBUG": "netdns=go"}

    def exec_report(self, mode, **env_extra):
        env = self.env(**dict(self.EXTRA, **env_extra))
        r, p = self.probe("exec", mode, "connect", env=env)
        return r, p

    def check_intercepted(self, r, preload_tail=""):
        self.assertEqual(r["shim_loaded"], "1")
        self.assertEqual(r["env_LD_PRELOAD"], SHIM + preload_tail)
        self.assertEqual(r["env_LLMWRAP_HOSTS"], ",".join(HOSTS))
        self.assertEqual(r["env_LLMWRAP_PORT"], str(self.port))
        self.assertEqual(r["env_LLMWRAP_PRELOAD"], SHIM)
        self.assertEqual(r["env_GODEBUG"], "netdns=go")
        self.assertEqual(r["resolved"], "0;inet/%s/443/stream" % synth(1))
        self.assertEqual(r["peer"], "%s:%d" % (synth(1), self.port))
        local, _, line = self.accept_line()
        self.assertEqual(local, (synth(1), self.port))
        self.assertEqual(line, "probe %s" % r["report_pid"])

    def test_empty_environment(self):
        for mode in ("execve-empty", "fexecve-empty", "execveat-empty", "execv", "execvp",
                     "execl", "execlp", "posix_spawnp"):
            with self.subTest(mode=mode):
                r, _ = self.exec_report(mode)
                self.check_intercepted(r)
                self.assertEqual(r["env_SSL_CERT_FILE"], "/lw/combined.pem")
                self.assertEqual(r["env_FOO"], "<unset>")

    def test_custom_environment(self):
        # The program's own values win; LD_PRELOAD keeps the user's entry.
        for mode in ("execve-custom", "fexecve-custom", "execveat-custom", "execvpe", "execle",
                     "posix_spawn"):
            with self.subTest(mode=mode):
                r, p = self.exec_report(mode)
                self.check_intercepted(r, ":/nonexistent/other.so")
                self.assertEqual(r["env_SSL_CERT_FILE"], "/custom.pem")
                self.assertEqual(r["env_FOO"], "bar")

    def test_env_dash_i(self):
        p = self.run_prog(["/usr/bin/env", "-i", PROBE, "report", "connect"],
                          self.env(**self.EXTRA))
        self.check_intercepted(parse(p.stdout))

    def test_python_subprocess_empty_env(self):
        code = ("import subprocess, sys\n"
                "r = subprocess.run([sys.argv[1], 'report', 'connect'], env={},"
                " capture_output=True, text=True, timeout=%d)\n"
                "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n" % TIMEOUT)
        p = self.run_prog([PYTHON, "-c", code, PROBE], self.env(**self.EXTRA))
        self.check_intercepted(parse(p.stdout))

    def test_propagation_off(self):
        r, _ = self.probe("exec", "execve-empty", env=self.env(LLMWRAP_PROPAGATE="0"))
        self.assertEqual(r["shim_loaded"], "0")
        self.assertEqual(r["env_LD_PRELOAD"], "<unset>")
        self.assertEqual(r["env_LLMWRAP_HOSTS"], "<unset>")

    def test_inert_process_does_not_propagate(self):
        r, _ = self.probe("exec", "execve-empty", env=self.env(LLMWRAP_COLLECTOR="1"))
        self.assertEqual(r["shim_loaded"], "0")


class TestExports(unittest.TestCase):
    EXPECTED = {
        "connect", "sendto", "sendmsg",
        "getaddrinfo", "gethostbyname", "gethostbyname2", "gethostbyname_r",
        "gethostbyname2_r", "gethostbyaddr", "gethostbyaddr_r", "getnameinfo",
        "execve", "fexecve", "execveat", "execv", "execvp", "execvpe", "execl", "execlp", "execle",
        "posix_spawn", "posix_spawnp",
        "SSL_new",
    }

    def test_exports_exactly_the_hooks(self):
        if not NM:
            self.skipTest("nm not found")
        out = subprocess.run([NM, "-D", "--defined-only", SHIM], capture_output=True, text=True,
                             timeout=TIMEOUT, check=True).stdout
        names = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
        self.assertEqual(names, self.EXPECTED)


class TlsServer:
    """A TLS server on 127.0.0.1 in a thread of this (unpreloaded) process."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = listener("127.0.0.1")
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(WAIT)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as t:
                    t.recv(4096)
                    t.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except (OSError, ssl.SSLError):
                pass  # the client refused our certificate: expected in some cases
            finally:
                conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(WAIT)
        self.sock.close()


PY_CLIENT = """
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as s:
    try:
        with ctx.wrap_socket(s, server_hostname="tls.test") as t:
            t.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            print("verified")
    except ssl.SSLCertVerificationError as e:
        print("verify-failed", e.verify_message)
"""


class TestTls(ShimCase):
    def openssl(self, *args):
        subprocess.run(["openssl"] + list(args), cwd=self.tmp, check=True, capture_output=True,
                       timeout=TIMEOUT)

    def make_ca(self, name):
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
                     "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def setUp(self):
        super().setUp()
        if not shutil.which("openssl"):
            self.skipTest("openssl CLI not found")
        self.make_ca("ca")
        self.make_ca("other")
        with open(os.path.join(self.tmp, "leaf.ext"), "w") as f:
            f.write("subjectAltName=DNS:tls.test\nbasicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=tls.test")
        self.openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")
        self.openssl("x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der")
        with open(os.path.join(self.tmp, "ca.der"), "rb") as f:
            self.ca_der = base64.b64encode(f.read()).decode()
        self.unrelated = os.path.join(self.tmp, "other.pem")
        self.server = TlsServer(os.path.join(self.tmp, "leaf.pem"),
                                os.path.join(self.tmp, "leaf.key"))
        self.addCleanup(self.server.close)

    def python_client(self, **env):
        p = self.run_prog([PYTHON, "-c", PY_CLIENT, self.unrelated, str(self.server.port)],
                          self.env(**env))
        return p.stdout.strip()

    def test_python_rtld_local_ssl(self):
        self.assertTrue(self.python_client().startswith("verify-failed"))
        self.assertEqual(self.python_client(LLMWRAP_CA_DER=self.ca_der), "verified")
        self.assertTrue(self.python_client(LLMWRAP_CA_DER=self.ca_der,
                                           LLMWRAP_TLS_HOOK="0").startswith("verify-failed"))

    def test_python_without_shim(self):
        env = self.env(LLMWRAP_CA_DER=self.ca_der, LD_PRELOAD=None)
        p = self.run_prog([PYTHON, "-c", PY_CLIENT, self.unrelated, str(self.server.port)], env)
        self.assertTrue(p.stdout.startswith("verify-failed"))

    def test_two_openssls(self):
        # Each SSL_new goes to the libssl its caller links: the system one
        # for the program, the private one for the library that bundles it.
        p = self.run_prog([TLS_MULTI, FAKE_SSL_USER], self.env(LLMWRAP_CA_DER=self.ca_der))
        r = parse(p.stdout)
        self.assertEqual(r["real1"], "ok;added=1;errors=0")
        self.assertEqual(r["real2"], "ok;added=1;errors=0")
        der_len = len(base64.b64decode(self.ca_der))
        self.assertEqual(r["fake"], "1,1;calls=2;bad_ctx=0;adds=2;der_len=%d;marks_balanced=1"
                         % der_len)
        p = self.run_prog([TLS_MULTI, FAKE_SSL_USER],
                          self.env(LLMWRAP_CA_DER=self.ca_der, LLMWRAP_TLS_HOOK="0"))
        r = parse(p.stdout)
        self.assertEqual(r["real1"], "ok;added=0;errors=0")
        self.assertEqual(r["fake"], "1,1;calls=2;bad_ctx=0;adds=0;der_len=0;marks_balanced=1")

    def curl(self, **env):
        argv = ["curl", "-sS", "--max-time", "10", "--noproxy", "*", "--cacert", self.unrelated,
                "--resolve", "tls.test:%d:127.0.0.1" % self.server.port,
                "https://tls.test:%d/" % self.server.port]
        return self.run_prog(argv, self.env(**env), check=False)

    def test_curl(self):
        if not shutil.which("curl"):
            self.skipTest("curl not found")
        if ASAN_RUNTIME:
            # curl hangs at start-up with libasan preloaded, shim or not.
            self.skipTest("curl does not run with the sanitizer runtime preloaded")
        p = self.curl()
        self.assertEqual(p.returncode, 60, p.stderr)  # CURLE_PEER_FAILED_VERIFICATION
        p = self.curl(LLMWRAP_CA_DER=self.ca_der)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "ok")
        p = self.curl(LLMWRAP_CA_DER=self.ca_der, LLMWRAP_TLS_HOOK="0")
        self.assertEqual(p.returncode, 60, p.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)
