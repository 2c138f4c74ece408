// c2pa-verify.mjs - the independent C2PA check of tests/e2e/c2pa_wasm.sh: the reference
// implementation (c2pa-rs) built to WebAssembly, from npm's @contentauth/c2pa-wasm, run offline.
//
//   node c2pa-verify.mjs NODE_MODULES_DIR FILE MIME [TRUST_ANCHORS.pem]
//
// Prints one JSON line: {validation_state, codes: [failure codes], active_manifest, source_type}.
// Exits 0 when the reader ran (whatever the state), 3 when it found no manifest, 1 on errors.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

const [modules, file, mime, trust] = process.argv.slice(2);
if (!modules || !file || !mime) {
  console.error('usage: node c2pa-verify.mjs NODE_MODULES_DIR FILE MIME [TRUST.pem]');
  process.exit(1);
}
const require = createRequire(path.join(path.resolve(modules), 'noop.js'));
const pkg = require.resolve('@contentauth/c2pa-wasm/package.json');
const dir = path.dirname(pkg);
const wasm = await import(path.join(dir, 'pkg', 'c2pa.js'));
// Plain init() fetches the .wasm by URL, which Node cannot: hand it the bytes.
await wasm.default({ module_or_path: await readFile(path.join(dir, 'pkg', 'c2pa_bg.wasm')) });

const settings = trust
  ? { verify: { verify_trust: true }, trust: { trust_anchors: await readFile(trust, 'utf8') } }
  : { verify: { verify_trust: false } };
let reader;
try {
  reader = await wasm.WasmReader.fromBytes(mime, new Uint8Array(await readFile(file)),
                                           JSON.stringify(settings));
} catch (e) {
  const msg = String(e && e.message ? e.message : e);
  console.log(JSON.stringify({ validation_state: 'None', error: msg }));
  process.exit(/JumbfNotFound|ManifestNotFound|not found/i.test(msg) ? 3 : 1);
}
const store = JSON.parse(reader.json());
const active = store.active_manifest ? store.manifests[store.active_manifest] : null;
let sourceType = null;
for (const a of (active && active.assertions) || []) {
  if (a.label && a.label.startsWith('c2pa.actions')) {
    const first = a.data && a.data.actions && a.data.actions[0];
    if (first) sourceType = first.digitalSourceType || null;
  }
}
console.log(JSON.stringify({
  validation_state: store.validation_state,
  codes: (store.validation_status || []).map((s) => s.code),
  status: store.validation_status || [],
  active_manifest: store.active_manifest || null,
  source_type: sourceType,
}));
