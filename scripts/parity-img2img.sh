#!/usr/bin/env bash
# img2img and tiled VAE decoding against diffusers 0.38 (issue 19): StableDiffusion3Img2ImgPipeline and
# FluxImg2ImgPipeline at strengths 0.3/0.6/1.0 from square and non-square init images, and enable_tiling() decodes
# with small tiles, next to rflow txt2img --save-latents on the same tiny models (scripts/parity_img2img.py says
# what runs). make parity calls it at the end (PARITY_IMG2IMG=0 skips it there).
#
# usage: scripts/parity-img2img.sh [sd3|flux-dev ...]     (default both)
#   PARITY_WORK  work folder (default .parity/ in the checkout; the tiny models in it are reused or built)
# Needs bin/rflow (make build) and the oracle's Debian packages (../shared/oracle/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ORACLE=${RFLOW_ORACLE:-$(cd .. && pwd)/shared/oracle}
[ -f "$ORACLE/env.sh" ] || { echo "parity-img2img: no oracle at $ORACLE (../shared/oracle)" >&2; exit 2; }
[ -x bin/rflow ] || { echo "parity-img2img: no bin/rflow (make build)" >&2; exit 2; }
for k in "$@"; do
  case "$k" in sd3|flux-dev) ;; *) echo "usage: $0 [sd3|flux-dev ...]" >&2; exit 2 ;; esac
done
WORK=${PARITY_WORK:-$PWD/.parity}
mkdir -p "$WORK"
export XDG_CACHE_HOME="$WORK/cache"
. "$ORACLE/env.sh"
PYTHONPATH="$ORACLE_DIR:$PYTHONPATH" exec "$PY" scripts/parity_img2img.py bin/rflow "$WORK" "$@"
