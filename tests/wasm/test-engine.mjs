// test-engine.mjs: web/src/engine.js's engine over loopwise-test.wasm (the shipped module plus
// src/wasm/test_exports.c), with the methods tests and benchmarks need that a page never calls.
// Pure (no Node APIs): tests/web/test-entry.js bundles it for Chromium.
import { loadEngine } from '../../web/src/engine.js';

// Same options as loadEngine; wasm must be loopwise-test.wasm.
export function loadTestEngine(opts) {
  return loadEngine(opts, (engine, x, h, bytes, put, cstr) => Object.assign(engine, {
    pending: () => x.pending(h),
    modelId: () => x.model_id(h),
    // The module's linear memory and its heap in use, in bytes.
    memoryBytes: () => x.memory.buffer.byteLength,
    heapBytes: () => x.heap_used(),
    // The shared cases' function groups (tests/cases/functions.json).
    fnv1a(s) {
      const p = put(s);
      try { return x.fnv1a(p) >>> 0; } finally { x.free(p); }
    },
    vwHash(s) {
      const p = put(s);
      try {
        const h = x.vw_hash(p);
        return h < 0 ? null : h;
      } finally { x.free(p); }
    },
    fx: (v) => x.fx(v),
    fxDecimal: (q) => cstr(x.fx_decimal(q)),
    ppmSplit(w) {
      const n = w.length, p = x.malloc(8 * n || 8);
      try {
        new Uint32Array(bytes().buffer, p, n).set(w);
        x.ppm_split(p, n, p + 4 * n);
        return [...new Uint32Array(bytes().buffer, p + 4 * n, n)];
      } finally { x.free(p); }
    },
    kindNames() {
      const names = [];
      for (let i = 0, p; (p = x.kind_name(i)); i++) names.push(cstr(p));
      return names;
    },
  }));
}
