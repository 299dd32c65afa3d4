"""scripts/demo, the README's main job, run on the binaries meson built.

The demo prints figures a reader is told to check by hand; this test checks
them, so a change that breaks the demo or its arithmetic fails the suite
rather than the first newcomer who tries it.
"""

import json
import os
import re
import shutil
import subprocess
import unittest

import lwtest

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
NODE_MODULES = os.path.join(ROOT, "tests", "node", "node_modules")


class TestDemo(unittest.TestCase):

    def setUp(self):
        if lwtest.SANITIZED:
            self.skipTest("the demo wraps python3 and node, which do not run with the "
                          "sanitizer runtime the shim of this build needs")
        if shutil.which("node") is None or not os.path.isdir(os.path.join(NODE_MODULES, "openai")):
            self.skipTest("node or the pinned npm packages are missing: "
                          "run scripts/install-deps --node")
        collector = lwtest.binary("LLM_COLLECTOR")
        self.build = os.path.dirname(os.path.dirname(collector))

    def test_demo(self):
        env = dict(os.environ, LW_DEMO_BUILD=self.build)
        env.pop("LLMWRAP_HOME", None)
        env.pop("LD_PRELOAD", None)
        p = subprocess.run([os.path.join(ROOT, "scripts", "demo")], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=180)
        out = p.stdout
        self.assertEqual(p.returncode, 0, out)

        # 1. curl through the collector got the provider's answer.
        self.assertIn('"object":"chat.completion"', out)
        # 2 and 3. Both wrapped programs ran, and llmwrap summed their runs.
        self.assertIn("agent.py: streamed summary: Hello from the simulated provider", out)
        self.assertIn("chat.cjs: streamed: Hello from the simulated provider", out)
        self.assertIn("llmwrap: run 1: 2 requests, $0.0003372", out)
        self.assertIn("llmwrap: run 2: 2 requests, $0.018", out)
        # 4. The doctor says yes to the three dynamic programs, no to the static one.
        self.assertEqual(len(re.findall(r": will be intercepted and trusted\n", out)), 3, out)
        self.assertRegex(out, r"static-tool: will NOT be intercepted")
        # 5. The exact amounts the demo's hand calculation arrives at.
        start = out.index("\n[\n") + 1
        rows = json.loads(out[start:out.index("\n]\n", start) + 2])
        by_model = {r["key"]: r for r in rows}
        self.assertEqual(set(by_model), {"gpt-4o-mini", "gpt-4.1"})
        mini, big = by_model["gpt-4o-mini"], by_model["gpt-4.1"]
        self.assertEqual((mini["requests"], mini["input_tokens"], mini["cached_input_tokens"],
                          mini["output_tokens"]), (3, 2030, 1024, 198))
        self.assertAlmostEqual(mini["cost_usd"], 0.0003465, places=10)
        self.assertEqual((big["requests"], big["input_tokens"], big["output_tokens"]),
                         (2, 7000, 500))
        self.assertAlmostEqual(big["cost_usd"], 0.018, places=10)
        self.assertRegex(out, r"TOTAL +5 +9,030 +1,024 +698 +0 +\$0\.0183\n")


if __name__ == "__main__":
    unittest.main()
