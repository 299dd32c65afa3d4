"""A small "agent" that knows nothing about llmwrap: plain httpx calls to the
OpenAI API with the key from OPENAI_API_KEY. Under llmwrap its traffic goes
through the collector without a single change here.

The [[sim ...]] text in the prompts tells the simulated provider what usage to
report, so the demo's spend table can be checked by hand.
"""
import json
import os

import httpx

URL = "https://api.openai.com/v1/chat/completions"
HEADERS = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}


def ask(prompt, **extra):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], **extra}
    return httpx.post(URL, json=body, headers=HEADERS, timeout=30)


r = ask("Plan the trip. [[sim in=1200 out=150 cached=1024]]")
r.raise_for_status()
print("agent.py: plan:", r.json()["choices"][0]["message"]["content"][:60] + "...")

text = ""
with httpx.stream("POST", URL, headers=HEADERS, timeout=30,
                  json={"model": "gpt-4o-mini", "stream": True,
                        "messages": [{"role": "user",
                                      "content": "Write the summary. [[sim in=800 out=40]]"}]}) as s:
    for line in s.iter_lines():
        line = line.strip()  # older httpx keeps the newline
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:])["choices"]:
                text += choice["delta"].get("content") or ""
print("agent.py: streamed summary:", text[:60] + "...")
