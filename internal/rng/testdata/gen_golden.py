"""Writes golden.json for internal/rng's tests from the spec's emulator (torch_randn_ref.py,
flow-sampling.md Appendix A, copied verbatim next to this file).

Run from this directory:  python3 gen_golden.py   (stdlib only; about a minute, most of it in the
two full 1x16x128x128 draws that are hashed).

Two things are added on top of the emulator, both as torch does them:
  * the cached second normal of the size < 16 double path lives in the generator (torch keeps
    next_double_normal_sample in CPUGeneratorImpl), so it carries over to the next call; the
    emulator's randn() keeps it in a local, which is only right for a single call;
  * every output is x*std + mean with mean = +0.0 (the AVX2 path's fmadd, the double path's
    transformation::normal), which turns a -0.0 into +0.0.
Values are stored as float32 bit patterns (8 hex digits); long draws as a SHA-256 of their
little-endian float32 bytes plus a few values.
"""
import hashlib, json, math, struct

import torch_randn_ref as ref

F32 = struct.Struct('<f')


def hexbits(vals):
    return ' '.join(f'{ref.f32bits(v + 0.0):08x}' for v in vals)


def sha(vals):
    return hashlib.sha256(b''.join(F32.pack(v + 0.0) for v in vals)).hexdigest()


class Gen:
    """torch.Generator: MT19937 plus the cached double normal (cleared by manual_seed)."""
    def __init__(self, seed):
        self.mt, self.cache = ref.MT19937(seed), None

    def randn(self, n):
        if n >= 16:
            return ref.randn(self.mt, n)
        out = []
        for _ in range(n):
            if self.cache is not None:
                out.append(ref.f32(self.cache)); self.cache = None; continue
            u1 = ref.uniform_f64(self.mt); u2 = ref.uniform_f64(self.mt)
            r = math.sqrt(-2.0 * math.log1p(-u2)); th = 2.0 * math.pi * u1
            self.cache = r * math.sin(th); out.append(ref.f32(r * math.cos(th)))
        return out


def draw_record(vals, full_upto=128):
    rec = {'n': len(vals)}
    if len(vals) <= full_upto:
        rec['bits'] = hexbits(vals)
    else:
        rec['head'] = hexbits(vals[:16]); rec['tail'] = hexbits(vals[-32:]); rec['sha256'] = sha(vals)
    return rec


def torch_cpu_cases():
    sizes = [1, 2, 3, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100,
             623, 624, 625, 1000, 1023, 1024, 1025, 1249]
    seeds = {0: sizes, 42: sizes, 1: sizes, 123: [1, 2, 15, 16, 17, 33, 100, 1000],
             2**32 - 1: [2, 16, 17, 100, 1000], 2**32 + 5: [2, 16, 17, 100], 5: [2, 16, 17, 100],
             2**64 - 1: [3, 16, 33]}
    cases = []
    for seed, ns in seeds.items():
        for n in ns:
            cases.append({'seed': seed, 'calls': [draw_record(Gen(seed).randn(n))]})
    streams = {0: [3, 20, 5], 42: [1, 1, 1, 16, 2, 17, 15, 1], 7: [5, 700, 3, 1, 1],
               123: [15, 15, 624, 33, 2], 9: [16, 1, 31, 1, 2, 48, 7]}
    for seed, calls in streams.items():
        g = Gen(seed)
        cases.append({'seed': seed, 'calls': [draw_record(g.randn(n)) for n in calls]})
    return cases


def far_blocks(seed, n, starts):
    """Blocks of 16 outputs of torch.randn(n) (n a multiple of 16) at the given block starts."""
    g = ref.MT19937(seed)
    u = [ref.uniform_f32(g) for _ in range(n)]
    return [{'start': b, 'bits': hexbits(ref.normal_fill_16_avx2(u[b:b + 16]))} for b in starts]


def full_draw(seed, n):
    return draw_record(ref.randn(ref.MT19937(seed), n))


def philox_cases():
    cases = []
    for seed in (0, 1, 42, 2**32 + 5, 2**64 - 1):
        for offset in (0, 1, 2):
            vals = ref.philox_randn(40, seed, offset)
            cases.append({'seed': seed, 'offset': offset, 'bits': hexbits(vals)})
    far = ref.philox_randn(262144, 0)
    idx = [1000, 65535, 131072, 200003, 262143]
    return cases, [{'seed': 0, 'offset': 0, 'index': i, 'bits': hexbits([far[i]])} for i in idx]


def main():
    starts = [0, 208, 4096, 32752, 32768, 65520]
    philox, philox_far = philox_cases()
    out = {
        'generator': 'gen_golden.py + torch_randn_ref.py (flow-sampling.md Appendix A)',
        'torch_cpu': torch_cpu_cases(),
        'far_1x16x64x64': [{'seed': s, 'blocks': far_blocks(s, 65536, starts)} for s in (0, 42, 2**32 + 5)],
        'full': [dict(seed=s, **full_draw(s, n)) for s, n in ((0, 262144), (42, 262144), (1, 65536), (3, 4099))],
        'philox': philox,
        'philox_far': philox_far,
    }
    with open('golden.json', 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
