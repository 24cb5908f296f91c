# rflow's container image: the rflow binary, the pinned ONNX Runtime CPU library and a non-root user.
#
#   docker build -t rflow:latest .
#   docker run --rm -v "$PWD/out:/out" rflow:latest txt2img -p "a green star on a black background" -o /out/star.png
#
# Three stages: ONNX Runtime is fetched and checked by scripts/install-ort.sh (the same sha256 sums as
# `make setup`), rflow is built with the Go toolchain, and the runtime stage holds only the two. Models
# are not in the image: mount them (deploy/k8s/pvc-models.yaml) and pass -m.
#
# GPU variant: ONNX Runtime's CUDA provider needs a GPU build of the library (its lib/ folder:
# libonnxruntime.so.1, libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so) and
# CUDA/cuDNN. Give that folder as the ort-gpu stage and build on a CUDA runtime base (BuildKit):
#   docker build -t rflow:gpu --build-arg ORT_FLAVOR=gpu --build-context ort-gpu=/path/to/onnxruntime-gpu/lib \
#       --build-arg RUNTIME_BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 .

# Base images, pinned to exact versions (add @sha256 digests when your registry policy asks for them).
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG NODE_IMAGE=node:22.21.1-bookworm-slim
ARG RUNTIME_BASE=debian:12.11-slim
# cpu: the pinned CPU library; gpu: the folder given with --build-context ort-gpu=DIR.
ARG ORT_FLAVOR=cpu

# --- ONNX Runtime, verified by sha256 ---------------------------------------------------------------
FROM ${NODE_IMAGE} AS ort-fetch
WORKDIR /src
COPY scripts/install-ort.sh scripts/install-ort.sh
RUN ./scripts/install-ort.sh && mkdir /out && cp .ort/libonnxruntime* /out/

FROM scratch AS ort-cpu
COPY --from=ort-fetch /out/ /

# Empty unless replaced: docker build --build-context ort-gpu=DIR.
FROM scratch AS ort-gpu

FROM ort-${ORT_FLAVOR} AS ort

# --- rflow ------------------------------------------------------------------------------------------
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# cgo stays on: the ONNX Runtime binding loads the library with dlopen.
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/rflow ./cmd/rflow

# --- runtime ----------------------------------------------------------------------------------------
FROM ${RUNTIME_BASE}
RUN groupadd --gid 10001 rflow && useradd --uid 10001 --gid rflow --no-create-home --shell /usr/sbin/nologin rflow
COPY --from=ort / /opt/onnxruntime/lib/
COPY --from=build /out/rflow /usr/local/bin/rflow
ENV RFLOW_ORT_LIB=/opt/onnxruntime/lib/libonnxruntime.so.1
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["rflow"]
CMD ["--help"]
