# rflow: `make demo` sets up and runs the main job; `make test` sets up and runs every test.
GO ?= go

.PHONY: setup build demo test test-race test-cluster bench bench-cpu parity clean

# setup installs the pinned ONNX Runtime library into .ort/ (verified by sha256; nothing fetched
# when a verified copy is present).
setup:
	./scripts/install-ort.sh

build: setup
	$(GO) build -o bin/rflow ./cmd/rflow

# The README's demo prompt, drawn by the embedded analytic demo model into demo.png.
demo: build
	./bin/rflow txt2img -p "a green star on a black background" -o demo.png --overwrite

# test also installs Debian's chromium for server's web-page test when it may (scripts/install-test-deps.sh).
test: setup
	./scripts/install-test-deps.sh
	$(GO) vet ./...
	$(GO) test ./...

# test-race runs every test under the race detector, which makes them several times slower: the
# pipeline package alone needs more than go test's default 10-minute limit, hence -timeout.
test-race: setup
	$(GO) test -race -timeout 60m ./...

# test-cluster runs deploy/slurm/batch.sbatch on a real loopback Slurm cluster (a minute or two):
# installs Debian's slurm-wlm and munge when missing (root), kills an array task, resubmits it and
# checks the batch with rflow batch status (scripts/cluster-test.sh).
test-cluster: setup
	GO=$(GO) ./scripts/cluster-test.sh

# parity runs the real diffusers pipelines (../shared/oracle, Debian's torch) next to rflow on tiny
# random-weight SD3 and FLUX models from all three sources (ONNX export, diffusers folder, single files).
parity: build
	./scripts/parity.sh $(PARITY_ARGS)

bench: setup
	$(GO) test -run '^$$' -bench . -benchmem ./...

# bench-cpu prints one table of the CPU cost of each transformer weight kind (fp32, int8, q8, q4, q4s)
# on the random-weight SD3 and FLUX-dev fixtures at 512² and 1024²: transformer ms/step, VAE decode ms,
# peak RSS, transformer size, image PSNR against fp32 (scripts/bench-cpu.sh; 3 minutes on a quiet
# 2-core EPYC, ~22 on a loaded one; SIZE=large for ~550M-parameter transformers, OUT=FILE keeps the table).
bench-cpu: setup
	./scripts/bench-cpu.sh

clean:
	rm -rf bin demo.png
