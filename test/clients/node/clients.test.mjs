// OpenAI clients nobody here wrote, against a running RAG server: the official
// `openai` SDK and LangChain.js's ChatOpenAI. Run by test/clients's Go test
// (TestNodeClients), which starts the server and sets:
//   RAGOPS_URL               the server's base URL (http://127.0.0.1:PORT)
//   RAGOPS_TOKEN             its bearer token
//   RAGOPS_MODEL             the model it answers as
//   RAGOPS_NODE_CLIENTS_DIR  where `make node-clients` installed the packages
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(k + " is not set: run this through `go test ./test/clients/`");
  return v;
};
const require = createRequire(path.join(env("RAGOPS_NODE_CLIENTS_DIR"), "package.json"));
const { default: OpenAI } = require("openai");
const { ChatOpenAI } = require("@langchain/openai");

const baseURL = env("RAGOPS_URL") + "/v1";
const apiKey = env("RAGOPS_TOKEN");
const model = env("RAGOPS_MODEL");
const question = "What are the main credit risks?";
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

test("openai: models.list names the server's model", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
});

test("openai: a completion is grounded, cited, with usage and sources", async () => {
  const { data, response } = await client.chat.completions
    .create({ model, messages: [{ role: "user", content: question }], temperature: 0.2, user: "node-test" })
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.object, "chat.completion");
  assert.equal(data.model, model);
  const answer = data.choices[0].message.content;
  assert.match(answer, /read 4 passages: \[1\] /);
  assert.match(answer, /risk-factors\.md/);
  assert.equal(data.choices[0].finish_reason, "stop");
  assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
  // The extra field, read from the raw response as an aware client would.
  const raw = await client.chat.completions
    .create({ model, messages: [{ role: "user", content: question }] })
    .asResponse();
  const body = await raw.json();
  assert.equal(body.sources.length, 4);
  assert.deepEqual(body.sources.map((s) => s.index), [1, 2, 3, 4]);
  assert.ok(body.sources.some((s) => s.source === "risk-factors.md"));
  for (const s of body.sources) assert.ok(s.text.length > 0 && typeof s.score === "number");
});

test("openai: a streamed completion arrives in chunks, sources and usage last", async () => {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content: question }], stream: true, stream_options: { include_usage: true },
  });
  let text = "", pieces = 0, finish = null, sources = null, usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    for (const c of chunk.choices) {
      if (c.delta.content) { text += c.delta.content; pieces++; }
      if (c.finish_reason) { finish = c.finish_reason; sources = chunk.sources; }
    }
    if (chunk.usage) { assert.equal(chunk.choices.length, 0); usage = chunk.usage; }
  }
  assert.match(text, /^Model .* read 4 passages: \[1\] /);
  assert.ok(pieces > 5, "streamed in " + pieces + " pieces");
  assert.equal(finish, "stop");
  assert.equal(sources.length, 4);
  assert.ok(usage.completion_tokens > 0);
});

test("openai: n=2 is refused with OpenAI's error shape, as the SDK's BadRequestError", async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: "user", content: question }], n: 2 }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, "got " + err.constructor.name);
      assert.equal(err.status, 400);
      assert.equal(err.param, "n");
      assert.equal(err.type, "invalid_request_error");
      assert.equal(err.code, "unsupported_parameter");
      return true;
    });
});

test("openai: a wrong token is the SDK's AuthenticationError", async () => {
  const bad = new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model, messages: [{ role: "user", content: question }] }),
    (err) => err instanceof OpenAI.AuthenticationError && err.status === 401 && err.code === "invalid_api_key");
});

test("langchain: ChatOpenAI invoke and stream", async () => {
  const llm = new ChatOpenAI({ model, apiKey, temperature: 0, maxRetries: 0, configuration: { baseURL } });
  const msg = await llm.invoke([["system", "Answer briefly."], ["human", question]]);
  assert.match(msg.content, /read 4 passages: \[1\] /);
  assert.ok(msg.usage_metadata.total_tokens > 0, JSON.stringify(msg.usage_metadata));
  let text = "", chunks = 0, usage = null;
  for await (const chunk of await llm.stream(question)) {
    if (chunk.content) { text += chunk.content; chunks++; }
    if (chunk.usage_metadata) usage = chunk.usage_metadata;
  }
  assert.match(text, /^Model .* read 4 passages: \[1\] /);
  assert.ok(chunks > 5, "streamed in " + chunks + " chunks");
  assert.ok(usage && usage.output_tokens > 0, JSON.stringify(usage));
});
