#!/usr/bin/env bash
# make parity: rflow against the real diffusers pipelines (../shared/oracle) on tiny random-weight SD3 and
# FLUX models, from all three forms of the same weights (ONNX export, diffusers checkpoint folder, single
# files), then checks that the three forms give bit-identical images from rflow.
#
# usage: scripts/parity.sh [--quick] [KIND ...]      KIND: sd3 sd3-no-t5 flux-dev flux-schnell
#   PARITY_WORK   work folder (default .parity/ in the checkout; models and references are reused)
#   PARITY_SOURCES sources to run (default "onnx diffusers single-file")
#   PARITY_IMG2IMG 0 skips the img2img and VAE-tiling runs (scripts/parity-img2img.sh)
#   PARITY_EDIT   0 skips the inpainting, FLUX Fill and Kontext runs (scripts/parity-edit.sh)
#   PARITY_LORA   0 skips the LoRA runs (scripts/parity_lora.sh)
# Needs Debian's python3-torch and friends (the oracle's README lists them); installs them with apt-get
# when run as root and they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ORACLE=${RFLOW_ORACLE:-$(cd .. && pwd)/shared/oracle}
[ -f "$ORACLE/compare.sh" ] || { echo "parity: no oracle at $ORACLE (../shared/oracle)" >&2; exit 2; }
QUICK=() KINDS=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=(--quick) ;;
    sd3|sd3-no-t5|flux-dev|flux-schnell) KINDS+=("$a") ;;
    *) echo "usage: $0 [--quick] [sd3|sd3-no-t5|flux-dev|flux-schnell ...]" >&2; exit 2 ;;
  esac
done
[ ${#KINDS[@]} -gt 0 ] || KINDS=(sd3 sd3-no-t5 flux-dev flux-schnell)
PKGS="python3-torch python3-numpy python3-pil python3-regex python3-sentencepiece python3-packaging \
python3-filelock python3-requests python3-tqdm python3-yaml python3-onnx python3-httpx bc"
if ! /usr/bin/python3 -c 'import torch, numpy, PIL, onnx' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "parity: installing the oracle's Debian packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PKGS >/dev/null
  else
    echo "parity: torch is missing; run: sudo apt-get install -y $PKGS" >&2; exit 2
  fi
fi
WORK=${PARITY_WORK:-$PWD/.parity}
mkdir -p "$WORK"
export XDG_CACHE_HOME="$WORK/cache" # compiled models of the oracle's checkpoints stay in the work folder
status=0
# compare.sh truncates results.jsonl per call; each call's results are kept as results-<source>-<kind>.jsonl.
run_compare() { # SOURCE KIND [env assignments via the caller]
  bash "$ORACLE/compare.sh" bin/rflow "$WORK" --source "$1" "${QUICK[@]}" "$2" > "$WORK/parity-$1-$2.log" 2>&1
  local rc=$?
  grep -E '^(ok|FAIL|==.*runs compared)' "$WORK/parity-$1-$2.log" | cut -c1-300
  cp "$WORK/results.jsonl" "$WORK/results-$1-$2.jsonl" 2>/dev/null || true
  return $rc
}
for src in ${PARITY_SOURCES:-onnx diffusers single-file}; do
  for kind in "${KINDS[@]}"; do
    if [ "$src" = single-file ]; then
      # The tiny models' head counts, rope axes and VAE norm groups differ from the released models', and
      # shapes cannot tell them: their diffusers configs stand in, as diffusers' from_single_file(config=…).
      RFLOW_MODEL_CONFIG="$WORK/models/$kind/diffusers" run_compare "$src" "$kind" || status=1
    else
      run_compare "$src" "$kind" || status=1
    fi
  done
done
cat "$WORK"/results-*-*.jsonl > "$WORK/results-all.jsonl" 2>/dev/null || true
echo "== parity: $(wc -l < "$WORK/results-all.jsonl") runs, $(grep -c '"ok": false' "$WORK/results-all.jsonl") mismatches (details: $WORK/results-all.jsonl)"
# Skip-layer guidance (SD3.5) on a compiled checkpoint against diffusers' skip_guidance_layers.
if [[ " ${KINDS[*]} " == *" sd3 "* ]]; then
  ( . "$ORACLE/env.sh" && PYTHONPATH="$ORACLE_DIR:$PYTHONPATH" "$PY" scripts/parity_slg.py bin/rflow "$WORK/models/sd3" "$WORK/slg" ) || status=1
fi
# Compiled from the diffusers folder and from the single files, the same weights must give bit-identical images
# (the same graphs, fed the same numbers). The ONNX export is torch.onnx's graph, not rflow's: against it the
# difference is reported (it is within the tolerance above), not required to be zero.
for kind in "${KINDS[@]}"; do
  ref="$WORK/runs/$kind-diffusers/rflow"
  for src in single-file onnx; do
    dir="$WORK/runs/$kind-$src/rflow"
    [ -d "$ref" ] && [ -d "$dir" ] || continue
    # pixels and saved latents, not file bytes: the PNG text names the model, which differs by source
    /usr/bin/python3 - "$ref" "$dir" "$kind" "$src" <<'PYEOF' || status=1
import json, os, struct, sys
import numpy as np
from PIL import Image
ref, other, kind, src = sys.argv[1:5]


def tensors(path):
    """The tensors of a safetensors file (name → float32 array), ignoring its metadata."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], np.float32)
            for k, v in head.items() if k != "__metadata__"}


n = same = 0
u8 = lat = 0.0
for f in sorted(os.listdir(ref)):
    if not f.endswith(".png") or not os.path.exists(os.path.join(other, f)):
        continue
    n += 1
    a = np.asarray(Image.open(os.path.join(ref, f))).astype(int)
    b = np.asarray(Image.open(os.path.join(other, f))).astype(int)
    ta, tb = (tensors(os.path.join(d, f[:-4] + ".safetensors")) for d in (ref, other))
    dl = max(float(np.abs(ta[k] - tb[k]).max()) for k in ta)
    u8, lat = max(u8, float(np.abs(a - b).max())), max(lat, dl)
    same += int(np.array_equal(a, b) and dl == 0)
if src == "single-file":
    print(f"== {kind}: single files vs diffusers folder (both compiled): {same}/{n} bit-identical (pixels and latents)")
    sys.exit(0 if n and same == n else 1)
print(f"== {kind}: ONNX export vs compiled diffusers folder: {same}/{n} bit-identical, u8 max |Δ| {u8:g}, latents max |Δ| {lat:.3g}")
PYEOF
  done
done
# img2img (strengths 0.3/0.6/1.0, square and non-square init images) and tiled VAE decoding against diffusers'
# img2img pipelines and enable_tiling (scripts/parity-img2img.sh); PARITY_IMG2IMG=0 skips it (~4 min per kind).
if [ "${PARITY_IMG2IMG:-1}" != 0 ]; then
  I2I=()
  for kind in "${KINDS[@]}"; do
    case "$kind" in sd3|flux-dev) I2I+=("$kind") ;; esac
  done
  if [ ${#I2I[@]} -gt 0 ]; then
    PARITY_WORK="$WORK" scripts/parity-img2img.sh "${I2I[@]}" || status=1
  fi
fi
# Inpainting (SD3, FLUX), FLUX Fill and FLUX Kontext against diffusers' edit pipelines (scripts/parity-edit.sh; Fill
# and Kontext are made from the tiny FLUX-dev model, and run when flux-dev is among the kinds); PARITY_EDIT=0 skips it.
if [ "${PARITY_EDIT:-1}" != 0 ]; then
  EDIT=()
  for kind in "${KINDS[@]}"; do
    case "$kind" in sd3) EDIT+=(sd3) ;; flux-dev) EDIT+=(flux-dev fill kontext) ;; esac
  done
  if [ ${#EDIT[@]} -gt 0 ]; then
    PARITY_WORK="$WORK" scripts/parity-edit.sh "${EDIT[@]}" || status=1
  fi
fi
# LoRAs (scripts/parity_lora.sh): kohya, diffusers and BFL files from the oracle's lora.py at weight 0.8 against
# diffusers on the torch-merged checkpoint, and kohya = BFL bit for bit; PARITY_LORA=0 skips it.
if [ "${PARITY_LORA:-1}" != 0 ]; then
  LK=()
  for kind in "${KINDS[@]}"; do
    case "$kind" in sd3|flux-dev) LK+=("$kind") ;; esac
  done
  if [ ${#LK[@]} -gt 0 ]; then
    PARITY_WORK="$WORK" scripts/parity_lora.sh "${QUICK[@]}" "${LK[@]}" || status=1
  fi
fi
exit $status
