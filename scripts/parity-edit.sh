#!/usr/bin/env bash
# Inpainting, FLUX Fill and FLUX Kontext against diffusers 0.38 (issue 18): StableDiffusion3InpaintPipeline,
# FluxInpaintPipeline, FluxFillPipeline and FluxKontextPipeline next to rflow txt2img --save-latents on the same tiny
# random-weight models, from ONNX exports and from diffusers folders compiled by rflow (scripts/parity_edit.py
# says what runs). make parity calls it at the end (PARITY_EDIT=0 skips it there).
#
# usage: scripts/parity-edit.sh [sd3|flux-dev|fill|kontext ...]     (default all four)
#   PARITY_WORK  work folder (default .parity/ in the checkout; the tiny models in it are reused or built)
# Needs bin/rflow (make build), the oracle's Debian packages (../shared/oracle/README.md) and, for Fill, go (the
# script builds scripts/fill_encode.go: rflow's VAE encoder on Fill's masked image, see scripts/parity_edit.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ORACLE=${RFLOW_ORACLE:-$(cd .. && pwd)/shared/oracle}
[ -f "$ORACLE/env.sh" ] || { echo "parity-edit: no oracle at $ORACLE (../shared/oracle)" >&2; exit 2; }
[ -x bin/rflow ] || { echo "parity-edit: no bin/rflow (make build)" >&2; exit 2; }
for k in "$@"; do
  case "$k" in sd3|flux-dev|fill|kontext) ;; *) echo "usage: $0 [sd3|flux-dev|fill|kontext ...]" >&2; exit 2 ;; esac
done
WORK=${PARITY_WORK:-$PWD/.parity}
mkdir -p "$WORK"
export XDG_CACHE_HOME="$WORK/cache" # the compiled Fill and Kontext folders stay in the work folder
. "$ORACLE/env.sh"
PYTHONPATH="$ORACLE_DIR:$PYTHONPATH" exec "$PY" scripts/parity_edit.py bin/rflow "$WORK" "$@"
