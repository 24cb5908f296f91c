#!/usr/bin/env python3
"""Generates golden.json for the imagefile tests: expected A1111 infotexts, quote() outputs and
Python float reprs, computed by Python itself.

Run from this directory with python3 (3.8+, standard library only):  python3 gen_golden.py

create_infotext and quote below follow AUTOMATIC1111 modules/processing.py and
modules/infotext_utils.py (v1.10) with Forge's placement of "Distilled CFG Scale" right after
"CFG scale". Numbers are passed the way the Gradio UI passes them: a float slider value that is
integral arrives as a Python int (so CFG 7.0 prints "7"), other floats stay floats.
"""
import json


def quote(text):
    if ',' not in str(text) and '\n' not in str(text) and ':' not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def ui(v):
    """A slider value as Gradio hands it over."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def create_infotext(c):
    clip_skip = c.get("clip_skip", 0)
    params = {
        "Steps": c["steps"],
        "Sampler": c.get("sampler") or None,
        "Schedule type": c.get("scheduler") or None,
        "CFG scale": ui(c["cfg_scale"]),
    }
    if c.get("distilled_cfg_scale"):
        params["Distilled CFG Scale"] = ui(c["distilled_cfg_scale"])
    params.update({
        "Seed": c["seed"],
        "Size": f"{c['width']}x{c['height']}",
        "Model": c.get("model") or None,
        "Denoising strength": ui(c["denoising_strength"]) if c.get("denoising_strength") else None,
        "Clip skip": None if clip_skip <= 1 else clip_skip,
        "RNG": c.get("rng") or None,
        **{k: v for k, v in c.get("extra", [])},
        "Version": c.get("version") or None,
    })
    text = ", ".join([k if k == v else f'{k}: {quote(v)}' for k, v in params.items() if v is not None])
    neg = c.get("negative_prompt", "")
    neg_text = f"\nNegative prompt: {neg}" if neg else ""
    return f"{c.get('prompt', '')}{neg_text}\n{text}".strip()


INFOTEXT_CASES = [
    dict(name="sd3", prompt="a photo of a cat holding a sign that says hello world",
         negative_prompt="blurry, low quality", steps=28, sampler="Euler", scheduler="Simple",
         cfg_scale=7.0, seed=42, width=1024, height=1024, model="sd3.5_medium",
         extra=[["Shift", "3"]], version="rflow 0.1.0"),
    dict(name="flux", prompt="portrait of a woman in a yellow raincoat, city street at night",
         steps=20, sampler="Euler", scheduler="Simple", cfg_scale=1.0, distilled_cfg_scale=3.5,
         seed=1234567890123, width=896, height=1152, model="flux1-dev", rng="CPU",
         version="rflow 0.1.0"),
    dict(name="quoting", prompt='prompt: with "colons", commas\nand a second line',
         negative_prompt="neg: é, 日本", steps=4, sampler="DPM++ 2M", scheduler="Karras",
         cfg_scale=4.5, seed=0, width=512, height=768, model="models/sd3:medium, v2",
         extra=[["Note", 'say "hi", then\\leave'], ["Lines", "one\ntwo\r\tthree"],
                ["Ctl", "a\x01b\x1f,c\x7f\x08\x0c"], ["Uni", "é,日本,😀,\u2028"],
                ["Plain", "no-quotes needed"], ["Quote only", 'x"y']],
         version="rflow 0.1.0"),
    dict(name="img2img", prompt="castle", steps=30, sampler="Euler a", scheduler="Normal",
         cfg_scale=5.5, seed=18446744073709551615, width=64, height=64,
         denoising_strength=0.75, clip_skip=2, rng="NV", extra=[["Tiling", "Tiling"]]),
    dict(name="clip skip 1 and denoise 1", prompt="x", steps=1, cfg_scale=0.1, seed=7,
         width=8, height=16, denoising_strength=1.0, clip_skip=1),
    dict(name="empty prompt", prompt="", negative_prompt="ugly", steps=8, cfg_scale=0.0,
         seed=1, width=256, height=256),
    dict(name="nothing but numbers", prompt="", steps=0, cfg_scale=12.25, seed=3, width=1,
         height=1),
    dict(name="strip", prompt="  \x1c padded prompt \t", negative_prompt="", steps=2,
         cfg_scale=3.0, seed=5, width=32, height=32, version="rflow 0.1.0 \u3000"),
]

QUOTE_CASES = [
    "plain", "with space", "a,b", "a:b", "a\nb", 'q"uote', "back\\slash", "tab\there",
    'a,"b"', "a,\\", "\x00,\x01\x02\x1b\x1f", "\b\f\r\n\t,", "DEL\x7f,", "é", "é,日本",
    "日本:語", "😀,🐱", "\u2028\u2029,", "<>&,'", "\u0085,\u00a0", "",
]

FLOATS = [0.0, 1.0, 7.0, 3.5, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1e-05, 0.0001, 0.00012345,
          1.5e16, 1e16, 9999999999999998.0, 123456789012345.0, 1e22, 1e-300, 5e-324,
          1.7976931348623157e308, -2.5, -1e-07, 100.0, 0.75, 4.5, 12.25]

golden = {
    "infotext": [dict(case, expected=create_infotext(case)) for case in INFOTEXT_CASES],
    "quote": [[s, quote(s)] for s in QUOTE_CASES],
    "repr": [[f, repr(f)] for f in FLOATS],
}
with open("golden.json", "w", encoding="utf-8") as f:
    json.dump(golden, f, indent=1)
    f.write("\n")
