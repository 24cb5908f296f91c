"""Bit-level emulation of torch CPU randn (mt19937 + Box-Muller) and of the torch-CUDA Philox
emulation used by A1111 / stable-diffusion.cpp.  Python 3 stdlib only."""
import math, struct
from fractions import Fraction

def f32(x):            return struct.unpack('<f', struct.pack('<f', x))[0]
def f32bits(x):        return struct.unpack('<I', struct.pack('<f', x))[0]
def bits2f32(b):       return struct.unpack('<f', struct.pack('<I', b & 0xffffffff))[0]
def mul(a, b):         return f32(a * b)        # single float32 op (double then round is exact-rounding
def add(a, b):         return f32(a + b)        #  for + - * / sqrt of float32 operands)
def sub(a, b):         return f32(a - b)
def fma(a, b, c):      # float32 fused multiply-add, one rounding
    fr = Fraction(a) * Fraction(b) + Fraction(c)
    f = f32(float(fr))
    if Fraction(f) == fr or f == 0.0:
        return f
    b_ = f32bits(f); up = bits2f32(b_ + 1); dn = bits2f32(b_ - 1)
    cands = sorted({f, up, dn}, key=lambda v: (abs(Fraction(v) - fr), f32bits(v) & 1))
    return cands[0]

class MT19937:  # aten/src/ATen/core/MT19937RNGEngine.h
    def __init__(self, seed):
        s = [seed & 0xffffffff]
        for j in range(1, 624):
            s.append((1812433253 * (s[-1] ^ (s[-1] >> 30)) + j) & 0xffffffff)
        self.st, self.left, self.nxt = s, 1, 0
    @staticmethod
    def _tw(u, v): return ((((u & 0x80000000) | (v & 0x7fffffff)) >> 1) ^ (0x9908b0df if v & 1 else 0))
    def _next_state(self):
        st = self.st
        for i in range(227):        st[i] = st[i + 397] ^ self._tw(st[i], st[i + 1])
        for i in range(227, 623):   st[i] = st[i - 227] ^ self._tw(st[i], st[i + 1])
        st[623] = st[396] ^ self._tw(st[623], st[0])
        self.left, self.nxt = 624, 0
    def u32(self):
        self.left -= 1
        if self.left == 0: self._next_state()
        y = self.st[self.nxt]; self.nxt += 1
        y ^= y >> 11; y ^= (y << 7) & 0x9d2c5680; y ^= (y << 15) & 0xefc60000; y ^= y >> 18
        return y & 0xffffffff
    def u64(self):  # CPUGeneratorImpl::random64: first draw = high 32 bits
        hi = self.u32(); return (hi << 32) | self.u32()

def uniform_f32(g): return (g.u32() & 0xFFFFFF) * 2.0 ** -24          # float path
def uniform_f64(g): return (g.u64() & ((1 << 53) - 1)) * 2.0 ** -53   # double path

# ---- avx_mathfun.h (log256_ps, sincos256_ps) with GCC -ffp-contract=fast FMA contraction ----
K = {k: f32(v) for k, v in dict(SQRTHF=0.707106781186547524,
     p0=7.0376836292E-2, p1=-1.1514610310E-1, p2=1.1676998740E-1, p3=-1.2420140846E-1,
     p4=1.4249322787E-1, p5=-1.6668057665E-1, p6=2.0000714765E-1, p7=-2.4999993993E-1,
     p8=3.3333331174E-1, q1=-2.12194440e-4, q2=0.693359375,
     DP1=-0.78515625, DP2=-2.4187564849853515625e-4, DP3=-3.77489497744594108e-8,
     s0=-1.9515295891E-4, s1=8.3321608736E-3, s2=-1.6666654611E-1,
     c0=2.443315711809948E-005, c1=-1.388731625493765E-003, c2=4.166664568298827E-002,
     FOPI=1.27323954473516).items()}
TWO_PI_F = f32(2.0 * math.pi)   # _mm256_set1_ps(2.0f * c10::pi<double>)

def log256(x, contract=True):
    x = max(x, bits2f32(0x00800000)); b = f32bits(x)
    e = add(float((b >> 23) - 0x7f), 1.0)
    x = bits2f32((b & 0x807fffff) | 0x3f000000)          # mantissa in [0.5,1)
    m = x < K['SQRTHF']; t = x if m else 0.0
    x = sub(x, 1.0); e = sub(e, 1.0 if m else 0.0); x = add(x, t)
    z = mul(x, x); y = K['p0']
    for k in ('p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8'):
        y = fma(y, x, K[k]) if contract else add(mul(y, x), K[k])
    y = mul(y, x)
    if contract:
        y = fma(y, z, mul(e, K['q1']))                   # (y*z) + e*q1  -> vfmadd
    else:
        y = add(mul(y, z), mul(e, K['q1']))
    y = sub(y, mul(z, 0.5))
    x = add(x, y)
    return fma(e, K['q2'], x) if contract else add(x, mul(e, K['q2']))

def sincos256(x, contract=True):
    neg = x < 0; x = abs(x)
    j = int(mul(x, K['FOPI'])); j = (j + 1) & ~1; y = float(j)
    swap = (j & 4) != 0; poly = (j & 2) == 0
    for d in ('DP1', 'DP2', 'DP3'):
        x = fma(y, K[d], x) if contract else add(x, mul(y, K[d]))
    sign_cos = ((~(j - 2)) & 4) != 0
    z = mul(x, x)
    if contract:
        yc = fma(fma(K['c0'], z, K['c1']), z, K['c2']); yc = mul(yc, z)
        yc = fma(yc, z, -mul(z, 0.5)); yc = add(yc, 1.0)
        ys = fma(fma(K['s0'], z, K['s1']), z, K['s2']); ys = mul(ys, z); ys = fma(ys, x, x)
    else:
        yc = add(mul(add(mul(K['c0'], z), K['c1']), z), K['c2']); yc = mul(mul(yc, z), z)
        yc = add(sub(yc, mul(z, 0.5)), 1.0)
        ys = add(mul(add(mul(K['s0'], z), K['s1']), z), K['s2']); ys = add(mul(mul(ys, z), x), x)
    s, c = (ys, yc) if poly else (yc, ys)
    return (-s if neg ^ swap else s), (-c if sign_cos else c)

def normal_fill_16_avx2(d, contract=True):   # DistributionTemplates.h normal_fill_16_AVX2 (mean 0, std 1)
    out = list(d)
    for j in range(8):
        u1 = sub(1.0, d[j]); u2 = d[j + 8]
        r = f32(math.sqrt(mul(-2.0, log256(u1, contract))))
        s, c = sincos256(mul(TWO_PI_F, u2), contract)
        out[j], out[j + 8] = mul(r, c), mul(r, s)
    return out

def normal_fill_16_scalar(d):                 # normal_fill_16<float> (non-AVX2 builds, e.g. aarch64)
    out = list(d)                             # libm logf/cosf/sinf emulated as correctly rounded
    for j in range(8):
        u1 = sub(1.0, d[j]); u2 = d[j + 8]
        r = f32(math.sqrt(f32(-2.0 * f32(math.log(u1)))))
        th = f32(2.0 * math.pi * u2)          # 2.0f * pi<double> * u2 evaluated in double
        out[j], out[j + 8] = mul(r, f32(math.cos(th))), mul(r, f32(math.sin(th)))
    return out

def randn(g, n, mode='avx2'):
    """torch.randn(n) float32 contiguous, CPU generator g (state advances like torch)."""
    if n < 16:                                # normal_distribution<double>, cached 2nd value
        out, cache = [], None                 # (cache lives in the generator; reset by manual_seed)
        for _ in range(n):
            if cache is not None: out.append(f32(cache)); cache = None; continue
            u1 = uniform_f64(g); u2 = uniform_f64(g)
            r = math.sqrt(-2.0 * math.log1p(-u2)); th = 2.0 * math.pi * u1
            cache = r * math.sin(th); out.append(f32(r * math.cos(th)))
        return out
    box = {'avx2': normal_fill_16_avx2,
           'avx2_nofma': lambda d: normal_fill_16_avx2(d, False),
           'scalar': normal_fill_16_scalar}[mode]
    data = [uniform_f32(g) for _ in range(n)]
    for i in range(0, n - 15, 16):
        data[i:i + 16] = box(data[i:i + 16])
    if n % 16:                                # recompute the last 16 values from 16 NEW uniforms
        data[n - 16:] = box([uniform_f32(g) for _ in range(16)])
    return data

def philox_randn(n, seed, offset=0):
    """torch CUDA randn emulation (curand Philox4x32-10 + Box-Muller, first output = s*sin(v)),
    valid only while numel <= SMs*maxThreadsPerSM (one element per thread)."""
    out = []
    inv = f32(2.3283064e-10); inv2pi = f32(2.3283064e-10 * 6.2831855)
    for i in range(n):
        c = [offset & 0xffffffff, 0, i, 0]; k0, k1 = seed & 0xffffffff, seed >> 32
        for r in range(10):
            p0 = c[0] * 0xD2511F53; p1 = c[2] * 0xCD9E8D57
            c = [((p1 >> 32) ^ c[1] ^ k0) & 0xffffffff, p1 & 0xffffffff,
                 ((p0 >> 32) ^ c[3] ^ k1) & 0xffffffff, p0 & 0xffffffff]
            k0 = (k0 + 0x9E3779B9) & 0xffffffff; k1 = (k1 + 0xBB67AE85) & 0xffffffff
        u = add(mul(f32(float(c[0])), inv), f32(inv / 2))
        v = add(mul(f32(float(c[1])), inv2pi), f32(inv2pi / 2))
        out.append(mul(f32(math.sqrt(f32(-2.0 * f32(math.log(u))))), f32(math.sin(v))))
    return out

if __name__ == '__main__':
    pub = {  # published torch outputs (see spec section 7.8)
        ('s0', 16): [-1.1258398, -1.1523602, -0.25057858, -0.4338788, 0.84871036, 0.69200915, -0.31601277,
                     -2.1152194, 0.32227492, -1.2633348, 0.3499832, 0.30813393, 0.11984151, 1.2376579,
                     1.1167772, -0.24727815],
        ('s0', 18): [-1.1258398, -1.1523602, 0.56665063, 0.79350835, 0.59883946, -1.5550951, -0.34136038,
                     1.8530061, 0.4680964, -0.15771244, -0.17339675, 0.18347794, 1.3893661, 1.5863342,
                     0.94629836, -0.84367675, 0.9318266, 1.2590092],
        ('s0', 24): [-1.1258398294448853, -1.152360200881958, -0.2505785822868347, -0.4338788092136383,
                     0.8487103581428528, 0.6920091509819031, -0.31601276993751526, -2.1152193546295166,
                     0.46809640526771545, -0.1577124446630478, 1.4436601400375366, 0.26604941487312317,
                     0.16645534336566925, 0.8743818402290344, -0.14347384870052338, -0.1116093322634697,
                     0.9318265914916992, 1.2590092420578003, 2.0049805641174316, 0.05373690277338028,
                     0.6180566549301147],
    }
    for mode in ('avx2', 'avx2_nofma', 'scalar'):
        res = []
        for (_, n), ref in pub.items():
            v = randn(MT19937(0), n, mode); res.append(all(f32(a) == b for a, b in zip(ref, v)))
        # torch.manual_seed(0); torch.randn(1, 80, 15000)[0, 1, :3] (flat index 15000..15002)
        g = MT19937(0); u = [uniform_f32(g) for _ in range(15016)]
        blk = {'avx2': normal_fill_16_avx2, 'avx2_nofma': lambda d: normal_fill_16_avx2(d, False),
               'scalar': normal_fill_16_scalar}[mode](u[14992:15008])
        big = [blk[8], blk[9], blk[10]]
        res.append(big == [0.869179368019104, 0.5761968493461609, -0.41195306181907654])
        print(f'{mode:10s} matches published (n16, n18, n24, n=1.2M@15000):', res)
    print('scalar path  seed0 randn(8):', [round(x, 4) for x in randn(MT19937(0), 8)])
    print('scalar path seed42 randn(6):', [round(x, 4) for x in randn(MT19937(42), 6)])
    for seed in (0, 42, 1):
        v = randn(MT19937(seed), 16)
        print(f'seed {seed} randn(16) avx2:', ' '.join(f'{x:.9g}' for x in v))
        print(f'              bits:', ' '.join(f'{f32bits(x):08x}' for x in v))
    print('philox seed0 n=12:', ' '.join(f'{x:.8f}' for x in philox_randn(12, 0)))
