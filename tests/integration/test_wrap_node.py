"""Node clients under llmwrap: fetch, https and the official SDKs.

The SDKs are the versions pinned in tests/node/package-lock.json
(scripts/install-deps --node installs them). Every client uses the real
provider URL with no CA option: trust comes from NODE_EXTRA_CA_CERTS and
name resolution from the shim, both set up by llmwrap.
"""

import json
import os
import shutil
import unittest

import lwtest
from test_wrap import WrapCase

NODE_DIR = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "node"))

PRELUDE = r"""
const { createRequire } = require("module");
const sdk = createRequire(process.env.LW_NODE_DIR + "/");
const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
const headers = { "content-type": "application/json", authorization: "Bearer sk-test" };
function done(result) { console.log(JSON.stringify(result)); }
function fail(e) { console.error(e && e.stack || e); process.exit(1); }
"""

SCRIPTS = {
    "fetch": r"""
fetch("https://api.openai.com/v1/chat/completions",
      { method: "POST", headers, body: JSON.stringify(body) })
  .then(async r => done({ status: r.status, object: (await r.json()).object }))
  .catch(fail);
""",
    "https": r"""
const https = require("https");
const req = https.request("https://api.openai.com/v1/chat/completions",
                          { method: "POST", headers }, res => {
  let data = "";
  res.on("data", c => data += c);
  res.on("end", () => done({ status: res.statusCode, object: JSON.parse(data).object }));
});
req.on("error", fail);
req.end(JSON.stringify(body));
""",
    "openai": r"""
const OpenAI = sdk("openai").default || sdk("openai");
const client = new OpenAI({ apiKey: "sk-test", maxRetries: 0 });
(async () => {
  const r = await client.chat.completions.create(body);
  const stream = await client.chat.completions.create(
      { ...body, stream: true, stream_options: { include_usage: true } });
  let usage = null, text = "";
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) text += (c.delta && c.delta.content) || "";
  }
  done({ object: r.object, prompt_tokens: r.usage.prompt_tokens,
         stream_text: text.length > 0, stream_usage: usage !== null });
})().catch(fail);
""",
    "anthropic": r"""
const Anthropic = sdk("@anthropic-ai/sdk").default || sdk("@anthropic-ai/sdk");
const client = new Anthropic({ apiKey: "sk-ant-test", maxRetries: 0 });
(async () => {
  const r = await client.messages.create({ model: "claude-sonnet-4-5", max_tokens: 64,
      messages: [{ role: "user", content: "hi" }] });
  done({ type: r.type, input_tokens: r.usage.input_tokens });
})().catch(fail);
""",
}


class TestNode(WrapCase):

    def setUp(self):
        if shutil.which("node") is None:
            self.skipTest("node is not installed")
        super().setUp()

    def node(self, name):
        if name in ("openai", "anthropic") and not os.path.isdir(
                os.path.join(NODE_DIR, "node_modules", "openai")):
            self.skipTest("the pinned npm packages are missing: run scripts/install-deps --node")
        path = self.script(name + ".js", PRELUDE + SCRIPTS[name])
        p = self.wrap("--quiet", "node", path, env=self.env(LW_NODE_DIR=NODE_DIR))
        self.assertRan(p)
        return json.loads(p.stdout)

    def test_fetch(self):
        self.assertEqual(self.node("fetch"), {"status": 200, "object": "chat.completion"})
        self.assertEqual(self.counters()["requests_total"], 1)

    def test_https_module(self):
        self.assertEqual(self.node("https"), {"status": 200, "object": "chat.completion"})
        self.assertEqual(self.counters()["requests_total"], 1)

    def test_openai_sdk(self):
        out = self.node("openai")
        self.assertEqual(out["object"], "chat.completion")
        self.assertGreater(out["prompt_tokens"], 0)
        self.assertTrue(out["stream_text"])
        self.assertTrue(out["stream_usage"])
        self.assertEqual(self.counters()["requests_total"], 2)

    def test_anthropic_sdk(self):
        out = self.node("anthropic")
        self.assertEqual(out["type"], "message")
        self.assertGreater(out["input_tokens"], 0)
        self.assertEqual(self.counters()["requests_total"], 1)
        self.assertEqual(self.sim.stats()["by_path"], {"/v1/messages": 1})


if __name__ == "__main__":
    unittest.main()
