"""Skip-layer guidance against diffusers' StableDiffusion3Pipeline (skip_guidance_layers) on the oracle's tiny SD3
model, compiled by rflow from its diffusers folder (the only form with a skip_layers input: Optimum exports have none).

usage: . ../shared/oracle/env.sh; PYTHONPATH=$ORACLE_DIR:$PYTHONPATH $PY scripts/parity_slg.py RFLOW MODELS_SD3 WORK
Prints one line per case and exits 1 when uint8 max |Δ| > 2 or more than 1 % of values differ.
"""
import os
import subprocess
import sys

import torchshim  # noqa: F401  (before diffusers)
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.environ["ORACLE_DIR"])
from run_diffusers import load_pipe  # noqa: E402

rflow, models, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
pipe, _ = load_pipe(os.path.join(models, "diffusers"), 1)
pipe.set_progress_bar_config(disable=True)
fail = 0
for layers, steps, seed in (([1], 20, 3), ([0, 1], 12, 7)):
    kw = dict(prompt="a red fox in the snow", negative_prompt="blurry", height=64, width=64, num_inference_steps=steps,
              guidance_scale=4.0, generator=torch.Generator("cpu").manual_seed(seed), output_type="np",
              skip_guidance_layers=layers)
    with torch.no_grad():
        ref = (pipe(**kw).images[0] * 255).round().astype("uint8")
    out = os.path.join(work, f"slg-{'-'.join(map(str, layers))}.png")
    subprocess.run([rflow, "txt2img", "-m", os.path.join(models, "diffusers"), "-p", kw["prompt"], "-n", "blurry",
                    "-W", "64", "-H", "64", "--steps", str(steps), "--cfg-scale", "4", "-s", str(seed),
                    "--skip-layers", ",".join(map(str, layers)), "-o", out, "--overwrite", "-q"], check=True)
    got = np.asarray(Image.open(out).convert("RGB"))
    d = np.abs(got.astype(int) - ref.astype(int))
    ok = d.max() <= 2 and (d > 0).mean() <= 0.01
    fail |= not ok
    print(f"{'ok  ' if ok else 'FAIL'} sd3 slg layers={layers} steps={steps} u8_max_abs={d.max()} "
          f"u8_frac_differ={(d > 0).mean():.3g}")
sys.exit(1 if fail else 0)
