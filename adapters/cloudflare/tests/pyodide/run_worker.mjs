// Runs the polyserve Cloudflare adapter inside real Pyodide under Node.js and prints
// one JSON object with what came back.
//
//   node run_worker.mjs [PYODIDE_DIR] [SDK_DIR] [MINIFLARE_DIR]
//
// PYODIDE_DIR defaults to tests/node/node_modules/pyodide. Nothing is fetched: Pyodide
// loads its standard library from that folder, and polyserve's sources are copied from
// this checkout into Pyodide's file system. Node provides the real Fetch Request,
// Response and Headers classes, so the adapter's `js` calls hit real JavaScript objects;
// the `workers` module is Cloudflare's SDK; the env's KV namespace is Miniflare's;
// cloudflare:workers and the queue/cron objects are stand-ins.

import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { loadWorker, root } from "./pyodide_worker.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const pyodideDir = path.resolve(process.argv[2] ?? path.join(root, "tests/node/node_modules/pyodide"));
const wheelDir = process.argv[3] ?? path.join(root, ".cache/workers-runtime-sdk");
const miniflareDir = process.argv[4] ?? path.join(root, "tests/node/node_modules/miniflare");

async function responseSummary(response) {
  const body = new Uint8Array(await response.arrayBuffer());
  return {
    status: response.status,
    headers: Object.fromEntries([...response.headers.entries()].filter(([name]) => name !== "set-cookie")),
    setCookies: response.headers.getSetCookie(),
    bodyHex: Buffer.from(body).toString("hex"),
    bodyText: Buffer.from(body).toString("utf8"),
  };
}

function queueMessage(calls, id, body, attempts = 1) {
  return {
    id,
    body,
    attempts,
    timestamp: new Date(Date.UTC(2025, 5, 1, 9, 15, 2, 481)),
    ack() {
      calls.push({ id, action: "ack" });
    },
    retry(options) {
      calls.push({ id, action: "retry", options: options === undefined ? null : { ...options } });
    },
  };
}

async function errorOf(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return String(error.message ?? error).split("\n").filter(Boolean).at(-1);
  }
}

const started = performance.now();
// The env holds Miniflare's real KV namespace, from getBindings().
const { Miniflare } = await import(pathToFileURL(path.join(miniflareDir, "dist/src/index.js")).href);
const mf = new Miniflare({
  modules: true,
  compatibilityDate: "2025-01-01",
  script: "export default { fetch() { return new Response(null, { status: 404 }); } };",
  kvNamespaces: ["KV"],
});
const env = await mf.getBindings();
await env.KV.put("greeting", "hello from Miniflare's KV");
const waited = [];
const waitUntil = (promise) => waited.push(promise);
const ctx = { waitUntil };
const { py, worker, wheel, loadMs: loadedMs } = await loadWorker({
  pyodideDir,
  wheelDir,
  mainFile: path.join(here, "worker.py"),
  env,
  waitUntil,
});
const instance = worker.Default(ctx, env);
const result = {
  pyodide: py.version,
  python: py.runPython("import sys; sys.version.split()[0]"),
  loadMs: Math.round(loadedMs),
  isWorkerEntrypoint: py.runPython("import worker, workers; issubclass(worker.Default, workers.WorkerEntrypoint)"),
  envIsWrapped: py.runPython("import worker, workers; isinstance(worker.Default(None, {}).env, workers._EnvWrapper)"),
  sdk: wheel,
  sdkIsReal: py.runPython("import workers; workers.__file__.startswith('/polyserve-worker/workers/')"),
  heavyModules: py.runPython("import sys; sorted({'pydantic', 'typing_extensions'} & set(sys.modules))").toJs(),
  http: {},
};

const origin = "https://worker.example.com";
result.http.get = await responseSummary(
  await instance.fetch(
    new Request(`${origin}/pets/7?tag=a&tag=b%20c`, {
      headers: { accept: "application/json", "cf-ray": "8f00aa11bb22cc33-AMS", "cf-connecting-ip": "203.0.113.5" },
    }),
  ),
);
result.http.post = await responseSummary(
  await instance.fetch(
    new Request(`${origin}/pets`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Rex" }),
    }),
  ),
);
result.http.invalid = await responseSummary(
  await instance.fetch(new Request(`${origin}/pets`, { method: "POST", body: "{}" })),
);
result.http.notFound = await responseSummary(await instance.fetch(new Request(`${origin}/nowhere`)));
result.http.badPath = await responseSummary(await instance.fetch(new Request(`${origin}/pets/%FF`)));
// The runtime's URL keeps an encoded slash as the client sent it.
result.http.encodedSlash = await responseSummary(await instance.fetch(new Request(`${origin}/pets%2F7`)));
const binary = new Uint8Array(256).map((_, i) => i);
result.http.binary = await responseSummary(
  await instance.fetch(new Request(`${origin}/blobs/caf%C3%A9`, { method: "POST", body: binary })),
);
result.http.head = await responseSummary(await instance.fetch(new Request(`${origin}/pets/3`, { method: "HEAD" })));

// Cloudflare Access: the same key from two callers, each replayed only their own answer.
const segment = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const accessToken = (sub) =>
  [segment({ alg: "RS256", kid: "k1" }), segment({ sub, email: `${sub}@example.com`, aud: ["tag"] }), "c2ln"].join(".");
const accessHeaders = (sub) => ({
  "cf-access-jwt-assertion": accessToken(sub),
  "cf-access-authenticated-user-email": `${sub}@example.com`,
});
const accessWorker = worker.Access(ctx, env);
result.http.whoamiTrusted = await responseSummary(
  await accessWorker.fetch(new Request(`${origin}/whoami`, { headers: accessHeaders("alice") })),
);
result.http.whoamiIgnored = await responseSummary(
  await instance.fetch(new Request(`${origin}/whoami`, { headers: accessHeaders("alice") })),
);
result.http.orders = [];
for (const sub of ["alice", "bob", "alice", "bob"]) {
  const request = new Request(`${origin}/orders`, {
    method: "POST",
    headers: { ...accessHeaders(sub), "idempotency-key": "order-1", "content-type": "application/json" },
    body: JSON.stringify({ sku: "A" }),
  });
  result.http.orders.push(await responseSummary(await accessWorker.fetch(request)));
}

// A streamed body: the first chunk is read while the handler still waits to send
// the second, which a POST /release lets it send.
{
  const response = await instance.fetch(new Request(`${origin}/stream`));
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const first = await reader.read();
  const chunks = [decoder.decode(first.value)];
  const release = await instance.fetch(new Request(`${origin}/release`, { method: "POST" }));
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    chunks.push(decoder.decode(next.value));
  }
  result.http.stream = {
    status: response.status,
    contentType: response.headers.get("content-type"),
    isStream: response.body instanceof ReadableStream,
    chunks,
    releaseStatus: release.status,
  };
}

// A class-based fetch receives the runtime's Request wrapper, not the JavaScript object.
py.globals.set("wrapped_request", new Request(`${origin}/pets/9`));
py.globals.set("js_env", env);
py.globals.set("js_ctx", ctx);
result.http.wrapped = await responseSummary(
  await py.runPythonAsync(`
import worker, workers
await worker.Default(js_ctx, js_env).fetch(workers.Request(wrapped_request))
`),
);

const calls = [];
const batch = {
  queue: "orders",
  messages: [
    queueMessage(calls, "m1", { ok: true, n: [1, null] }),
    queueMessage(calls, "m2", { ok: false }, 2),
    queueMessage(calls, "m3", "plain text é"),
    queueMessage(calls, "m4", new Uint8Array([0, 1, 255]).buffer),
    queueMessage(calls, "m5", new Uint8Array([7, 8])),
    queueMessage(calls, "m6", () => "a function has no JSON form"),
    queueMessage(calls, "m7", null),
  ],
};
result.queue = { error: await errorOf(instance.queue(batch, env, ctx)), calls };

const delayedCalls = [];
const delayedBatch = { queue: "orders-delayed", messages: [queueMessage(delayedCalls, "d1", { ok: false }, 3)] };
result.delayedQueue = {
  error: await errorOf(worker.Delayed(ctx, env).queue(delayedBatch, env, ctx)),
  calls: delayedCalls,
};

// R2 event notifications, delivered through a queue no @app.queue consumes.
const r2Calls = [];
const r2Batch = {
  queue: "photo-events",
  messages: [
    queueMessage(r2Calls, "r1", {
      account: "acct",
      action: "PutObject",
      bucket: "photos",
      object: { key: "lake é.jpg", size: 4096, eTag: "etag-1" },
      eventTime: "2025-07-14T08:02:11.512Z",
    }),
    queueMessage(r2Calls, "r2", {
      account: "acct",
      action: "DeleteObject",
      bucket: "photos",
      object: { key: "old.jpg" },
      eventTime: "2025-07-14T09:00:00.000Z",
    }),
    queueMessage(r2Calls, "r3", { action: "PutObject", bucket: "photos" }),
  ],
};
result.r2 = { error: await errorOf(instance.queue(r2Batch, env, ctx)), calls: r2Calls };

const nightly = { scheduledTime: Date.UTC(2025, 5, 1, 3, 0, 0), cron: "0 3 * * *" };
result.scheduled = {
  error: await errorOf(instance.scheduled(nightly, env, ctx)),
  unknownCronError: await errorOf(instance.scheduled({ scheduledTime: Date.now(), cron: "1 2 3 4 5" }, env, ctx)),
};
// Email and Tail Worker events: no typed trigger, so @app.native() takes them as they came.
const rejected = [];
const email = { from: "ada@example.com", to: "orders@shop.example", setReject: (reason) => rejected.push(reason) };
result.email = { value: await instance.email(email, env, ctx), rejected };
result.tail = { value: await instance.tail([{ scriptName: "shop", outcome: "ok" }, { scriptName: "shop", outcome: "exception" }], env, ctx) };
result.recorded = JSON.parse(worker.recorded());
result.totalMs = Math.round(performance.now() - started);
await mf.dispose();

process.stdout.write(JSON.stringify(result) + "\n");
