// acr_bench peer: the official JS SDK (@azure/container-registry), no real credential.
//
// usage: node peer_js.mjs MODULES_DIR ENDPOINT REPO up FILE DIGEST     uploadBlob(stream of FILE)
//        node peer_js.mjs MODULES_DIR ENDPOINT REPO down DIGEST SIZE   downloadBlob into a sink
// MODULES_DIR holds node_modules with the SDK (`npm install` into target/, see xtask bench).
// Prints one JSON line: {"op_s": seconds inside the SDK call, "bytes": bytes moved}.
//
// Over plain http (SDK 1.1.x): the constructor requires a TokenCredential (a stub that throws
// is never called: the registry sends no 401), and bearerTokenAuthenticationPolicy refuses
// http URLs with no option to turn it off, so it is removed from the client's pipeline
// (private field `client`) and allowInsecureConnection is set.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";

const [modules, endpoint, repo, mode, a, b] = process.argv.slice(2);
if (!b || (mode !== "up" && mode !== "down")) {
  console.error("usage: node peer_js.mjs MODULES_DIR ENDPOINT REPO up FILE DIGEST | down DIGEST SIZE");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modules), "package.json"));
const { ContainerRegistryContentClient } = require("@azure/container-registry");

const cred = { getToken: async () => { throw new Error("anonymous bench: no token"); } };
const client = new ContainerRegistryContentClient(endpoint, repo, cred, { allowInsecureConnection: true });
client.client.pipeline.removePolicy({ name: "bearerTokenAuthenticationPolicy" });

let n = 0;
const t0 = performance.now();
if (mode === "up") {
  const r = await client.uploadBlob(fs.createReadStream(a));
  if (r.digest !== b) { console.error(`uploaded digest ${r.digest} != ${b}`); process.exit(1); }
  n = r.sizeInBytes;
} else {
  const r = await client.downloadBlob(a); // the stream verifies the sha256 at its end
  for await (const chunk of r.content) n += chunk.length;
  if (n !== Number(b)) { console.error(`downloaded ${n} bytes, expected ${b}`); process.exit(1); }
}
const opS = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ op_s: opS, bytes: n }));
