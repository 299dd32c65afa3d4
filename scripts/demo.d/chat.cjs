// An unmodified Node program using the official openai package: the default
// base URL, the key from OPENAI_API_KEY. llmwrap makes its calls visible.
const OpenAI = require("openai");

(async () => {
  const client = new OpenAI();
  const r = await client.chat.completions.create({
    model: "gpt-4.1",
    messages: [{ role: "user", content: "Review this diff. [[sim in=5000 out=400]]" }],
  });
  console.log("chat.cjs: review:", r.choices[0].message.content.slice(0, 60) + "...");
  const stream = await client.chat.completions.create({
    model: "gpt-4.1",
    stream: true,
    messages: [{ role: "user", content: "Explain it. [[sim in=2000 out=100]]" }],
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || "";
  console.log("chat.cjs: streamed:", text.slice(0, 60) + "...");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
