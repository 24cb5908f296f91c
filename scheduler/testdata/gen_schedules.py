#!/usr/bin/env python3
"""Golden σ schedules for scheduler/schedule_golden_test.go.

Run from this directory:  python3 gen_schedules.py > schedules_golden.json
Needs Python 3.11 and mpmath 1.3.0 (stdlib otherwise: no numpy, scipy or torch).

It extends the arithmetic of shared/spec/flow-sampling.md Appendix B ("schedules.py") to every σ schedule
rflow builds, emulating each reference's dtypes:
  * diffusers FlowMatchEulerDiscreteScheduler.set_timesteps (spec §2.2-2.4): __init__ σ range in torch
    float32, default path in numpy float64, custom-sigmas (FLUX pipeline) path in numpy float32 with python
    scalars cast to float32 (NEP 50), karras/exponential/beta re-spacing in float64, timesteps = float32(σ·N);
  * FlowMatchHeunDiscreteScheduler (§2.7), DPMSolverMultistepScheduler and UniPCMultistepScheduler flow σ
    (§2.8, §2.9; float64, int64-truncated timesteps, UniPC's |σ0-1|<1e-6 nudge);
  * ComfyUI tables (§6.1) in exact torch-float32 arithmetic (each +,-,*,/ rounded once to float32;
    `c / tensor` is `tensor.reciprocal() * c` as in torch._tensor.__rdiv__), and the schedulers of §6.2
    computed in float64 over that table and rounded to float32 (rflow's documented precision);
  * scipy.stats.beta.ppf replaced by mpmath root finding on the regularized incomplete beta at 60 digits.
float32 rounding of a float64 x is struct.pack('<f'); +,-,*,/ of two float32 values computed in float64
and then rounded equal the float32 operation (53 >= 2*24+2).
"""
import json
import math
import struct
import sys

import mpmath


def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


# ---------------------------------------------------------------- numpy / torch helpers (float64)

def np_linspace(start, stop, num, endpoint=True):
    """numpy.linspace, float64: y[i] = i*step + start, y[-1] = stop when endpoint."""
    div = (num - 1) if endpoint else num
    if div <= 0:
        return [start] * num
    delta = stop - start
    step = delta / div
    if step == 0:
        y = [(i / div) * delta + start for i in range(num)]
    else:
        y = [i * step + start for i in range(num)]
    if endpoint and num > 1:
        y[-1] = stop
    return y


def torch_linspace64(start, end, steps):
    """torch.linspace's two-halves algorithm, evaluated in float64."""
    if steps == 1:
        return [start]
    step = (end - start) / (steps - 1)
    half = steps // 2
    return [start + step * i if i < half else end - step * (steps - i - 1) for i in range(steps)]


BETA_CACHE = {}


def beta_ppf(p, a, b):
    """scipy.stats.beta.ppf(p, a, b) via mpmath (60 digits), correctly rounded to float64."""
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    key = (p, a, b)
    if key not in BETA_CACHE:
        with mpmath.workdps(60):
            pm = mpmath.mpf(p)
            f = lambda x: mpmath.betainc(a, b, 0, x, regularized=True) - pm
            lo, hi = mpmath.mpf(0), mpmath.mpf(1)
            for _ in range(60):                     # bracket to ~1e-18 by bisection, then polish
                mid = (lo + hi) / 2
                if f(mid) < 0:
                    lo = mid
                else:
                    hi = mid
            x = mpmath.findroot(f, (lo, hi), solver='anderson', tol=mpmath.mpf(10) ** -55)
            BETA_CACHE[key] = float(x)
    return BETA_CACHE[key]


def betainc_reg(a, b, x):
    with mpmath.workdps(60):
        return float(mpmath.betainc(a, b, 0, mpmath.mpf(x), regularized=True))


# ---------------------------------------------------------------- configs

DEFAULT_CONFIG = {
    '_class_name': 'FlowMatchEulerDiscreteScheduler', 'num_train_timesteps': 1000, 'shift': 1.0,
    'use_dynamic_shifting': False, 'base_shift': 0.5, 'max_shift': 1.15, 'base_image_seq_len': 256,
    'max_image_seq_len': 4096, 'invert_sigmas': False, 'shift_terminal': None, 'use_karras_sigmas': False,
    'use_exponential_sigmas': False, 'use_beta_sigmas': False, 'time_shift_type': 'exponential',
}
FLOW_CLASSES = ('DPMSolverMultistepScheduler', 'UniPCMultistepScheduler')


def full_config(cfg):
    c = dict(DEFAULT_CONFIG)
    c.update({k: v for k, v in cfg.items() if v is not None})
    if c['_class_name'] in FLOW_CLASSES:
        c['shift'] = cfg.get('flow_shift', 1.0)
    return c


def calculate_shift(seq_len, c):
    m = (c['max_shift'] - c['base_shift']) / (c['max_image_seq_len'] - c['base_image_seq_len'])
    b = c['base_shift'] - m * c['base_image_seq_len']
    return seq_len * m + b


# ---------------------------------------------------------------- diffusers FlowMatchEuler (§2.2-2.4)

def static64(shift, s):
    return [shift * x / (1 + (shift - 1) * x) for x in s]


def static32(shift, s):
    sh, sh1 = f32(shift), f32(shift - 1)
    return [f32(f32(sh * x) / f32(1.0 + f32(sh1 * x))) for x in s]


def time_shift64(c, mu, s):
    if c['time_shift_type'] == 'exponential':
        e = math.exp(mu)
        return [e / (e + (1 / x - 1) ** 1.0) for x in s]
    return [mu / (mu + (1 / x - 1) ** 1.0) for x in s]


def time_shift32(c, mu, s):
    m = f32(math.exp(mu)) if c['time_shift_type'] == 'exponential' else f32(mu)
    return [f32(m / f32(m + f32(f32(1.0 / x) - 1.0))) for x in s]


def stretch64(st, s):
    omz = [1 - x for x in s]
    scale = omz[-1] / (1 - st)
    return [1 - z / scale for z in omz]


def stretch32(st, s):   # numpy 2 (NEP 50): np.float32 / python float stays float32
    omz = [f32(1.0 - x) for x in s]
    scale = f32(omz[-1] / f32(1 - st))
    return [f32(1.0 - f32(z / scale)) for z in omz]


def to_karras(s, n):
    smin, smax, rho = s[-1], s[0], 7.0
    mi, ma = smin ** (1 / rho), smax ** (1 / rho)
    return [(ma + r * (mi - ma)) ** rho for r in np_linspace(0, 1, n)]


def to_exponential(s, n):
    return [math.exp(v) for v in np_linspace(math.log(s[0]), math.log(s[-1]), n)]


def to_beta(s, n):
    smin, smax = s[-1], s[0]
    return [smin + beta_ppf(1 - v, 0.6, 0.6) * (smax - smin) for v in np_linspace(0, 1, n)]


def fm_init_range(c):
    n_train = c['num_train_timesteps']

    def sig(t):
        s = f32(f32(t) / n_train)
        if not c['use_dynamic_shifting']:
            s = static32(c['shift'], [s])[0]
        return s
    return sig(1.0), sig(float(n_train))


def flowmatch(c, n, mu, custom):
    n_train = c['num_train_timesteps']
    dyn, st = c['use_dynamic_shifting'], c['shift_terminal']
    if custom is None:
        smin, smax = fm_init_range(c)
        s = [t / n_train for t in np_linspace(smax * n_train, smin * n_train, n)]
        s = time_shift64(c, mu, s) if dyn else static64(c['shift'], s)
        if st:
            s = stretch64(st, s)
    else:
        s = [f32(x) for x in custom]
        s = time_shift32(c, mu, s) if dyn else static32(c['shift'], s)
        if st:
            s = stretch32(st, s)
    if c['use_karras_sigmas']:
        s = to_karras(s, n)
    elif c['use_exponential_sigmas']:
        s = to_exponential(s, n)
    elif c['use_beta_sigmas']:
        s = to_beta(s, n)
    s = [f32(x) for x in s]
    t = [f32(x * n_train) for x in s]
    if c['invert_sigmas']:
        s = [f32(1.0 - x) for x in s]
        t = [f32(x * n_train) for x in s]
        return s + [1.0], t
    return s + [0.0], t


def heun(c, n):
    h = dict(DEFAULT_CONFIG, num_train_timesteps=c['num_train_timesteps'], shift=c['shift'])
    return flowmatch(h, n, None, None)


def dpm_flow(c, n, mu):
    n_train = c['num_train_timesteps']
    fs = math.exp(mu) if c['use_dynamic_shifting'] else c['shift']
    s = [1.0 - a for a in np_linspace(1, 1 / n_train, n + 1)]
    s = static64(fs, s)[::-1][:-1]
    return [f32(x) for x in s] + [0.0], [float(math.trunc(x * n_train)) for x in s]


def unipc_flow(c, n, mu, custom=None):
    n_train = c['num_train_timesteps']
    s = np_linspace(1, 1 / n_train, n + 1)[:-1] if custom is None else list(custom)
    s = time_shift64(c, mu, s) if c['use_dynamic_shifting'] else static64(c['shift'], s)
    if c['shift_terminal']:
        s = stretch64(c['shift_terminal'], s)
    if abs(s[0] - 1) < 1e-6:
        s[0] -= 1e-6
    return [f32(x) for x in s] + [0.0], [float(math.trunc(x * n_train)) for x in s]


# ---------------------------------------------------------------- ComfyUI (§6.1, §6.2)

class DiscreteFlow:          # comfy.model_sampling.ModelSamplingDiscreteFlow, torch float32 on CPU
    size = 1000

    def __init__(self, shift, multiplier):
        self.shift, self.mult = shift, multiplier

    def sigma(self, t):
        c = f32(t / self.mult)
        return c if self.shift == 1.0 else static32(self.shift, [c])[0]

    def timestep(self, s):
        return f32(s * self.mult)

    def entry(self, k):
        return self.sigma(f32(f32((k + 1) / self.size) * self.mult))


class FluxSampling:          # comfy.model_sampling.ModelSamplingFlux(shift=mu)
    size = 10000

    def __init__(self, mu):
        self.e = f32(math.exp(mu))

    def sigma(self, t):
        d = f32(f32(f32(1.0 / t) - 1.0) + self.e)     # (1/t - 1)**1.0 + e
        return f32(f32(1.0 / d) * self.e)             # e / d == d.reciprocal() * e

    def timestep(self, s):
        return s

    def entry(self, k):
        return self.sigma(f32((k + 1) / self.size))


def comfy_simple(ms, steps):
    ss = ms.size / steps
    return [ms.entry(ms.size - 1 - int(x * ss)) for x in range(steps)] + [0.0]


def comfy_normal(ms, steps, sgm=False):
    start, end = ms.timestep(ms.entry(ms.size - 1)), ms.timestep(ms.entry(0))
    append_zero = True
    if sgm:
        ts = torch_linspace64(start, end, steps + 1)[:-1]
    else:
        if abs(ms.sigma(end)) <= 1e-5:
            steps += 1
            append_zero = False
        ts = torch_linspace64(start, end, steps)
    out = [ms.sigma(f32(t)) for t in ts]
    return out + [0.0] if append_zero else out


def comfy_karras(ms, n):
    smin, smax, rho = ms.entry(0), ms.entry(ms.size - 1), 7.0
    mi, ma = smin ** (1 / rho), smax ** (1 / rho)
    return [f32((ma + r * (mi - ma)) ** rho) for r in torch_linspace64(0.0, 1.0, n)] + [0.0]


def comfy_exponential(ms, n):
    smin, smax = ms.entry(0), ms.entry(ms.size - 1)
    return [f32(math.exp(v)) for v in torch_linspace64(math.log(smax), math.log(smin), n)] + [0.0]


def comfy_ddim_uniform(ms, steps):
    x = 1
    if abs(ms.entry(x)) <= 1e-5:
        steps += 1
        sigs = []
    else:
        sigs = [0.0]
    ss = max(ms.size // steps, 1)
    while x < ms.size:
        sigs.append(ms.entry(x))
        x += ss
    return sigs[::-1]


def comfy_beta(ms, steps):
    total = ms.size - 1
    ts = [1 - v for v in np_linspace(0, 1, steps, endpoint=False)]
    sigs, last = [], -1
    for t in ts:
        idx = round(beta_ppf(t, 0.6, 0.6) * total)     # numpy.rint: round half to even, like round()
        if idx != last:
            sigs.append(ms.entry(int(idx)))
        last = idx
    return sigs + [0.0]


def comfy_linear_quadratic(ms, steps, threshold_noise=0.025):
    if steps == 1:
        sched = [1.0, 0.0]
    else:
        ls = steps // 2
        lin = [i * threshold_noise / ls for i in range(ls)]
        diff = ls - threshold_noise * steps
        qs = steps - ls
        qc = diff / (ls * qs ** 2)
        lc = threshold_noise / ls - 2 * diff / (qs ** 2)
        const = qc * (ls ** 2)
        quad = [qc * (i ** 2) + lc * i + const for i in range(ls, steps)]
        sched = [1.0 - x for x in lin + quad + [1.0]]
    smax = ms.entry(ms.size - 1)
    return [f32(f32(x) * smax) for x in sched]


def comfy_kl_optimal(ms, n):
    smin, smax = ms.entry(0), ms.entry(ms.size - 1)
    out = []
    for i in range(n):
        adj = f32(i / (n - 1)) if n > 1 else 0.0
        out.append(f32(math.tan(adj * math.atan(smin) + (1 - adj) * math.atan(smax))))
    return out + [0.0]


def at(ms, u):
    """The table's σ at unshifted time u (rflow's comfyFlow.at)."""
    if isinstance(ms, FluxSampling):
        return ms.sigma(f32(u))
    return ms.sigma(f32(f32(u) * ms.mult))


def smoothstep(ms, n):       # stable-diffusion.cpp SmoothStepScheduler over the table
    top = ms.size - 1
    if n == 1:
        return [ms.entry(top), 0.0]
    out = []
    for i in range(n):
        u = 1 - i / n
        out.append(ms.entry(int(math.floor(u * u * (3 - 2 * u) * top + 0.5))))   # std::round
    return out + [0.0]


def logit_normal(ms, n):     # quantiles of logit-normal(0, 1) (SD3 §3.1), then the table's shift
    out = []
    for i in range(n):
        u = 1 - i / n
        t = 1.0 if u >= 1 else float(1 / (1 + mpmath.exp(-mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(u) - 1))))
        out.append(f32(at(ms, t)))
    return out + [0.0]


def uniform(ms, n):          # N+1 uniform points including 0, through the table's shift
    return [f32(at(ms, 1 - i / n)) for i in range(n)] + [0.0]


def bong_tangent(ms, n):     # RES4LYF bong_tangent with sd.cpp's σmax/σmin ends
    start, end = ms.entry(ms.size - 1), ms.entry(0)
    middle = end + (start - end) * 0.5

    def ramp(steps, slope, pivot, a, b):
        f = lambda x: ((2 / math.pi) * math.atan(-slope * (x - pivot)) + 1) / 2
        hi, lo = f(0), f(steps - 1)
        if abs(hi - lo) < 1e-8:     # sd.cpp: a flat ramp (one point) is a straight line
            return [a] if steps == 1 else [a + (b - a) * x / (steps - 1) for x in range(steps)]
        return [(f(x) - lo) / (hi - lo) * (a - b) + b for x in range(steps)]

    steps = n + 2
    mid = int((steps * 0.6 + steps * 0.6) / 2)
    piv = int(steps * 0.6)
    slope = 0.2 / (steps / 40)
    l2 = steps - mid
    l1 = steps - l2
    sig = ramp(l1, slope, piv, start, middle)[:-1] + ramp(l2, slope, piv - l1, middle, end)
    sig = (sig + [end] * (n + 1))[:n + 1]
    sig = [f32(x) for x in sig]
    sig[n] = 0.0
    return sig


def flux2_mu(L, n):          # black-forest-labs/flux2 sampling.compute_empirical_mu
    a1, b1, a2, b2 = 8.73809524e-05, 1.89833333, 0.00016927, 0.45666666
    if L > 4300:
        return a2 * L + b2
    m200, m10 = a2 * L + b2, a1 * L + b1
    a = (m200 - m10) / 190.0
    return a * n + (m200 - 200.0 * a)


def flux2(n, L):
    mu = flux2_mu(L, n)
    e = math.exp(mu)
    s = [f32(e / (e + (1 / (1 - i / n) - 1))) for i in range(n)] + [0.0]
    return s, mu


COMFY = {
    'simple': comfy_simple, 'normal': comfy_normal, 'sgm_uniform': lambda ms, n: comfy_normal(ms, n, True),
    'karras': comfy_karras, 'exponential': comfy_exponential, 'ddim_uniform': comfy_ddim_uniform,
    'beta': comfy_beta, 'linear_quadratic': comfy_linear_quadratic, 'kl_optimal': comfy_kl_optimal,
    'smoothstep': smoothstep, 'logit_normal': logit_normal, 'bong_tangent': bong_tangent, 'uniform': uniform,
}

# ---------------------------------------------------------------- cases

SD3 = {'_class_name': 'FlowMatchEulerDiscreteScheduler', 'num_train_timesteps': 1000, 'shift': 3.0}
FLUX_DEV = {'_class_name': 'FlowMatchEulerDiscreteScheduler', 'base_image_seq_len': 256, 'base_shift': 0.5,
            'max_image_seq_len': 4096, 'max_shift': 1.15, 'num_train_timesteps': 1000, 'shift': 3.0,
            'use_dynamic_shifting': True}
FLUX_SCHNELL = dict(FLUX_DEV, shift=1.0, use_dynamic_shifting=False)
DPM = {'_class_name': 'DPMSolverMultistepScheduler', 'num_train_timesteps': 1000, 'flow_shift': 3.0,
       'use_flow_sigmas': True, 'prediction_type': 'flow_prediction'}
UNIPC = dict(DPM, _class_name='UniPCMultistepScheduler')
STEPS = (1, 2, 4, 20, 28, 50)
SIZES = {'512x512': (512, 512), '768x1344': (768, 1344), '1024x1024': (1024, 1024), '2048x2048': (2048, 2048)}


def seq_len(size):
    w, h = SIZES[size]
    return (h // 16) * (w // 16)


def shifted_custom(c, mu, custom):
    """A `sigmas=` list as the diffusers pipelines hand it to the config's class (set_timesteps with μ
    under dynamic shifting): FlowMatchEuler's float32 custom path, UniPC's float64 flow branch; Heun and
    DPM-Solver take no list in diffusers, and rflow shifts it as FlowMatchEuler would with their shift."""
    cls = c['_class_name']
    if cls == 'UniPCMultistepScheduler':
        return unipc_flow(c, len(custom), mu, custom)
    if cls in ('FlowMatchHeunDiscreteScheduler', 'DPMSolverMultistepScheduler'):
        c = dict(DEFAULT_CONFIG, num_train_timesteps=c['num_train_timesteps'], shift=c['shift'],
                 use_dynamic_shifting=c['use_dynamic_shifting'], time_shift_type=c['time_shift_type'])
    return flowmatch(c, len(custom), mu, custom)


def build(name, family, cfg, steps, scheduler='', shift=0.0, size='1024x1024', sigmas=None, sigmas_raw=False):
    """Mirror of rflow's BuildSchedule for one request."""
    c = full_config(cfg)
    if shift > 0:
        c['shift'], c['use_dynamic_shifting'] = shift, False
    L = seq_len(size)
    mu = calculate_shift(L, c) if c['use_dynamic_shifting'] else 0.0
    n_train = c['num_train_timesteps']
    comfy_ms = None
    if sigmas is not None and sigmas_raw:
        s = [f32(x) for x in sigmas] + ([] if sigmas[-1] == 0 else [0.0])
        t = [f32(x * n_train) for x in s[:-1]]
        mu, c['use_dynamic_shifting'] = 0.0, False     # a raw custom list is used as is: no shift at all
    elif sigmas is not None:
        if c['_class_name'] == 'FlowMatchHeunDiscreteScheduler':
            c['use_dynamic_shifting'] = False          # FlowMatchHeun has no dynamic shifting
        if not c['use_dynamic_shifting']:
            mu = 0.0
        s, t = shifted_custom(c, mu, sigmas[:-1] if sigmas[-1] == 0 else sigmas)
    else:
        sched = scheduler or {'FlowMatchEulerDiscreteScheduler': 'flowmatch', 'DPMSolverMultistepScheduler': 'dpmpp',
                              'UniPCMultistepScheduler': 'unipc',
                              'FlowMatchHeunDiscreteScheduler': 'heun'}[c['_class_name']]
        if sched == 'flowmatch':
            custom = np_linspace(1.0, 1 / steps, steps) if family == 'flux' else None
            s, t = flowmatch(c, steps, mu, custom)
        elif sched == 'heun':
            s, t = heun(c, steps)
            mu = 0.0
        elif sched == 'dpmpp':
            s, t = dpm_flow(c, steps, mu)
        elif sched == 'unipc':
            s, t = unipc_flow(c, steps, mu)
        elif sched == 'flux2':
            s, mu = flux2(steps, L)
            c['use_dynamic_shifting'] = True
            t = [f32(x * n_train) for x in s[:-1]]
        else:
            if c['use_dynamic_shifting']:
                comfy_ms = FluxSampling(mu)
            else:
                comfy_ms = DiscreteFlow(c['shift'], 1.0 if family == 'flux' else 1000)
            s = COMFY[sched](comfy_ms, steps)
            t = [f32(x * n_train) for x in s[:-1]]
    if comfy_ms is not None:
        mt = [comfy_ms.timestep(x) for x in s[:-1]]
    elif family == 'flux':
        mt = [f32(x / 1000) for x in t]
    else:
        mt = [f32(x) for x in t]
    return {'name': name, 'family': family, 'config': cfg, 'steps': steps, 'scheduler': scheduler,
            'shift': shift, 'image_seq_len': L, 'sigmas_in': sigmas, 'sigmas_raw': sigmas_raw,
            'want_sigmas': s, 'want_timesteps': t,
            'want_model_timesteps': mt, 'want_mu': mu, 'want_dynamic': bool(c['use_dynamic_shifting'])}


def cases():
    out = []
    for n in STEPS:
        out.append(build(f'sd3/{n}', 'sd3', SD3, n))
        out.append(build(f'schnell/{n}', 'flux', FLUX_SCHNELL, n))
        out.append(build(f'heun-sd3/{n}', 'sd3', dict(SD3, _class_name='FlowMatchHeunDiscreteScheduler'), n))
        out.append(build(f'dpm/{n}', 'sd3', DPM, n))
        out.append(build(f'unipc/{n}', 'sd3', UNIPC, n))
        out.append(build(f'unipc-shift1/{n}', 'flux', dict(UNIPC, flow_shift=1.0), n))
        for size in SIZES:
            out.append(build(f'flux-dev/{size}/{n}', 'flux', FLUX_DEV, n, size=size))
    for size in SIZES:
        out.append(build(f'sd3-dynamic/{size}/28', 'sd3', dict(SD3, use_dynamic_shifting=True), 28, size=size))
        out.append(build(f'dpm-dynamic/{size}/20', 'flux', dict(DPM, use_dynamic_shifting=True), 20, size=size))
        out.append(build(f'unipc-dynamic/{size}/20', 'flux', dict(UNIPC, use_dynamic_shifting=True), 20, size=size))
        for fam, cfg in (('sd3', dict(SD3, use_dynamic_shifting=True)), ('flux', FLUX_DEV)):
            lin = dict(cfg, time_shift_type='linear')
            out.append(build(f'linear-{fam}/{size}/28', fam, lin, 28, size=size))
    for n in (1, 4, 28, 50):
        for flag in ('use_karras_sigmas', 'use_exponential_sigmas', 'use_beta_sigmas'):
            out.append(build(f'{flag}-sd3/{n}', 'sd3', dict(SD3, **{flag: True}), n))
            out.append(build(f'{flag}-flux/{n}', 'flux', dict(FLUX_DEV, **{flag: True}), n))
        if n > 1:   # one step: σ = [1], the stretch divides 0 by 0 (diffusers gives NaN; rflow an error)
            out.append(build(f'shift_terminal-sd3/{n}', 'sd3', dict(SD3, shift_terminal=0.1), n))
            out.append(build(f'shift_terminal-flux/{n}', 'flux', dict(FLUX_DEV, shift_terminal=0.02), n))
            out.append(build(f'shift_terminal-unipc/{n}', 'sd3', dict(UNIPC, shift_terminal=0.05), n))
        out.append(build(f'invert-sd3/{n}', 'sd3', dict(SD3, invert_sigmas=True), n))
        out.append(build(f'invert-flux/{n}', 'flux', dict(FLUX_DEV, invert_sigmas=True), n))
    for n in (4, 28):
        out.append(build(f'sd3-override-shift5/{n}', 'sd3', SD3, n, shift=5.0))
        out.append(build(f'flux-dev-override-shift3.1/{n}', 'flux', FLUX_DEV, n, shift=3.1))
        out.append(build(f'sd3-as-dpmpp/{n}', 'sd3', SD3, n, scheduler='dpmpp'))
        out.append(build(f'flux-dev-as-unipc/{n}', 'flux', FLUX_DEV, n, scheduler='unipc'))
        out.append(build(f'dpm-as-flowmatch/{n}', 'sd3', DPM, n, scheduler='flowmatch'))
    out.append(build('custom-raw/4', 'sd3', SD3, 0, sigmas=[1.0, 0.75, 0.5, 0.25], sigmas_raw=True))
    out.append(build('custom-raw-with-zero/2', 'flux', FLUX_DEV, 2, sigmas=[0.9, 0.3, 0.0], sigmas_raw=True))
    out.append(build('custom-raw-odd/3', 'flux', FLUX_DEV, 0, sigmas=[0.987654321, 0.1234567, 1e-3], sigmas_raw=True))
    # custom σ shifted as the pipelines' retrieve_timesteps(sigmas=…, mu=…) makes the class shift them
    quarter, odd = [1.0, 0.75, 0.5, 0.25], [0.987654321, 0.1234567, 1e-3]
    out.append(build('custom/sd3/4', 'sd3', SD3, 0, sigmas=quarter))
    out.append(build('custom/sd3-override-shift5/4', 'sd3', SD3, 0, shift=5.0, sigmas=quarter))
    out.append(build('custom/schnell/3', 'flux', FLUX_SCHNELL, 0, sigmas=odd))
    for size in ('512x512', '1024x1024', '768x1344'):
        out.append(build(f'custom/flux-dev/{size}/3', 'flux', FLUX_DEV, 0, sigmas=odd, size=size))
    out.append(build('custom/flux-dev-with-zero/2', 'flux', FLUX_DEV, 2, sigmas=[0.9, 0.3, 0.0]))
    out.append(build('custom/flux-dev-linear/3', 'flux', dict(FLUX_DEV, time_shift_type='linear'), 0, sigmas=odd))
    out.append(build('custom/karras-sd3/4', 'sd3', dict(SD3, use_karras_sigmas=True), 0, sigmas=quarter))
    out.append(build('custom/shift_terminal-flux/3', 'flux', dict(FLUX_DEV, shift_terminal=0.02), 0, sigmas=odd))
    out.append(build('custom/invert-sd3/4', 'sd3', dict(SD3, invert_sigmas=True), 0, sigmas=quarter))
    out.append(build('custom/heun/4', 'sd3', dict(SD3, _class_name='FlowMatchHeunDiscreteScheduler'), 0, sigmas=quarter))
    out.append(build('custom/dpm/4', 'sd3', DPM, 0, sigmas=quarter))
    out.append(build('custom/dpm-dynamic/3', 'flux', dict(DPM, use_dynamic_shifting=True), 0, sigmas=odd))
    out.append(build('custom/unipc/4', 'sd3', UNIPC, 0, sigmas=quarter))
    out.append(build('custom/unipc-dynamic/3', 'flux', dict(UNIPC, use_dynamic_shifting=True), 0, sigmas=odd))
    models = [('sd3', 'sd3', SD3, '1024x1024', STEPS), ('flux-dev', 'flux', FLUX_DEV, '1024x1024', STEPS),
              ('flux-dev', 'flux', FLUX_DEV, '512x512', (1, 4, 28)), ('schnell', 'flux', FLUX_SCHNELL, '1024x1024', (1, 4, 28)),
              ('sd3-shift1', 'sd3', dict(SD3, shift=1.0), '1024x1024', (4, 28))]
    for label, fam, cfg, size, steps in models:
        for sched in COMFY:
            for n in steps:
                out.append(build(f'comfy-{sched}/{label}/{size}/{n}', fam, cfg, n, scheduler=sched, size=size))
    for label, fam, cfg, size in (('flux2', 'flux', FLUX_SCHNELL, '1024x1024'), ('flux2', 'flux', FLUX_SCHNELL, '512x512'),
                                  ('flux2', 'flux', FLUX_SCHNELL, '2048x2048'), ('flux2-sd3', 'sd3', SD3, '768x1344')):
        for n in (1, 4, 28, 50):
            out.append(build(f'{label}/{size}/{n}', fam, cfg, n, scheduler='flux2', size=size))
    return out


def beta_tables():
    inc, ppf = [], []
    for a, b in ((0.6, 0.6), (0.5, 0.5), (2.0, 3.0), (0.6, 2.5), (5.0, 0.7), (30.0, 40.0), (1.0, 1.0)):
        for x in (1e-12, 1e-6, 0.001, 0.05, 0.2, 0.3333333333333333, 0.5, 0.6180339887, 0.8, 0.95, 0.999, 1 - 1e-9):
            inc.append({'a': a, 'b': b, 'x': x, 'want': betainc_reg(a, b, x)})
        for p in (1e-15, 1e-9, 1e-4, 0.01, 0.1, 0.25, 0.5, 0.7, 0.9, 0.99, 0.9999, 1 - 1e-12):
            ppf.append({'a': a, 'b': b, 'p': p, 'want': beta_ppf(p, a, b)})
    for n in (2, 4, 28, 50):   # the exact arguments diffusers (endpoint) and ComfyUI (no endpoint) pass
        for v in np_linspace(0, 1, n) + np_linspace(0, 1, n, endpoint=False):
            ppf.append({'a': 0.6, 'b': 0.6, 'p': 1 - v, 'want': beta_ppf(1 - v, 0.6, 0.6)})
    return inc, ppf


if __name__ == '__main__':
    inc, ppf = beta_tables()
    doc = {'generator': 'scheduler/testdata/gen_schedules.py', 'cases': cases(), 'betainc': inc, 'betappf': ppf}
    json.dump(doc, sys.stdout, separators=(',', ':'))
    sys.stdout.write('\n')
