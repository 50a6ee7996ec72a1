// Runs miniflare_worker.py in Pyodide under Node.js with Miniflare's real bindings as
// its `env`, and prints one JSON object with what came back.
//
//   node run_miniflare.mjs PYODIDE_DIR SDK_DIR MINIFLARE_DIR
//
// Miniflare (workerd) provides two Queues producers (ORDERS, EVENTS), an R2 bucket
// (THUMBS), a KV namespace (KV) and a D1 database (DB); `getBindings()` hands them to
// Node, and they reach the Python Worker as `env`, so its sends and puts are Miniflare's.
//
// Delivery: Miniflare delivers each queue's batches to a consumer Worker inside workerd,
// which cannot run Pyodide offline. That consumer is a small JavaScript Worker that
// forwards the batch (ids, timestamps, attempts and bodies, typed) to this process through
// Miniflare's outboundService, where the Python Worker's `queue()` handles it with
// polyserve's inbound adapter; each message's ack() or retry() is sent back, and the
// consumer calls Miniflare's real ack()/retry(), so a retried message is redelivered.

import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { loadWorker } from "./pyodide_worker.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const [pyodideDir, wheelDir, miniflareDir] = process.argv.slice(2);
const { Miniflare } = await import(pathToFileURL(path.join(miniflareDir, "dist/src/index.js")).href);

const CONSUMER = `
function encode(body) {
  if (typeof body === "string") return { type: "text", value: body };
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const bytes = body instanceof ArrayBuffer ? new Uint8Array(body)
      : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    return { type: body instanceof ArrayBuffer ? "arraybuffer" : "view", base64: btoa(text) };
  }
  return { type: "json", value: body };
}
export default {
  async queue(batch) {
    const messages = batch.messages.map((m) => ({
      id: m.id, attempts: m.attempts, timestamp: m.timestamp.getTime(), body: encode(m.body),
    }));
    const response = await fetch("http://polyserve.invalid/queue", {
      method: "POST",
      body: JSON.stringify({ queue: batch.queue, messages }),
    });
    if (!response.ok) throw new Error("the Python consumer failed: " + (await response.text()));
    const verdicts = await response.json();
    for (const m of batch.messages) {
      const verdict = verdicts[m.id];
      if (verdict && verdict.action === "ack") m.ack();
      else m.retry(verdict && verdict.options ? verdict.options : undefined);
    }
  },
};
`;

function decode(body) {
  if (body.type === "text") return body.value;
  if (body.type === "json") return body.value;
  const bytes = Uint8Array.from(Buffer.from(body.base64, "base64"));
  return body.type === "arraybuffer" ? bytes.buffer : bytes;
}

let instance = null;
const ctx = { waitUntil: () => {} };
const deliveries = [];

async function consume(request) {
  const { queue, messages } = await request.json();
  const verdicts = {};
  const batch = {
    queue,
    messages: messages.map((m) => ({
      id: m.id,
      attempts: m.attempts,
      timestamp: new Date(m.timestamp),
      body: decode(m.body),
      ack() {
        verdicts[m.id] = { action: "ack" };
      },
      retry(options) {
        verdicts[m.id] = { action: "retry", options: options === undefined ? null : { ...options } };
      },
    })),
  };
  const delivery = { queue, ids: messages.map((m) => m.id), types: messages.map((m) => m.body.type), error: null };
  deliveries.push(delivery);
  try {
    await instance.queue(batch, env, ctx);
  } catch (error) {
    delivery.error = String(error.message ?? error).split("\n").filter(Boolean).at(-1);
    return new Response(delivery.error, { status: 500 });
  }
  delivery.verdicts = verdicts;
  return Response.json(verdicts);
}

const mf = new Miniflare({
  modules: true,
  compatibilityDate: "2025-01-01",
  script: CONSUMER,
  queueProducers: { ORDERS: { queueName: "orders" }, EVENTS: { queueName: "events" } },
  queueConsumers: {
    orders: { maxBatchSize: 10, maxBatchTimeout: 0.2, maxRetries: 3, retryDelay: 0 },
    events: { maxBatchSize: 10, maxBatchTimeout: 0.2 },
  },
  r2Buckets: ["THUMBS"],
  kvNamespaces: ["KV"],
  d1Databases: ["DB"],
  outboundService: consume,
});

const env = await mf.getBindings();
const result = { bindings: Object.keys(env).sort() };
try {
  const { py, worker } = await loadWorker({
    pyodideDir,
    wheelDir,
    mainFile: path.join(here, "miniflare_worker.py"),
    env,
    waitUntil: ctx.waitUntil,
  });
  instance = worker.Default(ctx, env);
  result.envIsWrapped = py.runPython(
    "import worker, workers; isinstance(worker.Default(None, {}).env, workers._EnvWrapper)",
  );

  const origin = "https://worker.example.com";
  const call = async (method, url, init = {}) => {
    const response = await instance.fetch(new Request(origin + url, { method, ...init }));
    const body = Buffer.from(await response.arrayBuffer());
    return {
      status: response.status,
      headers: Object.fromEntries(response.headers.entries()),
      bodyHex: body.toString("hex"),
      bodyText: body.toString("utf8"),
    };
  };

  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  result.orders = await call("POST", "/orders", { headers: { traceparent } });
  result.tooLarge = await call("POST", "/too-large");

  const image = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
  result.r2 = {
    put: await call("PUT", "/thumbs/t/a%20b.jpg", { headers: { "content-type": "image/jpeg" }, body: image }),
    putOther: await call("PUT", "/thumbs/t/c.txt", { body: "c" }),
    putOutside: await call("PUT", "/thumbs/u/d.txt", { body: "d" }),
    get: await call("GET", "/thumbs/t/a%20b.jpg"),
    list: await call("GET", "/thumbs?prefix=t/"),
    delete: await call("DELETE", "/thumbs/t/c.txt"),
    listAfter: await call("GET", "/thumbs?prefix=t/"),
    missing: await call("GET", "/thumbs/t/c.txt"),
    url: await call("GET", "/thumbs-url"),
  };
  // The object as Miniflare's R2 holds it, read from Node.
  const stored = await env.THUMBS.get("t/a b.jpg");
  result.r2.storedFromNode = {
    equal: Buffer.from(await stored.arrayBuffer()).equals(Buffer.from(image)),
    contentType: stored.httpMetadata.contentType,
    customMetadata: stored.customMetadata,
  };
  result.r2.imageHex = Buffer.from(image).toString("hex");
  result.kv = await call("GET", "/kv/colour");
  result.kvFromNode = await env.KV.get("colour");
  result.d1 = await call("GET", "/d1");

  // @idempotent with D1Store: the records live in Miniflare's D1.
  const pay = (key, amount) =>
    call("POST", "/payments", {
      headers: { "idempotency-key": key, authorization: "Bearer alice", "content-type": "application/json" },
      body: JSON.stringify({ amount }),
    });
  result.payments = [await pay("p-1", 5), await pay("p-1", 5), await pay("p-2", 7), await pay("p-1", 6)];
  result.paymentRows = (
    await env.DB.prepare("SELECT status, count(*) AS n FROM polyserve_idempotency GROUP BY status").all()
  ).results;

  // Wait for Miniflare to deliver everything: 7 orders (one of them twice) and 1 event.
  const deadline = Date.now() + 20_000;
  let recorded = JSON.parse(worker.recorded());
  while (Date.now() < deadline && (recorded.orders.length < 8 || recorded.events.length < 1)) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    recorded = JSON.parse(worker.recorded());
  }
  await new Promise((resolve) => setTimeout(resolve, 500)); // no further redelivery
  result.recorded = JSON.parse(worker.recorded());
  result.deliveries = deliveries;
} finally {
  await mf.dispose();
}
process.stdout.write(JSON.stringify(result) + "\n");
