"""The collector's forwarding core against the simulated provider.

Real clients (Python's http.client and ssl, curl) talk TLS to the
collector's synthetic addresses with the collector's CA, exactly as a
program under llmwrap does after the shim redirected it.
"""

import concurrent.futures
import fcntl
import hashlib
import http.client
import io
import json
import os
import resource
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
import unittest

import lwtest
from lwtest import DEFAULT_TIMEOUT, HOSTS, wait_for

CHAT = "/v1/chat/completions"
CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def raw_tls(collector, provider="openai", server_hostname=None, timeout=DEFAULT_TIMEOUT,
            rcvbuf=None, strict_eof=False):
    """A TLS socket to the collector's address for `provider`. rcvbuf: a
    receive buffer this small (a client slow to take an answer); strict_eof:
    an end without close_notify raises, as Debian's default context does
    not let it."""
    ctx = ssl.create_default_context(cafile=collector.ca_file)
    if strict_eof:
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((collector.addr(provider), collector.port))
    return ctx.wrap_socket(sock, server_hostname=server_hostname or HOSTS[provider],
                           suppress_ragged_eofs=not strict_eof)


def send_chat_stream(s, sim, version=b"1.1"):
    """Writes a streamed chat request with x-sim directives `sim` on `s`."""
    body = json.dumps(dict(CHAT_BODY, stream=True)).encode()
    s.sendall(b"POST " + CHAT.encode() + b" HTTP/" + version + b"\r\nhost: api.openai.com\r\n"
              b"authorization: Bearer k\r\ncontent-type: application/json\r\n"
              b"x-sim: " + sim + b"\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


def pump_tls(s, data, done, timeout=DEFAULT_TIMEOUT):
    """Sends `data` on TLS socket `s` while reading what comes back, in one
    thread, until done(received) or the peer closes. Returns the bytes
    received."""
    s.setblocking(False)
    received = bytearray()
    sent = 0
    deadline = time.monotonic() + timeout
    while not done(received):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"sent {sent} of {len(data)} bytes, received {len(received)}")
        want_write = [s] if sent < len(data) else []
        select.select([s], want_write, [], min(left, 0.5))
        try:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        if sent < len(data):
            try:
                sent += s.send(data[sent:sent + 16384])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
    return bytes(received)


def complete_responses(buf):
    """The whole responses at the start of `buf`, as read_http_response
    returns them."""
    f = io.BytesIO(buf)
    out = []
    while f.tell() < len(buf):
        try:
            status, headers, body = read_http_response(f)
        except (ConnectionError, ValueError, IndexError):
            break
        if "content-length" in headers and len(body) < int(headers["content-length"]):
            break
        out.append((status, headers, body))
    return out


def read_http_response(f):
    """Reads one response (status, headers, body) from a binary file object,
    leaving the file open for the next pipelined response."""
    status_line = f.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                f.readline()
                break
            body += f.read(size)
            f.readline()
    else:
        body = f.read()
    return status, headers, body


class ForwardingTest(lwtest.CollectorTestCase):

    def direct(self, method, path, body, headers):
        self.sim.request("POST", "/_sim/reset")
        return self.sim.request(method, path, body=body, headers=headers)

    def test_json_and_sse_bodies_are_byte_identical(self):
        cases = [
            ("openai", CHAT, CHAT_BODY),
            ("openai", CHAT, dict(CHAT_BODY, stream=True,
                                  stream_options={"include_usage": True})),
            ("openai", "/v1/responses", {"model": "gpt-5.4", "input": "hi", "stream": True}),
            ("anthropic", "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 64,
                                           "stream": True,
                                           "messages": [{"role": "user", "content": "hi"}]}),
            ("gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
             {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
            ("gemini", "/v1beta/models/gemini-2.5-flash:generateContent",
             {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ]
        headers = {"content-type": "application/json", "authorization": "Bearer sk-test",
                   "x-api-key": "k", "x-goog-api-key": "k"}
        for provider, path, body in cases:
            with self.subTest(provider=provider, path=path):
                raw = json.dumps(body).encode()
                d_status, _, d_body = self.direct("POST", path, raw, headers)
                self.sim.request("POST", "/_sim/reset")
                c_status, c_headers, c_body = self.post(provider, path, raw, headers)
                self.assertEqual(d_status, 200)
                self.assertEqual(c_status, 200)
                self.assertEqual(c_body, d_body)
                self.assertNotIn("alt-svc", c_headers)

    def test_chunked_request_body_arrives_whole(self):
        body = json.dumps(dict(CHAT_BODY, messages=[{"role": "user",
                                                      "content": "x" * 50000}])).encode()
        conn = self.via("openai")
        conn.putrequest("POST", CHAT)
        conn.putheader("content-type", "application/json")
        conn.putheader("authorization", "Bearer sk-test")
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(body), 7000):
            piece = body[i:i + 7000]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        payload = json.loads(r.read())
        conn.close()
        self.assertEqual(r.status, 200)
        # The simulator counts input tokens as ceil(body bytes / 4).
        self.assertEqual(payload["usage"]["prompt_tokens"], -(-len(body) // 4))

    def test_empty_chunked_body_is_forwarded(self):
        # No body bytes at all: the provider answers it (the sim: 400, not
        # JSON), and the collector (under UBSan too) keeps serving.
        conn = self.via("openai")
        conn.putrequest("POST", CHAT)
        conn.putheader("authorization", "Bearer sk-test")
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        r.read()
        conn.close()
        self.assertEqual(r.status, 400)
        self.assertEqual(self.sim.stats()["requests"], 1)
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)

    def test_keep_alive_and_100_concurrent_connections(self):
        def client(i):
            conn = self.via("openai")
            try:
                statuses = []
                for _ in range(3):
                    conn.request("POST", CHAT, body=json.dumps(CHAT_BODY),
                                 headers={"authorization": "Bearer sk-test",
                                          "content-type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    statuses.append(r.status)
                return statuses
            finally:
                conn.close()

        before = self.sim.stats()["requests"]
        with concurrent.futures.ThreadPoolExecutor(100) as pool:
            results = list(pool.map(client, range(100)))
        self.assertEqual(results, [[200, 200, 200]] * 100)
        self.assertEqual(self.sim.stats()["requests"] - before, 300)

    def test_pipelined_requests_answered_in_order(self):
        s = raw_tls(self.collector)
        req = (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: api.openai.com\r\n"
               b"authorization: Bearer k\r\ncontent-type: application/json\r\n"
               b"x-sim: words=%d\r\ncontent-length: %d\r\n\r\n%s")
        body = json.dumps(CHAT_BODY).encode()
        s.sendall(req % (3, len(body), body) + req % (5, len(body), body))
        f = s.makefile("rb")
        first = json.loads(read_http_response(f)[2])
        second = json.loads(read_http_response(f)[2])
        s.close()
        self.assertEqual(first["usage"]["completion_tokens"], 3)
        self.assertEqual(second["usage"]["completion_tokens"], 5)

    def test_request_pipelined_after_a_chunked_body(self):
        # The chunked decoder leaves the next request's bytes right after
        # the decoded body; longer than the framing it stripped, they were
        # once read from the wrong place and answered 400.
        s = raw_tls(self.collector)
        body = json.dumps(CHAT_BODY).encode()
        chunked = (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: api.openai.com\r\n"
                   b"authorization: Bearer k\r\ncontent-type: application/json\r\n"
                   b"x-sim: words=3\r\ntransfer-encoding: chunked\r\n\r\n" +
                   b"%x\r\n%s\r\n0\r\nx-trailer: t\r\n\r\n" % (len(body), body))
        plain = (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: api.openai.com\r\n"
                 b"authorization: Bearer k\r\ncontent-type: application/json\r\n"
                 b"x-sim: words=5\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        s.sendall(chunked + plain)
        f = s.makefile("rb")
        first, second = read_http_response(f), read_http_response(f)
        s.close()
        self.assertEqual((first[0], second[0]), (200, 200), second[2])
        self.assertEqual(json.loads(first[2])["usage"]["completion_tokens"], 3)
        self.assertEqual(json.loads(second[2])["usage"]["completion_tokens"], 5)

    def test_pipelined_backlog_larger_than_the_input_cap(self):
        # 240 KB of pipelined requests against the collector's input cap
        # (max_head + 64 KiB): it stops reading at the cap, and the rest of
        # a TLS record it already decrypted waits inside OpenSSL, where
        # epoll cannot see it. Every request must still be answered.
        s = raw_tls(self.collector)
        body = json.dumps(dict(CHAT_BODY, user="x" * 4000)).encode()
        req = (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: api.openai.com\r\n"
               b"authorization: Bearer k\r\ncontent-type: application/json\r\n"
               b"x-sim: words=%d\r\ncontent-length: %d\r\n\r\n%s")
        n = 60
        data = b"".join(req % (1 + i % 7, len(body), body) for i in range(n))
        self.assertGreater(len(data), 128 * 1024 + 16 * 1024)
        # One thread sends and reads, without blocking: an SSL object must
        # not be used by two threads at once, and the collector reads the
        # rest of the backlog only as answers go out.
        received = pump_tls(s, data, lambda got: len(complete_responses(got)) >= n)
        s.close()
        words = [json.loads(body)["usage"]["completion_tokens"]
                 for _, _, body in complete_responses(received)]
        self.assertEqual(words, [1 + i % 7 for i in range(n)])

    def test_garbage_then_valid_request(self):
        addr = (self.collector.addr("openai"), self.collector.port)
        junk = [
            b"\x00" * 100,
            b"GET / HTTP/1.1\r\n",            # plain HTTP, never finished
            b"\x16\x03\x01\x02\x00\x01\x00",  # truncated ClientHello
            os.urandom(4096),
        ]
        for data in junk:
            with socket.create_connection(addr, DEFAULT_TIMEOUT) as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(DEFAULT_TIMEOUT)
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
        # A hello without SNI, and with the SNI of another provider.
        ctx = ssl.create_default_context(cafile=self.collector.ca_file)
        ctx.check_hostname = False
        for sni in (None, "api.anthropic.com", "example.com"):
            with self.subTest(sni=sni):
                sock = socket.create_connection(addr, DEFAULT_TIMEOUT)
                with self.assertRaises((ssl.SSLError, ConnectionError)):
                    ctx.wrap_socket(sock, server_hostname=sni)
                sock.close()
        status, _, body = self.post("openai", CHAT, CHAT_BODY)
        self.assertEqual(status, 200)
        self.assertIn("choices", json.loads(body))

    def test_plain_http_answers_400_for_malformed(self):
        lp = self.collector.listen_port()
        cases = [
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked"
             b"\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\nhost: x\r\n\r\n", 505),
            (b"OPTIONS * HTTP/1.1\r\nhost: x\r\n\r\n", 400),
            (b"GET http://user@x/ HTTP/1.1\r\nhost: x\r\n\r\n", 400),
        ]
        for data, expected in cases:
            with self.subTest(data=data):
                with socket.create_connection(("127.0.0.1", lp), DEFAULT_TIMEOUT) as s:
                    s.sendall(data)
                    status, headers, body = read_http_response(s.makefile("rb"))
                self.assertEqual(status, expected)
                self.assertIn("error", json.loads(body))
                self.assertEqual(headers.get("connection"), "close")

    def test_head_too_large_is_431(self):
        for headers in ({"x-big": "a" * 70000},
                        {f"x-h{i}": "v" for i in range(200)}):
            with self.subTest(n=len(headers)):
                status, _, body = self.post("openai", CHAT, CHAT_BODY, headers)
                self.assertEqual(status, 431)
                self.assertEqual(json.loads(body)["error"]["type"], "invalid_request_error")
        # The collector keeps serving.
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)

    def test_head_answered_by_the_collector_has_no_body(self):
        # A 502 of the collector's own to a HEAD request gives the length
        # of its body but does not send it: sent anyway, it would be read as
        # the start of the next response on the connection (httpx fails).
        dead = lwtest.free_port()
        lwtest.write_config(self.home, lwtest.sim_config(self.sim, ("gemini",)) +
                            f"\n[provider.openai]\nupstream = https://127.0.0.1:{dead}\n")
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in self.collector.read_log(),
                 what="reload")
        s = raw_tls(self.collector)
        head = b"HEAD /v1/models HTTP/1.1\r\nhost: api.openai.com\r\nauthorization: Bearer k\r\n\r\n"
        s.sendall(head + head)
        got = b""
        while got.count(b"\r\n\r\n") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        first_end = got.index(b"\r\n\r\n") + 4
        self.assertTrue(got.startswith(b"HTTP/1.1 502 "), got)
        self.assertIn(b"content-length: ", got[:first_end])
        self.assertTrue(got[first_end:].startswith(b"HTTP/1.1 502 "), got)

    def test_open_files_limit_is_raised_to_the_hard_limit(self):
        # Every connection, upstream connection and llmwrap run holds one;
        # the usual soft limit of 1024 would cap them. Started under a
        # soft limit of 256, the collector raises its own.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.assertEqual(self.collector.stop(), 0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        try:
            self.collector.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        with open(f"/proc/{self.collector.proc.pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        self.assertEqual(line.split()[3:5], [str(hard), str(hard)])

    def test_out_of_descriptors_pauses_accepting_instead_of_spinning(self):
        # Listening sockets are level-triggered: an accept that fails for
        # want of a descriptor, retried at once, would spin the loop.
        pid = self.collector.proc.pid
        used = len(os.listdir(f"/proc/{pid}/fd"))
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (used + 4, hard))
        sock = os.path.join(self.home, "run", "collector.sock")
        clients = []
        self.addCleanup(lambda: [c.close() for c in clients])
        for _ in range(12):
            c = socket.socket(socket.AF_UNIX)
            c.connect(sock)
            clients.append(c)
        wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) >= used + 4,
                 what="the collector out of descriptors")

        def cpu_ticks():
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime

        before = cpu_ticks()
        time.sleep(1)
        spent = (cpu_ticks() - before) / os.sysconf("SC_CLK_TCK")
        self.assertLess(spent, 0.3, "the collector spun while out of descriptors")
        self.assertIn("IPC socket: accept: Too many open files", self.collector.read_log())
        for c in clients:
            c.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        wait_for(lambda: lwtest.ipc_status(self.home, timeout=1)["pid"] == pid,
                 what="IPC served again")

    def test_reload_keeps_the_running_configuration_when_the_file_is_bad_or_gone(self):
        # The defaults would send requests to the public provider hosts.
        config = os.path.join(self.home, "config.ini")
        for change in ("bad", "gone", "unpriceable"):
            with self.subTest(change=change):
                mark = len(self.collector.read_log())
                if change == "bad":
                    with open(config, "a") as f:
                        f.write("\n[collector]\nno_such_key = 1\n")
                elif change == "gone":
                    os.unlink(config)
                else:  # a model the price table lacks needs input and output
                    lwtest.write_config(self.home, lwtest.sim_config(self.sim) +
                                        "\n[price.brand-new]\ninput = 1\n")
                self.collector.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "keeping the running configuration" in
                         self.collector.read_log()[mark:], what="the reload refused")
                self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)

    def test_reload_keeps_what_the_listeners_are_bound_to(self):
        # listen, synthetic_net and port are bound at start. A reload that
        # changed them used to tell new llmwrap runs (status) the new
        # synthetic_net while the listeners stayed on the old one: every
        # provider connection of those runs was refused.
        before = lwtest.ipc_status(self.home)
        listen_port = self.collector.listen_port()
        other = lwtest.free_port()
        config = os.path.join(self.home, "config.ini")
        with open(config) as f:
            original = f.read()

        def reload(extra):
            lwtest.write_config(self.home, original + extra)
            mark = len(self.collector.read_log())
            self.collector.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "configuration reloaded" in self.collector.read_log()[mark:],
                     what="reload")
            return self.collector.read_log()[mark:]

        log = reload(f"\n[collector]\nsynthetic_net = 242\nport = {other}\n"
                     f"listen = 127.0.0.1:{other}\n")
        self.assertIn("synthetic_net = 242 needs a restart; still using "
                      f"{lwtest.SYNTHETIC_NET}", log)
        self.assertIn(f"port = {other} needs a restart; still using {self.collector.port}", log)
        self.assertIn(f"listen = 127.0.0.1:{other} needs a restart; still using "
                      f"127.0.0.1:{listen_port}", log)
        after = lwtest.ipc_status(self.home)
        self.assertEqual((after["synthetic_net"], after["synthetic_port"]),
                         (before["synthetic_net"], before["synthetic_port"]))
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)
        # Port 0 (any port) and the listen address started with are what runs.
        log = reload("\n[collector]\nport = 0\nlisten = 127.0.0.1:0\n")
        self.assertNotIn("needs a restart", log)

    def test_reload_under_port_option_ignores_the_files_port(self):
        # --port wins over the file's port, at start and at every reload:
        # an unchanged file is no change to warn about.
        other, given = lwtest.free_port(), lwtest.free_port()
        with open(os.path.join(self.home, "config.ini"), "a") as f:
            f.write(f"\n[collector]\nport = {other}\n")
        self.assertEqual(self.collector.stop(), 0)
        self.collector.start(port=given)
        self.assertEqual(self.collector.port, given)
        mark = len(self.collector.read_log())
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in self.collector.read_log()[mark:],
                 what="reload")
        self.assertNotIn("needs a restart", self.collector.read_log()[mark:])
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)

    def test_upstream_down_gives_shaped_502(self):
        dead = lwtest.free_port()
        lwtest.write_config(self.home, lwtest.sim_config(self.sim, ("gemini",)) +
                            f"\n[provider.openai]\nupstream = https://127.0.0.1:{dead}\n"
                            f"[provider.anthropic]\nupstream = https://127.0.0.1:{dead}\n")
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in self.collector.read_log(),
                 what="reload")
        status, headers, body = self.post("openai", CHAT, CHAT_BODY)
        self.assertEqual(status, 502)
        self.assertEqual(headers["content-type"], "application/json")
        err = json.loads(body)["error"]
        self.assertEqual(err["type"], "server_error")
        self.assertIn("api.openai.com", err["message"])
        status, _, body = self.post("anthropic", "/v1/messages",
                                    {"model": "claude-sonnet-4-5", "max_tokens": 5,
                                     "messages": []})
        self.assertEqual(status, 502)
        doc = json.loads(body)
        self.assertEqual(doc["type"], "error")
        self.assertEqual(doc["error"]["type"], "api_error")
        # The provider still configured goes through.
        status, _, _ = self.post("gemini", "/v1beta/models/gemini-2.5-flash:generateContent",
                                 {"contents": []}, {"x-goog-api-key": "k"})
        self.assertEqual(status, 200)

    def test_upstream_broken_mid_stream_is_cut_not_completed(self):
        body = dict(CHAT_BODY, stream=True)
        conn = self.via("openai")
        conn.request("POST", CHAT, body=json.dumps(body),
                     headers={"authorization": "Bearer k", "content-type": "application/json",
                              "x-sim": "fault=drop;drop_after=2"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        conn.close()
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)

    def test_provider_errors_pass_through(self):
        status, headers, body = self.post("openai", CHAT, CHAT_BODY,
                                          {"x-sim": "fault=429;retry_after=7"})
        self.assertEqual(status, 429)
        self.assertEqual(headers.get("retry-after"), "7")
        self.assertIn("error", json.loads(body))

    def test_base_url_clients_on_listen_address(self):
        lp = self.collector.listen_port()
        for path, expect_key in ((CHAT, "choices"), ("/v1/messages", "content"),
                                 ("/anthropic/v1/messages", "content"),
                                 ("/openai/v1/chat/completions", "choices")):
            with self.subTest(path=path):
                conn = http.client.HTTPConnection("127.0.0.1", lp, timeout=DEFAULT_TIMEOUT)
                body = CHAT_BODY if "chat" in path else {
                    "model": "claude-sonnet-4-5", "max_tokens": 8,
                    "messages": [{"role": "user", "content": "hi"}]}
                conn.request("POST", path, body=json.dumps(body),
                             headers={"authorization": "Bearer k", "x-api-key": "k",
                                      "content-type": "application/json"})
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                self.assertIn(expect_key, json.loads(r.read()))
                conn.close()

    def test_base_url_clients_routed_by_their_sdks_headers(self):
        # Paths the providers share, as the Anthropic and Gemini SDKs send
        # them to a base URL with no /NAME/ prefix: each goes to the
        # provider whose key it carries, never to OpenAI.
        lp = self.collector.listen_port()
        cases = (("GET", "/v1/models", {"x-api-key": "k", "anthropic-version": "2023-06-01"},
                  "anthropic"),
                 ("POST", "/v1/files", {"x-api-key": "k", "anthropic-version": "2023-06-01",
                                        "content-type": "text/plain"}, "anthropic"),
                 ("POST", "/upload/v1beta/files", {"x-goog-api-key": "k",
                                                   "content-type": "text/plain"}, "gemini"),
                 ("POST", "/v1/models/gemini-2.5-flash:countTokens",
                  {"x-goog-api-key": "k", "content-type": "application/json"}, "gemini"),
                 ("POST", "/v1/models/gemini-2.5-flash:countTokens?alt=json&key=k",
                  {"content-type": "application/json"}, "gemini"))
        for method, path, headers, provider in cases:
            conn = http.client.HTTPConnection("127.0.0.1", lp, timeout=DEFAULT_TIMEOUT)
            conn.request(method, path, body=None if method == "GET" else b"{}", headers=headers)
            conn.getresponse().read()
            conn.close()
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json"],
                             capture_output=True, text=True,
                             env=dict(os.environ, LLMWRAP_HOME=self.home),
                             timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = sorted(json.loads(out.stdout), key=lambda row: row["id"])
        self.assertEqual([row["provider"] for row in rows], [c[3] for c in cases])

    def test_curl_through_collector(self):
        out = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "--cacert", self.collector.ca_file,
             "--connect-to", f"api.openai.com:443:{self.collector.addr('openai')}:"
                             f"{self.collector.port}",
             "https://api.openai.com" + CHAT, "-H", "authorization: Bearer k",
             "-H", "content-type: application/json", "-d", json.dumps(CHAT_BODY)],
            capture_output=True, timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["object"], "chat.completion")

    def test_secrets_never_logged(self):
        secret = "sk-SECRETVALUE123"
        self.post("openai", CHAT, CHAT_BODY, {"authorization": f"Bearer {secret}"})
        self.post("anthropic", "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 4,
                                                "messages": []}, {"x-api-key": secret})
        self.post("gemini", f"/v1beta/models/gemini-2.5-flash:generateContent?key={secret}",
                  {"contents": []})
        # A client that percent-encoded its whole URL: the query is part of
        # the path (logged, and kept for a call llmwrap cannot price).
        self.post("gemini", f"/v1beta/models/gemini-2.5-flash:generateContent%3Fkey={secret}",
                  {"contents": []})
        self.post("openai", f"/v1/images/generations%3fkey%3D{secret}", {"prompt": "x"})
        self.collector.stop()
        text = self.collector.read_log()
        self.assertIn("generateContent", text)
        self.assertNotIn("SECRETVALUE", text)
        for root, _, files in os.walk(self.home):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(b"SECRETVALUE", f.read(), name)

    def test_sigterm_drains_in_flight_stream(self):
        conn = self.via("openai")
        conn.request("POST", CHAT, body=json.dumps(dict(CHAT_BODY, stream=True)),
                     headers={"authorization": "Bearer k", "content-type": "application/json",
                              "x-sim": "words=20;chunk_delay_ms=50"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        first = r.readline()
        self.assertTrue(first.startswith(b"data: "))
        self.collector.proc.send_signal(signal.SIGTERM)
        rest = r.read()
        conn.close()
        self.assertTrue(rest.rstrip().endswith(b"data: [DONE]"))
        self.assertEqual(self.collector.proc.wait(DEFAULT_TIMEOUT), 0)
        # Nothing new is accepted after the drain started.
        with self.assertRaises(OSError):
            socket.create_connection((self.collector.addr("openai"), self.collector.port), 2)

    def test_second_stop_signal_ends_the_drain(self):
        # Ctrl-C twice: the second one stops the collector without waiting
        # out the drain (drain_timeout, 30 s, longer than the wait below),
        # and the request it cut is booked.
        conn = self.via("openai")
        conn.request("POST", CHAT, body=json.dumps(dict(CHAT_BODY, stream=True)),
                     headers={"authorization": "Bearer k", "content-type": "application/json",
                              "x-sim": "words=2000;chunk_delay_ms=50"})
        r = conn.getresponse()
        self.assertTrue(r.readline().startswith(b"data: "))
        mark = len(self.collector.read_log())
        self.collector.proc.send_signal(signal.SIGINT)
        wait_for(lambda: "draining" in self.collector.read_log()[mark:], what="the drain")
        self.assertIsNone(self.collector.proc.poll())
        self.collector.proc.send_signal(signal.SIGINT)
        self.assertEqual(self.collector.proc.wait(DEFAULT_TIMEOUT), 0)
        with self.assertRaises((http.client.IncompleteRead, ValueError)):
            r.read()  # cut: no chunked terminator
        conn.close()
        self.assertIn("a second stop signal", self.collector.read_log())
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json"], capture_output=True,
                             env=dict(os.environ, LLMWRAP_HOME=self.home), timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = json.loads(out.stdout)
        self.assertEqual([(r["status"], r["partial"]) for r in rows], [(200, True)])

    def test_a_collector_starting_as_one_stops_cannot_run_beside_another(self):
        # A collector starting opens the pid file, then locks it. One that
        # stopped in between removed the file: the starter locked the
        # removed file, while a third one, which found none, made and locked
        # another: two collectors on one state directory. This test opens
        # the file as the starter would, and takes the lock last.
        pid_file = os.path.join(self.home, "run", "collector.pid")
        with open(pid_file, "r+") as starter:
            self.assertEqual(self.collector.stop(), 0)
            self.collector = lwtest.Collector(self.home).start()
            with self.assertRaises(BlockingIOError):
                fcntl.flock(starter, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.assertEqual(lwtest.collector_pid(self.home), self.collector.proc.pid)

    def test_ipc_bad_frames_close_only_that_client(self):
        path = os.path.join(self.home, "run", "collector.sock")
        for frame in (struct.pack(">I", 5 * 1024 * 1024) + b"x",  # over the cap
                      struct.pack(">I", 3) + b"\xff\xff\xff",       # not protobuf
                      struct.pack(">I", 2) + b"\x08\x01"):          # no request body
            with self.subTest(frame=frame[:8]):
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(DEFAULT_TIMEOUT)
                    s.connect(path)
                    s.sendall(frame)
                    self.assertEqual(s.recv(100), b"")  # closed by the collector
        # A valid status request still works: Request{id=7, status={}}.
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(DEFAULT_TIMEOUT)
            s.connect(path)
            msg = b"\x08\x07\x52\x00"
            s.sendall(struct.pack(">I", len(msg)) + msg)
            n = struct.unpack(">I", _recv_exact(s, 4))[0]
            payload = _recv_exact(s, n)
        self.assertEqual(payload[:2], b"\x08\x07")  # id echoed
        self.assertIn(b"\x52", payload)             # status body present
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)


def _recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise AssertionError("connection closed early")
        data += chunk
    return data


class AbsoluteFormTest(lwtest.CollectorTestCase):
    """A server must accept a request target that is a whole URL (RFC 9112
    3.2.2): an HTTP proxy client sends one, e.g. curl -x to an http:// URL."""

    providers = ("openai",)

    def setUp(self):
        # Anthropic's upstream is a dead port: what answers tells which
        # provider the request went to (a 502, where the sim answers 200).
        self.config_extra = f"\n[provider.anthropic]\nupstream = https://127.0.0.1:{lwtest.free_port()}\n"
        super().setUp()

    def test_proxy_client_on_listen_address(self):
        lp = self.collector.listen_port()
        out = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "--proxy", f"http://127.0.0.1:{lp}",
             "http://api.openai.com" + CHAT, "-H", "authorization: Bearer k",
             "-H", "content-type: application/json", "-d", json.dumps(CHAT_BODY)],
            capture_output=True, timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["object"], "chat.completion")

    def test_url_authority_wins_over_host(self):
        body = json.dumps(CHAT_BODY).encode()
        for target, host, shape in (
                (b"http://api.anthropic.com" + CHAT.encode(), b"api.openai.com", "anthropic"),
                (b"https://api.openai.com" + CHAT.encode(), b"api.anthropic.com", "openai")):
            with self.subTest(target=target):
                with socket.create_connection(("127.0.0.1", self.collector.listen_port()),
                                              DEFAULT_TIMEOUT) as s:
                    s.sendall(b"POST " + target + b" HTTP/1.1\r\nhost: " + host +
                              b"\r\nauthorization: Bearer k\r\ncontent-type: application/json"
                              b"\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body) +
                              body)
                    status, _, answer = read_http_response(s.makefile("rb"))
                got = json.loads(answer)
                if shape == "anthropic":
                    self.assertEqual(status, 502)
                    self.assertIn("api.anthropic.com", got["error"]["message"])
                else:
                    self.assertEqual(status, 200)
                    self.assertEqual(got["object"], "chat.completion")

    def raw(self, request):
        with socket.create_connection(("127.0.0.1", self.collector.listen_port()),
                                      DEFAULT_TIMEOUT) as s:
            s.sendall(request)
            return read_http_response(s.makefile("rb"))

    def test_other_hosts_are_misdirected_not_forwarded(self):
        # A program with http_proxy set to the listen address sends every
        # plain-HTTP call here, with its credentials: none may reach a provider.
        for target in (b"http://llm-gateway.internal.example:8080/v1/models",
                       b"http://127.0.0.1:9/v1/chat/completions"):
            with self.subTest(target=target):
                status, _, body = self.raw(
                    b"GET " + target + b" HTTP/1.1\r\nhost: x\r\n"
                    b"authorization: Bearer sk-internal\r\nconnection: close\r\n\r\n")
                self.assertEqual(status, 421)
                self.assertIn("only to LLM provider hosts", json.loads(body)["error"]["message"])
        # On a provider's own TLS connection, another provider is misdirected too.
        s = raw_tls(self.collector)
        s.sendall(b"GET https://api.anthropic.com/v1/models HTTP/1.1\r\nhost: api.openai.com"
                  b"\r\nconnection: close\r\n\r\n")
        self.assertEqual(read_http_response(s.makefile("rb"))[0], 421)
        s.close()
        self.assertEqual(self.sim.stats()["requests"], 0)

    def test_url_without_path_means_slash(self):
        with socket.create_connection(("127.0.0.1", self.collector.listen_port()),
                                      DEFAULT_TIMEOUT) as s:
            s.sendall(b"GET http://api.openai.com?x=1 HTTP/1.1\r\nhost: api.openai.com\r\n"
                      b"connection: close\r\n\r\n")
            status, _, _ = read_http_response(s.makefile("rb"))
        self.assertEqual(status, 404)  # the sim's: it has no "/"
        self.assertEqual(self.sim.stats()["by_path"], {"/": 1})


class TargetFormTest(lwtest.CollectorTestCase):
    """The path the collector judges (endpoint, budgets) is the one the
    provider gets: forms a server normalises into another path are refused,
    never rewritten or passed on."""

    providers = ("openai",)

    def test_unnormalised_targets_are_400(self):
        for target in ("/v1/chat/completions/x/..", "/v1/a/../chat/completions",
                       "/v1/./chat/completions", "/v1/chat/completion%73",
                       "/v1/chat/%63ompletions", "/v1/chat/completions#frag",
                       "/../../other/v1/chat/completions"):
            with self.subTest(target=target):
                status, _, body = self.post("openai", target, CHAT_BODY)
                self.assertEqual(status, 400)
                self.assertIn("request target", json.loads(body)["error"]["message"])
        self.assertEqual(self.sim.stats()["requests"], 0)
        # Encoded characters that are not letters or digits are no trick.
        status, _, _ = self.post("openai", "/v1/chat/completions?user=a%20b", CHAT_BODY)
        self.assertEqual(status, 200)
        self.assertEqual(self.sim.stats()["by_path"], {CHAT: 1})

    def test_websocket_upgrade_is_refused_plainly(self):
        s = raw_tls(self.collector)
        s.sendall(b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nhost: api.openai.com\r\n"
                  b"connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n"
                  b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        status, _, body = read_http_response(s.makefile("rb"))
        s.close()
        self.assertEqual(status, 501)
        self.assertIn("WebSocket", json.loads(body)["error"]["message"])
        self.assertEqual(self.sim.stats()["requests"], 0)

    def test_cut_answer_to_http10_client_has_no_close_notify(self):
        # An HTTP/1.0 answer without a length ends at close: a close_notify
        # would make a cut one look whole (RFC 9112, 9.8).
        s = raw_tls(self.collector, strict_eof=True)
        send_chat_stream(s, b"fault=drop;drop_after=2", version=b"1.0")
        data = b""
        with self.assertRaisesRegex(ssl.SSLError, "UNEXPECTED_EOF"):
            while chunk := s.recv(65536):
                data += chunk
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        self.assertNotIn(b"[DONE]", data)


class LimitsTest(lwtest.CollectorTestCase):
    providers = ("openai",)
    config_extra = ("\n[collector]\nmax_body = 2KiB\nheader_timeout = 300ms\n"
                    "idle_timeout = 400ms\nmax_headers = 16\n")

    def test_body_cap_is_413(self):
        big = dict(CHAT_BODY, messages=[{"role": "user", "content": "x" * 4000}])
        status, _, body = self.post("openai", CHAT, big)
        self.assertEqual(status, 413)
        self.assertIn("max_body", json.loads(body)["error"]["message"])
        # Chunked bodies hit the same cap.
        conn = self.via("openai")
        conn.putrequest("POST", CHAT)
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        for _ in range(10):
            conn.send(b"400\r\n" + b"y" * 1024 + b"\r\n")
        self.assertEqual(conn.getresponse().status, 413)
        conn.close()

    def test_client_still_sending_a_refused_body_reads_the_413(self):
        """The 413 goes out as soon as the length is known, while the client
        is still sending 4 MiB. The collector then reads and drops the rest
        rather than close into it: that would reset the connection, and
        the client (which reads only once it has sent everything) would get
        a connection error instead of the answer."""
        conn = self.via("openai")
        conn.request("POST", CHAT, body=b"x" * (4 << 20),
                     headers={"content-type": "application/json",
                              "authorization": "Bearer sk-test"})
        r = conn.getresponse()
        self.assertEqual(r.status, 413)
        self.assertIn("max_body", json.loads(r.read())["error"]["message"])
        conn.close()
        # The collector keeps serving.
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)

    def test_header_count_cap_is_431(self):
        status, _, _ = self.post("openai", CHAT, CHAT_BODY, {f"x-{i}": "v" for i in range(20)})
        self.assertEqual(status, 431)

    def test_slow_head_is_408(self):
        s = raw_tls(self.collector)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: api.openai.com\r\n")
        start = time.monotonic()
        status, headers, _ = read_http_response(s.makefile("rb"))
        self.assertEqual(status, 408)
        self.assertLess(time.monotonic() - start, 5)
        s.close()

    def test_client_that_stops_reading_is_cut(self):
        # It holds the paused upstream transfer (and a budget's reservation)
        # for as long as it stays: after idle_timeout without taking a byte
        # the answer is cut and booked, as nginx's send_timeout does.
        s = raw_tls(self.collector, rcvbuf=4096)
        self.addCleanup(s.close)
        send_chat_stream(s, b"words=100000")
        self.assertTrue(s.recv(1024).startswith(b"HTTP/1.1 200"))
        status = lambda: lwtest.ipc_status(self.home)["counters"]
        wait_for(lambda: status()["requests_active"] == 0, timeout=DEFAULT_TIMEOUT,
                 what="the stuck client's answer cut")
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)

    def test_idle_keep_alive_connection_is_closed(self):
        s = raw_tls(self.collector)
        s.settimeout(5)
        start = time.monotonic()
        self.assertEqual(s.recv(10), b"")  # EOF from the collector
        self.assertGreater(time.monotonic() - start, 0.3)
        s.close()


class LargeMaxBodyTest(lwtest.CollectorTestCase):
    """max_body raised far (for big uploads): the length a client announces
    is not memory the collector takes before the body comes."""

    providers = ("openai",)
    config_extra = "\n[collector]\nmax_body = 1000000000000000\n"  # about 900 TiB

    def test_announced_length_is_not_allocated_up_front(self):
        s = raw_tls(self.collector)
        self.addCleanup(s.close)
        # More than a 47-bit address space holds: allocated whole, it
        # aborted the collector.
        s.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: api.openai.com\r\n"
                  b"authorization: Bearer k\r\ncontent-length: 300000000000000\r\n\r\n{")
        # That head is in before this connection opens, so it has been read
        # by the time this request is answered.
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)
        self.assertIsNone(self.collector.proc.poll())
        # The first connection still waits for its body.
        wait_for(lambda: lwtest.ipc_status(self.home)["counters"]["connections_active"] == 1,
                 what="the second connection closed")


class BackpressureTest(lwtest.CollectorTestCase):
    providers = ("openai",)
    # ASan keeps freed memory in its quarantine: without that off, RSS
    # would measure the quarantine, not the collector's buffering.
    collector_env = {"ASAN_OPTIONS": "quarantine_size_mb=0:detect_leaks=0"} \
        if lwtest.SANITIZED else {}

    def rss_kib(self):
        with open(f"/proc/{self.collector.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def test_slow_client_pauses_upstream(self):
        # A stream of ~20 MB; a client that reads nothing for a while must not
        # make the collector buffer it.
        s = raw_tls(self.collector)
        send_chat_stream(s, b"words=100000")
        baseline = self.rss_kib()
        s.recv(1024)
        # Give the simulator time to push what it can into the pipe.
        deadline = time.monotonic() + 3
        peak = 0
        while time.monotonic() < deadline:
            peak = max(peak, self.rss_kib())
            time.sleep(0.1)
        self.assertLess(peak - baseline, 8 * 1024, "collector buffered a stalled response")
        total = 1024
        while total < 15_000_000:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        s.close()
        self.assertGreater(total, 15_000_000)


BOUNDARY = b"lwtestboundary7d1c"


def multipart_pieces(size, seed=1):
    """A multipart/form-data file upload of about `size` bytes, as 1 MiB
    pieces (pseudo-random, so a moved or lost byte changes the hash)."""
    import random
    rng = random.Random(seed)
    yield (b"--" + BOUNDARY + b"\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\n"
           b"batch\r\n--" + BOUNDARY + b"\r\ncontent-disposition: form-data; name=\"file\"; "
           b"filename=\"in.jsonl\"\r\ncontent-type: application/octet-stream\r\n\r\n")
    left = size
    while left > 0:
        n = min(left, 1 << 20)
        yield rng.randbytes(n)
        left -= n
    yield b"\r\n--" + BOUNDARY + b"--\r\n"


def multipart_length(size):
    return sum(len(p) for p in multipart_pieces(0)) + size


UPLOAD_HEADERS = {"authorization": "Bearer sk-test",
                  "content-type": "multipart/form-data; boundary=" + BOUNDARY.decode()}


def upload_head(length=None, sim=None, path=b"/v1/files"):
    head = (b"POST " + path + b" HTTP/1.1\r\nhost: api.openai.com\r\n"
            b"authorization: Bearer k\r\ncontent-type: multipart/form-data; boundary=" +
            BOUNDARY + b"\r\n")
    if sim is not None:
        head += b"x-sim: " + sim + b"\r\n"
    if length is None:
        return head + b"transfer-encoding: chunked\r\n\r\n"
    return head + b"content-length: %d\r\n\r\n" % length


class StreamedUploadTest(lwtest.CollectorTestCase):
    """A body nothing in the collector reads (a file upload) streams to the
    provider as it arrives: no max_body, memory bounded by a queue, and
    every way an upload can end handled."""

    providers = ("openai",)
    collector_env = {"ASAN_OPTIONS": "quarantine_size_mb=0:detect_leaks=0"} \
        if lwtest.SANITIZED else {}

    def llmctl_rows(self):
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json"],
                             capture_output=True, text=True,
                             env=dict(os.environ, LLMWRAP_HOME=self.home),
                             timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def upload(self, conn, size, chunked=False):
        """Sends a multipart upload of `size` file bytes; returns its
        length and SHA-256 as sent."""
        import hashlib
        digest = hashlib.sha256()
        total = 0
        conn.putrequest("POST", "/v1/files")
        for k, v in UPLOAD_HEADERS.items():
            conn.putheader(k, v)
        if chunked:
            conn.putheader("transfer-encoding", "chunked")
        else:
            conn.putheader("content-length", str(multipart_length(size)))
        conn.endheaders()
        for piece in multipart_pieces(size):
            digest.update(piece)
            total += len(piece)
            if chunked:  # uneven chunks, some split across pieces
                for i in range(0, len(piece), 70001):
                    part = piece[i:i + 70001]
                    conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            else:
                conn.send(piece)
        if chunked:
            conn.send(b"0\r\n\r\n")
        return total, digest.hexdigest()

    def test_large_upload_arrives_byte_identical_in_bounded_memory(self):
        # 100 MB: three times the default max_body, which buffered bodies
        # still have. The collector's peak memory grows by far less.
        pid = self.collector.proc.pid
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)
        before = proc_kib(pid, "VmRSS")
        conn = self.via("openai", timeout=120)
        size, sha = self.upload(conn, 100 << 20)
        r = conn.getresponse()
        answer = json.loads(r.read())
        self.assertEqual(r.status, 200, answer)
        self.assertEqual((answer["bytes"], answer["sha256"]), (size, sha))
        peak = proc_kib(pid, "VmHWM")
        self.assertLess(peak - before, 64 * 1024, "the collector held the upload in memory")
        # The connection stays open for the next request.
        conn.request("POST", CHAT, body=json.dumps(CHAT_BODY),
                     headers={"authorization": "Bearer sk-test",
                              "content-type": "application/json"})
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        conn.close()
        uploads = [row for row in self.llmctl_rows() if row.get("endpoint") == "other"]
        self.assertEqual(len(uploads), 1, uploads)
        self.assertEqual(uploads[0]["status"], 200)

    def test_chunked_upload_arrives_byte_identical(self):
        conn = self.via("openai")
        size, sha = self.upload(conn, 5 << 20, chunked=True)
        r = conn.getresponse()
        answer = json.loads(r.read())
        conn.close()
        self.assertEqual(r.status, 200, answer)
        self.assertEqual((answer["bytes"], answer["sha256"]), (size, sha))

    def test_request_pipelined_after_a_streamed_body(self):
        body = b"".join(multipart_pieces(300_000))
        chat = json.dumps(CHAT_BODY).encode()
        s = raw_tls(self.collector)
        s.sendall(upload_head(len(body)) + body +
                  b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: api.openai.com\r\n"
                  b"authorization: Bearer k\r\ncontent-type: application/json\r\n"
                  b"x-sim: words=5\r\ncontent-length: %d\r\n\r\n%s" % (len(chat), chat))
        f = s.makefile("rb")
        first, second = read_http_response(f), read_http_response(f)
        s.close()
        self.assertEqual(first[0], 200)
        self.assertEqual(json.loads(first[2])["bytes"], len(body))
        self.assertEqual(second[0], 200)
        self.assertEqual(json.loads(second[2])["usage"]["completion_tokens"], 5)

    def test_client_leaving_mid_upload_aborts_the_upstream_transfer(self):
        s = raw_tls(self.collector)
        s.sendall(upload_head(50 << 20))
        piece = b"z" * (1 << 20)
        for _ in range(8):
            s.sendall(piece)
        s.close()
        wait_for(lambda: self.sim.stats()["uploads"]["aborted"] == 1,
                 what="the sim sees the upload aborted")
        self.assertLess(self.sim.stats()["uploads"]["aborted_bytes"], 50 << 20)
        self.assertEqual(self.sim.stats()["uploads"]["completed"], 0)
        status = lambda: lwtest.ipc_status(self.home)["counters"]
        wait_for(lambda: status()["requests_active"] == 0, what="the upload's exchange ended")
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)
        uploads = [row for row in self.llmctl_rows() if row.get("endpoint") == "other"]
        self.assertEqual(len(uploads), 1, uploads)

    def test_early_answer_is_delivered_then_the_connection_closes(self):
        # The provider refuses the upload (a 401) before its body is all
        # there: the client reads that answer, not a reset or a 502.
        s = raw_tls(self.collector)
        body = b"".join(multipart_pieces(20 << 20))
        data = upload_head(len(body), sim=b"status=401") + body
        got = pump_tls(s, data, lambda b: len(complete_responses(b)) > 0)
        s.close()
        status, headers, answer = complete_responses(got)[0]
        self.assertEqual(status, 401, answer)
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)
        status = lambda: lwtest.ipc_status(self.home)["counters"]
        wait_for(lambda: status()["requests_active"] == 0, what="the upload's exchange ended")

    def test_json_body_to_a_free_endpoint_is_still_buffered(self):
        # Only bodies nothing reads stream: JSON keeps max_body.
        self.collector.stop()
        write_cfg = lwtest.sim_config(self.sim, self.providers, "[collector]\nmax_body = 1KiB\n")
        lwtest.write_config(self.home, write_cfg)
        self.collector.start()
        big = {"name": "x" * 4000}
        self.assertEqual(self.post("openai", "/v1/vector_stores", big)[0], 413)
        body = b"".join(multipart_pieces(4000))
        status, _, answer = self.post("openai", "/v1/files", body, UPLOAD_HEADERS)
        self.assertEqual(status, 200, answer)
        self.assertEqual(json.loads(answer)["bytes"], len(body))


class StreamedUploadLimitsTest(lwtest.CollectorTestCase):
    providers = ("openai",)
    config_extra = "\n[collector]\nidle_timeout = 400ms\n"

    def test_stalled_streamed_body_is_408(self):
        s = raw_tls(self.collector)
        s.sendall(upload_head(100_000) + b"x" * 1000)
        status, headers, _ = read_http_response(s.makefile("rb"))
        s.close()
        self.assertEqual(status, 408)
        wait_for(lambda: self.sim.stats()["uploads"]["aborted"] == 1,
                 what="the sim sees the upload aborted")
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)


class StreamedUploadExpectTest(lwtest.CollectorTestCase):
    """A client that asks to wait (Expect: 100-continue) is told to go on
    only when the upload is wanted: a refused one is never sent."""

    providers = ("openai",)
    config_extra = "\n[guard.once]\ntype = rate\nthreshold = 1\nwindow = 1h\naction = block\n"

    def expect_upload(self):
        s = raw_tls(self.collector)
        head = upload_head(100_000)
        s.sendall(head[:-2] + b"expect: 100-continue\r\n\r\n")
        return s, s.makefile("rb")

    def test_go_ahead_only_when_the_body_is_wanted(self):
        s, f = self.expect_upload()
        self.assertEqual(f.readline(), b"HTTP/1.1 100 Continue\r\n")
        self.assertEqual(f.readline(), b"\r\n")
        s.sendall(b"x" * 100_000)
        self.assertEqual(read_http_response(f)[0], 200)
        s.close()
        # The guard refuses the second: its answer comes first, no go-ahead.
        s, f = self.expect_upload()
        status, headers, body = read_http_response(f)
        s.close()
        self.assertEqual(status, 429, body)
        self.assertIn(b"guard 'once'", body)


class StreamedUploadEarlyAnswerTest(unittest.TestCase):
    """A provider that answers an upload early (a 401 before the body) and
    keeps its connection open: the client, having sent part of the body
    and waiting, gets the whole answer at once. The answer's last byte
    waited for the transfer's end, which libcurl held back while the upload
    was paused on an empty queue: the client waited [collector]
    idle_timeout (75 s), then got a cut answer."""

    SENT = 1000

    def setUp(self):
        import http.server
        import threading

        released = threading.Event()
        sent = self.SENT

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(sent)  # all the client sends
                body = b'{"error":{"message":"bad key","type":"invalid_request_error"}}'
                self.send_response(401)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                released.wait(DEFAULT_TIMEOUT)  # reads nothing more, closes nothing
                self.close_connection = True

            def log_message(self, *args):
                pass

        lwtest.start_scripted_upstream(self, Handler)
        self.addCleanup(released.set)

    def test_early_answer_reaches_a_waiting_client(self):
        s = raw_tls(self.collector, timeout=10)
        s.sendall(upload_head(1 << 20) + b"x" * self.SENT)
        status, headers, body = read_http_response(s.makefile("rb"))
        s.close()
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(json.loads(body)["error"]["message"], "bad key")


class NagleClient(lwtest.HTTPSViaCollector):
    """http.client without TCP_NODELAY: like httpx (and so the OpenAI and
    Anthropic Python SDKs), it writes a request's head and body apart, and
    Nagle holds the body until the head is acknowledged."""

    def connect(self):
        sock = socket.create_connection(self._target, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class SplitWritesTest(lwtest.CollectorTestCase):
    """The collector acknowledges a request's head at once when its body is
    still to come. Linux otherwise delays the ACK by at least 40 ms, and a
    Nagle client's body waits for it: 40 ms added to every such request.
    The fastest of ten requests tells the two apart: a delayed ACK is a
    timer, so without the fix none of them can come in under 40 ms; with
    it, a busy machine would have to delay all ten."""

    headers = {"content-type": "application/json", "authorization": "Bearer sk-test"}

    def fastest(self, send):
        conn = NagleClient(self.collector, "openai")
        times = []
        try:
            for _ in range(12):
                start = time.monotonic()
                send(conn)
                r = conn.getresponse()
                body = r.read()
                times.append(time.monotonic() - start)
                self.assertEqual(r.status, 200, body)
        finally:
            conn.close()
        # The first requests of a connection are acknowledged at once anyway
        # (TCP's quick-ack start).
        return min(times[2:])

    def test_content_length_body(self):
        body = json.dumps(CHAT_BODY).encode()
        fastest = self.fastest(lambda c: c.request(
            "POST", CHAT, body=body, headers=self.headers))
        self.assertLess(fastest, 0.030)

    def test_chunked_body(self):
        body = json.dumps(CHAT_BODY).encode()
        fastest = self.fastest(lambda c: c.request(
            "POST", CHAT, body=iter([body[:20], body[20:]]),
            headers=self.headers, encode_chunked=True))
        self.assertLess(fastest, 0.030)


def proc_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


@unittest.skipIf(lwtest.SANITIZED, "ASan's allocator keeps its own free lists")
class ReleaseMemoryTest(lwtest.CollectorTestCase):
    """A long-running collector gives back what a burst used once it is
    quiet, instead of staying at the size of its busiest moment."""

    providers = ("openai",)
    # Long enough that the reading right after the burst comes first.
    config_extra = "[collector]\nrelease_memory_after = 1s\n"

    def burst(self):
        big = json.dumps(dict(CHAT_BODY, messages=[{"role": "user",
                                                     "content": "x" * 300_000}]))

        def client(i):
            conn = self.via("openai")
            try:
                for _ in range(4):
                    conn.request("POST", CHAT, body=big,
                                 headers={"authorization": "Bearer sk-test",
                                          "content-type": "application/json",
                                          # All 16 in flight at once, whatever the
                                          # machine's speed: the bodies overlap.
                                          "x-sim": "words=20000;delay_ms=300"})
                    r = conn.getresponse()
                    r.read()
                    self.assertEqual(r.status, 200)
            finally:
                conn.close()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(client, range(16)))

    def test_memory_of_a_burst_is_returned_when_quiet(self):
        pid = self.collector.proc.pid
        self.post("openai", CHAT, CHAT_BODY)
        before = proc_kib(pid, "RssAnon")
        self.burst()
        after_burst = proc_kib(pid, "RssAnon")
        grown = after_burst - before
        # Without growth there would be nothing to see: 16 × 300 KB request
        # bodies, buffered whole, leave MiBs free in glibc's arenas (2.5-8
        # MiB, depending on how glibc's mmap threshold moved meanwhile).
        self.assertGreater(grown, 2 * 1024, "the burst did not grow the heap")
        wait_for(lambda: proc_kib(pid, "RssAnon") < before + grown // 2, timeout=10,
                 what=f"private memory back near {before} KiB (was {after_burst} KiB)")


class UpstreamTrustReloadTest(lwtest.CollectorTestCase):
    """[upstream] ca_file follows a reload both ways. libcurl shares one
    parsed CA store between connections for 24 h, and anchors once added
    to it from a callback stayed trusted after a reload removed them (and
    anchors added by a reload were never used)."""

    providers = ("openai",)

    def reload(self, with_ca_file):
        config = lwtest.sim_config(self.sim, self.providers)
        if not with_ca_file:
            config = "\n".join(l for l in config.splitlines() if not l.startswith("ca_file"))
        before = self.collector.read_log().count("configuration reloaded")
        lwtest.write_config(self.home, config)
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.collector.read_log().count("configuration reloaded") > before,
                 what="reload")

    def status(self):
        return self.post("openai", CHAT, CHAT_BODY)[0]

    def test_ca_file_removed_and_added_by_reload(self):
        self.assertEqual(self.status(), 200)
        self.reload(with_ca_file=False)
        # The sim's CA is no longer trusted: its certificate fails to verify.
        self.assertEqual(self.status(), 502)
        # The trust file (system bundle + ca_file) goes with its last use.
        run_dir = os.path.join(self.home, "run")
        trust_files = lambda: [f for f in os.listdir(run_dir) if f.startswith("upstream-ca.")]
        self.assertEqual(trust_files(), [])
        self.reload(with_ca_file=True)
        self.assertEqual(self.status(), 200)
        self.assertEqual(len(trust_files()), 1)


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on a free loopback port: it tunnels to
    the address asked for, answering with a head of its own first."""

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.tunnels = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(c,), daemon=True).start()

    def _tunnel(self, c):
        with c:
            c.settimeout(DEFAULT_TIMEOUT)
            head = lwtest.read_head(c)
            if b"\r\n\r\n" not in head:
                return
            host, port = head.split(b"\r\n")[0].split()[1].decode().rsplit(":", 1)
            with socket.create_connection((host, int(port)), DEFAULT_TIMEOUT) as u:
                self.tunnels += 1
                c.sendall(b"HTTP/1.1 200 Connection established\r\nproxy-agent: test\r\n\r\n")
                socks = [c, u]
                while True:
                    ready, _, _ = select.select(socks, [], [], DEFAULT_TIMEOUT)
                    if not ready:
                        return
                    for x in ready:
                        data = x.recv(65536)
                        if not data:
                            return
                        (u if x is c else c).sendall(data)

    def close(self):
        self.sock.close()


class UpstreamProxyTest(lwtest.CollectorTestCase):
    """Through [upstream] proxy, the client gets the provider's head, not
    the proxy's answer to CONNECT (which libcurl reports as a head too)."""

    providers = ("openai",)

    def setUp(self):
        super().setUp()
        self.proxy = ConnectProxy()
        self.addCleanup(self.proxy.close)
        config = lwtest.sim_config(self.sim, self.providers).replace(
            "[upstream]\n", f"[upstream]\nproxy = http://127.0.0.1:{self.proxy.port}\n")
        lwtest.write_config(self.home, config)
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in self.collector.read_log(), what="reload")

    def test_provider_head_through_a_new_tunnel(self):
        status, headers, body = self.post("openai", CHAT, CHAT_BODY,
                                          {"x-sim": "fault=429;retry_after=7"})
        self.assertEqual(self.proxy.tunnels, 1)
        self.assertEqual(status, 429)
        self.assertEqual(headers.get("retry-after"), "7")
        self.assertNotIn("proxy-agent", headers)
        self.assertEqual(self.post("openai", CHAT, CHAT_BODY)[0], 200)


# Raw answers of UpstreamHeadTest's upstream: path -> bytes.
FRAMINGS = {
    "/v1/cl-disagree": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 12\r\n\r\n"
                       b"{}{\"x\":\"yz\"}",
    "/v1/cl-agree": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2 \r\n\r\n{}",
    "/v1/te-gzip": b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
                   b"2\r\n{}\r\n0\r\n\r\n",
}


class UpstreamHeadTest(unittest.TestCase):
    """What the collector makes of unusual upstream heads. The upstream is a
    local plain-HTTP server written here."""

    def setUp(self):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "1234")  # of the body a GET would get
                self.end_headers()

            def do_GET(self):
                if self.path == "/v1/trailers":
                    return self.chunked_with_trailers()
                if self.path in FRAMINGS:
                    self.wfile.write(FRAMINGS[self.path])
                    return
                n = 600 if self.path == "/v1/huge" else 5
                body = b"{}"
                self.send_response(200)
                for i in range(n):
                    self.send_header(f"x-h{i}", "v")
                if self.path == "/v1/odd":
                    self.send_header("x-fold", "a\r\n  b")  # obs-fold
                    self.send_header("x-cr", "foo\rx-injected: 1")
                    self.send_header("connection", "x-hop, keep-alive")
                    self.send_header("x-hop", "for the next hop only")
                    self.send_header("x-spaced ", "before the colon")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def chunked_with_trailers(self):
                # A head near the cap, then trailers: they are no part of it.
                self.send_response(200)
                for i in range(500):
                    self.send_header(f"x-h{i}", "v")
                self.send_header("transfer-encoding", "chunked")
                self.send_header("trailer", "x-t0")
                self.end_headers()
                self.wfile.write(b"2\r\n{}\r\n0\r\n" +
                                 b"".join(b"x-t%d: v\r\n" % i for i in range(20)) + b"\r\n")

            def log_message(self, *args):
                pass

        lwtest.start_scripted_upstream(self, Handler)

    def get(self, path):
        conn = lwtest.HTTPSViaCollector(self.collector, "openai")
        try:
            conn.request("GET", path, headers={"authorization": "Bearer k"})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def test_head_over_the_cap_is_a_shaped_502(self):
        # Not forwarded with fields cut off: an answer without its
        # content-type or request id would be wrong in silence.
        status, headers, body = self.get("/v1/huge")
        self.assertEqual(status, 502)
        self.assertIn("more than 512 lines", json.loads(body)["error"]["message"])
        # The collector keeps serving, and a normal head passes whole.
        status, headers, _ = self.get("/v1/small")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["x-h4"], "v")

    def test_fields_cleaned_as_a_proxy_must(self):
        status, headers, _ = self.get("/v1/odd")
        self.assertEqual(status, 200)
        # obs-fold and a bare CR become spaces (RFC 9112, 5.2 and 5.5): the
        # CR does not start a field of its own at the client.
        self.assertEqual(headers["x-fold"], "a b")
        self.assertEqual(headers["x-cr"], "foo x-injected: 1")
        self.assertNotIn("x-injected", headers)
        # A field the upstream's Connection names is hop-by-hop.
        self.assertNotIn("x-hop", headers)
        self.assertNotIn("connection", headers)
        self.assertEqual(headers["content-type"], "application/json")
        # Blanks before the colon go (RFC 9112, 5.1).
        self.assertEqual(headers["x-spaced"], "before the colon")
        self.assertNotIn("x-spaced ", headers)

    def test_framing_that_cannot_be_passed_on_is_a_shaped_502(self):
        # The collector re-frames the body: with lengths that disagree, or a
        # coding it would pass on unlabelled, the client would get an answer
        # other than the provider's (RFC 9112, 6.3). nginx answers 502 too.
        for path, why in (("/v1/cl-disagree", "Content-Length fields that disagree"),
                          ("/v1/te-gzip", "transfer coding other than chunked")):
            with self.subTest(path=path):
                status, _, body = self.get(path)
                self.assertEqual(status, 502)
                self.assertIn(why, json.loads(body)["error"]["message"])
        self.assertEqual(self.get("/v1/cl-agree")[::2], (200, b"{}"))

    def test_trailers_do_not_count_against_the_head_cap(self):
        self.addCleanup(setattr, http.client, "_MAXHEADERS", http.client._MAXHEADERS)
        http.client._MAXHEADERS = 1000  # the client's own cap is 100
        status, headers, body = self.get("/v1/trailers")
        self.assertEqual((status, body), (200, b"{}"))
        self.assertEqual(headers["x-h499"], "v")

    def test_head_with_an_empty_body_completes(self):
        # HEAD with Content-Length: 0 (some clients send it): the answer
        # describes a body it does not carry, and the connection goes on.
        conn = lwtest.HTTPSViaCollector(self.collector, "openai")
        self.addCleanup(conn.close)
        conn.request("HEAD", "/v1/small", headers={"authorization": "Bearer k",
                                                    "content-length": "0"})
        r = conn.getresponse()
        self.assertEqual((r.status, r.getheader("content-length"), r.read()), (200, "1234", b""))
        conn.request("GET", "/v1/small", headers={"authorization": "Bearer k"})
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"{}"))


class UpstreamBreakAfterTheEndTest(unittest.TestCase):
    """A provider whose connection breaks (or goes silent past
    stall_timeout) after the last event of a stream, before the chunked
    terminator: the answer is cut, but every event the provider sent
    reaches the client, the last one too (held back only until the row was
    recorded), and the row has the usage it carried."""

    EVENTS = (b'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini",'
              b'"choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}\n\n'
              b'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini",'
              b'"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,'
              b'"total_tokens":18}}\n\n'
              b"data: [DONE]\n\n")

    def setUp(self):
        import http.server
        events = self.EVENTS

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", "0")))
                lwtest.write_sse_chunk(self.wfile, events)
                self.wfile.flush()
                if self.headers.get("x-end") == "stall":
                    # Silent until the collector gives up on it.
                    select.select([self.connection], [], [], DEFAULT_TIMEOUT)
                self.close_connection = True  # no "0\r\n\r\n"

            def log_message(self, *args):
                pass

        lwtest.start_scripted_upstream(self, Handler)

    def test_last_event_reaches_the_client_before_the_cut(self):
        self.check_cut_after_the_end(b"close")

    def test_last_event_reaches_the_client_before_a_stall_cut(self):
        with open(os.path.join(self.home, "config.ini"), "a") as f:
            f.write("[upstream]\nstall_timeout = 300ms\n")
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in self.collector.read_log(),
                 what="the reload")
        self.check_cut_after_the_end(b"stall")

    def check_cut_after_the_end(self, end):
        s = raw_tls(self.collector)
        self.addCleanup(s.close)
        body = json.dumps(dict(CHAT_BODY, stream=True,
                               stream_options={"include_usage": True})).encode()
        s.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: api.openai.com\r\n"
                  b"authorization: Bearer k\r\nx-end: " + end + b"\r\n"
                  b"content-length: %d\r\n\r\n%s" % (len(body), body))
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:100])
        self.assertIn(b"data: [DONE]\n\n", got)
        self.assertFalse(got.endswith(b"0\r\n\r\n"), got[-40:])  # still cut
        out = subprocess.run([lwtest.binary("LLMCTL"), "requests", "--json", "--limit", "1"],
                             capture_output=True, text=True, timeout=DEFAULT_TIMEOUT,
                             env=dict(os.environ, LLMWRAP_HOME=self.home))
        row = json.loads(out.stdout)[0]
        self.assertEqual((row["input_tokens"], row["output_tokens"], row["partial"]),
                         (11, 7, True))


class Http2UpstreamTest(unittest.TestCase):
    """A provider that offers HTTP/2 gets it: nghttpd (Debian's nghttp2
    server) with TLS from the simulated provider's certificate, echoing
    uploads, stands in for the provider."""

    def setUp(self):
        nghttpd = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
        if not os.path.exists(nghttpd):
            self.skipTest("nghttpd (Debian nghttp2-server) is not installed")
        import tempfile
        self.workdir = tempfile.mkdtemp(prefix="lw-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.sim = lwtest.Sim(self.workdir)  # for its CA and certificate only
        self.addCleanup(self.sim.stop)
        docs = os.path.join(self.workdir, "docs")
        os.makedirs(os.path.join(docs, "v1"))
        self.models = json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini"}]}).encode()
        with open(os.path.join(docs, "v1", "models"), "wb") as f:
            f.write(self.models)
        port = lwtest.free_port()
        self.h2 = subprocess.Popen(
            [nghttpd, "--echo-upload", "--htdocs", docs, "--address", "127.0.0.1", str(port),
             os.path.join(self.sim.dir, "sim-server.key"),
             os.path.join(self.sim.dir, "sim-server.pem")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.h2.wait, 10)
        self.addCleanup(self.h2.terminate)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return True
            except OSError:
                return False

        wait_for(listening, what="nghttpd")
        self.home = os.path.join(self.workdir, "home")
        lwtest.write_config(self.home, f"[upstream]\nca_file = {self.sim.ca_file}\n"
                                       f"[provider.openai]\nupstream = https://127.0.0.1:{port}\n")
        self.collector = lwtest.Collector(self.home).start()
        self.addCleanup(self.collector.stop)

    def test_requests_go_upstream_over_http2(self):
        conn = lwtest.HTTPSViaCollector(self.collector, "openai")
        conn.request("GET", "/v1/models", headers={"authorization": "Bearer k"})
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, self.models))
        # A body goes up, and comes back, byte for byte (nghttpd echoes it).
        body = json.dumps(dict(CHAT_BODY, messages=[{"role": "user", "content": "x" * 70000}]))
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"authorization": "Bearer k", "content-type": "application/json"})
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, body.encode()))
        conn.close()
        self.collector.stop()
        log = self.collector.read_log()
        self.assertEqual(log.count("upstream HTTP/2"), 2, log)

    def test_streamed_upload_over_http2(self):
        # A file upload streams through the collector's bounded queue, the
        # upload pausing and resuming many times, as DATA frames.
        data = os.urandom(8 * 1024 * 1024)
        conn = lwtest.HTTPSViaCollector(self.collector, "openai")
        for chunked in (False, True):
            headers = {"authorization": "Bearer k",
                       "content-type": "multipart/form-data; boundary=x"}
            if chunked:
                headers["transfer-encoding"] = "chunked"
                body = (data[i:i + 65536] for i in range(0, len(data), 65536))
            else:
                body = data
            conn.request("POST", "/v1/files", body=body, headers=headers,
                         encode_chunked=chunked)
            r = conn.getresponse()
            echoed = r.read()
            self.assertEqual(r.status, 200)
            self.assertEqual(hashlib.sha256(echoed).hexdigest(),
                             hashlib.sha256(data).hexdigest(), chunked)
        conn.close()


class ConfigErrorTest(unittest.TestCase):

    def test_bad_config_exits_2_naming_file_line_key(self):
        import tempfile
        home = tempfile.mkdtemp(prefix="lw-", dir="/tmp")
        lwtest.write_config(home, "[collector]\nport = 1\nmax_bodyy = 5\n")
        out = subprocess.run([lwtest.binary("LLM_COLLECTOR")], capture_output=True, text=True,
                             env=dict(os.environ, LLMWRAP_HOME=home), timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 2)
        self.assertIn(os.path.join(home, "config.ini") + ":3:", out.stderr)
        self.assertIn("max_bodyy", out.stderr)

    def check_config(self, text, args=("--check-config",)):
        """Runs llm-collector `args` on `text` in a fresh home; returns (exit
        status, stderr, the config file's path). Without --check-config, a
        text the collector starts with runs until the timeout."""
        import tempfile
        home = tempfile.mkdtemp(prefix="lw-")
        self.addCleanup(shutil.rmtree, home, ignore_errors=True)
        lwtest.write_config(home, text)
        out = subprocess.run([lwtest.binary("LLM_COLLECTOR"), *args],
                             capture_output=True, text=True,
                             env=dict(os.environ, LLMWRAP_HOME=home), timeout=DEFAULT_TIMEOUT)
        return out.returncode, out.stderr, os.path.join(home, "config.ini")

    def test_check_config_refuses_what_the_collector_cannot_start_with(self):
        # Each passed --check-config, then the collector refused to start,
        # exit 1, naming neither the line nor the key.
        port = lwtest.free_port()
        cases = [
            ("ca_file a directory", "[upstream]\nca_file = .\n",
             "for key 'ca_file' in [upstream]: expected a readable PEM file"),
            ("ca_file not PEM", "[upstream]\nca_file = config.ini\n",
             "for key 'ca_file' in [upstream]: expected a PEM file of certificates"),
            ("listen twice", f"[collector]\nlisten = 127.0.0.1:{port}, 127.0.0.1:{port}\n",
             "bad value for key 'listen' in [collector]"),
            ("IP address host", "[provider.acme]\nhost = 10.0.0.1\n",
             "[provider.acme] host: '10.0.0.1' is not a valid host name"),
        ]
        for name, text, message in cases:
            for args in (("--check-config",), ()):
                with self.subTest(name, args=args):
                    rc, err, config = self.check_config(text, args)
                    self.assertEqual(rc, 2, err)
                    self.assertIn(f"{config}:2: ", err)
                    self.assertIn(message, err)

    def test_config_examples_in_the_docs_pass_check_config(self):
        # README.md's example put comments after values, which a key file
        # does not have: a user who copied it had it refused. Every ```ini
        # block of the docs is checked as it stands, but for the absolute
        # paths it names (ca_file), which become a real PEM file.
        import glob
        import re
        import tempfile
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        docs = [os.path.join(root, "README.md"),
                *sorted(glob.glob(os.path.join(root, "docs", "*.md"))),
                *sorted(glob.glob(os.path.join(root, "data", "*.md")))]
        blocks = []
        for doc in docs:
            with open(doc) as f:
                text = f.read()
            for m in re.finditer(r"^```ini\n(.*?)^```", text, re.M | re.S):
                line = text.count("\n", 0, m.start()) + 2
                blocks.append((f"{os.path.relpath(doc, root)}:{line}", m.group(1)))
        self.assertIn("README.md", " ".join(where for where, _ in blocks))
        workdir = tempfile.mkdtemp(prefix="lw-")
        self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
        sim = lwtest.Sim(workdir)  # for its CA certificate
        self.addCleanup(sim.stop)
        for where, block in blocks:
            with self.subTest(where):
                block = re.sub(r"^(\s*[\w.-]+\s*=\s*)/.*$",
                               lambda m: m.group(1) + sim.ca_file, block, flags=re.M)
                rc, err, _ = self.check_config(block)
                self.assertEqual(rc, 0, f"{where}:\n{block}\n{err}")

    def test_zero_durations_and_sizes_are_refused(self):
        # A timer of 0 (or of less than the 1 ms the timers count, which
        # became 0) fired at once: the collector started and failed every
        # request. release_memory_after = 0 means never.
        for section, key, value in [("collector", "header_timeout", "0"),
                                    ("collector", "idle_timeout", "0"),
                                    ("upstream", "first_byte_timeout", "0.0001"),
                                    ("collector", "max_body", "0")]:
            with self.subTest(key=key):
                rc, err, config = self.check_config(f"[{section}]\n\n{key} = {value}\n")
                self.assertEqual(rc, 2, err)
                self.assertIn(f"{config}:3: bad value '{value}' for key '{key}'", err)
        rc, err, _ = self.check_config("[collector]\nrelease_memory_after = 0\n")
        self.assertEqual(rc, 0, err)

    def test_price_overrides_are_checked_against_the_price_table(self):
        # Keys an override does not give keep the table's values; a model the
        # table lacks needs input and output, which --check-config checks
        # too, as a bad configuration named by file, line and key.
        import tempfile
        home = tempfile.mkdtemp(prefix="lw-")
        self.addCleanup(shutil.rmtree, home, ignore_errors=True)
        config = os.path.join(home, "config.ini")
        env = dict(os.environ, LLMWRAP_HOME=home)

        def collector(*args):
            return subprocess.run([lwtest.binary("LLM_COLLECTOR"), *args], capture_output=True,
                                  text=True, env=env, timeout=DEFAULT_TIMEOUT)

        lwtest.write_config(home, "[price.gpt-4o-mini]\ncached_input = 0.05\n")
        out = collector("--check-config")
        self.assertEqual(out.returncode, 0, out.stderr)
        lwtest.write_config(home, "[budget]\nclamp_floor = 64\n\n[price.brand-new]\ninput = 1\n")
        for args in (["--check-config"], []):
            with self.subTest(args=args):
                out = collector(*args)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(f"{config}:4: key 'output' missing in [price.brand-new]",
                              out.stderr)

    def test_second_collector_refuses_to_start(self):
        import tempfile
        home = tempfile.mkdtemp(prefix="lw-", dir="/tmp")
        first = lwtest.Collector(home).start()
        try:
            out = subprocess.run([lwtest.binary("LLM_COLLECTOR")], capture_output=True,
                                 text=True, env=dict(os.environ, LLMWRAP_HOME=home),
                                 timeout=DEFAULT_TIMEOUT)
            self.assertEqual(out.returncode, 3)
            self.assertIn("already running", out.stderr)
        finally:
            self.assertEqual(first.stop(), 0)


if __name__ == "__main__":
    unittest.main()
