"""Golden files for the AutoencoderKL encoder and decoder (vae.go), from the real diffusers class.

Each file holds one tiny AutoencoderKL's weights (encoder.*, decoder.*, quant convs when used), an image
"sample" with the encoder's output "latent_parameters" (the diagonal Gaussian's mean and log-variance
along the channels, as Optimum's vae_encoder exports it) and a latent "latent_sample" with the
decoder's output "sample" (vae.decode: post_quant_conv then the Decoder). The config is in the metadata.
"""
import json

from golden import save, bf16_round_  # first: golden imports torchshim, which diffusers needs
import torch
from diffusers import AutoencoderKL

CASES = {
    # SD3/FLUX style: 16 latent channels, no quant convs; a non-square image
    "vae_sd3": (dict(block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4, latent_channels=16,
                     use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True),
                (2, 3, 16, 24), (2, 16, 8, 12)),
    # SD 1.x/2.x/XL style: 4 latent channels, quant_conv and post_quant_conv; a square image, and a
    # 2×3 latent: fewer positions than vae.go's attention has query blocks
    "vae_sd": (dict(block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4, latent_channels=4,
                    use_quant_conv=True, use_post_quant_conv=True),
               (1, 3, 16, 16), (1, 4, 2, 3)),
    # three levels, two ResNets per block, a level that keeps its width, no mid-block attention
    "vae_noattn": (dict(block_out_channels=[8, 16, 16], layers_per_block=2, norm_num_groups=8, latent_channels=4,
                        use_quant_conv=False, use_post_quant_conv=True, mid_block_add_attention=False),
                   (1, 3, 24, 16), (1, 4, 6, 4)),
}

for name, (cfg, img_shape, lat_shape) in CASES.items():
    torch.manual_seed(0)
    n = len(cfg["block_out_channels"])
    full = dict(in_channels=3, out_channels=3, act_fn="silu", down_block_types=["DownEncoderBlock2D"] * n,
                up_block_types=["UpDecoderBlock2D"] * n, **cfg)
    vae = AutoencoderKL(**full).eval()
    bf16_round_(vae)
    sample = torch.randn(*img_shape)
    latent = torch.randn(*lat_shape)
    with torch.no_grad():
        params = vae.encode(sample).latent_dist.parameters
        decoded = vae.decode(latent).sample
    save(name, vae, {"sample": sample, "latent_sample": latent},
         {"latent_parameters": params, "sample": decoded}, meta={"config": json.dumps(full)})
