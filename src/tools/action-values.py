#!/usr/bin/env python3
"""action-values.py: what a model predicts each action is worth, per segment, on a store's logged
contexts (a diagnostic for README "Why learning does not beat the rules").

    python3 src/tools/action-values.py MODEL.lwm OUTCOMES.db [attr ...]   (default attr: plan)

For every decision in the store (any mode) it scores each model action on the logged context x
(models/FORMAT.md: index(a, h), z = sum w x) and prints, per value of the attribute, the mean of
P and of the policy's value: a format-4 value-label model's lo + (hi - lo) P (minus nothing: the
fatigue cost is the same for every prompt), else P. Personas are not applied (train with
--personas 0 for this)."""
import math, sqlite3, struct, sys, zlib

def fnv1a(b, h=2166136261):
    for c in b:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h

def load(path):
    b = open(path, 'rb').read()
    assert b[:4] == b'LWMD' and zlib.crc32(b[:-4]) == struct.unpack('<I', b[-4:])[0]
    ver, bits, na, npers, dims, nseg = struct.unpack('<HBBBBB', b[4:11])
    p = 28
    acts = []
    for _ in range(na):
        n = b[p]; acts.append(b[p + 1:p + 1 + n].decode()); p += 1 + n + 1 + (4 if ver >= 2 else 0)
    w = {}
    k = struct.unpack('<I', b[p:p + 4])[0]; p += 4
    for _ in range(k):
        i, f = struct.unpack('<Hf', b[p:p + 6]); w[i] = f; p += 6
    p += 4 * (npers * dims + 2 * dims)
    for _ in range(nseg):
        p += 1 + b[p] + 4
    if ver >= 3:
        rows = b[p]; p += 1
        for _ in range(rows):
            p += 1 + b[p]
    lo, hi, value = 0.0, 1.0, False
    if ver >= 4 and b[p]:
        lo, hi = struct.unpack('<ff', b[p + 1:p + 9]); value = True
    return ver, bits, acts, w, lo, hi, value

ver, bits, acts, w, lo, hi, value = load(sys.argv[1])
attrs = sys.argv[3:] or ['plan']
ah = [fnv1a(('a^' + a).encode()) for a in acts]
db = sqlite3.connect(sys.argv[2])
seg_h = {}
sums = {}
for (x,) in db.execute("select x from events where kind = 'decision' and x is not null"):
    pairs = [struct.unpack('<Ii', x[i:i + 8]) for i in range(0, len(x), 8)]
    seg = None
    for h, q in pairs:
        for attr in attrs:
            for v in ['free', 'pro', 'team', 'enterprise']:
                name = f'{attr}^{v}'
                if seg_h.setdefault(name, fnv1a(name.encode())) == h:
                    seg = name
    row = sums.setdefault(seg or '(none)', [0] + [0.0] * (2 * len(acts)))
    row[0] += 1
    for a in range(len(acts)):
        z = sum(w.get((((h ^ ah[a]) * 2654435761) & 0xFFFFFFFF) >> (32 - bits), 0.0) * q / 256 for h, q in pairs)
        pr = 1 / (1 + math.exp(-max(-30, min(30, z))))
        row[1 + a] += pr
        row[1 + len(acts) + a] += lo + (hi - lo) * pr
print(f'model format {ver}, labels {"value [%g, %g]" % (lo, hi) if value else "P(share)"}')
print('segment n ' + ' '.join(f'P({a})' for a in acts) + ' ' + ' '.join(f'E[label|{a}]' for a in acts))
for seg, row in sorted(sums.items()):
    n = row[0]
    print(seg, n, ' '.join(f'{v / n:.4f}' for v in row[1:]))
