#!/usr/bin/env python3
"""Custom-σ parity: `rflow schedule --sigmas` against diffusers 0.38's own scheduler classes, given the
list the way StableDiffusion3Pipeline / FluxPipeline hand it over (retrieve_timesteps(sigmas=…, mu=…)).

usage: . ../shared/oracle/env.sh && $PY scripts/oracle_custom_sigmas.py bin/rflow
Prints one line per case (max |Δσ|, max |Δtimestep|; bit-exact float32 expected) and exits 1 on a mismatch.
"""
import json, math, os, subprocess, sys, tempfile

sys.path.insert(0, os.environ.get("ORACLE_DIR", ""))
import torchshim  # noqa: F401  (API shims for Debian's torch, imported before diffusers)
import numpy as np
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

SD3 = {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}
FLUX_DEV = {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0,
            "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256,
            "max_image_seq_len": 4096}
FLUX_SCHNELL = dict(FLUX_DEV, shift=1.0, use_dynamic_shifting=False)
UNIPC = {"_class_name": "UniPCMultistepScheduler", "num_train_timesteps": 1000, "use_flow_sigmas": True,
         "prediction_type": "flow_prediction", "flow_shift": 3.0}
MODEL_INDEX = {"sd3": {"_class_name": "StableDiffusion3Pipeline"}, "flux": {"_class_name": "FluxPipeline"}}

CASES = [  # name, family, config, sigmas, width, height
    ("sd3 shift 3", "sd3", SD3, [1.0, 0.75, 0.5, 0.25], 1024, 1024),
    ("sd3 odd", "sd3", SD3, [0.987654321, 0.6, 0.1234567, 1e-3], 1024, 1024),
    ("sd3 karras", "sd3", dict(SD3, use_karras_sigmas=True), [1.0, 0.8, 0.5, 0.3, 0.1], 1024, 1024),
    ("flux-dev 1024² μ", "flux", FLUX_DEV, [1.0, 0.75, 0.5, 0.25], 1024, 1024),
    ("flux-dev 512² μ", "flux", FLUX_DEV, [0.987654321, 0.6, 0.1234567, 1e-3], 512, 512),
    ("flux-dev 768×1344 μ", "flux", FLUX_DEV, [1.0, 0.9, 0.3], 768, 1344),
    ("flux-schnell", "flux", FLUX_SCHNELL, [1.0, 0.75, 0.5, 0.25], 1024, 1024),
    ("sd3 unipc flow", "sd3", UNIPC, [1.0, 0.75, 0.5, 0.25], 1024, 1024),
]


def diffusers_schedule(cfg, sigmas, width, height):
    cls = {"FlowMatchEulerDiscreteScheduler": FlowMatchEulerDiscreteScheduler,
           "UniPCMultistepScheduler": UniPCMultistepScheduler}[cfg["_class_name"]]
    s = cls.from_config({k: v for k, v in cfg.items() if k != "_class_name"})
    kw = {}
    if cfg.get("use_dynamic_shifting"):
        seq = (height // 16) * (width // 16)   # calculate_shift as both pipelines compute it
        m = (cfg["max_shift"] - cfg["base_shift"]) / (cfg["max_image_seq_len"] - cfg["base_image_seq_len"])
        kw["mu"] = seq * m + (cfg["base_shift"] - m * cfg["base_image_seq_len"])
    if cfg["_class_name"] == "UniPCMultistepScheduler":
        # diffusers 0.38's UniPC multiplies the list by a float, which fails on the plain list the
        # pipelines pass (TypeError); given as a float64 array it runs its flow branch.
        sigmas = np.array(sigmas)
    s.set_timesteps(sigmas=sigmas, device="cpu", **kw)
    return s.sigmas.numpy().astype(np.float64), s.timesteps.numpy().astype(np.float64)


def rflow_schedule(binary, family, cfg, sigmas, width, height):
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "scheduler"))
        json.dump(MODEL_INDEX[family], open(os.path.join(d, "model_index.json"), "w"))
        json.dump(cfg, open(os.path.join(d, "scheduler", "scheduler_config.json"), "w"))
        out = subprocess.run([binary, "schedule", "--model", d, "-W", str(width), "-H", str(height), "--sigmas",
                              ",".join(repr(x) for x in sigmas), "--json"], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        j = json.loads(out.stdout)
        return np.array(j["sigmas"]), np.array(j["timesteps"])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary, bad = os.path.realpath(sys.argv[1]), 0
    for name, family, cfg, sigmas, w, h in CASES:
        ds, dt = diffusers_schedule(cfg, sigmas, w, h)
        rs, rt = rflow_schedule(binary, family, cfg, sigmas, w, h)
        ok = ds.shape == rs.shape and dt.shape == rt.shape
        if ok:
            es, et = np.abs(ds - rs).max(), np.abs(dt - rt).max()
            ok = es == 0 and et == 0
            line = f"max|Δσ|={es:.3g} max|Δt|={et:.3g}"
        else:
            line = f"lengths σ {len(rs)} vs {len(ds)}, t {len(rt)} vs {len(dt)}"
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {line}  diffusers σ {np.round(ds, 6).tolist()}", flush=True)
        bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
