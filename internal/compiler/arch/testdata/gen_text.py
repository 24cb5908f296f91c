"""Golden files for the text encoders (clip.go, t5.go) from the real transformers classes:
CLIPTextModel, CLIPTextModelWithProjection and T5EncoderModel at tiny sizes, run on padded prompts
(BOS … EOS pad…) with output_hidden_states, plus T5's relative position buckets over a range of distances.
"""
import json

import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel
from transformers.models.t5.modeling_t5 import T5Attention
from golden import save, bf16_round_

VOCAB = 1000


def prompts(lengths, seq, bos, eos, pad, words):
    """One row per prompt: bos, n word ids from words(row, k), eos, then pad up to seq."""
    rows = []
    for r, n in enumerate(lengths):
        row = [bos] + [words(r, k) for k in range(n)] + [eos]
        rows.append((row + [pad] * seq)[:seq])
    return torch.tensor(rows, dtype=torch.int64)


def clip_case(name, cls, ids, **cfg):
    torch.manual_seed(len(name))
    sizes = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=20, projection_dim=24)
    config = CLIPTextConfig(**{**sizes, **cfg}, attn_implementation="eager")
    config.architectures = [cls.__name__]
    m = cls(config).eval()
    bf16_round_(m)
    with torch.no_grad():
        o = m(input_ids=ids, output_hidden_states=True)
    outs = {"last_hidden_state": o.last_hidden_state}
    if cls is CLIPTextModelWithProjection:
        outs["text_embeds"] = o.text_embeds
    else:
        outs["pooler_output"] = o.pooler_output
    for i, h in enumerate(o.hidden_states):
        outs[f"hidden_states.{i}"] = h
    save(name, m, {"input_ids": ids}, outs, meta={"config": json.dumps(config.to_dict())})


words = lambda r, k: 3 + (97 * k + 31 * r) % 990  # ids in [3, 993): below BOS/EOS

# CLIP-L style: quick_gelu, legacy eos_token_id 2 (pool at argmax(ids)), padded with EOS; BOS 998, EOS 999 are
# the largest ids as in the real vocabulary.
clip_case("clip_quick_eos2", CLIPTextModel, prompts([3, 7], 16, 998, 999, 999, words),
          hidden_act="quick_gelu", eos_token_id=2, bos_token_id=0, pad_token_id=1)
# CLIP-G style: exact gelu, with projection, padded with 0 ("!"), three layers, sequence = max positions.
clip_case("clip_gelu_proj", CLIPTextModelWithProjection, prompts([2, 9, 18], 20, 998, 999, 0, words),
          hidden_act="gelu", eos_token_id=2, bos_token_id=0, pad_token_id=1, num_hidden_layers=3)
# eos_token_id ≠ 2 pools at the first EOS: EOS 997 (as 49407 in the real vocabulary, with vocab 1000), and a
# prompt that holds an id above it (an added token), so argmax(ids) would pick another position.
above = lambda r, k: 998 if (r, k) == (1, 2) else words(r, k)
clip_case("clip_eos_first", CLIPTextModelWithProjection, prompts([4, 6], 12, 996, 997, 997, above),
          hidden_act="quick_gelu", eos_token_id=997, bos_token_id=996, pad_token_id=997)


def t5_case(name, seq, lengths, **cfg):
    torch.manual_seed(len(name) + 100)
    config = T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, num_heads=4, num_layers=2, d_ff=48, **cfg)
    config.architectures = ["T5EncoderModel"]
    m = T5EncoderModel(config).eval()
    bf16_round_(m)
    # T5 prompts: words, EOS 1, then pad 0 (no BOS)
    rows = []
    for r, n in enumerate(lengths):
        row = [2 + (37 * k + 11 * r) % 990 for k in range(n)] + [1]
        rows.append((row + [0] * seq)[:seq])
    ids = torch.tensor(rows, dtype=torch.int64)
    with torch.no_grad():
        o = m(input_ids=ids)
    save(name, m, {"input_ids": ids}, {"last_hidden_state": o.last_hidden_state},
         meta={"config": json.dumps(config.to_dict())})


# T5 v1.1 (SD3's and FLUX's text encoder): gated-gelu = gelu_new gated FFN; 140 positions reach every bucket,
# the logarithmic ones and the clamp at max_distance 128.
t5_case("t5_gated", 140, [5, 150], feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
        relative_attention_max_distance=128)
# Original T5: relu, not gated; other bucket settings.
t5_case("t5_relu", 40, [3, 30], feed_forward_proj="relu", relative_attention_num_buckets=16,
        relative_attention_max_distance=20, layer_norm_epsilon=1e-5)

# _relative_position_bucket itself, for relative positions −600…600 (bidirectional, as the encoder).
rel = torch.arange(-600, 601, dtype=torch.int64)
buckets = {f"buckets_{nb}_{md}": T5Attention._relative_position_bucket(rel, True, nb, md).to(torch.float32)
           for nb, md in [(32, 128), (16, 20), (48, 200)]}
save("t5_buckets", torch.nn.Module(), {"rel": rel}, buckets)
