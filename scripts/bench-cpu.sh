#!/usr/bin/env bash
# bench-cpu.sh: the CPU cost of each transformer weight kind on the random-weight bench fixtures, as
# one table (make bench-cpu). For SD3 and FLUX-dev checkpoints written by mkfixture (--size $SIZE,
# default bench: 3 minutes on a quiet 2-core EPYC, ~22 on a loaded one; large, ~550M-parameter transformers, takes hours), each compiled with --weights fp32|int8|q8|q4|q4s (text
# encoders and VAE fp32), it runs `rflow txt2img` at 512² and 1024² — one process per row, the same
# seed and prompt — and reports, per row:
#   transformer ms/step   (--timings: time inside transformer runs / steps; SD3 runs CFG, batch 2)
#   VAE decode ms, peak RSS of the whole txt2img process (getrusage maxrss),
#   the compiled transformer's size on disk (model.onnx + model.onnx_data),
#   the final image's PSNR against the fp32 row's image (8-bit RGB).
# Settings (environment): SIZE (bench|large), STEPS (default 2), SIZES ("512 1024"), KINDS ("fp32 int8
# q8 q4 q4s"), FAMILIES ("sd3 flux-dev"), THREADS (default: rflow's), RFLOW (an rflow binary to use
# instead of building ./cmd/rflow), WORK (scratch folder, default a new
# temporary one, removed at the end unless KEEP=1), OUT (the table is also written there).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-bench}
STEPS=${STEPS:-2}
SIZES=${SIZES:-"512 1024"}
KINDS=${KINDS:-"fp32 int8 q8 q4 q4s"}
FAMILIES=${FAMILIES:-"sd3 flux-dev"}
PROMPT="a lighthouse on a cliff at dawn, oil painting"
SEED=42

if [ -z "${WORK:-}" ]; then
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/rflow-bench-cpu.XXXXXX")
	[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK/bin"
export XDG_CACHE_HOME="$WORK/cache" # no compiled models or ORT caches outside $WORK
lib=$(ls .ort/libonnxruntime.so* 2>/dev/null | head -1 || true)
[ -z "$lib" ] || export RFLOW_ORT_LIB=${RFLOW_ORT_LIB:-$PWD/$lib} # the binary lives in $WORK, not next to .ort

log() { echo "bench-cpu: $*" >&2; }

rflow=${RFLOW:-$WORK/bin/rflow}
[ -n "${RFLOW:-}" ] || go build -o "$rflow" ./cmd/rflow
go build -o "$WORK/bin/mkfixture" ./internal/testmodels/cmd/mkfixture
go build -o "$WORK/bin/psnr" scripts/benchcpu/psnr.go
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")

# json_int KEY FILE: an integer field of the --timings JSON.
json_int() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$2"; }

rows=()
start=$(date +%s)
for fam in $FAMILIES; do
	ckpt=$WORK/$fam-ckpt
	# A kept WORK folder (KEEP=1 WORK=DIR) is reused: its checkpoints, compiled folders and finished
	# rows (image and timings) are not made again, so an interrupted run resumes.
	if [ ! -d "$ckpt" ]; then
		log "writing the $fam $SIZE checkpoint"
		"$WORK/bin/mkfixture" --kind "$fam" --size "$SIZE" --checkpoint --out "$ckpt.tmp" >/dev/null
		mv "$ckpt.tmp" "$ckpt"
	fi
	for kind in $KINDS; do
		[ ! -d "$WORK/$fam-$kind" ] || continue
		log "compiling $fam --weights $kind"
		"$rflow" convert -q -m "$ckpt" --weights "$kind" --out "$WORK/$fam-$kind"
	done
	for px in $SIZES; do
		for kind in $KINDS; do
			dir=$WORK/$fam-$kind
			t=$WORK/$fam-$kind-$px.json
			if [ -s "$t" ] && [ -s "$WORK/$fam-$kind-$px.png" ]; then
				log "$fam $kind ${px}²: kept from an earlier run"
			else
				log "$fam $kind ${px}²"
				"$rflow" txt2img -q -m "$dir" -p "$PROMPT" -s $SEED --steps "$STEPS" -W "$px" -H "$px" "${threads[@]}" \
					-o "$WORK/$fam-$kind-$px.png" --overwrite --timings "$t.tmp"
				mv "$t.tmp" "$t"
			fi
			steps=$(json_int steps "$t")
			tms=$(($(json_int transformer_ms "$t") / steps))
			dms=$(json_int decode_ms "$t")
			rss=$(($(json_int peak_rss_bytes "$t") / 1048576))
			bytes=$(stat -c %s "$dir"/transformer/model.onnx* | awk '{s += $1} END {print s}')
			psnr=$("$WORK/bin/psnr" "$WORK/$fam-fp32-$px.png" "$WORK/$fam-$kind-$px.png" 2>/dev/null || echo "n/a")
			rows+=("$(printf '| %-8s | %4d² | %-7s | %8d | %8d | %6d | %7.1f | %7s |' "$fam" "$px" "$kind" "$tms" "$dms" "$rss" \
				"$(echo "$bytes" | awk '{print $1/1e6}')" "$psnr")")
		done
	done
done

{
	echo "rflow bench-cpu: $SIZE fixtures, $STEPS steps, seed $SEED, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - start )) s"
	echo
	echo "| model    | image | weights | transformer ms/step | VAE decode ms | peak RSS MiB | transformer MB | image PSNR vs fp32 dB |"
	echo "|----------|-------|---------|---------:|---------:|-------:|--------:|--------:|"
	printf '%s\n' "${rows[@]}"
} | tee "${OUT:-/dev/null}"
