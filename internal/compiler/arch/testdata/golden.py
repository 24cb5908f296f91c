"""Shared helper for the arch package's golden files: run a real diffusers/transformers module and save
its weights, inputs and outputs in one safetensors file the Go tests read.

Run with the oracle environment:  . /work/shared/oracle/env.sh; PYTHONPATH=$ORACLE_DIR:$PYTHONPATH $PY gen_X.py
Keys: "w:<state-dict name>" (float32), "in:<input name>" (float32 or int64), "out:<output name>" (float32).
"""
import os
import sys

import torchshim  # noqa: F401  (must precede diffusers/transformers: adds the APIs torch 1.13 lacks)
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def bf16_round_(module):
    """Round every parameter to bf16 and back, as the oracle's models are (checkpoint-like values)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))


def save(name, module, inputs, outputs, meta=None):
    t = {}
    for k, v in module.state_dict().items():
        t["w:" + k] = v.detach().to(torch.float32).contiguous()
    for k, v in inputs.items():
        v = v.detach()
        t["in:" + k] = (v.to(torch.int64) if not v.is_floating_point() else v.to(torch.float32)).contiguous()
    for k, v in outputs.items():
        t["out:" + k] = v.detach().to(torch.float32).contiguous()
    path = os.path.join(HERE, name + ".safetensors")
    save_file(t, path, metadata={k: str(v) for k, v in (meta or {}).items()})
    size = os.path.getsize(path)
    print(f"wrote {path} ({size/1e3:.1f} kB, {len(t)} tensors)", file=sys.stderr)
    if size > 1_500_000:
        raise SystemExit(f"{path} is {size} bytes: keep golden files small")
