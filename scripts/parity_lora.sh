#!/usr/bin/env bash
# LoRA parity (called by scripts/parity.sh, i.e. make parity): ../shared/oracle/lora.py writes a random rank-4
# LoRA for each tiny model in kohya, diffusers/PEFT and (FLUX) BFL key formats, and the merged diffusers checkpoint
# (torch, fp32) that is the reference for "model + LoRA at 0.8". rflow runs -m MODELS/KIND/diffusers --lora FILE:0.8
# and must match diffusers on the merged checkpoint within txt2img parity's tolerance (uint8 max |Δ| ≤ 2, final
# latents ≤ 1e-4). Then: the kohya and BFL files hold the same numbers (BFL folds α/r = 2 into lora_B, exactly),
# so rflow's images from the two must be bit-identical.
#
# usage: scripts/parity_lora.sh [--quick] [KIND ...]      KIND: sd3 flux-dev (default both)
#   PARITY_WORK  work folder (default .parity/ in the checkout, shared with scripts/parity.sh)
#   LORA_SCALE   the LoRA weight (default 0.8)
set -uo pipefail
cd "$(dirname "$0")/.."
ORACLE=${RFLOW_ORACLE:-$(cd .. && pwd)/shared/oracle}
[ -f "$ORACLE/lora.py" ] || { echo "parity_lora: no oracle at $ORACLE (../shared/oracle)" >&2; exit 2; }
QUICK=() KINDS=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=(--quick) ;;
    sd3|flux-dev) KINDS+=("$a") ;;
    *) echo "usage: $0 [--quick] [sd3|flux-dev ...]" >&2; exit 2 ;;
  esac
done
[ ${#KINDS[@]} -gt 0 ] || KINDS=(sd3 flux-dev)
SCALE=${LORA_SCALE:-0.8}
WORK=${PARITY_WORK:-$PWD/.parity}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export XDG_CACHE_HOME="$WORK/cache" # compiled models (one per LoRA and weight) stay in the work folder
status=0
for kind in "${KINDS[@]}"; do
  formats="kohya diffusers"
  [ "$kind" = flux-dev ] && formats="kohya diffusers bfl"
  for fmt in $formats; do
    log="$WORK/parity-lora-$kind-$fmt.log"
    bash "$ORACLE/compare.sh" bin/rflow "$WORK" --source diffusers --lora "$fmt:$SCALE" "${QUICK[@]}" "$kind" > "$log" 2>&1 || status=1
    grep -E '^(ok|FAIL|==.*runs compared)' "$log" | sed "s|^|lora $fmt: |" | cut -c1-300
    cp "$WORK/results.jsonl" "$WORK/results-lora-$kind-$fmt.jsonl" 2>/dev/null || true
  done
  # The same numbers in two formats: lora.py's BFL file and its kohya file without the CLIP-L part (the same seed
  # draws the same transformer factors; BFL folds α/r = 2 into lora_B, exactly) must give bit-identical images.
  if [ "$kind" = flux-dev ]; then
    ( . "$ORACLE/env.sh"
      M="$WORK/models/$kind" R="$WORK/runs/$kind-lora-same-numbers"
      rm -rf "$R"; mkdir -p "$R"
      "$PY" "$ORACLE/lora.py" --kind "$kind" --model "$M/diffusers" --format kohya --no-text-encoder --scale "$SCALE" \
        --out "$M/lora/kohya-transformer.safetensors" --merged "$R/kohya-transformer-merged" 2> "$R/lora.log" || exit 1
      matrix="$ORACLE/matrix-default.json"; [ ${#QUICK[@]} -gt 0 ] && matrix="$ORACLE/matrix-quick.json"
      mapfile -t KFLAGS < <("$PY" "$ORACLE/matrix.py" --matrix "$matrix" --kind "$kind" --dir "$R/m") || exit 1
      for fmt in kohya-transformer bfl; do
        bin/rflow batch -m "$M/diffusers" --manifest "$R/m/manifest.jsonl" --out "$R/$fmt" --save-latents -q "${KFLAGS[@]}" \
          --lora "$M/lora/$fmt.safetensors:$SCALE" > "$R/$fmt.log" 2>&1 || { cat "$R/$fmt.log"; exit 1; }
      done
      /usr/bin/python3 - "$R/kohya-transformer" "$R/bfl" <<'PYEOF'
import glob, os, sys
import numpy as np
from PIL import Image
a, b = sys.argv[1:3]
pngs = sorted(glob.glob(os.path.join(a, "*.png")))
if not pngs:
    print("FAIL lora kohya = bfl: no images in", a); sys.exit(1)


def data(f):  # a safetensors file's tensor bytes
    raw = open(f, "rb").read(); n = int.from_bytes(raw[:8], "little"); return raw[8 + n:]


bad = 0
for p in pngs:
    q = os.path.join(b, os.path.basename(p))
    same = os.path.exists(q) and np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(q)))
    lp, lq = p[:-4] + ".safetensors", q[:-4] + ".safetensors"
    if same and os.path.exists(lp):
        same = os.path.exists(lq) and data(lp) == data(lq)
    bad += not same
print(f"{'ok' if bad == 0 else 'FAIL'} lora kohya = bfl (same numbers, two formats): {len(pngs) - bad}/{len(pngs)} "
      "runs bit-identical (pixels and latents)")
sys.exit(1 if bad else 0)
PYEOF
    ) || status=1
  fi
done
exit $status
