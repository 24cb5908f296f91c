#!/usr/bin/env python3
"""Writes the golden files of vae's PIL-resampling and resize-mode tests (run from anywhere):

    . ../shared/oracle/env.sh && $PY vae/testdata/pilresize/gen.py

Sources: noise.png (61×47 RGB noise from a fixed LCG: the hardest case for rounding) and smooth.png (a
40×90 gradient with a sharp edge). For each case "NAME_WxH[_box]" the file is what Pillow's
Image.resize((W, H), LANCZOS[, box]) gives (Pillow's version is recorded in VERSION). The mode_* files are
what diffusers 0.38's VaeImageProcessor.resize(image, H, W, resize_mode) gives ("default", "crop", "fill";
the oracle's env.sh puts it on the path; without it they are left as they are).
"""
import json, os, sys
import PIL
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))


def lcg_noise(w, h, seed=12345):
    state, out = seed, bytearray()
    for _ in range(w * h * 3):
        state = (state * 1103515245 + 12345) % (1 << 31)
        out.append((state >> 16) & 255)
    return Image.frombytes("RGB", (w, h), bytes(out))


def smooth(w, h):
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            edge = 255 if x > w // 3 else 0
            px[x, y] = ((x * 255) // (w - 1), (y * 255) // (h - 1), edge)
    return im


src = {"noise": lcg_noise(61, 47), "smooth": smooth(40, 90)}
for name, im in src.items():
    im.save(os.path.join(here, name + ".png"))

cases = {  # name: (source, (w, h), box or None)
    "noise_128x96": ("noise", (128, 96), None),      # up ~2×
    "noise_23x17": ("noise", (23, 17), None),        # down ~2.7×
    "noise_40x71": ("noise", (40, 71), None),        # down in x, up in y, odd ratios
    "noise_61x30": ("noise", (61, 30), None),        # vertical pass only
    "noise_30x47": ("noise", (30, 47), None),        # horizontal pass only
    "noise_7x5": ("noise", (7, 5), None),            # down ~9× (wide support)
    "noise_61x9_box": ("noise", (61, 9), (0, 0, 61, 0)),     # diffusers' fill: a zero-height box at the top
    "noise_61x9_boxend": ("noise", (61, 9), (0, 47, 61, 47)),  # and at the bottom
    "noise_13x47_box": ("noise", (13, 47), (61, 0, 61, 47)),  # a zero-width box at the right edge
    "noise_50x40_crop": ("noise", (50, 40), (3.5, 2.25, 57, 44.75)),  # a fractional box
    "smooth_64x64": ("smooth", (64, 64), None),
    "smooth_20x45": ("smooth", (20, 45), None),       # exactly 2× down
    "noise_122x94": ("noise", (122, 94), None),      # exactly 2× up
    "smooth_17x200": ("smooth", (17, 200), None),
}
for name, (s, size, box) in cases.items():
    out = src[s].resize(size, Image.LANCZOS, box=box)
    out.save(os.path.join(here, name + ".png"))
with open(os.path.join(here, "cases.json"), "w") as f:
    json.dump({n: {"source": s, "size": list(sz), "box": list(b) if b else None} for n, (s, sz, b) in cases.items()},
              f, indent=1, sort_keys=True)

modes = {  # name: (source, (w, h), diffusers resize_mode)
    "mode_noise_default_32x32": ("noise", (32, 32), "default"),
    "mode_noise_crop_32x32": ("noise", (32, 32), "crop"),
    "mode_noise_fill_32x32": ("noise", (32, 32), "fill"),
    "mode_smooth_crop_48x32": ("smooth", (48, 32), "crop"),
    "mode_smooth_fill_48x32": ("smooth", (48, 32), "fill"),
    "mode_smooth_fill_32x48": ("smooth", (32, 48), "fill"),
    "mode_noise_fill_24x64": ("noise", (24, 64), "fill"),
    "mode_noise_crop_24x64": ("noise", (24, 64), "crop"),
}
try:
    sys.path.insert(0, os.environ.get("ORACLE_DIR", ""))
    import torchshim  # noqa: F401
    from diffusers.image_processor import VaeImageProcessor
    proc = VaeImageProcessor(vae_scale_factor=8)
    for name, (s, (w, h), mode) in modes.items():
        proc.resize(src[s], h, w, resize_mode=mode).save(os.path.join(here, name + ".png"))
    with open(os.path.join(here, "modes.json"), "w") as f:
        json.dump({n: {"source": s, "size": list(sz), "mode": m} for n, (s, sz, m) in modes.items()}, f, indent=1,
                  sort_keys=True)
    print("diffusers resize modes written")
except ImportError as e:
    print("diffusers not importable (%s): mode_* files left as they are" % e)
with open(os.path.join(here, "VERSION"), "w") as f:
    f.write("Pillow %s\n" % PIL.__version__)
