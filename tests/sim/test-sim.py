#!/usr/bin/python3
"""Tests of the simulated LLM provider (llm-sim), over real TLS.

Usage: test-sim.py PATH-TO-llm-sim   (or LLM_SIM=PATH in the environment)

Expected numbers are computed from the formulas in tests/sim/README.md, so a
change to the sim's documented behaviour fails here.
"""

import concurrent.futures
import gzip
import http.client
import json
import math
import os
import shutil
import signal
import socket
import ssl
import struct
import base64
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

SIM = None
PORT = None
CTX = None
TMP = None
PROC = None

DEFAULT_WORDS = ("Hello from the simulated provider. It answers every request with the same "
                 "words. Token counts follow simple rules so tests can predict them. Nothing "
                 "here comes from a real model.").split(" ")
AUTH = {"authorization": "Bearer sk-test-secret"}


def words(n):
    return " ".join(DEFAULT_WORDS[i % len(DEFAULT_WORDS)] for i in range(n))


def wait_for_file(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        time.sleep(0.02)
    raise TimeoutError(path)


def start_sim(cert_dir, ready, stderr=subprocess.PIPE):
    proc = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--cert-dir", cert_dir,
                             "--ready-file", ready],
                            stdout=subprocess.PIPE, stderr=stderr)
    try:
        port = int(wait_for_file(ready))
    except TimeoutError:
        stop(proc)
        raise
    return proc, port


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for f in (proc.stdout, proc.stderr):
        if f:
            f.close()


def setUpModule():
    global SIM, PORT, CTX, TMP, PROC
    SIM = sys.argv[1] if len(sys.argv) > 1 else os.environ["LLM_SIM"]
    TMP = tempfile.mkdtemp(prefix="llm-sim-test-")
    with open(os.path.join(TMP, "sim.stderr"), "wb") as err:
        PROC, PORT = start_sim(os.path.join(TMP, "certs"), os.path.join(TMP, "ready"), err)
    CTX = ssl.create_default_context(cafile=os.path.join(TMP, "certs", "sim-ca.pem"))


def tearDownModule():
    # A clean exit 0 on SIGTERM also means no sanitizer report in ASan builds.
    stop(PROC)
    with open(os.path.join(TMP, "sim.stderr"), "rb") as f:
        err = f.read().decode(errors="replace")
    shutil.rmtree(TMP, ignore_errors=True)
    if PROC.returncode != 0 or err:
        raise AssertionError(f"llm-sim exited {PROC.returncode}; stderr:\n{err}")


def connect(timeout=10):
    return http.client.HTTPSConnection("127.0.0.1", PORT, context=CTX, timeout=timeout)


def request(path, body=None, headers=None, method="POST", auth=True, conn=None):
    """Returns (status, headers dict (lowercase), body bytes, raw body length)."""
    own = conn is None
    conn = conn or connect()
    h = dict(AUTH) if auth else {}
    h.update(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault("content-type", "application/json")
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
    finally:
        if own:
            conn.close()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    return r.status, hdrs, raw


def ceil4(data):
    return math.ceil(len(data) / 4)


def sse(raw):
    """Parses an SSE byte stream into [(event or None, data)]; comments are
    returned as ('comment', text)."""
    text = raw.decode()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith(":"):
                out.append(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            out.append((event, "\n".join(data)))
    return out


def chat_body(model="gpt-4o-mini", stream=False, include_usage=None, prompt="hi", **extra):
    b = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        b["stream"] = True
    if include_usage is not None:
        b["stream_options"] = {"include_usage": include_usage}
    b.update(extra)
    return b


def raw_exchange(req_bytes, read_timeout=5.0):
    """Sends raw bytes over TLS and reads until EOF; returns (bytes, how) with
    how in 'eof', 'reset', 'timeout'."""
    # Connecting and the handshake get a generous bound (a loaded machine);
    # only the reads use read_timeout.
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    ts = CTX.wrap_socket(s, server_hostname="localhost")
    ts.sendall(req_bytes)
    ts.settimeout(read_timeout)
    buf = b""
    how = "eof"
    try:
        while True:
            d = ts.recv(65536)
            if not d:
                break
            buf += d
    except (ConnectionResetError, ssl.SSLError, OSError) as e:
        how = "timeout" if isinstance(e, socket.timeout) else "reset"
    finally:
        ts.close()
    return buf, how


def post_bytes(path, body, extra=""):
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer k\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n{extra}\r\n"
            ).encode() + data


def dechunk(raw):
    """Decodes a chunked body; returns (payload, complete)."""
    out, i = b"", 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0:
            return out, False
        size = int(raw[i:j], 16)
        if size == 0:
            return out, raw[j + 2:j + 4] == b"\r\n"
        if len(raw) < j + 2 + size:
            return out + raw[j + 2:], False
        out += raw[j + 2:j + 2 + size]
        i = j + 4 + size


def stats():
    st, _, raw = request("/_sim/stats", method="GET", auth=False)
    assert st == 200
    return json.loads(raw)


def reset():
    st, _, _ = request("/_sim/reset", method="POST", auth=False)
    assert st == 200


class Basics(unittest.TestCase):
    def test_healthz(self):
        st, _, raw = request("/healthz", method="GET", auth=False)
        self.assertEqual((st, raw), (200, b"ok"))

    def test_stdout_and_cert_files(self):
        certs = os.path.join(TMP, "certs")
        self.assertEqual(os.stat(os.path.join(certs, "sim-server.key")).st_mode & 0o777, 0o600)
        for name in ("sim-ca.pem", "sim-server.pem"):
            self.assertTrue(os.path.getsize(os.path.join(certs, name)) > 0)

    def test_certificate_names_provider_hosts(self):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        for host in ("api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com",
                     "api.perplexity.ai", "localhost"):
            ts = CTX.wrap_socket(socket.create_connection(("127.0.0.1", PORT), timeout=5),
                                 server_hostname=host)
            self.assertEqual(ts.selected_alpn_protocol(), None)
            ts.close()
        s.close()
        ctx = ssl.create_default_context(cafile=os.path.join(TMP, "certs", "sim-ca.pem"))
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        ts = ctx.wrap_socket(socket.create_connection(("127.0.0.1", PORT), timeout=5),
                             server_hostname="api.x.ai")
        self.assertEqual(ts.selected_alpn_protocol(), "http/1.1")
        ts.close()

    def test_unknown_path_404_and_method(self):
        st, _, raw = request("/v1/nope", {"model": "x"})
        self.assertEqual(st, 404)
        self.assertIn("error", json.loads(raw))
        st, _, _ = request("/v1/chat/completions", method="GET")
        self.assertEqual(st, 405)

    def test_no_auth_401_per_provider(self):
        st, _, raw = request("/v1/chat/completions", chat_body(), auth=False)
        self.assertEqual(st, 401)
        self.assertEqual(json.loads(raw)["error"]["code"], "invalid_api_key")
        st, h, raw = request("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 10,
                                              "messages": []}, auth=False)
        self.assertEqual(st, 401)
        body = json.loads(raw)
        self.assertEqual(body["type"], "error")
        self.assertEqual(body["error"]["type"], "authentication_error")
        self.assertIn("request-id", h)
        st, _, raw = request("/v1beta/models/gemini-2.5-flash:generateContent",
                             {"contents": []}, auth=False)
        self.assertEqual(st, 401)
        self.assertEqual(json.loads(raw)["error"]["status"], "UNAUTHENTICATED")
        # Every accepted credential form.
        gem = {"contents": [{"parts": [{"text": "hi"}]}]}
        path = "/v1beta/models/gemini-2.5-flash:generateContent"
        self.assertEqual(request(path + "?key=abc", gem, auth=False)[0], 200)
        self.assertEqual(request(path, gem, {"x-goog-api-key": "abc"}, auth=False)[0], 200)
        self.assertEqual(request("/v1/messages", {"model": "c", "max_tokens": 5, "messages": []},
                                 {"x-api-key": "abc"}, auth=False)[0], 200)

    def test_bad_json_400(self):
        st, _, raw = request("/v1/chat/completions", b"{not json")
        self.assertEqual(st, 400)
        self.assertIn("error", json.loads(raw))

    def test_malformed_http_400_and_close(self):
        for junk in (b"GARBAGE\r\n\r\n", b"POST / HTTP/1.1\r\nbad header\r\n\r\n",
                     b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: zz\r\n\r\n",
                     b"\x00\xff" * 40 + b"\r\n\r\n"):
            raw, how = raw_exchange(junk)
            self.assertTrue(raw.startswith(b"HTTP/1.1 400"), raw[:40])
            self.assertEqual(how, "eof")
        raw, how = raw_exchange(b"GET / HTTP/1.1\r\n" + b"x-a: b\r\n" * 200 + b"\r\n")
        self.assertTrue(raw.startswith(b"HTTP/1.1 431"), raw[:40])
        self.assertEqual(request("/healthz", method="GET")[0], 200)

    def test_mutated_requests_never_crash(self):
        import random
        rnd = random.Random(1234)
        seeds = [post_bytes("/v1/chat/completions",
                            chat_body(stream=True, include_usage=True, prompt="[[sim out=2]]")),
                 post_bytes("/v1/messages", {"model": "c", "max_tokens": 3, "stream": True,
                                             "messages": [{"role": "user", "content": "x"}]}),
                 post_bytes("/v1beta/models/g:streamGenerateContent?alt=sse",
                            {"contents": [{"parts": [{"text": "[[sim tools=1 gzip=1]]"}]}]},
                            "accept-encoding: gzip\r\n"),
                 post_bytes("/v1/embeddings", {"model": "e", "input": [[1], "a", [2, 3]],
                                               "dimensions": 3})]
        for i in range(120):
            b = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randint(1, 6)):
                pos = rnd.randrange(len(b))
                op = rnd.randrange(3)
                if op == 0:
                    b[pos] = rnd.randrange(256)
                elif op == 1:
                    del b[pos:pos + rnd.randint(1, 8)]
                else:
                    b[pos:pos] = rnd.choice([b"[[sim out=1 ", b"\r\n", b"{", b"]]", b"\x00",
                                             b"99999999999999999999", b'"stream":true,'])
            raw, how = raw_exchange(bytes(b) + b"\r\n\r\n", read_timeout=0.1)
            if raw:
                self.assertTrue(raw.startswith(b"HTTP/1.1 ") or raw.startswith(b"\x16\x03"),
                                raw[:20])
        self.assertEqual(request("/healthz", method="GET")[0], 200)

    def test_chunked_request_body(self):
        data = json.dumps(chat_body(prompt="chunked [[sim out=2]]")).encode()
        req = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
               b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        half = len(data) // 2
        for part in (data[:half], data[half:]):
            req += b"%x\r\n" % len(part) + part + b"\r\n"
        req += b"0\r\n\r\n"
        raw, _ = raw_exchange(req)
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"))
        usage = json.loads(body)["usage"]
        self.assertEqual(usage["prompt_tokens"], ceil4(data))
        self.assertEqual(usage["completion_tokens"], 2)

    def test_expect_continue(self):
        data = json.dumps(chat_body()).encode()
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        ts = CTX.wrap_socket(s, server_hostname="localhost")
        ts.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
                   b"expect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(data))
        self.assertTrue(ts.recv(100).startswith(b"HTTP/1.1 100 Continue"))
        ts.sendall(data)
        self.assertTrue(ts.recv(100).startswith(b"HTTP/1.1 200"))
        ts.close()


class Uploads(unittest.TestCase):
    """POST /v1/files and /v1/uploads/{id}/parts: the body is hashed as it
    arrives, never held, so any size goes (past the 32 MiB body cap)."""

    def setUp(self):
        reset()

    def test_large_upload_reports_size_and_hash(self):
        import hashlib
        piece = bytes(range(256)) * 4096  # 1 MiB
        size = 40 * len(piece)
        conn = connect(timeout=60)
        conn.putrequest("POST", "/v1/files")
        conn.putheader("authorization", "Bearer k")
        conn.putheader("content-type", "multipart/form-data; boundary=b")
        conn.putheader("content-length", str(size))
        conn.endheaders()
        for _ in range(40):
            conn.send(piece)
        r = conn.getresponse()
        answer = json.loads(r.read())
        conn.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(answer["object"], "file")
        self.assertEqual(answer["bytes"], size)
        self.assertEqual(answer["sha256"], hashlib.sha256(piece * 40).hexdigest())
        self.assertEqual(stats()["uploads"]["completed"], 1)

    def test_chunked_part_then_pipelined_request(self):
        import hashlib
        data = b"part-bytes " * 5000
        req = (b"POST /v1/uploads/upload_1/parts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
               b"content-type: multipart/form-data; boundary=b\r\n"
               b"transfer-encoding: chunked\r\n\r\n")
        for i in range(0, len(data), 7000):
            part = data[i:i + 7000]
            req += b"%x\r\n" % len(part) + part + b"\r\n"
        req += b"0\r\n\r\n" + post_bytes("/v1/chat/completions", chat_body(), "connection: close\r\n")
        raw, _ = raw_exchange(req)
        first, _, rest = raw.partition(b"\r\n\r\n")
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), raw[:200])
        answer = json.loads(rest[:rest.index(b"}") + 1])
        self.assertEqual(answer["bytes"], len(data))
        self.assertEqual(answer["sha256"], hashlib.sha256(data).hexdigest())
        self.assertIn(b"chat.completion", rest)

    def test_early_status_and_aborted_upload(self):
        # x-sim status=N answers before the body and closes; a client that
        # leaves mid-body is counted as an aborted upload.
        raw, _ = raw_exchange(b"POST /v1/files HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
                              b"x-sim: status=413\r\ncontent-length: 1000000\r\n\r\n" + b"x" * 1000)
        self.assertTrue(raw.startswith(b"HTTP/1.1 413"), raw[:100])
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        ts = CTX.wrap_socket(s, server_hostname="localhost")
        ts.sendall(b"POST /v1/files HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
                   b"content-length: 1000000\r\n\r\n" + b"y" * 5000)
        ts.close()
        deadline = time.monotonic() + 10
        while stats()["uploads"]["aborted"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(stats()["uploads"]["aborted"], 1)
        self.assertEqual(stats()["uploads"]["aborted_bytes"], 5000)


class OpenAIChat(unittest.TestCase):
    def test_json_default_usage(self):
        body = chat_body()
        data = json.dumps(body).encode()
        st, h, raw = request("/v1/chat/completions", data)
        self.assertEqual(st, 200)
        r = json.loads(raw)
        self.assertEqual(r["object"], "chat.completion")
        self.assertEqual(r["model"], "gpt-4o-mini")
        self.assertEqual(r["choices"][0]["message"]["content"], words(8))
        self.assertEqual(r["choices"][0]["finish_reason"], "stop")
        u = r["usage"]
        self.assertEqual(u["prompt_tokens"], ceil4(data))
        self.assertEqual(u["completion_tokens"], 8)
        self.assertEqual(u["total_tokens"], ceil4(data) + 8)
        self.assertEqual(u["prompt_tokens_details"]["cached_tokens"], 0)
        self.assertTrue(h["x-request-id"].startswith("req_sim_"))
        self.assertEqual(h["content-type"], "application/json")

    def test_stream_without_include_usage_has_no_usage(self):
        st, h, raw = request("/v1/chat/completions", chat_body(stream=True))
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        self.assertNotIn(b"usage", raw)
        ev = sse(raw)
        self.assertEqual(ev[-1], (None, "[DONE]"))
        chunks = [json.loads(d) for _, d in ev[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        self.assertEqual(text, words(8))
        # One word per delta chunk, with its leading space.
        self.assertEqual(chunks[2]["choices"][0]["delta"]["content"], " from")
        self.assertEqual(len(chunks), 8 + 2)
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "stop")
        self.assertTrue(raw.endswith(b"data: [DONE]\n\n"))

    def test_stream_with_include_usage(self):
        body = chat_body(stream=True, include_usage=True)
        data = json.dumps(body).encode()
        st, _, raw = request("/v1/chat/completions", data)
        ev = sse(raw)
        self.assertEqual(ev[-1][1], "[DONE]")
        chunks = [json.loads(d) for _, d in ev[:-1]]
        for c in chunks[:-1]:
            self.assertIn("usage", c)
            self.assertIsNone(c["usage"])
        last = chunks[-1]
        self.assertEqual(last["choices"], [])
        self.assertEqual(last["usage"]["prompt_tokens"], ceil4(data))
        self.assertEqual(last["usage"]["completion_tokens"], 8)
        # Compact JSON like OpenAI's.
        self.assertNotIn(b'": ', raw)

    def test_stream_include_usage_false(self):
        st, _, raw = request("/v1/chat/completions", chat_body(stream=True, include_usage=False))
        self.assertNotIn(b"usage", raw)

    def test_directives_openai_semantics(self):
        body = chat_body(prompt="x [[sim in=1000 out=5 cached=600 cache_write=50 "
                                "cache_write_1h=25 reasoning=40]]")
        st, _, raw = request("/v1/chat/completions", body)
        r = json.loads(raw)
        u = r["usage"]
        self.assertEqual(u["prompt_tokens"], 1000)
        self.assertEqual(u["prompt_tokens_details"]["cached_tokens"], 600)
        self.assertEqual(u["prompt_tokens_details"]["cache_write_tokens"], 75)
        self.assertEqual(u["completion_tokens"], 45)
        self.assertEqual(u["completion_tokens_details"]["reasoning_tokens"], 40)
        self.assertEqual(u["total_tokens"], 1045)
        self.assertEqual(r["choices"][0]["message"]["content"], words(5))

    def test_header_directives_override_body(self):
        body = chat_body(prompt="[[sim out=5 in=10]]")
        st, _, raw = request("/v1/chat/completions", body, {"x-sim": "out=3;in=7"})
        u = json.loads(raw)["usage"]
        self.assertEqual((u["prompt_tokens"], u["completion_tokens"]), (7, 3))

    def test_words_capped_by_max_tokens(self):
        for field in ("max_tokens", "max_completion_tokens"):
            st, _, raw = request("/v1/chat/completions", chat_body(**{field: 3}))
            r = json.loads(raw)
            self.assertEqual(r["choices"][0]["message"]["content"], words(3))
            self.assertEqual(r["choices"][0]["finish_reason"], "length")
            self.assertEqual(r["usage"]["completion_tokens"], 3)
        st, _, raw = request("/v1/chat/completions", chat_body(max_tokens=100,
                                                               prompt="[[sim words=40]]"))
        self.assertEqual(json.loads(raw)["usage"]["completion_tokens"], 40)
        self.assertEqual(json.loads(raw)["choices"][0]["message"]["content"], words(40))

    def test_out_emits_exact_deltas(self):
        st, _, raw = request("/v1/chat/completions",
                             chat_body(stream=True, include_usage=True, max_tokens=2,
                                       prompt="[[sim out=12 reasoning=4]]"))
        chunks = [json.loads(d) for _, d in sse(raw)[:-1]]
        deltas = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
        self.assertEqual(len(deltas), 12)
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 16)

    def test_snapshot(self):
        st, _, raw = request("/v1/chat/completions", chat_body(model="gpt-4o"), {"x-sim": "snapshot=1"})
        self.assertEqual(json.loads(raw)["model"], "gpt-4o-2024-08-06")
        st, _, raw = request("/v1/chat/completions", chat_body(model="gpt-4o"))
        self.assertEqual(json.loads(raw)["model"], "gpt-4o")

    def test_served(self):
        st, _, raw = request("/v1/chat/completions", chat_body(model="gpt-4o"),
                             {"x-sim": "snapshot=1;served=gpt-4o-2099-01-01"})
        self.assertEqual(json.loads(raw)["model"], "gpt-4o-2099-01-01")
        st, _, raw = request("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 5,
                                              "messages": [{"role": "user", "content": "hi"}]},
                             {"x-sim": "served=claude-x"})
        self.assertEqual(json.loads(raw)["model"], "claude-x")
        st, _, raw = request("/v1/chat/completions", chat_body(model="gpt-4o"),
                             {"x-sim": "served=bad\"name"})
        self.assertEqual(json.loads(raw)["model"], "gpt-4o")

    def test_tools(self):
        body = chat_body(prompt="[[sim tools=1 out=3]]",
                         tools=[{"type": "function", "function": {
                             "name": "lookup", "parameters": {"type": "object", "properties": {
                                 "name": {"type": "string"}}}}}])
        st, _, raw = request("/v1/chat/completions", body)
        r = json.loads(raw)
        call = r["choices"][0]["message"]["tool_calls"][0]
        self.assertEqual(call["function"]["name"], "lookup")
        self.assertEqual(json.loads(call["function"]["arguments"]), {"text": words(3)})
        self.assertEqual(r["choices"][0]["finish_reason"], "tool_calls")
        body["stream"] = True
        st, _, raw = request("/v1/chat/completions", body)
        chunks = [json.loads(d) for _, d in sse(raw)[:-1]]
        args = ""
        for c in chunks:
            for tc in c["choices"][0]["delta"].get("tool_calls", []):
                args += tc["function"].get("arguments", "")
        self.assertEqual(json.loads(args), {"text": words(3)})
        self.assertEqual(chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
                         "lookup")

    def test_ids_deterministic(self):
        reset()
        st, h, raw = request("/v1/chat/completions", chat_body())
        self.assertEqual(json.loads(raw)["id"], "chatcmpl-sim-000001")
        self.assertEqual(h["x-request-id"], "req_sim_000001")
        st, h, raw = request("/v1/messages", {"model": "c", "max_tokens": 9, "messages": []})
        self.assertEqual(json.loads(raw)["id"], "msg_sim_000002")
        self.assertEqual(h["request-id"], "req_sim_000002")

    def test_path_prefixes(self):
        for path, model in (("/openai/v1/chat/completions", "llama-3.3-70b-versatile"),
                            ("/api/v1/chat/completions", "anthropic/claude-sonnet-4.5"),
                            ("/v1beta/openai/chat/completions", "gemini-2.5-flash"),
                            ("/inference/v1/chat/completions", "accounts/fireworks/models/x"),
                            ("/chat/completions", "sonar"),
                            ("/chat/completions", "deepseek-chat")):
            st, _, raw = request(path, chat_body(model=model))
            self.assertEqual(st, 200, path)
            self.assertEqual(json.loads(raw)["model"], model)


class Flavours(unittest.TestCase):
    def stream(self, model, include_usage=None, prompt="hi", path="/v1/chat/completions"):
        st, h, raw = request(path, chat_body(model=model, stream=True,
                                             include_usage=include_usage, prompt=prompt))
        self.assertEqual(st, 200)
        ev = sse(raw)
        return h, raw, ev

    def test_deepseek(self):
        st, _, raw = request("/chat/completions",
                             chat_body(model="deepseek-chat", prompt="[[sim in=100 cached=64]]"))
        u = json.loads(raw)["usage"]
        self.assertEqual((u["prompt_cache_hit_tokens"], u["prompt_cache_miss_tokens"]), (64, 36))
        self.assertEqual(u["prompt_tokens"], 100)
        h, raw, ev = self.stream("deepseek-chat", prompt="[[sim keepalive=3]]")
        self.assertEqual([e for e in ev[:3]], [("comment", "keep-alive")] * 3)
        self.assertNotIn(b"usage", raw)
        st, _, raw = request("/chat/completions",
                             chat_body(model="deepseek-reasoner", prompt="[[sim reasoning=5]]"))
        r = json.loads(raw)
        self.assertEqual(r["choices"][0]["message"]["reasoning_content"], words(5))
        self.assertEqual(r["usage"]["completion_tokens"], 13)
        self.assertEqual(r["usage"]["completion_tokens_details"]["reasoning_tokens"], 5)
        h, raw, ev = self.stream("deepseek-reasoner", prompt="[[sim reasoning=2]]")
        rc = [json.loads(d)["choices"][0]["delta"].get("reasoning_content") for _, d in ev[:-1]]
        self.assertEqual("".join(x for x in rc if x), words(2))

    def test_deepseek_leading_whitespace(self):
        st, _, raw = request("/chat/completions",
                             chat_body(model="deepseek-chat", prompt="[[sim lead_ws=3]]"))
        self.assertTrue(raw.startswith(b"\n\n\n{"))
        json.loads(raw)

    def test_xai_additive_reasoning_and_ticks(self):
        st, _, raw = request("/v1/chat/completions",
                             chat_body(model="grok-4.3",
                                       prompt="[[sim in=2000 out=3 reasoning=700 cached=1500 "
                                              "ticks=34250000]]"))
        u = json.loads(raw)["usage"]
        self.assertEqual(u["completion_tokens"], 3)
        self.assertEqual(u["completion_tokens_details"]["reasoning_tokens"], 700)
        self.assertEqual(u["total_tokens"], 2000 + 3 + 700)
        self.assertEqual(u["cost_in_usd_ticks"], 34250000)
        h, raw, ev = self.stream("grok-4.3")
        self.assertNotIn(b"usage", raw)

    def test_openrouter(self):
        h, raw, ev = self.stream("anthropic/claude-sonnet-4.5",
                                 prompt="[[sim keepalive=2 cost=0.000574 out=4]]")
        self.assertEqual(ev[:2], [("comment", "OPENROUTER PROCESSING")] * 2)
        self.assertEqual(ev[-1][1], "[DONE]")
        last = json.loads(ev[-2][1])
        self.assertEqual(last["usage"]["completion_tokens"], 4)
        self.assertEqual(last["usage"]["cost"], 0.000574)
        self.assertIn(b'"cost":0.000574', raw)
        self.assertTrue(last["id"].startswith("gen-"))
        self.assertTrue(h["x-generation-id"].startswith("gen-sim-"))
        st, _, raw = request("/api/v1/chat/completions",
                             chat_body(model="openai/gpt-4o", prompt="[[sim status=402]]"))
        self.assertEqual(st, 402)
        self.assertEqual(json.loads(raw)["error"]["code"], 402)

    def test_groq(self):
        h, raw, ev = self.stream("llama-3.3-70b-versatile", prompt="[[sim out=2]]")
        chunks = [json.loads(d) for _, d in ev[:-1]]
        fin = chunks[-1]
        self.assertEqual(fin["choices"][0]["finish_reason"], "stop")
        self.assertEqual(fin["x_groq"]["usage"]["completion_tokens"], 2)
        self.assertNotIn("usage", fin)
        h, raw, ev = self.stream("openai/gpt-oss-120b", include_usage=True)
        chunks = [json.loads(d) for _, d in ev[:-1]]
        self.assertIn("x_groq", chunks[-2])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 8)
        st, _, raw = request("/openai/v1/chat/completions", chat_body(model="llama-3.1-8b-instant"))
        r = json.loads(raw)
        self.assertIn("queue_time", r["usage"])
        self.assertTrue(r["x_groq"]["id"].startswith("req_sim_"))

    def test_mistral_together_perplexity_usage_on_last_chunk(self):
        for model in ("mistral-large-latest", "codestral-2508",
                      "meta-llama/Llama-3.3-70B-Instruct-Turbo", "sonar-pro"):
            h, raw, ev = self.stream(model, prompt="[[sim out=3]]")
            chunks = [json.loads(d) for _, d in ev[:-1]]
            self.assertEqual(ev[-1][1], "[DONE]")
            with_usage = [c for c in chunks if c.get("usage")]
            self.assertEqual(len(with_usage), 1, model)
            self.assertIs(with_usage[0], chunks[-1])
            self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "stop")
            self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 3)
        st, _, raw = request("/chat/completions", chat_body(model="sonar"))
        r = json.loads(raw)
        self.assertIn("citations", r)
        cost = r["usage"]["cost"]
        self.assertAlmostEqual(cost["total_cost"],
                               cost["input_tokens_cost"] + cost["output_tokens_cost"] + 0.005)
        st, _, raw = request("/v1/chat/completions",
                             chat_body(model="mistral-small-latest", prompt="[[sim status=429]]"))
        self.assertEqual(json.loads(raw)["object"], "error")

    def test_gemini_openai(self):
        path = "/v1beta/openai/chat/completions"
        h, raw, ev = self.stream("gemini-2.5-flash", include_usage=True, path=path)
        chunks = [json.loads(d) for _, d in ev[:-1]]
        self.assertTrue(all(c["choices"] for c in chunks))
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 8)
        h, raw, ev = self.stream("gemini-2.5-flash", path=path)
        self.assertNotIn(b"usage", raw)

    def test_flavor_override(self):
        st, _, raw = request("/v1/chat/completions",
                             chat_body(model="my-model", prompt="[[sim flavor=deepseek cached=1]]"))
        self.assertIn("prompt_cache_hit_tokens", json.loads(raw)["usage"])


class OtherOpenAI(unittest.TestCase):
    def test_responses_json(self):
        body = {"model": "gpt-5.4", "input": "hi [[sim cached=3 reasoning=7]]"}
        data = json.dumps(body).encode()
        st, _, raw = request("/v1/responses", data)
        r = json.loads(raw)
        self.assertEqual((r["object"], r["status"]), ("response", "completed"))
        self.assertEqual(r["output"][0]["content"][0]["text"], words(8))
        u = r["usage"]
        self.assertEqual(u["input_tokens"], ceil4(data))
        self.assertEqual(u["input_tokens_details"]["cached_tokens"], 3)
        self.assertEqual(u["output_tokens"], 15)
        self.assertEqual(u["output_tokens_details"]["reasoning_tokens"], 7)
        self.assertEqual(u["total_tokens"], ceil4(data) + 15)

    def test_responses_stream(self):
        body = {"model": "gpt-5.4", "input": "hi", "stream": True}
        st, _, raw = request("/v1/responses", body)
        ev = sse(raw)
        names = [e for e, _ in ev]
        self.assertEqual(names[:3], ["response.created", "response.in_progress",
                                     "response.output_item.added"])
        self.assertEqual(names[-1], "response.completed")
        self.assertEqual(names.count("response.output_text.delta"), 8)
        datas = [json.loads(d) for _, d in ev]
        self.assertEqual([d["sequence_number"] for d in datas], list(range(len(datas))))
        for (name, _), d in zip(ev, datas):
            self.assertEqual(d["type"], name)
            if name != "response.completed":
                self.assertIsNone((d.get("response") or {}).get("usage"))
        self.assertEqual(datas[-1]["response"]["usage"]["output_tokens"], 8)
        self.assertNotIn(b"[DONE]", raw)
        text = "".join(d["delta"] for d in datas if d["type"] == "response.output_text.delta")
        self.assertEqual(text, words(8))

    def test_responses_incomplete_and_tools(self):
        st, _, raw = request("/v1/responses", {"model": "m", "input": "x", "stream": True,
                                               "max_output_tokens": 2})
        ev = sse(raw)
        self.assertEqual(ev[-1][0], "response.incomplete")
        self.assertEqual(json.loads(ev[-1][1])["response"]["incomplete_details"]["reason"],
                         "max_output_tokens")
        st, _, raw = request("/v1/responses", {"model": "m", "input": "x [[sim tools=1 out=2]]",
                                               "tools": [{"type": "function", "name": "f1"}]})
        item = json.loads(raw)["output"][0]
        self.assertEqual((item["type"], item["name"]), ("function_call", "f1"))
        self.assertEqual(json.loads(item["arguments"]), {"text": words(2)})
        st, _, raw = request("/v1/responses/input_tokens", {"model": "m", "input": "x [[sim in=42]]"})
        self.assertEqual(json.loads(raw), {"object": "response.input_tokens", "input_tokens": 42})

    def test_embeddings(self):
        body = {"model": "text-embedding-3-small", "input": ["a", "b", "c"], "dimensions": 5}
        data = json.dumps(body).encode()
        st, _, raw = request("/v1/embeddings", data)
        r = json.loads(raw)
        self.assertEqual(len(r["data"]), 3)
        self.assertEqual(len(r["data"][0]["embedding"]), 5)
        self.assertEqual(r["usage"], {"prompt_tokens": ceil4(data), "total_tokens": ceil4(data)})
        body = {"model": "text-embedding-3-small", "input": "a", "encoding_format": "base64"}
        st, _, raw = request("/v1/embeddings", body)
        r = json.loads(raw)
        vec = struct.unpack("<8f", base64.b64decode(r["data"][0]["embedding"]))
        self.assertEqual(len(vec), 8)
        st, _, raw2 = request("/v1/embeddings", {"model": "text-embedding-3-small", "input": "a"})
        plain = json.loads(raw2)["data"][0]["embedding"]
        for a, b in zip(vec, plain):
            self.assertAlmostEqual(a, b, places=6)
        st, _, raw = request("/v1/embeddings", {"model": "e", "input": [[1, 2], [3, 4]]})
        self.assertEqual(len(json.loads(raw)["data"]), 2)

    def test_legacy_completions(self):
        body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say"}
        data = json.dumps(body).encode()
        st, _, raw = request("/v1/completions", data)
        r = json.loads(raw)
        self.assertEqual(r["object"], "text_completion")
        self.assertEqual(r["choices"][0]["text"], words(8))
        self.assertEqual(r["usage"]["prompt_tokens"], ceil4(data))
        body.update(stream=True, stream_options={"include_usage": True})
        st, _, raw = request("/v1/completions", body)
        ev = sse(raw)
        self.assertEqual(ev[-1][1], "[DONE]")
        chunks = [json.loads(d) for _, d in ev[:-1]]
        self.assertTrue(all(c["object"] == "text_completion" for c in chunks))
        self.assertEqual("".join(c["choices"][0]["text"] for c in chunks if c["choices"]), words(8))
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 8)


class Anthropic(unittest.TestCase):
    def test_json(self):
        body = {"model": "claude-sonnet-4-5", "max_tokens": 1024,
                "messages": [{"role": "user", "content":
                              "[[sim in=20000 cached=12000 cache_write=2000 cache_write_1h=1000 "
                              "out=6 reasoning=30]]"}]}
        st, h, raw = request("/v1/messages", body, {"x-api-key": "k"}, auth=False)
        self.assertEqual(st, 200)
        r = json.loads(raw)
        self.assertEqual(r["model"], "claude-sonnet-4-5")
        self.assertEqual(r["stop_reason"], "end_turn")
        u = r["usage"]
        self.assertEqual(u["input_tokens"], 20000 - 12000 - 3000)
        self.assertEqual(u["cache_read_input_tokens"], 12000)
        self.assertEqual(u["cache_creation_input_tokens"], 3000)
        self.assertEqual(u["cache_creation"], {"ephemeral_5m_input_tokens": 2000,
                                               "ephemeral_1h_input_tokens": 1000})
        self.assertEqual(u["output_tokens"], 36)
        self.assertEqual(r["content"][0]["type"], "thinking")
        self.assertEqual(r["content"][1]["text"], words(6))

    def test_stream_order(self):
        body = {"model": "claude-haiku-4-5", "max_tokens": 3, "stream": True,
                "messages": [{"role": "user", "content": "hi"}]}
        data = json.dumps(body).encode()
        st, _, raw = request("/v1/messages", data)
        ev = sse(raw)
        names = [e for e, _ in ev]
        self.assertEqual(names, ["message_start", "content_block_start", "ping"] +
                         ["content_block_delta"] * 3 +
                         ["content_block_stop", "message_delta", "message_stop"])
        datas = [json.loads(d) for _, d in ev]
        for (name, _), d in zip(ev, datas):
            self.assertEqual(d["type"], name)
        start = datas[0]["message"]["usage"]
        self.assertEqual(start["input_tokens"], ceil4(data))
        self.assertIn("cache_creation", start)
        self.assertEqual(datas[-2]["usage"]["output_tokens"], 3)
        self.assertEqual(datas[-2]["delta"]["stop_reason"], "max_tokens")
        text = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
        self.assertEqual(text, words(3))

    def test_tools_and_count(self):
        body = {"model": "c", "max_tokens": 100, "stream": True,
                "tools": [{"name": "get_time", "input_schema": {"type": "object"}}],
                "messages": [{"role": "user", "content": "[[sim tools=1 out=2]]"}]}
        st, _, raw = request("/v1/messages", body)
        datas = [json.loads(d) for _, d in sse(raw)]
        self.assertEqual(datas[1]["content_block"]["name"], "get_time")
        pj = "".join(d["delta"]["partial_json"] for d in datas
                     if d["type"] == "content_block_delta")
        self.assertEqual(json.loads(pj), {"text": words(2)})
        self.assertEqual(datas[-2]["delta"]["stop_reason"], "tool_use")
        body = {"model": "c", "messages": [{"role": "user", "content": "hello"}]}
        data = json.dumps(body).encode()
        st, _, raw = request("/v1/messages/count_tokens", data)
        self.assertEqual(json.loads(raw), {"input_tokens": ceil4(data)})

    def test_errors(self):
        body = {"model": "c", "max_tokens": 5, "messages": [{"role": "user",
                                                              "content": "[[sim status=529]]"}]}
        st, _, raw = request("/v1/messages", body)
        self.assertEqual(st, 529)
        self.assertEqual(json.loads(raw)["error"]["type"], "overloaded_error")


class Gemini(unittest.TestCase):
    PATH = "/v1beta/models/gemini-2.5-flash"

    def body(self, prompt="hi", **gen):
        b = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if gen:
            b["generationConfig"] = gen
        return b

    def test_generate(self):
        data = json.dumps(self.body("[[sim cached=2 reasoning=10]]")).encode()
        st, _, raw = request(self.PATH + ":generateContent", data)
        r = json.loads(raw)
        self.assertEqual(r["candidates"][0]["content"]["parts"][0]["text"], words(8))
        self.assertEqual(r["candidates"][0]["finishReason"], "STOP")
        m = r["usageMetadata"]
        self.assertEqual(m["promptTokenCount"], ceil4(data))
        self.assertEqual(m["candidatesTokenCount"], 8)
        self.assertEqual(m["thoughtsTokenCount"], 10)
        self.assertEqual(m["cachedContentTokenCount"], 2)
        self.assertEqual(m["totalTokenCount"], ceil4(data) + 18)
        self.assertEqual(r["modelVersion"], "gemini-2.5-flash")

    def test_stream_sse_crlf(self):
        st, h, raw = request(self.PATH + ":streamGenerateContent?alt=sse&key=secret",
                             self.body(maxOutputTokens=4), auth=False)
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        self.assertTrue(raw.endswith(b"\r\n\r\n"))
        self.assertEqual(raw.count(b"\r\n\r\n"), 4)
        self.assertNotIn(b"\n\n", raw.replace(b"\r\n\r\n", b""))
        self.assertNotIn(b"event:", raw)
        self.assertNotIn(b"[DONE]", raw)
        chunks = [json.loads(d) for _, d in sse(raw)]
        self.assertEqual([c["usageMetadata"]["candidatesTokenCount"] for c in chunks],
                         [1, 2, 3, 4])
        self.assertTrue(all("finishReason" not in c["candidates"][0] for c in chunks[:-1]))
        self.assertEqual(chunks[-1]["candidates"][0]["finishReason"], "MAX_TOKENS")
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        self.assertEqual(text, words(4))

    def test_stream_json_array(self):
        st, h, raw = request(self.PATH + ":streamGenerateContent", self.body("[[sim out=3]]"),
                             {"x-goog-api-key": "k"}, auth=False)
        self.assertTrue(raw.startswith(b"[{") and raw.endswith(b"}]"))
        self.assertEqual(raw.count(b",\r\n{"), 2)
        arr = json.loads(raw)
        self.assertEqual(len(arr), 3)
        self.assertEqual(arr[-1]["usageMetadata"]["candidatesTokenCount"], 3)

    def test_count_and_tools_and_errors(self):
        st, _, raw = request(self.PATH + ":countTokens", self.body("[[sim in=77]]"))
        self.assertEqual(json.loads(raw)["totalTokens"], 77)
        st, _, raw = request(self.PATH + ":generateContent", self.body("[[sim tools=1 out=2]]"))
        part = json.loads(raw)["candidates"][0]["content"]["parts"][0]
        self.assertEqual(part["functionCall"]["args"], {"text": words(2)})
        st, h, raw = request(self.PATH + ":generateContent",
                             self.body("[[sim fault=429 retry_after=3]]"))
        self.assertEqual(st, 429)
        err = json.loads(raw)["error"]
        self.assertEqual((err["code"], err["status"]), (429, "RESOURCE_EXHAUSTED"))
        self.assertEqual(h["retry-after"], "3")


class Charges(unittest.TestCase):
    """searches= and geo=: what each API reports beyond its token counts."""

    def test_responses_searches(self):
        body = {"model": "gpt-5.4", "input": "hi [[sim searches=2 out=3]]"}
        st, _, raw = request("/v1/responses", body)
        out = json.loads(raw)["output"]
        self.assertEqual([o["type"] for o in out], ["web_search_call"] * 2 + ["message"])
        self.assertRegex(out[1]["id"], r"^ws_sim_[0-9]{6}_2$")
        self.assertEqual(out[1]["action"]["query"], "sim query 2")
        self.assertEqual(out[2]["content"][0]["text"], words(3))
        st, _, raw = request("/v1/responses", dict(body, stream=True))
        ev = sse(raw)
        datas = [json.loads(d) for _, d in ev]
        self.assertEqual([d["sequence_number"] for d in datas], list(range(len(datas))))
        for (name, _), d in zip(ev, datas):
            self.assertEqual(d["type"], name)
        added = [d["item"]["type"] for d in datas if d["type"] == "response.output_item.added"]
        done = [(d["output_index"], d["item"]["type"]) for d in datas
                if d["type"] == "response.output_item.done"]
        self.assertEqual(added, ["web_search_call", "web_search_call", "message"])
        self.assertEqual(done, [(0, "web_search_call"), (1, "web_search_call"), (2, "message")])
        self.assertEqual(sum(d["type"] == "response.web_search_call.completed" for d in datas), 2)
        deltas = [d for d in datas if d["type"] == "response.output_text.delta"]
        self.assertEqual({d["output_index"] for d in deltas}, {2})
        self.assertEqual("".join(d["delta"] for d in deltas), words(3))
        final = datas[-1]["response"]
        self.assertEqual([o["type"] for o in final["output"]],
                         ["web_search_call"] * 2 + ["message"])
        self.assertEqual(final["usage"]["output_tokens"], 3)

    def test_anthropic_searches_and_geo(self):
        body = {"model": "claude-opus-4-7", "max_tokens": 100,
                "messages": [{"role": "user", "content": "[[sim searches=3 geo=us out=2]]"}]}
        st, _, raw = request("/v1/messages", body)
        u = json.loads(raw)["usage"]
        self.assertEqual(u["server_tool_use"], {"web_search_requests": 3})
        self.assertEqual((u["service_tier"], u["inference_geo"]), ("standard", "us"))
        st, _, raw = request("/v1/messages", dict(body, stream=True))
        datas = [json.loads(d) for _, d in sse(raw)]
        start = datas[0]["message"]["usage"]
        self.assertNotIn("server_tool_use", start)
        self.assertEqual(start["inference_geo"], "us")
        delta = datas[-2]["usage"]
        self.assertEqual(delta["server_tool_use"], {"web_search_requests": 3})
        self.assertEqual(delta["output_tokens"], 2)
        st, _, raw = request("/v1/messages", dict(body, messages=[
            {"role": "user", "content": "[[sim geo=bad\"x]]"}]))
        self.assertNotIn("inference_geo", json.loads(raw)["usage"])

    def test_gemini_grounding(self):
        path = "/v1beta/models/gemini-2.5-flash"
        body = {"contents": [{"role": "user", "parts": [{"text": "[[sim searches=2 out=3]]"}]}]}
        st, _, raw = request(path + ":generateContent", body)
        g = json.loads(raw)["candidates"][0]["groundingMetadata"]
        self.assertEqual(g["webSearchQueries"], ["sim query 1", "sim query 2"])
        st, _, raw = request(path + ":streamGenerateContent?alt=sse", body)
        chunks = [json.loads(d) for _, d in sse(raw)]
        self.assertEqual(len(chunks), 3)
        self.assertTrue(all("groundingMetadata" not in c["candidates"][0] for c in chunks[:-1]))
        self.assertEqual(chunks[-1]["candidates"][0]["groundingMetadata"]["webSearchQueries"],
                         ["sim query 1", "sim query 2"])

    def test_none_by_default(self):
        st, _, raw = request("/v1/responses", {"model": "gpt-5.4", "input": "hi"})
        self.assertEqual([o["type"] for o in json.loads(raw)["output"]], ["message"])
        st, _, raw = request("/v1/messages", {"model": "c", "max_tokens": 5, "messages": [
            {"role": "user", "content": "hi"}]})
        u = json.loads(raw)["usage"]
        self.assertNotIn("server_tool_use", u)
        self.assertNotIn("inference_geo", u)
        st, _, raw = request("/v1beta/models/gemini-2.5-flash:generateContent",
                             {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        self.assertNotIn("groundingMetadata", json.loads(raw)["candidates"][0])


class Faults(unittest.TestCase):
    def test_503_and_429(self):
        st, h, raw = request("/v1/chat/completions", chat_body(prompt="[[sim fault=503]]"))
        self.assertEqual(st, 503)
        self.assertEqual(json.loads(raw)["error"]["type"], "server_error")
        st, h, raw = request("/v1/chat/completions", chat_body(prompt="[[sim fault=429]]"))
        self.assertEqual(st, 429)
        self.assertEqual(h["retry-after"], "1")
        self.assertEqual(json.loads(raw)["error"]["code"], "rate_limit_exceeded")
        st, h, raw = request("/v1/chat/completions", chat_body(),
                             {"x-sim": "fault=429; retry_after=9"})
        self.assertEqual(h["retry-after"], "9")

    def test_status(self):
        st, _, raw = request("/v1/chat/completions", chat_body(prompt="[[sim status=400]]"))
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(raw)["error"]["type"], "invalid_request_error")

    def test_drop_stream(self):
        raw, how = raw_exchange(post_bytes("/v1/chat/completions",
                                           chat_body(stream=True, prompt="[[sim drop_after=3]]"),
                                           "x-sim: fault=drop\r\n"))
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"))
        payload, complete = dechunk(body)
        self.assertFalse(complete)
        ev = sse(payload)
        self.assertEqual(len(ev), 3)
        self.assertNotIn(b"[DONE]", payload)
        with self.assertRaises(http.client.IncompleteRead):
            request("/v1/chat/completions", chat_body(stream=True, prompt="[[sim fault=drop]]"))

    def test_drop_anthropic_default(self):
        raw, how = raw_exchange(post_bytes("/v1/messages", {
            "model": "c", "max_tokens": 9, "stream": True,
            "messages": [{"role": "user", "content": "[[sim fault=drop]]"}]}))
        payload, complete = dechunk(raw.partition(b"\r\n\r\n")[2])
        self.assertFalse(complete)
        self.assertEqual([e for e, _ in sse(payload)], ["message_start", "content_block_start"])

    def test_reset(self):
        raw, how = raw_exchange(post_bytes("/v1/chat/completions", chat_body(
            prompt="[[sim fault=reset]]")))
        self.assertEqual(raw, b"")
        self.assertIn(how, ("reset", "eof"))

    def test_garbage(self):
        raw, how = raw_exchange(post_bytes("/v1/chat/completions", chat_body(
            prompt="[[sim fault=garbage]]")))
        self.assertTrue(len(raw) > 0)
        self.assertFalse(raw.startswith(b"HTTP/"))
        with self.assertRaises((http.client.HTTPException, OSError)):
            request("/v1/chat/completions", chat_body(prompt="[[sim fault=garbage]]"))

    def test_stall_then_client_leaves(self):
        reset()
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        ts = CTX.wrap_socket(s, server_hostname="localhost")
        ts.sendall(post_bytes("/v1/chat/completions",
                              chat_body(stream=True, prompt="[[sim fault=stall]]")))
        buf = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
            buf += ts.recv(4096)
        self.assertTrue(buf.startswith(b"HTTP/1.1 200"))
        self.assertTrue(buf.endswith(b"\r\n\r\n"))
        ts.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            ts.recv(4096)
        self.assertEqual(stats()["active"], 1)
        ts.close()
        deadline = time.monotonic() + 5
        while stats()["active"] != 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(stats()["active"], 0)

    def test_delays(self):
        t0 = time.monotonic()
        st, _, _ = request("/v1/chat/completions", chat_body(prompt="[[sim delay_ms=300]]"))
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        conn = connect()
        # The sim's gaps start when it answers, which may be before request()
        # returns: time from before the request is sent.
        t0 = time.monotonic()
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps(chat_body(stream=True, prompt="[[sim out=3]]")),
                     headers={**AUTH, "x-sim": "chunk_delay_ms=100"})
        r = conn.getresponse()
        first = r.read1(65536)
        rest = r.read()
        total = time.monotonic() - t0
        conn.close()
        # The first event comes with the head, the rest one by one:
        # role + 3 words + finish + [DONE] = 6 events, 5 gaps of 100 ms.
        self.assertIn(b"data:", first)
        self.assertNotIn(b"[DONE]", first)
        self.assertGreaterEqual(total, 0.5)
        self.assertEqual(len(sse(first + rest)), 6)

    def test_gzip(self):
        st, h, raw = request("/v1/chat/completions", chat_body(prompt="[[sim gzip=1]]"),
                             {"accept-encoding": "gzip"})
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertEqual(json.loads(gzip.decompress(raw))["usage"]["completion_tokens"], 8)
        st, h, raw = request("/v1/chat/completions", chat_body(prompt="[[sim gzip=1]]"),
                             {"accept-encoding": "identity"})
        self.assertNotIn("content-encoding", h)
        json.loads(raw)
        # A stream is one gzip member, flushed per event: each event can be
        # decoded as soon as its bytes arrive.
        conn = connect()
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps(chat_body(stream=True, prompt="[[sim gzip=1 out=2]]")),
                     headers={**AUTH, "accept-encoding": "gzip, deflate",
                              "x-sim": "chunk_delay_ms=50"})
        r = conn.getresponse()
        self.assertEqual(r.getheader("content-encoding"), "gzip")
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        first = d.decompress(r.read1(65536))
        self.assertTrue(first.startswith(b"data: {"))
        self.assertTrue(first.endswith(b"\n\n"))
        text = first + d.decompress(r.read())
        self.assertTrue(d.eof)
        conn.close()
        self.assertTrue(text.endswith(b"data: [DONE]\n\n"))


class Connections(unittest.TestCase):
    def test_keepalive_100_sequential(self):
        conn = connect()
        sock = None
        for i in range(100):
            st, h, raw = request("/v1/chat/completions", chat_body(stream=(i % 2 == 1)), conn=conn)
            self.assertEqual(st, 200)
            if sock is None:
                sock = conn.sock
            self.assertIs(conn.sock, sock)
        conn.close()

    def test_pipelined(self):
        one = post_bytes("/v1/chat/completions", chat_body(prompt="[[sim out=1]]"))
        last = post_bytes("/v1/chat/completions", chat_body(prompt="[[sim out=1]]"),
                          "connection: close\r\n")
        raw, how = raw_exchange(one * 4 + last)
        self.assertEqual(raw.count(b"HTTP/1.1 200 OK"), 5)

    def test_50_concurrent(self):
        def one(i):
            st, _, raw = request("/v1/chat/completions",
                                 chat_body(stream=True, include_usage=True,
                                           prompt=f"[[sim out={i % 7} chunk_delay_ms=5]]"))
            chunks = [json.loads(d) for _, d in sse(raw)[:-1]]
            return st, chunks[-1]["usage"]["completion_tokens"]

        with concurrent.futures.ThreadPoolExecutor(50) as ex:
            results = list(ex.map(one, range(50)))
        self.assertEqual(results, [(200, i % 7) for i in range(50)])

    def test_http10(self):
        data = json.dumps(chat_body(stream=True, prompt="[[sim out=1]]")).encode()
        raw, how = raw_exchange(b"POST /v1/chat/completions HTTP/1.0\r\nauthorization: Bearer k\r\n"
                                b"content-length: %d\r\n\r\n" % len(data) + data)
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertNotIn(b"transfer-encoding", head.lower())
        self.assertTrue(body.endswith(b"data: [DONE]\n\n"))


class Stats(unittest.TestCase):
    def test_counts_and_requests_ring(self):
        reset()
        request("/v1/chat/completions", chat_body(), {"x-stainless-retry-count": "0",
                                                      "user-agent": "OpenAI/Python 1.0"})
        request("/v1/chat/completions", chat_body(stream=True, include_usage=True),
                {"x-stainless-retry-count": "2"})
        request("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=SECRETKEY",
                {"contents": []}, auth=False)
        s = stats()
        self.assertEqual(s["requests"], 3)
        self.assertEqual(s["retries_seen"], 1)
        self.assertEqual(s["active"], 0)
        self.assertEqual(s["by_path"]["/v1/chat/completions"], 2)
        st, _, raw = request("/_sim/requests?limit=2", method="GET", auth=False)
        recs = json.loads(raw)
        self.assertEqual(len(recs), 2)
        self.assertEqual(recs[0]["stream"], True)
        self.assertEqual(recs[0]["include_usage"], True)
        self.assertEqual(recs[0]["headers"]["x-stainless-retry-count"], "2")
        self.assertEqual(recs[0]["model"], "gpt-4o-mini")
        self.assertEqual(recs[1]["query"], "alt=sse")
        self.assertEqual(recs[1]["model"], "gemini-2.5-flash")
        st, _, raw = request("/_sim/requests", method="GET", auth=False)
        self.assertEqual(len(json.loads(raw)), 3)
        self.assertEqual(json.loads(raw)[0]["headers"]["user-agent"], "OpenAI/Python 1.0")
        self.assertNotIn(b"SECRETKEY", raw)
        self.assertNotIn(b"sk-test-secret", raw)
        self.assertNotIn(b"authorization", raw.lower())
        reset()
        self.assertEqual(stats()["requests"], 0)

    def test_ring_is_capped(self):
        reset()
        conn = connect()
        for _ in range(1005):
            request("/v1/embeddings", {"model": "e", "input": "x"}, conn=conn)
        conn.close()
        st, _, raw = request("/_sim/requests?limit=5000", method="GET", auth=False)
        recs = json.loads(raw)
        self.assertEqual(len(recs), 1000)
        self.assertEqual(recs[-1]["seq"], 1005)
        self.assertEqual(stats()["requests"], 1005)


class Process(unittest.TestCase):
    def test_concurrent_cert_generation_and_reuse(self):
        d = tempfile.mkdtemp(prefix="llm-sim-certs-", dir=TMP)
        certs = os.path.join(d, "certs")
        a = b = None
        try:
            a = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--cert-dir", certs,
                                  "--ready-file", os.path.join(d, "ra")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            b = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--cert-dir", certs,
                                  "--ready-file", os.path.join(d, "rb")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            pa = int(wait_for_file(os.path.join(d, "ra")))
            pb = int(wait_for_file(os.path.join(d, "rb")))
            ctx = ssl.create_default_context(cafile=os.path.join(certs, "sim-ca.pem"))
            for p in (pa, pb):
                c = http.client.HTTPSConnection("127.0.0.1", p, context=ctx, timeout=5)
                c.request("GET", "/healthz")
                self.assertEqual(c.getresponse().read(), b"ok")
                c.close()
            line = a.stdout.readline().decode()
            self.assertEqual(line, f"llm-sim listening on 127.0.0.1:{pa}\n")
            with open(os.path.join(certs, "sim-ca.pem"), "rb") as f:
                ca = f.read()
            stop(a)
            self.assertEqual(a.returncode, 0)
            a = None
            a, pa = start_sim(certs, os.path.join(d, "rc"))
            with open(os.path.join(certs, "sim-ca.pem"), "rb") as f:
                self.assertEqual(f.read(), ca)
        finally:
            for p in (a, b):
                if p is not None:
                    stop(p)

    def test_log_and_sigterm_exits_zero(self):
        d = tempfile.mkdtemp(prefix="llm-sim-term-", dir=TMP)
        log = os.path.join(d, "sim.log")
        ready = os.path.join(d, "ready")
        p = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--cert-dir",
                              os.path.join(TMP, "certs"), "--ready-file", ready, "--log", log],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        port = int(wait_for_file(ready))
        c = http.client.HTTPSConnection("127.0.0.1", port, context=CTX, timeout=5)
        c.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent?key=SECRETKEY",
                  body=b'{"contents":[]}')
        self.assertEqual(c.getresponse().status, 200)
        c.close()
        with open(log) as f:
            text = f.read()
        self.assertIn("/v1beta/models/gemini-2.5-flash:generateContent 200", text)
        self.assertNotIn("SECRETKEY", text)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(5), 0)
        self.assertLess(time.monotonic() - t0, 2)
        stop(p)

    def test_curl_smoke(self):
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl not installed")
        out = subprocess.run([curl, "-sS", "--max-time", "10", "--cacert",
                              os.path.join(TMP, "certs", "sim-ca.pem"),
                              "-H", "authorization: Bearer k", "-H", "content-type: application/json",
                              "-d", json.dumps(chat_body(stream=True, include_usage=True)),
                              f"https://localhost:{PORT}/v1/chat/completions"],
                             capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.endswith(b"data: [DONE]\n\n"))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
