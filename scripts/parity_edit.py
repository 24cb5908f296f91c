"""Inpainting, FLUX Fill and FLUX Kontext against diffusers 0.38 (issue 18) on the oracle's tiny models.

usage: . ../shared/oracle/env.sh; PYTHONPATH=$ORACLE_DIR:$PYTHONPATH $PY scripts/parity_edit.py RFLOW WORK [CASE ...]
  CASE: sd3, flux-dev (inpainting), fill, kontext (default all four). Models are read from WORK/models/KIND (the
  oracle's make_models.py layout, built there when missing); the Fill and Kontext models are made from the tiny
  FLUX-dev model in WORK/models/flux-fill and WORK/models/flux-kontext: Fill has its own transformer (in_channels
  384, out_channels 64, random bf16-rounded weights, exported with torch.onnx like the oracle's), Kontext shares
  FLUX-dev's weights under a FluxKontextPipeline model_index.json. Everything else goes to WORK/edit/.

Each case runs the real diffusers pipeline (CPU generator, fp32) and `rflow txt2img --save-latents`, then the
oracle's compare.py checks uint8 max |Δ| <= 2 on <= 1 % of the values, a bit-identical initial noise and final
latents within 1e-4:
  - StableDiffusion3InpaintPipeline / FluxInpaintPipeline at strengths 0.6 and 1.0 (256² init and mask), from a
    320×224 init and mask stretched to 256², with a 128² mask (rflow resizes it to the image first, with a
    warning), with --mask-blur 4 (diffusers gets mask_processor.blur(mask, 4), Pillow's GaussianBlur), and with
    --inpaint-full-res --inpaint-full-res-padding 16 (diffusers' padding_mask_crop=16) on a disc in the 320×224
    image, drawn at 128² (the reference's picture is pasted back as rflow pastes it);
  - FluxFillPipeline at strength 1.0 (guidance 30, its default) from the ONNX export and from the diffusers folder
    compiled by rflow, and at strength 0.8 from a 320×224 init and mask. Fill's masked image (a constant hole, 0,
    over a third of the pixels) makes the VAE encoder's float32 GroupNorm inexact (masked_encode_f32_error): its
    latents are ~1e-4 from float64 in torch and in ONNX Runtime alike, ~2× more in ONNX Runtime, and the final
    latents inherit it (diffusers float32 ~4e-5 from float64, rflow up to ~1e-4), so neither float32 run is a
    reference to 1e-4. Fill is therefore checked, at the same 1e-4, against diffusers' pipeline computed in float64
    (float64_pipeline) with rflow's own masked-image latents (rflow_masked_latents: the sample rflow's ONNX encoder
    gives for the same masked image and ε, from scripts/fill_encode.go): everything rflow computes but the encoder's
    float32 rounding. Each Fill case prints the distances (diffusers' masked-image latents, and the final latents of
    diffusers float32 and of rflow, from plain float64) and compares rflow with the float32 and the plain float64
    references as information (results-f32.jsonl, not checks);
  - FluxKontextPipeline with a 320×224 reference kept at its size (_auto_resize=False; rflow --ref-resize none)
    and snapped to Kontext's preferred 1248×832 (_auto_resize=True; rflow's default), max_area = 256², from the
    export and the compiled folder.
The reference image is decoded from diffusers' final latents with the VAE's shift (SD3's inpaint pipeline leaves
the shift out; rflow keeps it, see pipeline/inpaint.go) and then, for inpaint and Fill, pasted over the init
image through the mask as rflow's default overlay does: out = (orig·(255 − a) + gen·a + 127) // 255. The script
also counts the pixels under black mask that differ from the init image in rflow's output (must be 0).
Prints one line per case and exits 1 when any case is out of tolerance.
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys

import torchshim  # noqa: F401  (before diffusers)
import numpy as np
import torch
from PIL import Image, ImageFilter
from safetensors import read_numpy  # the oracle's shim

ORACLE = os.environ["ORACLE_DIR"]
sys.path.insert(0, ORACLE)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_diffusers import load_pipe  # noqa: E402
from parity_img2img import ensure_model, init_images  # noqa: E402

PROMPT = "a red boat on a calm lake"
STEPS = 8


def masks(d):
    """Greyscale masks: 256² and 320×224 (a white rectangle, a soft ramp, a grey-128 band that repaints and a
    grey-127 band that keeps), and a 128² one."""
    out = {}
    for name, (w, h) in (("square", (256, 256)), ("wide", (320, 224)), ("small", (128, 128)), ("blob", (256, 256))):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        m = np.zeros((h, w))
        m[h // 4:3 * h // 4, w // 5:w // 2] = 255
        m += np.clip((x - 0.55 * w) / (0.2 * w), 0, 1) * (y > h // 2) * 255
        m[(y > 0.1 * h) & (y < 0.15 * h)] = 128
        m[(y > 0.85 * h) & (y < 0.9 * h)] = 127
        if name == "blob":  # a small soft-edged disc: the rectangle of --inpaint-full-res is a part of the image
            m = np.clip(255 * (34 - np.hypot(x - 170, y - 90)) / 6, 0, 255)
        path = os.path.join(d, f"mask-{name}.png")
        Image.fromarray(np.clip(m.round(), 0, 255).astype(np.uint8), "L").save(path)
        out[name] = path
    return out


def link_tree(src, dst, skip=()):
    """dst mirrors src with symlinks, except the entries in skip."""
    os.makedirs(dst, exist_ok=True)
    for e in os.listdir(src):
        if e not in skip and not os.path.exists(os.path.join(dst, e)):
            os.symlink(os.path.abspath(os.path.join(src, e)), os.path.join(dst, e))


def with_class(src, dst, cls):
    """src's folder with model_index.json naming pipeline class cls; everything else linked."""
    link_tree(src, dst, skip=("model_index.json",))
    with open(os.path.join(src, "model_index.json")) as f:
        index = json.load(f)
    index["_class_name"] = cls
    with open(os.path.join(dst, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)


def ensure_fill(work, flux):
    """WORK/models/flux-fill: FLUX-dev's components with a Fill transformer (in_channels 384)."""
    m = os.path.join(work, "models", "flux-fill")
    if os.path.exists(os.path.join(m, "DONE")):
        return m
    shutil.rmtree(m, ignore_errors=True)
    import make_models as mm
    from diffusers import FluxTransformer2DModel
    S = mm.sizes("flux-dev", "tiny")
    S["tr"] = dict(S["tr"], in_channels=384, out_channels=64)
    torch.manual_seed(18)
    tr = FluxTransformer2DModel(guidance_embeds=True, **S["tr"]).eval()
    mm.round_to_bf16_(tr)
    for form in ("diffusers", "onnx"):
        with_class(os.path.join(flux, form), os.path.join(m, form), "FluxFillPipeline")
        os.unlink(os.path.join(m, form, "transformer"))
    import copy
    copy.deepcopy(tr).to(torch.bfloat16).save_pretrained(os.path.join(m, "diffusers", "transformer"),
                                                          safe_serialization=True)
    back = FluxTransformer2DModel.from_pretrained(os.path.join(m, "diffusers", "transformer"),
                                                  torch_dtype=torch.float32).state_dict()
    for k, v in tr.state_dict().items():
        assert torch.equal(back[k], v), f"fill transformer {k} differs after reload"
    odir = os.path.join(m, "onnx", "transformer")
    mm.write_json(os.path.join(odir, "config.json"), dict(tr.config))
    seq, h, w = 8, 8, 8
    args = (torch.randn(1, (h // 2) * (w // 2), 384), torch.randn(1, seq, S["tr"]["joint_attention_dim"]),
            torch.randn(1, S["tr"]["pooled_projection_dim"]), torch.tensor([0.5]),
            torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(h // 2.0), torch.arange(w // 2.0),
                                       indexing="ij"), -1).reshape(-1, 3),
            torch.zeros(seq, 3), torch.tensor([30.0]))
    names = ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "img_ids", "txt_ids",
             "guidance"]
    dyn = {"hidden_states": {0: "batch_size", 1: "packed_height_width"},
           "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
           "pooled_projections": {0: "batch_size"}, "timestep": {0: "batch_size"},
           "img_ids": {0: "packed_height_width"}, "txt_ids": {0: "sequence_length"}, "guidance": {0: "batch_size"},
           "out_hidden_states": {0: "batch_size", 1: "packed_height_width"}}
    mm.export(mm.FluxWrap(tr, True), args, os.path.join(odir, "model.onnx"), names, ["out_hidden_states"], dyn)
    open(os.path.join(m, "DONE"), "w").close()
    return m


def ensure_kontext(work, flux):
    """WORK/models/flux-kontext: FLUX-dev's folders under a FluxKontextPipeline model_index.json."""
    m = os.path.join(work, "models", "flux-kontext")
    for form in ("diffusers", "onnx"):
        if not os.path.exists(os.path.join(m, form, "model_index.json")):
            with_class(os.path.join(flux, form), os.path.join(m, form), "FluxKontextPipeline")
    return m


def unpack(lat, h, w):
    """diffusers' _unpack_latents: [B, (h/2)(w/2), 4c] -> [B, c, h, w] (h, w latent sizes)."""
    c = lat.shape[-1] // 4
    return lat.reshape(lat.shape[0], h // 2, w // 2, c, 2, 2).transpose(0, 3, 1, 4, 2, 5).reshape(-1, c, h, w)


def decode(vae, lat):
    """The final latents decoded as rflow decodes them (z / scaling + shift), to uint8 HWC."""
    with torch.no_grad():
        z = torch.from_numpy(lat) / vae.config.scaling_factor + (vae.config.shift_factor or 0)
        img = vae.decode(z).sample
    img = (img / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return (img * 255).round().astype(np.uint8)


def fitted_grey(path, w, h, blur, size_to=None):
    """The mask as rflow fits it: resized to the init image's size first when it differs, blurred, then to w×h."""
    m = Image.open(path).convert("L")
    if size_to is not None and m.size != size_to:
        m = m.resize(size_to, Image.LANCZOS)
    if blur:
        m = m.filter(ImageFilter.GaussianBlur(blur))
    if m.size != (w, h):
        m = m.resize((w, h), Image.LANCZOS)
    return np.asarray(m).astype(np.int64)


def overlay(gen, init_path, grey, w, h):
    orig = Image.open(init_path).convert("RGB")
    if orig.size != (w, h):
        orig = orig.resize((w, h), Image.LANCZOS)
    o = np.asarray(orig).astype(np.int64)
    a = grey[..., None]
    return ((o * (255 - a) + gen.astype(np.int64) * a + 127) // 255).astype(np.uint8), o


def reference(pipe, fam, job, out):
    """Runs a diffusers edit pipeline; writes compare.py's dump (noise, final NCHW latents, image_u8)."""
    mod = sys.modules[type(pipe).__module__]
    rec = {"lat": [], "noise": None}
    orig_randn = mod.randn_tensor

    def randn(*a, **k):
        t = orig_randn(*a, **k)
        if rec["noise"] is None:
            rec["noise"] = t.detach().numpy().copy()
        return t

    def cb(p, i, t, kw):
        rec["lat"].append(kw["latents"].detach().numpy().copy())
        return {}

    w, h = job["width"], job["height"]
    kw = dict(prompt=PROMPT, height=h, width=w, num_inference_steps=STEPS, output_type="latent",
              generator=torch.Generator("cpu").manual_seed(job["seed"]), callback_on_step_end=cb)
    task = job["task"]
    if task in ("inpaint", "fill"):
        mask = Image.open(job["mask"])
        if mask.size != Image.open(job["init"]).size:  # rflow's note: the mask is resized to the image first
            mask = mask.convert("L").resize(Image.open(job["init"]).size, Image.LANCZOS)
        if job.get("blur"):
            mask = pipe.mask_processor.blur(mask.convert("L"), job["blur"])
        kw.update(image=Image.open(job["init"]), mask_image=mask, strength=job["strength"])
        if job.get("pad"):  # diffusers then pastes its picture over the init image itself: it needs pictures
            kw.update(padding_mask_crop=job["pad"], output_type="pil")
    if task == "kontext":
        kw.update(image=Image.open(job["ref"]), max_area=w * h, _auto_resize=job["auto"])
    if fam == "sd3":
        kw.update(guidance_scale=job["cfg"])
    else:
        kw.update(guidance_scale=job["guidance"])
    mod.randn_tensor = randn
    try:
        with torch.no_grad():
            pipe(**kw)
    finally:
        mod.randn_tensor = orig_randn
    lat = rec["lat"][-1]
    noise = rec["noise"]
    if fam == "flux":
        lat = unpack(lat, h // 8, w // 8)
    img = decode(pipe.vae, lat)
    extra = {}
    if job.get("pad"):  # rflow's "only masked" paste: the drawn picture resized (crop) into the rectangle
        init = Image.open(job["init"]).convert("RGB")
        grey = fitted_grey(job["mask"], *init.size, job.get("blur", 0))
        x1, y1, x2, y2 = pipe.mask_processor.get_crop_region(Image.fromarray(grey.astype(np.uint8), "L"), w, h,
                                                             pad=job["pad"])
        gen = np.asarray(pipe.image_processor.resize(Image.fromarray(img), height=y2 - y1, width=x2 - x1,
                                                     resize_mode="crop")).astype(np.int64)
        full = np.asarray(init).astype(np.int64).copy()
        full[y1:y2, x1:x2] = gen
        a = np.zeros_like(grey)
        a[y1:y2, x1:x2] = grey[y1:y2, x1:x2]
        img, orig = overlay(full.astype(np.uint8), job["init"], a, *init.size)
        np.savez(out, noise=noise, final_latents=lat, image_u8=img, grey=a, orig=orig)
        return
    if task in ("inpaint", "fill"):
        grey = fitted_grey(job["mask"], w, h, job.get("blur", 0), Image.open(job["init"]).size)
        img, orig = overlay(img, job["init"], grey, w, h)
        extra = dict(grey=grey, orig=orig)
    np.savez(out, noise=noise, final_latents=lat, image_u8=img, **extra)


def masked_encode_f32_error(pipe, job):
    """How far diffusers' own float32 VAE encoding of Fill's masked image is from float64, and the float64 one: the
    sampled latent (mean + std·ε with the ε FluxFillPipeline draws, the generator's third draw) in model space. On the
    masked image (35 % of the pixels one constant, 0) the first GroupNorm's float32 reduction is inexact: given
    the same float32 input, torch's float32 GroupNorm is 1.2e-4 from float64 on the wide case against 6.8e-6 on the
    unmasked image, and the encoder's mean ends 5.9e-5 (torch) and 1.3e-4 (ONNX Runtime, rflow's encoder, at
    every graph optimization level) from float64 against 3e-6 for both on the unmasked image, both fed diffusers'
    own masked image (rflow builds it the same way: init·(1 − binarized mask) in float32)."""
    w, h = job["width"], job["height"]
    x = pipe.image_processor.preprocess(Image.open(job["init"]), h, w)
    m = pipe.mask_processor.preprocess(Image.open(job["mask"]), h, w)
    img = x * (1 - m)
    vae = pipe.vae
    g = torch.Generator("cpu").manual_seed(job["seed"])
    shape = (1, vae.config.latent_channels, h // 8, w // 8)
    eps = [torch.randn(shape, generator=g) for _ in range(3)][2]  # init image's ε, the noise, the masked image's ε
    z = {}
    with torch.no_grad():
        for dt in (torch.float32, torch.float64):
            vae.to(dt)
            try:
                d = vae.encode(img.to(dt)).latent_dist
                z[dt] = (d.mean + d.std * eps.to(dt)).double()
            finally:
                vae.float()
    sf, sh = vae.config.scaling_factor, vae.config.shift_factor or 0
    model_space = {dt: (v - sh) * sf for dt, v in z.items()}  # as prepare_mask_latents scales them
    return float((model_space[torch.float32] - model_space[torch.float64]).abs().max()), model_space[torch.float64]


@contextlib.contextmanager
def float64_pipeline(pipe):
    """pipe's transformer and VAE in float64 for the `with` block: the exact-arithmetic reference for Fill. What
    the float32 run draws stays the same numbers: every randn_tensor (the noise, the VAE samples' ε) is drawn in
    float32 from the same generator and widened (a float64 draw would take other bits from the generator); the
    scheduler's Euler step, which casts the sample to float32, is done in float64 on the same float32 σs; the
    prompt embeddings come from the float32 text encoders (torch 1.13 cannot build CLIP's causal mask in float64;
    rflow's text encoders match them to ~1e-6) and are widened. The weights are float32 (bf16-rounded), exact in
    float64."""
    import diffusers.models.autoencoders.vae as vae_module
    mods = [sys.modules[type(pipe).__module__], vae_module]
    draws = [mod.randn_tensor for mod in mods]

    def randn32(shape, generator=None, device=None, dtype=None, layout=None):
        return draws[0](shape, generator=generator, device=device, dtype=torch.float32, layout=layout).to(dtype)

    sch = pipe.scheduler

    def step64(model_output, timestep, sample, return_dict=True, **kw):
        if sch.step_index is None:
            sch._init_step_index(timestep)
        i = sch.step_index
        sch._step_index += 1
        return (sample + (sch.sigmas[i + 1].double() - sch.sigmas[i].double()) * model_output,)

    encode_prompt = pipe.encode_prompt

    def encode_prompt64(*a, **k):
        return tuple(x.double() for x in encode_prompt(*a, **k))

    pipe.transformer.to(torch.float64)
    pipe.vae.to(torch.float64)
    for mod in mods:
        mod.randn_tensor = randn32
    sch.step, pipe.encode_prompt = step64, encode_prompt64
    try:
        yield
    finally:
        for mod, draw in zip(mods, draws):
            mod.randn_tensor = draw
        del sch.step, pipe.encode_prompt
        pipe.transformer.to(torch.float32)
        pipe.vae.to(torch.float32)


@contextlib.contextmanager
def rflow_masked_latents(pipe, encode, tmp):
    """Inside a float64_pipeline block: FluxFillPipeline's masked-image latents are rflow's, the sample that
    rflow's ONNX VAE encoder gives for the same float32 masked image and the same ε (encode: the
    scripts/fill_encode.go program, the model's vae_encoder folder, the ONNX Runtime library or ""), so the run
    checks everything else rflow computes against exact arithmetic. The ε is still drawn from the generator where
    diffusers draws it."""
    import diffusers.models.autoencoders.vae as vae_module
    vae = pipe.vae
    sf, sh = vae.config.scaling_factor, vae.config.shift_factor or 0
    state = {"masking": False, "used": 0}
    prepare, enc = pipe.prepare_mask_latents, vae.encode

    def prepare_mask_latents(*a, **k):
        state["masking"] = True
        try:
            return prepare(*a, **k)
        finally:
            state["masking"] = False

    def encode_masked(x, *a, **k):
        out = enc(x, *a, **k)
        if not state["masking"]:
            return out
        dist = out.latent_dist

        def sample(generator=None):
            eps = vae_module.randn_tensor(dist.mean.shape, generator=generator, dtype=torch.float32)
            pix, e, z = (os.path.join(tmp, f) for f in ("masked.f32", "eps.f32", "z.f32"))
            x.float().numpy().astype("<f4").tofile(pix)
            eps.numpy().astype("<f4").tofile(e)
            helper, vae_dir, ort_lib = encode
            r = subprocess.run([helper, vae_dir, str(x.shape[-1]), str(x.shape[-2]), pix, e, z, ort_lib],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("fill-encode: " + r.stderr.strip())
            state["used"] += 1
            lat = torch.from_numpy(np.fromfile(z, "<f4").reshape(dist.mean.shape)).double()
            state["latents"] = lat  # model space, as rflow uses them
            return (lat / sf + sh).to(dist.mean.dtype)

        dist.sample = sample
        return out

    pipe.prepare_mask_latents, vae.encode = prepare_mask_latents, encode_masked
    try:
        yield state
    finally:
        del pipe.prepare_mask_latents, vae.encode


def fill_encoder_dir(work, model):
    """The vae_encoder folder rflow runs for model: the export's own, or for a diffusers folder the one rflow
    compiled into WORK/cache (the newest compiled folder whose transformer has Fill's 384 input channels)."""
    own = os.path.join(model, "vae_encoder")
    if os.path.exists(os.path.join(own, "model.onnx")):
        return own
    root = os.path.join(work, "cache", "rflow", "compiled")
    found = []
    for e in os.listdir(root) if os.path.isdir(root) else ():
        cfg = os.path.join(root, e, "transformer", "config.json")
        if os.path.exists(cfg) and json.load(open(cfg)).get("in_channels") == 384:
            found.append(os.path.join(root, e, "vae_encoder"))
    if not found:
        raise RuntimeError(f"no compiled Fill folder under {root}")
    return max(found, key=os.path.getmtime)


def latent_distance(a, b):
    """max |Δ| between two compare.py dumps' final latents."""
    return float(np.abs(np.load(a)["final_latents"].astype(np.float64) -
                        np.load(b)["final_latents"].astype(np.float64)).max())


def run_rflow(rflow, args, out):
    r = subprocess.run([rflow, "txt2img", *args, "-p", PROMPT, "--steps", str(STEPS), "-o", out, "--save-latents",
                        "--overwrite"], capture_output=True, text=True)
    if r.returncode != 0:
        return (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1], r.stderr
    return "", r.stderr


def compare(ref, png, label, results, err):
    args = [sys.executable, os.path.join(ORACLE, "compare.py"), "--diffusers", ref, "--rflow-png", png,
            "--rflow-latents", png[:-4] + ".safetensors", "--label", label, "--json", results]
    if err:
        args += ["--rflow-error", err]
    return subprocess.run(args).returncode == 0


def kept_pixels(ref, png):
    """Pixels under black (0) mask where rflow's picture differs from the init image; -1 when n/a."""
    d = np.load(ref)
    if "grey" not in d or not os.path.exists(png):
        return -1
    got = np.asarray(Image.open(png).convert("RGB")).astype(np.int64)
    keep = d["grey"] == 0
    return int((got[keep] != d["orig"][keep]).any(-1).sum())


def load_flux_family(model_dir):
    """A FluxPipeline on a folder whose model_index.json names another FLUX class (load_pipe keys on the name)."""
    tmp = model_dir.rstrip("/") + "-as-flux"
    if not os.path.exists(tmp):
        with_class(model_dir, tmp, "FluxPipeline")
    return load_pipe(tmp, 2)


def main():
    rflow, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    cases = sys.argv[3:] or ["sd3", "flux-dev", "fill", "kontext"]
    d = os.path.join(work, "edit")
    os.makedirs(d, exist_ok=True)
    results = os.path.join(d, "results.jsonl")
    results32 = os.path.join(d, "results-f32.jsonl")  # Fill against the float32 reference (not a check)
    for f in (results, results32):
        open(f, "w").close()
    inits = init_images(d)
    mk = masks(d)
    ok = True
    kept_bad = 0

    def run(pipe, fam, job, model, label):
        nonlocal ok, kept_bad
        ref, png = (os.path.join(d, f"{job['id']}{ext}") for ext in (".npz", ".png"))
        reference(pipe, fam, job, ref)
        args = ["-m", model, "-W", str(job["width"]), "-H", str(job["height"]), "-s", str(job["seed"])]
        args += ["--cfg-scale", str(job["cfg"])] if fam == "sd3" else ["--guidance", str(job["guidance"])]
        if job["task"] in ("inpaint", "fill"):
            args += ["-i", job["init"], "--mask", job["mask"], "--strength", str(job["strength"])]
            if job.get("blur"):
                args += ["--mask-blur", str(job["blur"])]
            if job.get("pad"):
                args += ["--inpaint-full-res", "--inpaint-full-res-padding", str(job["pad"])]
        if job["task"] == "kontext":
            args += ["--ref-image", job["ref"]] + ([] if job["auto"] else ["--ref-resize", "none"])
        err, stderr = run_rflow(rflow, args, png)
        if job["task"] == "fill":  # the check: float64 diffusers fed rflow's masked-image latents (see the doc)
            ref32, ref64 = ref, os.path.join(d, f"{job['id']}-f64.npz")
            ref = os.path.join(d, f"{job['id']}-f64-rflow-masked.npz")
            with float64_pipeline(pipe):
                reference(pipe, fam, job, ref64)
                with rflow_masked_latents(pipe, (fill_encode, fill_encoder_dir(work, model), ort_lib), d) as st:
                    reference(pipe, fam, job, ref)
                assert st["used"] == 1, "the masked image was not encoded through rflow's encoder"
            enc_err, z64 = masked_encode_f32_error(pipe, job)
            line = (f"     {label}: masked-image latents from float64: diffusers float32 {enc_err:.3g}, rflow "
                    f"{float((st['latents'] - z64).abs().max()):.3g}; final latents from float64: diffusers float32 "
                    f"{latent_distance(ref32, ref64):.3g}")
            if os.path.exists(png):
                t, _ = read_numpy(png[:-4] + ".safetensors")
                r = t["latent"].astype(np.float64)
                line += (f", rflow {float(np.abs(r - np.load(ref64)['final_latents'][0]).max()):.3g}; rflow from "
                         f"float64 fed rflow's masked-image latents {float(np.abs(r - np.load(ref)['final_latents'][0]).max()):.3g}")
            print(line, flush=True)
            compare(ref32, png, label + " [information: against diffusers float32]", results32, err)
            compare(ref64, png, label + " [information: against diffusers float64]", results32, err)
            label += " [check: against diffusers float64 fed rflow's masked-image latents]"
        ok &= compare(ref, png, label, results, err)
        k = kept_pixels(ref, png)
        if k > 0:
            kept_bad += 1
            print(f"     {label}: {k} pixels under black mask differ from the init image")
        if "warning" in stderr:
            print("     rflow: " + " | ".join(l.strip() for l in stderr.splitlines() if "warning" in l))

    for kind in [c for c in cases if c in ("sd3", "flux-dev")]:
        model = ensure_model(work, kind)
        pipe, fam = load_pipe(os.path.join(model, "diffusers"), 2)
        if fam == "sd3":
            from diffusers import StableDiffusion3InpaintPipeline as P
        else:
            from diffusers import FluxInpaintPipeline as P
        ip = P.from_pipe(pipe)
        ip.set_progress_bar_config(disable=True)
        base = dict(task="inpaint", width=256, height=256, cfg=4.5, guidance=3.5)
        jobs = [dict(base, id=f"{kind}-inpaint-s0.6", init=inits["square"], mask=mk["square"], strength=0.6, seed=11),
                dict(base, id=f"{kind}-inpaint-s1.0", init=inits["square"], mask=mk["square"], strength=1.0, seed=12),
                dict(base, id=f"{kind}-inpaint-wide-s0.6", init=inits["wide"], mask=mk["wide"], strength=0.6, seed=13),
                dict(base, id=f"{kind}-inpaint-mask128-s0.6", init=inits["square"], mask=mk["small"], strength=0.6,
                     seed=14),
                dict(base, id=f"{kind}-inpaint-blur4-s0.75", init=inits["square"], mask=mk["square"], strength=0.75,
                     seed=15, blur=4),
                dict(base, id=f"{kind}-inpaint-fullres-pad16-s0.8", init=inits["wide"], mask=mk["blob"], strength=0.8,
                     seed=16, pad=16, width=128, height=128)]
        for job in jobs:
            run(ip, fam, job, os.path.join(model, "onnx"), f"{kind} {job['id'][len(kind) + 1:]}")
        del ip, pipe

    if "fill" in cases or "kontext" in cases:
        flux = ensure_model(work, "flux-dev")
    if "fill" in cases:
        from diffusers import FluxFillPipeline, FluxTransformer2DModel
        fill_encode = os.path.join(d, "fill-encode")
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run(["go", "build", "-o", fill_encode, "scripts/fill_encode.go"], cwd=here, check=True)
        ort_lib = os.path.join(os.path.dirname(os.path.dirname(rflow)), ".ort", "libonnxruntime.so.1")
        ort_lib = ort_lib if os.path.exists(ort_lib) else ""  # else the helper searches as rflow does
        m = ensure_fill(work, flux)
        pipe, fam = load_flux_family(os.path.join(m, "diffusers"))
        fp = FluxFillPipeline.from_pipe(pipe)
        fp.set_progress_bar_config(disable=True)
        job = dict(task="fill", width=256, height=256, guidance=30.0, init=inits["square"], mask=mk["square"],
                   strength=1.0, seed=21)
        run(fp, fam, dict(job, id="fill-s1.0-onnx"), os.path.join(m, "onnx"), "flux-fill s1.0 (ONNX export)")
        run(fp, fam, dict(job, id="fill-s1.0-compiled"), os.path.join(m, "diffusers"),
            "flux-fill s1.0 (diffusers folder, compiled)")
        run(fp, fam, dict(job, id="fill-wide-s0.8-onnx", init=inits["wide"], mask=mk["wide"], strength=0.8, seed=22),
            os.path.join(m, "onnx"), "flux-fill wide s0.8 (ONNX export)")
        del fp, pipe
    if "kontext" in cases:
        from diffusers import FluxKontextPipeline
        m = ensure_kontext(work, flux)
        pipe, fam = load_pipe(os.path.join(flux, "diffusers"), 2)
        kp = FluxKontextPipeline.from_pipe(pipe)
        kp.set_progress_bar_config(disable=True)
        job = dict(task="kontext", width=256, height=256, guidance=2.5, ref=inits["wide"], seed=31, auto=False)
        run(kp, fam, dict(job, id="kontext-ref320x224-onnx"), os.path.join(m, "onnx"),
            "flux-kontext ref 320x224 kept (ONNX export)")
        run(kp, fam, dict(job, id="kontext-ref320x224-compiled"), os.path.join(m, "diffusers"),
            "flux-kontext ref 320x224 kept (diffusers folder, compiled)")
        run(kp, fam, dict(job, id="kontext-ref-auto-onnx", auto=True, seed=32), os.path.join(m, "onnx"),
            "flux-kontext ref snapped to 1248x832 (ONNX export)")
        del kp, pipe
    n = sum(1 for _ in open(results))
    bad = sum(1 for line in open(results) if not json.loads(line)["ok"])
    print(f"== edit parity (inpaint, Fill, Kontext): {n} runs, {bad} out of tolerance, "
          f"{kept_bad} with changed pixels under black mask (details: {results}; Fill against the float32 "
          f"reference: {results32})")
    sys.exit(0 if ok and not kept_bad else 1)


if __name__ == "__main__":
    main()
