// Loads Pyodide under Node.js with polyserve, the Cloudflare adapter and Cloudflare's
// `workers` SDK in its file system, then imports a Worker's main module.
//
// The `workers` package is Cloudflare's own (PyPI's workers-runtime-sdk wheel, which
// .ci/install-servers downloads into .cache/workers-runtime-sdk). What the runtime
// builds in beside it stays a stand-in: the `cloudflare:workers` module (env and
// waitUntil) and the two small modules the SDK imports from the runtime's entrypoint.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../../../..");
const APP_DIR = "/polyserve-worker";

const ENTRYPOINT_HELPER_STANDIN = `
from contextlib import contextmanager

cloudflareWorkersModule = None
cloudflareSocketsModule = None


async def doAnImport(module_name):
    raise ImportError(f"{module_name} is not available outside the Workers runtime")


@contextmanager
def patch_env_helper(kwds):
    yield


def patchWaitUntil(ctx):
    pass
`;

const COMPAT_FLAGS_STANDIN = `
def __getattr__(name):
    return False
`;

function copyTree(py, source, target) {
  py.FS.mkdirTree(target);
  for (const entry of fs.readdirSync(source, { withFileTypes: true })) {
    if (entry.name === "__pycache__") continue;
    const from = path.join(source, entry.name);
    const to = `${target}/${entry.name}`;
    if (entry.isDirectory()) copyTree(py, from, to);
    else if (entry.name.endsWith(".py") || entry.name === "py.typed") py.FS.writeFile(to, fs.readFileSync(from));
  }
}

/**
 * Pyodide with the Worker `mainFile` imported as the module `worker`, whose
 * `cloudflare:workers` stand-in holds `env` and `waitUntil`.
 */
export async function loadWorker({ pyodideDir, wheelDir, mainFile, env, waitUntil }) {
  const wheel = fs.readdirSync(wheelDir).find((name) => /^workers_runtime_sdk-.*\.whl$/.test(name));
  if (!wheel) throw new Error(`no workers_runtime_sdk wheel in ${wheelDir}`);
  const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
  const started = performance.now();
  const py = await loadPyodide({ indexURL: pyodideDir + path.sep });
  const loadMs = Math.round(performance.now() - started);
  copyTree(py, path.join(root, "src/polyserve"), `${APP_DIR}/polyserve`);
  copyTree(py, path.join(root, "adapters/cloudflare/src/polyserve_cloudflare"), `${APP_DIR}/polyserve_cloudflare`);
  py.unpackArchive(new Uint8Array(fs.readFileSync(path.join(wheelDir, wheel))), "wheel", { extractDir: APP_DIR });
  py.FS.writeFile(`${APP_DIR}/_pyodide_entrypoint_helper.py`, ENTRYPOINT_HELPER_STANDIN);
  py.FS.writeFile(`${APP_DIR}/_cloudflare_compat_flags.py`, COMPAT_FLAGS_STANDIN);
  py.FS.writeFile(`${APP_DIR}/worker.py`, fs.readFileSync(mainFile));
  py.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(APP_DIR)})`);
  py.pyimport("_pyodide_entrypoint_helper").cloudflareWorkersModule = { env, waitUntil };
  return { py, worker: py.pyimport("worker"), wheel, loadMs };
}
