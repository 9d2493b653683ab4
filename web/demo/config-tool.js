// config-tool.js: loopwise-config.wasm, the program config's checker and compiler, from
// JavaScript (the demo's config editor; tests/wasm/config-tool.test.mjs). The same C code as the
// native `loopwise-config`: the same JSON-path messages, the same compiled bytes.
//
//   const tool = await loadConfigTool(bytesOfTheWasm);
//   tool.compile(jsonText)  // { ok: true, bytes } or { ok: false, error: 'milestones[0].after: ...' }
const enc = new TextEncoder();
const dec = new TextDecoder();

export async function loadConfigTool(wasm) {
  let mem;
  const env = {
    // cJSON's strtod: Number() rounds correctly, as glibc's strtod does natively.
    lw_parse_number: (p, n) => Number(dec.decode(new Uint8Array(mem.buffer, p, n))),
    emscripten_notify_memory_growth: () => {},
  };
  const { instance } = await WebAssembly.instantiate(await wasm, { env });
  const x = instance.exports;
  mem = x.memory;
  x._initialize();
  return {
    compile(text) {
      const json = enc.encode(text);
      const jp = x.malloc(json.length || 1), ep = x.malloc(256);
      new Uint8Array(mem.buffer).set(json, jp);
      // Room enough for any config's output (texts escape to at most 6 bytes a byte), so the
      // JSON is parsed once; the size the call reports would still cover a miss.
      let cap = json.length * 6 + 4096, op = x.malloc(cap);
      try {
        let n = x.lw_c_compile(jp, json.length, ep, op, cap);
        if (n > cap) {
          x.free(op);
          op = x.malloc((cap = n));
          n = x.lw_c_compile(jp, json.length, ep, op, cap);
        }
        if (n) return { ok: true, bytes: new Uint8Array(mem.buffer).slice(op, op + n) };
        const msg = new Uint8Array(mem.buffer, ep, 256);
        return { ok: false, error: dec.decode(msg.subarray(0, msg.indexOf(0))) };
      } finally {
        x.free(jp);
        x.free(ep);
        x.free(op);
      }
    },
  };
}
