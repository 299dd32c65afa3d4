"""Exact accounting of unmodified programs under llmwrap: the official Node
SDKs (openai chat and responses streaming, @anthropic-ai/sdk streaming,
@google/genai streaming) and plain Python httpx.

Every program uses the provider's real base URL with no CA or base-URL
option; llmwrap supplies resolution and trust. The program picks the
simulator's usage through an `x-sim` header or a `[[sim ...]]` block in its
prompt, as any program could, and prints what it saw. The test then reads
the ledger (`llmctl requests --json`) and the run's --json-summary and
checks, for every request: exact tokens, exact cost (decimals, from
data/prices.json and the simulator's formulas in tests/sim/README.md), the
stream flag, the run id, and that nothing was cut short; and that the
summary's cost is the sum of its rows. Rates below are written in pico-USD
per token, which is the per-1M price times 1e6.
"""

import decimal
import json
import os
import shutil
import subprocess
import unittest

import lwtest
from lwtest import DEFAULT_TIMEOUT
from test_wrap import PYTHON, WrapCase

D = decimal.Decimal
M = 1_000_000  # USD per 1M tokens -> pico-USD per token
NODE_DIR = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "node"))

# The simulator's answer text: stream deltas carry one word each.
SIM_WORDS = ("Hello from the simulated provider. It answers every request with the same "
             "words. Token counts follow simple rules so tests can predict them. Nothing "
             "here comes from a real model.").split()


def sim_text(words):
    return " ".join(SIM_WORDS[i % len(SIM_WORDS)] for i in range(words))


def usd(pusd):
    return D(pusd) / D(10**12)


PRELUDE = r"""
const { createRequire } = require("module");
const sdk = createRequire(process.env.LW_NODE_DIR + "/");
function load(name) { const m = sdk(name); return m.default || m; }
const sim = JSON.parse(process.argv[2]);
function check(ok, what) { if (!ok) throw new Error("client saw: " + what); }
function done(result) { console.log(JSON.stringify(result)); }
function fail(e) { console.error(e && e.stack || e); process.exit(1); }
"""

# Chat Completions streamed without and with stream_options, then a
# streamed Responses call. Without stream_options the collector asks the
# provider for usage and takes it out again: the SDK must see a stream with
# no `usage` member anywhere and no chunk with empty `choices`.
OPENAI_JS = PRELUDE + r"""
const OpenAI = load("openai");
const client = new OpenAI({ apiKey: "sk-test", maxRetries: 0 });
const messages = [{ role: "user", content: "hi" }];

async function chat(model, extra, directives) {
  const stream = await client.chat.completions.create(
      { model, messages, stream: true, ...extra }, { headers: { "x-sim": directives } });
  const r = { id: null, chunks: 0, usage_members: 0, empty_choices: 0, text: "",
              finish: null, usage: null };
  for await (const chunk of stream) {
    r.id = chunk.id;
    r.chunks++;
    if (Object.prototype.hasOwnProperty.call(chunk, "usage")) r.usage_members++;
    if (chunk.usage) r.usage = chunk.usage;
    if (!Array.isArray(chunk.choices) || chunk.choices.length === 0) r.empty_choices++;
    for (const c of chunk.choices || []) {
      r.text += (c.delta && c.delta.content) || "";
      if (c.finish_reason) r.finish = c.finish_reason;
    }
  }
  return r;
}

(async () => {
  const plain = await chat("gpt-4o-mini", {}, sim.chat_plain);
  check(plain.usage_members === 0, plain.usage_members + " chunks with a usage member");
  check(plain.empty_choices === 0, plain.empty_choices + " chunks with empty choices");
  const asked = await chat("gpt-4.1", { stream_options: { include_usage: true } },
                           sim.chat_usage);
  check(asked.usage !== null, "no usage although include_usage was asked");

  const rs = await client.responses.create({ model: "o4-mini", input: "hi", stream: true },
                                           { headers: { "x-sim": sim.responses } });
  const resp = { id: null, text: "", usage: null, status: null, events: 0 };
  for await (const ev of rs) {
    resp.events++;
    if (ev.type === "response.output_text.delta") resp.text += ev.delta;
    if (ev.type === "response.completed") {
      resp.id = ev.response.id;
      resp.status = ev.response.status;
      resp.usage = ev.response.usage;
    }
  }
  done({ chat_plain: plain, chat_usage: asked, responses: resp });
})().catch(fail);
"""

# messages.stream() with 5-minute and 1-hour cache writes chosen in the
# prompt, then create({stream: true}) with extended thinking chosen in a
# header.
ANTHROPIC_JS = PRELUDE + r"""
const Anthropic = load("@anthropic-ai/sdk");
const client = new Anthropic({ apiKey: "sk-ant-test", maxRetries: 0 });

(async () => {
  const stream = client.messages.stream({
    model: "claude-haiku-4-5", max_tokens: 1024,
    system: [{ type: "text", text: "A long, cached system prompt.",
               cache_control: { type: "ephemeral", ttl: "1h" } }],
    messages: [{ role: "user", content: [{ type: "text", text: "Summarise. " + sim.cached,
                                           cache_control: { type: "ephemeral" } }] }] });
  let text = "";
  stream.on("text", t => { text += t; });
  const m = await stream.finalMessage();
  const cached = { id: m.id, text, stop_reason: m.stop_reason, usage: m.usage };

  const s2 = await client.messages.create({
    model: "claude-sonnet-4-5", max_tokens: 4096, stream: true,
    thinking: { type: "enabled", budget_tokens: 2048 },
    messages: [{ role: "user", content: "Think first." }] },
    { headers: { "x-sim": sim.thinking } });
  const thinking = { id: null, types: [], text: "", thinking: 0, usage: null };
  for await (const ev of s2) {
    thinking.types.push(ev.type);
    if (ev.type === "message_start") thinking.id = ev.message.id;
    if (ev.type === "content_block_delta" && ev.delta.type === "text_delta")
      thinking.text += ev.delta.text;
    if (ev.type === "content_block_delta" && ev.delta.type === "thinking_delta")
      thinking.thinking++;
    if (ev.type === "message_delta") thinking.usage = ev.usage;
  }
  done({ cached, thinking });
})().catch(fail);
"""

# generateContentStream() (SSE) with thoughts, then generateContent().
GEMINI_JS = PRELUDE + r"""
const { GoogleGenAI } = sdk("@google/genai");
const ai = new GoogleGenAI({ apiKey: "gk-test" });

(async () => {
  const stream = await ai.models.generateContentStream({
    model: "gemini-2.5-flash", contents: "Think, then answer. " + sim.stream,
    config: { thinkingConfig: { thinkingBudget: 1024 } } });
  const s = { id: null, chunks: 0, text: "", usage: null, finish: null };
  for await (const chunk of stream) {
    s.chunks++;
    s.id = chunk.responseId;
    for (const p of (chunk.candidates && chunk.candidates[0].content &&
                     chunk.candidates[0].content.parts) || [])
      if (p.text && !p.thought) s.text += p.text;
    if (chunk.candidates && chunk.candidates[0].finishReason)
      s.finish = chunk.candidates[0].finishReason;
    if (chunk.usageMetadata) s.usage = chunk.usageMetadata;
  }
  const r = await ai.models.generateContent({ model: "gemini-2.5-pro",
                                              contents: "Answer. " + sim.json });
  done({ stream: s, json: { id: r.responseId, text: r.text, usage: r.usageMetadata } });
})().catch(fail);
"""

# Plain httpx, no SDK: one JSON answer, one stream read line by line.
HTTPX_PY = r"""
import json, sys
import httpx
sim = json.loads(sys.argv[1])
URL = "https://api.openai.com/v1/chat/completions"
AUTH = {"authorization": "Bearer sk-test"}
out = {}
with httpx.Client(timeout=30) as client:
    r = client.post(URL, headers=dict(AUTH, **{"x-sim": sim["json"]}),
                    json={"model": "gpt-4.1-mini",
                          "messages": [{"role": "user", "content": "hi"}]})
    r.raise_for_status()
    body = r.json()
    out["json"] = {"id": body["id"], "usage": body["usage"],
                   "text": body["choices"][0]["message"]["content"]}
    s = {"id": None, "chunks": 0, "usage_members": 0, "empty_choices": 0, "text": "",
         "done": False}
    with client.stream("POST", URL, headers=AUTH,
                       json={"model": "gpt-4.1-mini", "stream": True,
                             "messages": [{"role": "user", "content": "hi " + sim["stream"]}]}
                       ) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            # Debian's httpx 0.23 keeps the line ending.
            line = line.rstrip("\r\n")
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                s["done"] = True
                continue
            chunk = json.loads(line[6:])
            s["id"] = chunk["id"]
            s["chunks"] += 1
            s["usage_members"] += "usage" in chunk
            s["empty_choices"] += not chunk.get("choices")
            for c in chunk.get("choices", []):
                s["text"] += c.get("delta", {}).get("content") or ""
    out["stream"] = s
print(json.dumps(out))
"""


class SdkAccountingTest(WrapCase):

    def setUp(self):
        super().setUp()
        self.llmctl = lwtest.binary("LLMCTL")

    def need_node(self, package):
        if shutil.which("node") is None:
            self.skipTest("node is not installed")
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", package)):
            self.skipTest(f"the pinned npm package {package} is missing: "
                          "run scripts/install-deps --node")

    def run_wrapped(self, name, text, directives, interpreter):
        """Runs the program under `llmwrap --quiet --json-summary` and
        returns (what the program printed, the summary, the ledger rows)."""
        path = self.script(name, text)
        summary_path = os.path.join(self.workdir, name + ".summary.json")
        p = self.wrap("--quiet", "--json-summary", summary_path, "--", interpreter, path,
                      json.dumps(directives), env=self.env(LW_NODE_DIR=NODE_DIR))
        self.assertRan(p)
        # --quiet, and no warning either (the program may print its own).
        self.assertNotIn(b"llmwrap", p.stderr)
        with open(summary_path) as f:
            summary = json.load(f, parse_float=D)
        out = subprocess.run([self.llmctl, "requests", "--json"], capture_output=True,
                             env=self.env(), timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(p.stdout), summary, json.loads(out.stdout, parse_float=D)

    def assertLedger(self, summary, rows, expected):
        """expected: {response id: (provider, model, stream, tokens, pusd)}
        with tokens = (input, cached, cache_write, cache_write_1h, output,
        reasoning)."""
        self.assertEqual(summary["exit_status"], 0)
        self.assertEqual(sorted(r["upstream_request_id"] for r in rows), sorted(expected))
        for row in rows:
            rid = row["upstream_request_id"]
            provider, model, stream, tokens, pusd = expected[rid]
            with self.subTest(rid):
                self.assertEqual((row["provider"], row["model"], row["status"], row["stream"]),
                                 (provider, model, 200, stream))
                got = (row["input_tokens"], row["cached_input_tokens"],
                       row["cache_write_tokens"], row["cache_write_1h_tokens"],
                       row["output_tokens"], row["reasoning_tokens"])
                self.assertEqual(got, tokens)
                self.assertEqual(D(row["cost_usd"]), usd(pusd))
                self.assertEqual(row["cost_source"], "price")
                self.assertFalse(row["partial"])
                self.assertEqual(row["run_id"], summary["run_id"])
                self.assertIsNone(row["refused_by"])
        self.assertEqual(summary["requests"], len(rows))
        self.assertEqual(D(summary["cost_usd"]), sum(D(r["cost_usd"]) for r in rows))
        self.assertEqual(D(summary["cost_usd"]), sum(usd(e[4]) for e in expected.values()))

    def test_openai_sdk_chat_and_responses_streams(self):
        self.need_node("openai")
        sim = {"chat_plain": "in=1200;cached=1024;out=30",
               "chat_usage": "in=3000;cached=2048;out=40",
               "responses": "in=1000;cached=512;out=20;reasoning=300"}
        out, summary, rows = self.run_wrapped("openai.js", OPENAI_JS, sim, "node")

        plain, asked, resp = out["chat_plain"], out["chat_usage"], out["responses"]
        # Nothing of the injected usage reached the SDK, and the whole answer did.
        self.assertEqual((plain["usage_members"], plain["empty_choices"], plain["usage"]),
                         (0, 0, None))
        self.assertEqual(plain["text"], sim_text(30))
        self.assertEqual(plain["finish"], "stop")
        # role chunk + one chunk per word + finish chunk
        self.assertEqual(plain["chunks"], 1 + 30 + 1)
        # The client that asked for usage gets it, as the provider sent it.
        self.assertEqual(asked["text"], sim_text(40))
        self.assertEqual(asked["usage"]["prompt_tokens"], 3000)
        self.assertEqual(asked["usage"]["prompt_tokens_details"]["cached_tokens"], 2048)
        self.assertEqual(asked["usage"]["completion_tokens"], 40)
        self.assertEqual(asked["empty_choices"], 1)  # the usage chunk
        self.assertEqual((resp["status"], resp["text"]), ("completed", sim_text(20)))

        self.assertLedger(summary, rows, {
            plain["id"]: ("openai", "gpt-4o-mini", True, (1200, 1024, 0, 0, 30, 0),
                          # gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out
                          (1200 - 1024) * 150_000 + 1024 * 75_000 + 30 * 600_000),
            asked["id"]: ("openai", "gpt-4.1", True, (3000, 2048, 0, 0, 40, 0),
                          # gpt-4.1: 2.00 in, 0.50 cached, 8.00 out
                          (3000 - 2048) * 2 * M + 2048 * 500_000 + 40 * 8 * M),
            resp["id"]: ("openai", "o4-mini", True, (1000, 512, 0, 0, 320, 300),
                         # o4-mini: 1.10 in, 0.275 cached, 4.40 out; output 20 + 300
                         (1000 - 512) * 1_100_000 + 512 * 275_000 + 320 * 4_400_000),
        })
        # What the SDKs saw is what was recorded.
        by_id = {r["upstream_request_id"]: r for r in rows}
        row = by_id[asked["id"]]
        self.assertEqual((asked["usage"]["prompt_tokens"], asked["usage"]["completion_tokens"]),
                         (row["input_tokens"], row["output_tokens"]))
        row = by_id[resp["id"]]
        u = resp["usage"]
        self.assertEqual((u["input_tokens"], u["input_tokens_details"]["cached_tokens"],
                          u["output_tokens"], u["output_tokens_details"]["reasoning_tokens"]),
                         (row["input_tokens"], row["cached_input_tokens"],
                          row["output_tokens"], row["reasoning_tokens"]))
        # The provider was asked for usage on the stream that did not ask.
        seen = json.loads(self.sim.request("GET", "/_sim/requests")[2])
        self.assertEqual([(r["path"], r["include_usage"]) for r in seen],
                         [("/v1/chat/completions", True), ("/v1/chat/completions", True),
                          ("/v1/responses", False)])

    def test_anthropic_sdk_streams_with_cache_writes(self):
        self.need_node("@anthropic-ai/sdk")
        sim = {"cached": "[[sim in=20000 cached=15000 cache_write=1200 cache_write_1h=2500 "
                         "out=60]]",
               "thinking": "in=9000;cache_write_1h=4000;out=25;reasoning=75"}
        out, summary, rows = self.run_wrapped("anthropic.js", ANTHROPIC_JS, sim, "node")

        cached, thinking = out["cached"], out["thinking"]
        self.assertEqual((cached["text"], cached["stop_reason"]), (sim_text(60), "end_turn"))
        u = cached["usage"]
        # Anthropic's input_tokens excludes cache reads and writes.
        self.assertEqual((u["input_tokens"], u["cache_read_input_tokens"],
                          u["cache_creation_input_tokens"], u["output_tokens"]),
                         (20000 - 15000 - 1200 - 2500, 15000, 1200 + 2500, 60))
        self.assertEqual(thinking["text"], sim_text(25))
        self.assertEqual(thinking["thinking"], 1)  # the simulator thinks in one delta
        self.assertEqual(thinking["types"][0], "message_start")
        self.assertEqual(thinking["types"][-1], "message_stop")
        self.assertEqual(thinking["usage"]["output_tokens"], 100)

        self.assertLedger(summary, rows, {
            cached["id"]: ("anthropic", "claude-haiku-4-5", True,
                           (20000, 15000, 3700, 2500, 60, 0),
                           # claude-haiku-4-5: 1.00 in, 0.10 read, 1.25 write 5m,
                           # 2.00 write 1h, 5.00 out; uncached 20000 - 15000 - 3700 = 1300
                           1300 * M + 15000 * 100_000 + 1200 * 1_250_000 + 2500 * 2 * M
                           + 60 * 5 * M),
            thinking["id"]: ("anthropic", "claude-sonnet-4-5", True,
                             # thinking is inside output_tokens (25 + 75); a stream's
                             # message_delta carries no breakdown, so reasoning reads 0
                             (9000, 0, 4000, 4000, 100, 0),
                             # claude-sonnet-4-5: 3.00 in, 6.00 write 1h, 15.00 out;
                             # uncached 9000 - 4000 = 5000
                             5000 * 3 * M + 4000 * 6 * M + 100 * 15 * M),
        })

    def test_google_genai_stream_and_json(self):
        self.need_node("@google/genai")
        sim = {"stream": "[[sim in=5210 cached=4096 out=44 reasoning=186]]",
               "json": "[[sim in=3000 cached=1000 out=12 reasoning=50]]"}
        out, summary, rows = self.run_wrapped("gemini.js", GEMINI_JS, sim, "node")

        s, j = out["stream"], out["json"]
        self.assertEqual((s["text"], s["finish"], s["chunks"]), (sim_text(44), "STOP", 44))
        self.assertEqual((s["usage"]["promptTokenCount"], s["usage"]["candidatesTokenCount"],
                          s["usage"]["thoughtsTokenCount"]), (5210, 44, 186))
        self.assertEqual(j["text"], sim_text(12))
        # The SDK streams over SSE: the path the simulator (and the
        # collector's SSE parser) serve.
        seen = json.loads(self.sim.request("GET", "/_sim/requests")[2])
        self.assertEqual([(r["path"], r["query"]) for r in seen],
                         [("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "alt=sse"),
                          ("/v1beta/models/gemini-2.5-pro:generateContent", "")])

        self.assertLedger(summary, rows, {
            s["id"]: ("gemini", "gemini-2.5-flash", True, (5210, 4096, 0, 0, 230, 186),
                      # gemini-2.5-flash: 0.30 in, 0.03 cached, 2.50 out;
                      # thoughts are billed as output: 44 + 186
                      (5210 - 4096) * 300_000 + 4096 * 30_000 + 230 * 2_500_000),
            j["id"]: ("gemini", "gemini-2.5-pro", False, (3000, 1000, 0, 0, 62, 50),
                      # gemini-2.5-pro: 1.25 in, 0.125 cached, 10.00 out; output 12 + 50
                      (3000 - 1000) * 1_250_000 + 1000 * 125_000 + 62 * 10 * M),
        })

    def test_python_httpx_json_and_stream(self):
        sim = {"json": "in=700;out=9", "stream": "[[sim in=800 cached=256 out=11]]"}
        out, summary, rows = self.run_wrapped("httpx_client.py", HTTPX_PY, sim, PYTHON)

        j, s = out["json"], out["stream"]
        self.assertEqual((j["text"], j["usage"]["prompt_tokens"], j["usage"]["completion_tokens"]),
                         (sim_text(9), 700, 9))
        self.assertTrue(s["done"])
        self.assertEqual((s["usage_members"], s["empty_choices"]), (0, 0))
        self.assertEqual(s["text"], sim_text(11))

        self.assertLedger(summary, rows, {
            j["id"]: ("openai", "gpt-4.1-mini", False, (700, 0, 0, 0, 9, 0),
                      # gpt-4.1-mini: 0.40 in, 0.10 cached, 1.60 out
                      700 * 400_000 + 9 * 1_600_000),
            s["id"]: ("openai", "gpt-4.1-mini", True, (800, 256, 0, 0, 11, 0),
                      (800 - 256) * 400_000 + 256 * 100_000 + 11 * 1_600_000),
        })


if __name__ == "__main__":
    unittest.main()
