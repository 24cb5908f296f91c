"""img2img and tiled VAE decoding against diffusers 0.38 (issue 19) on the oracle's tiny SD3 and FLUX models.

usage: . ../shared/oracle/env.sh; PYTHONPATH=$ORACLE_DIR:$PYTHONPATH $PY scripts/parity_img2img.py RFLOW WORK [KIND ...]
  KIND: sd3, flux-dev (default both); models are read from WORK/models/KIND (the oracle's make_models.py layout,
  built there when missing); everything else goes to WORK/img2img/.

Cases, each run by diffusers (CPU generator, fp32) and by `rflow txt2img --save-latents`, then compared with the
oracle's compare.py (uint8 max |Δ| <= 2 on <= 1 % of the values, noise bit-identical, final latents <= 1e-4):
  - StableDiffusion3Img2ImgPipeline / FluxImg2ImgPipeline at strengths 0.3, 0.6 and 1.0 from a square init image
    (256², to 256²) and a non-square one (320×224, stretched to 256² by diffusers' default resize, Pillow's
    LANCZOS), and one square image to a non-square size (256² to 192×256); rflow runs with its defaults (the
    latent sampled with the seed's generator, then the noise; --resize-mode just-resize);
  - StableDiffusion3Pipeline / FluxPipeline with vae.enable_tiling() on a copy of the model whose VAE config says
    sample_size 128 (16-latent tiles, 4 overlapping), at 256×192 (32×24 latents: 3×2 tiles), against
    rflow --vae-tiling on the same copy.
Prints one line per case (compare.py's) and exits 1 when any case is out of tolerance.
"""
import json
import os
import shutil
import subprocess
import sys

import torchshim  # noqa: F401  (before diffusers)
import numpy as np
import torch
from PIL import Image

ORACLE = os.environ["ORACLE_DIR"]
sys.path.insert(0, ORACLE)
from run_diffusers import load_pipe, run_one  # noqa: E402

PROMPT = "a lighthouse on a cliff at sunset"
STEPS = 8
TILE_SAMPLE_SIZE = 128


def init_images(d):
    """Two deterministic RGB pictures with edges, gradients and noise: 256² and 320×224."""
    rs = np.random.RandomState(19)
    out = {}
    for name, (w, h) in (("square", (256, 256)), ("wide", (320, 224))):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        r = 127 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)
        g = np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2, 220.0, 40.0)
        b = 255 * x / (w - 1)
        img = np.stack([r, g, b], -1) + rs.normal(0, 12, (h, w, 3))
        path = os.path.join(d, f"init-{name}.png")
        Image.fromarray(np.clip(img.round(), 0, 255).astype(np.uint8), "RGB").save(path)
        out[name] = path
    return out


def ensure_model(work, kind):
    """WORK/models/KIND as the oracle's compare.sh builds and reuses it (all forms, so that make parity's other
    runs find it complete)."""
    m = os.path.join(work, "models", kind)
    if not all(os.path.exists(os.path.join(m, p)) for p in ("MODEL.json", "diffusers/model_index.json", "onnx")):
        shutil.rmtree(m, ignore_errors=True)
        print(f"== building {kind} models ({m})", file=sys.stderr)
        with open(os.path.join(work, f"make_models-{kind}.log"), "w") as f:
            subprocess.run([sys.executable, os.path.join(ORACLE, "make_models.py"), "--kind", kind, "--out", m],
                           check=True, stdout=f, stderr=subprocess.STDOUT)
    return m


def tiled_copy(model, out):
    """The model with sample_size TILE_SAMPLE_SIZE in its VAE configs (diffusers' vae/, the export's vae_decoder/
    and vae_encoder/); every other file is a symlink to the original."""
    if os.path.exists(out):
        shutil.rmtree(out)
    for form, subs in (("diffusers", ("vae",)), ("onnx", ("vae_decoder", "vae_encoder"))):
        src, dst = os.path.join(model, form), os.path.join(out, form)
        os.makedirs(dst)
        for e in os.listdir(src):
            if e not in subs:
                os.symlink(os.path.abspath(os.path.join(src, e)), os.path.join(dst, e))
                continue
            os.makedirs(os.path.join(dst, e))
            for f in os.listdir(os.path.join(src, e)):
                s = os.path.abspath(os.path.join(src, e, f))
                if f == "config.json":
                    with open(s) as fh:
                        cfg = json.load(fh)
                    cfg["sample_size"] = TILE_SAMPLE_SIZE
                    with open(os.path.join(dst, e, f), "w") as fh:
                        json.dump(cfg, fh, indent=1)
                else:
                    os.symlink(s, os.path.join(dst, e, f))
    return out


def img2img_reference(pipe, fam, job, out):
    """Runs the img2img pipeline and writes compare.py's dump: noise (the randn_tensor prepare_latents draws, as
    scale_noise receives it), final_latents (after the last step, NCHW) and image_u8."""
    rec = {"lat": []}
    orig = pipe.scheduler.scale_noise

    def scale_noise(sample, timestep, noise=None):
        rec["noise"] = noise.detach().numpy().copy()
        return orig(sample, timestep, noise)

    def cb(p, i, t, kw):
        rec["lat"].append(kw["latents"].detach().numpy().copy())
        return {}

    kw = dict(prompt=PROMPT, image=Image.open(job["init"]), strength=job["strength"], height=job["height"],
              width=job["width"], num_inference_steps=STEPS, generator=torch.Generator("cpu").manual_seed(job["seed"]),
              output_type="np", callback_on_step_end=cb)
    kw.update(guidance_scale=job["cfg"]) if fam == "sd3" else kw.update(guidance_scale=job["guidance"])
    pipe.scheduler.scale_noise = scale_noise
    try:
        with torch.no_grad():
            img = pipe(**kw).images[0]
    finally:
        pipe.scheduler.scale_noise = orig
    lat = rec["lat"][-1]
    if fam == "flux":  # [B, (h/2)(w/2), 64] -> [B, 16, h, w] (diffusers' _unpack_latents)
        h, w = job["height"] // 8, job["width"] // 8
        lat = lat.reshape(1, h // 2, w // 2, 16, 2, 2).transpose(0, 3, 1, 4, 2, 5).reshape(1, 16, h, w)
    np.savez(out, noise=rec["noise"], final_latents=lat, image_u8=(img * 255).round().astype("uint8"))


def run_rflow(rflow, args, out):
    """rflow txt2img with --save-latents; returns its stderr when it failed."""
    r = subprocess.run([rflow, "txt2img", *args, "-p", PROMPT, "--steps", str(STEPS), "-o", out, "--save-latents",
                        "--overwrite", "-q"], capture_output=True, text=True)
    return "" if r.returncode == 0 else (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]


def compare(ref, png, label, results, err):
    args = [sys.executable, os.path.join(ORACLE, "compare.py"), "--diffusers", ref, "--rflow-png", png,
            "--rflow-latents", png[:-4] + ".safetensors", "--label", label, "--json", results]
    if err:
        args += ["--rflow-error", err]
    return subprocess.run(args).returncode == 0


def family_args(fam, job):
    return ["--cfg-scale", str(job["cfg"])] if fam == "sd3" else ["--guidance", str(job["guidance"])]


def main():
    rflow, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    kinds = sys.argv[3:] or ["sd3", "flux-dev"]
    d = os.path.join(work, "img2img")
    os.makedirs(d, exist_ok=True)
    results = os.path.join(d, "results.jsonl")
    open(results, "w").close()
    inits = init_images(d)
    ok = True
    for kind in kinds:
        model = ensure_model(work, kind)
        pipe, fam = load_pipe(os.path.join(model, "diffusers"), 2)
        pipe.set_progress_bar_config(disable=True)
        if fam == "sd3":
            from diffusers import StableDiffusion3Img2ImgPipeline as I2I
        else:
            from diffusers import FluxImg2ImgPipeline as I2I
        i2i = I2I.from_pipe(pipe)
        i2i.set_progress_bar_config(disable=True)
        jobs = []
        for n, (init, (w, h)) in enumerate((("square", (256, 256)), ("wide", (256, 256)))):
            for k, s in enumerate((0.3, 0.6, 1.0)):
                jobs.append(dict(id=f"{init}-{w}x{h}-s{s}", init=inits[init], width=w, height=h, strength=s,
                                 seed=100 + 10 * n + k, cfg=4.5, guidance=3.5))
        jobs.append(dict(id="square-192x256-s0.6", init=inits["square"], width=192, height=256, strength=0.6, seed=7,
                         cfg=4.5, guidance=3.5))
        for job in jobs:
            label = f"{kind} img2img {job['id']}"
            ref, png = (os.path.join(d, f"{kind}-{job['id']}{ext}") for ext in (".npz", ".png"))
            img2img_reference(i2i, fam, job, ref)
            err = run_rflow(rflow, ["-m", os.path.join(model, "onnx"), "-W", str(job["width"]), "-H",
                                    str(job["height"]), "-s", str(job["seed"]), "-i", job["init"], "--strength",
                                    str(job["strength"]), *family_args(fam, job)], png)
            ok &= compare(ref, png, label, results, err)
        del i2i, pipe

        # Tiled decoding: diffusers' enable_tiling with the copy's 16-latent tiles, and rflow --vae-tiling.
        tm = tiled_copy(model, os.path.join(d, f"tiled-{kind}"))
        pipe, fam = load_pipe(os.path.join(tm, "diffusers"), 2)
        pipe.set_progress_bar_config(disable=True)
        pipe.vae.enable_tiling()
        assert pipe.vae.tile_latent_min_size == TILE_SAMPLE_SIZE // 8, pipe.vae.tile_latent_min_size
        job = dict(width=256, height=192, seed=42, cfg=4.5, guidance=3.5)
        ref, png = (os.path.join(d, f"{kind}-tiled-256x192{ext}") for ext in (".npz", ".png"))
        ns = dict(prompt=PROMPT, negative="", width=job["width"], height=job["height"], steps=STEPS, cfg=job["cfg"],
                  guidance=job["guidance"], seed=job["seed"], max_seq=None, out=ref, png=None, n=1)
        import argparse
        run_one(pipe, fam, argparse.Namespace(**ns))
        err = run_rflow(rflow, ["-m", os.path.join(tm, "onnx"), "-W", str(job["width"]), "-H", str(job["height"]),
                                "-s", str(job["seed"]), "--vae-tiling", *family_args(fam, job)], png)
        ok &= compare(ref, png, f"{kind} tiled decode 256x192 (16-latent tiles)", results, err)
        # The same latents decoded without tiles differ: the tiles were really used.
        with torch.no_grad():
            z = torch.from_numpy(np.load(ref)["final_latents"])
            z = z / pipe.vae.config.scaling_factor + (pipe.vae.config.shift_factor or 0)
            pipe.vae.disable_tiling()
            whole = pipe.vae.decode(z).sample
        whole = ((whole[0].permute(1, 2, 0).numpy() / 2 + 0.5).clip(0, 1) * 255).round()
        tiled = np.load(ref)["image_u8"].astype(np.float64)
        print(f"     {kind} tiled vs untiled decode of the reference latents: u8 max |Δ| {np.abs(whole - tiled).max():.0f}")
        del pipe
    n = sum(1 for _ in open(results))
    bad = sum(1 for line in open(results) if not json.loads(line)["ok"])
    print(f"== img2img/tiling parity: {n} runs, {bad} out of tolerance (details: {results})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
