// round-model.mjs: round a format 2-4 model's f32 weights, persona centroids and standardization
// to a 7-bit mantissa (bfloat16 precision, relative error at most 2^-8), in place, and rewrite
// its CRC-32. The file keeps its format, read by the same reader; its low mantissa bytes become 0,
// which gzip stores in a few bits: the default model a page downloads shrinks by about 330 B of
// gzip (see web/README.md). Used by make-default-model.sh only.
//
//   node src/tools/round-model.mjs models/default.lwm
import { readFileSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';

const MANTISSA = 7;
const file = process.argv[2];
if (!file) { console.error('usage: node src/tools/round-model.mjs FILE.lwm'); process.exit(2); }
const b = readFileSync(file);
const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
const fail = (m) => { console.error(`round-model: ${file}: ${m}`); process.exit(1); };
// Formats 2-4 lay out the weights and personas alike (3 and 4 add fields after the segments).
const version = v.getUint16(4, true);
if (b.toString('latin1', 0, 4) !== 'LWMD' || version < 2 || version > 4) fail('not a format 2-4 model');
if (crc32(b.subarray(0, b.length - 4)) !== v.getUint32(b.length - 4, true)) fail('bad checksum');

// Round to nearest, ties away from zero, on the bit pattern; never to 0 (a stored weight is non-zero).
const f = new Float32Array(1), u = new Uint32Array(f.buffer);
const drop = 23 - MANTISSA;
function round(at) {
  f[0] = v.getFloat32(at, true);
  u[0] = ((u[0] + (1 << (drop - 1))) >>> drop) << drop;
  if (!Number.isFinite(f[0])) fail(`a value at byte ${at} overflows when rounded`);
  v.setFloat32(at, f[0], true);
}

const nActions = b[7], nPersonas = b[8], dims = b[9];
let p = 28;
for (let a = 0; a < nActions; a++) p += 1 + b[p] + 1 + 4;
const k = v.getUint32(p, true);
p += 4;
for (let i = 0; i < k; i++, p += 6) round(p + 2);
for (let i = 0; i < nPersonas * dims + 2 * dims; i++, p += 4) round(p);
v.setUint32(b.length - 4, crc32(b.subarray(0, b.length - 4)), true);
writeFileSync(file, b);
