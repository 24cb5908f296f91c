"""Golden files for FluxTransformer2DModel (flux.go): the real diffusers model at a tiny size, FLUX.1-dev
(guidance embedding) and FLUX.1-schnell (none), fed as FluxPipeline feeds it: timestep = t/1000 and the raw
guidance scale (the model multiplies both by 1000), img_ids from _prepare_latent_image_ids, zero txt_ids,
text length != image length, batch 2."""
import json

import torch
from golden import save, bf16_round_  # first: imports torchshim before diffusers
from diffusers import FluxPipeline, FluxTransformer2DModel

BATCH, GRID_H, GRID_W, TEXT = 2, 3, 5, 7


def make(name, guidance, seed):
    torch.manual_seed(seed)
    config = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=16,
                  num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=16,
                  guidance_embeds=guidance, axes_dims_rope=(4, 6, 6))
    m = FluxTransformer2DModel(**config).eval()
    with torch.no_grad():  # norm scales away from 1, so a swapped or missing q/k norm shows
        for k, p in m.named_parameters():
            if ".norm_" in k:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    bf16_round_(m)
    tokens = GRID_H * GRID_W
    img_ids = FluxPipeline._prepare_latent_image_ids(BATCH, GRID_H, GRID_W, "cpu", torch.float32)
    txt_ids = torch.zeros(TEXT, 3)
    inputs = {
        "hidden_states": torch.randn(BATCH, tokens, config["in_channels"]),
        "encoder_hidden_states": torch.randn(BATCH, TEXT, config["joint_attention_dim"]),
        "pooled_projections": torch.randn(BATCH, config["pooled_projection_dim"]),
        "timestep": torch.tensor([1000.0, 437.5]) / 1000,
    }
    if guidance:
        inputs["guidance"] = torch.tensor([3.5, 7.0])
    with torch.no_grad():
        out = m(**inputs, img_ids=img_ids, txt_ids=txt_ids, return_dict=False)[0]
    inputs["img_ids"], inputs["txt_ids"] = img_ids.to(torch.int64), txt_ids.to(torch.int64)
    config_json = json.dumps({k: v for k, v in m.config.items() if not k.startswith("_")})  # as config.json has it
    save(name, m, inputs, {"out_hidden_states": out}, meta={"config": config_json})


make("flux_dev", True, 1)
make("flux_schnell", False, 2)
