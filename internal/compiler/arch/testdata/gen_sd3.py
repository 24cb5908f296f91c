"""Golden files for SD3Transformer2DModel (sd3.go), from the real diffusers model at tiny sizes.

sd3_medium:   SD3-medium style (no qk norm, no dual attention), batch 2, square 8x8 latent, out_channels != in.
sd35_large:   SD3.5-large style (qk_norm rms_norm), batch 1, non-square 6x10 latent (asymmetric pos-embed crop).
sd35_medium:  SD3.5-medium MMDiT-X style (dual_attention_layers [0], qk norm), batch 2, non-square 10x4 latent,
              plus two skip-layer runs (skip_layers [1] and [0, 2]) on the same inputs.

Each file holds the model config as metadata ("config", JSON), the inputs with the Optimum names
(hidden_states, encoder_hidden_states, pooled_projections, timestep, skip_layers = [-1] for "none") and
out:out_hidden_states; sd35_medium also in:skip_layers_a/b and out:out_hidden_states_skip_a/b.
"""
import json

import torch
from golden import save, bf16_round_

from diffusers import SD3Transformer2DModel


def build(config, seed):
    torch.manual_seed(seed)
    m = SD3Transformer2DModel(**config).eval()
    # RMSNorm scales start at one: give them values so a missing or misplaced scale shows.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ".norm_" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
    bf16_round_(m)
    return m


def inputs(config, batch, height, width, seq):
    return {
        "hidden_states": torch.randn(batch, config["in_channels"], height, width),
        "encoder_hidden_states": torch.randn(batch, seq, config["joint_attention_dim"]),
        "pooled_projections": torch.randn(batch, config["pooled_projection_dim"]),
        "timestep": torch.rand(batch) * 1000,
    }


def run(m, ins, skip=None):
    with torch.no_grad():
        return m(hidden_states=ins["hidden_states"], encoder_hidden_states=ins["encoder_hidden_states"],
                 pooled_projections=ins["pooled_projections"], timestep=ins["timestep"], skip_layers=skip,
                 return_dict=False)[0]


def base(**kw):
    c = dict(sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=16,
             num_attention_heads=2, joint_attention_dim=24, caption_projection_dim=32, pooled_projection_dim=20,
             pos_embed_max_size=12, dual_attention_layers=(), qk_norm=None)
    c.update(kw)
    return c


def meta(config):
    c = dict(config)
    c["dual_attention_layers"] = list(c["dual_attention_layers"])
    return {"config": json.dumps(c)}


NONE = torch.tensor([-1])

# SD3-medium: plain joint blocks, the last one context_pre_only.
c = base(out_channels=6)
m = build(c, 0)
ins = inputs(c, 2, 8, 8, 5)
save("sd3_medium", m, {**ins, "skip_layers": NONE}, {"out_hidden_states": run(m, ins)}, meta(c))

# SD3.5-large: RMSNorm on q/k of both streams.
c = base(num_layers=3, qk_norm="rms_norm")
m = build(c, 1)
ins = inputs(c, 1, 6, 10, 7)
save("sd35_large", m, {**ins, "skip_layers": NONE}, {"out_hidden_states": run(m, ins)}, meta(c))

# SD3.5-medium: block 0 has the second (image-only) attention; skip-layer runs on the same weights.
c = base(num_layers=3, qk_norm="rms_norm", dual_attention_layers=(0,), pos_embed_max_size=10)
m = build(c, 2)
ins = inputs(c, 2, 10, 4, 6)
skip_a, skip_b = torch.tensor([1]), torch.tensor([0, 2])
save("sd35_medium", m, {**ins, "skip_layers": NONE, "skip_layers_a": skip_a, "skip_layers_b": skip_b},
     {"out_hidden_states": run(m, ins),
      "out_hidden_states_skip_a": run(m, ins, skip_a.tolist()),
      "out_hidden_states_skip_b": run(m, ins, skip_b.tolist())}, meta(c))
