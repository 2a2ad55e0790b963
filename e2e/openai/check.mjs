// Checks airlock serve with the official openai SDK: model listing, a
// non-streaming and a streaming chat completion with an API key, and the
// SDK's error classes for a bad key and a bad request.
//
// Usage: AIRLOCK_URL=http://127.0.0.1:PORT AIRLOCK_API_KEY=alk_... node e2e/openai/check.mjs
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = `${process.env.AIRLOCK_URL}/v1`;
const apiKey = process.env.AIRLOCK_API_KEY;
assert.ok(process.env.AIRLOCK_URL && apiKey, 'set AIRLOCK_URL and AIRLOCK_API_KEY');

const client = new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 120_000 });

const models = await client.models.list();
assert.equal(models.data.length, 1);
const model = models.data[0].id;
assert.equal(models.data[0].object, 'model');

const request = {
  model,
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say hello.' },
    { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'Again, in German.' },
  ],
  max_tokens: 8,
  temperature: 0.7,
  seed: 1234,
};

const completion = await client.chat.completions.create(request);
assert.equal(completion.object, 'chat.completion');
assert.equal(completion.model, model);
assert.match(completion.id, /^chatcmpl-/);
assert.equal(completion.choices.length, 1);
const choice = completion.choices[0];
assert.equal(choice.message.role, 'assistant');
assert.equal(typeof choice.message.content, 'string');
assert.ok(['stop', 'length'].includes(choice.finish_reason), choice.finish_reason);
const u = completion.usage;
assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0);
assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);

const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
let text = '';
let finish = null;
let usage = null;
let chunks = 0;
let sawRole = false;
for await (const chunk of stream) {
  chunks++;
  assert.equal(chunk.object, 'chat.completion.chunk');
  assert.equal(chunk.model, model);
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta.role === 'assistant') sawRole = true;
    if (c.delta.content) text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.ok(sawRole, 'no chunk carried the assistant role');
assert.equal(text, choice.message.content, 'the stream differs from the same seeded completion');
assert.equal(finish, choice.finish_reason);
assert.deepEqual(usage, u);

const bad = new OpenAI({ apiKey: 'alk_0000000000000000_' + 'A'.repeat(43), baseURL, maxRetries: 0 });
await assert.rejects(bad.chat.completions.create(request), (err) => {
  assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
  assert.equal(err.status, 401);
  return true;
});
await assert.rejects(client.chat.completions.create({ ...request, max_tokens: 1_000_000 }), (err) => {
  assert.ok(err instanceof OpenAI.BadRequestError, String(err));
  assert.equal(err.code, 'max_tokens_exceeded');
  return true;
});

console.log(JSON.stringify({ ok: true, model, completion_tokens: u.completion_tokens, stream_chunks: chunks }));
