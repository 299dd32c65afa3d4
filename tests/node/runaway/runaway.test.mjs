// A runaway test: it keeps calling the API until an error stops it. Under
// `llmwrap --budget`, that error is the SDK's own, raised at once (the
// collector's refusal is not retried), and the test fails with it.
import { test } from "node:test";
import OpenAI from "openai";

test("summarise everything, forever", async () => {
  const client = new OpenAI({
    apiKey: "sk-test",
    defaultHeaders: { "x-sim": "in=200;out=5000" },
  });
  for (let i = 0; i < 1000; i++) {
    await client.chat.completions.create({
      model: "gpt-4.1",
      max_tokens: 10000,
      messages: [{ role: "user", content: `part ${i}` }],
    });
  }
});
