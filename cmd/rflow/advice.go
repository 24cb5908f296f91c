package main

import (
	"errors"
	"fmt"
	"github.com/rflowrt/rflow/batch"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/pipeline"
)

// setupCommand installs the pinned ONNX Runtime into .ort/.
const setupCommand = "make setup (runs scripts/install-ort.sh)"

// advice is what the user can do about err on the command line ("" when rflow has nothing to add).
// The library's errors say what is wrong; flags and commands are the CLI's to name.
func advice(err error) string {
	var (
		notFound *ort.LibraryNotFoundError
		libPath  *ort.LibraryPathError
		tooOld   *ort.VersionError
		provider *ort.ProviderError
		folder   *pipeline.FolderError
		mismatch *batch.PinMismatchError
	)
	switch {
	case errors.As(err, &notFound):
		return fmt.Sprintf("install it with %s, or point --ort-lib or $%s at a libonnxruntime >= %s", setupCommand, ort.LibraryEnv, ort.MinVersion)
	case errors.As(err, &libPath) && libPath.FromEnv:
		return fmt.Sprintf("fix or unset $%s, or give --ort-lib", ort.LibraryEnv)
	case errors.As(err, &libPath):
		return "check the path given with --ort-lib"
	case errors.As(err, &tooOld):
		return fmt.Sprintf("run %s, or point --ort-lib at ONNX Runtime %s or newer", setupCommand, ort.MinVersion)
	case errors.As(err, &provider):
		return providerAdvice(provider.Provider)
	case errors.As(err, &folder):
		return fmt.Sprintf("`rflow inspect --model %s` lists the folder's components and these problems", folder.Dir)
	case errors.Is(err, batch.ErrShardCountMissing):
		return "pass --shards N (the batch's shard count: the Job's completions, or the array's full size)"
	case errors.Is(err, batch.ErrObjectStorage):
		return "mount the bucket as a folder (a CSI driver on Kubernetes, a FUSE mount elsewhere) that supports renames, " +
			"appends and flock, or write to a shared file system and copy the finished folder to the bucket"
	case errors.Is(err, batch.ErrNoLocks):
		return "give --out a folder on a file system with flock across nodes (NFS, Lustre mounted with -o flock, CephFS)"
	case errors.Is(err, batch.ErrLocked):
		return "wait for that run to end, or stop it (squeue / kubectl get pods show duplicates)"
	case errors.As(err, &mismatch) && mismatch.ShardsChanged:
		return "keep the batch's shard count (see " + batch.PinFile + " in --out), or give a new --out"
	case errors.As(err, &mismatch):
		return "pass --redo-changed to regenerate the changed items, or give a new --out for the new batch"
	case errors.Is(err, batch.ErrShardIndexMissing):
		return "give --shard I/N, or run it as a Kubernetes Indexed Job or a Slurm array task"
	}
	return ""
}

func providerAdvice(p ort.Provider) string {
	switch p {
	case ort.CUDA, ort.TensorRT:
		return "point --ort-lib at a GPU build of ONNX Runtime (e.g. the libonnxruntime.so from pip's onnxruntime-gpu, " +
			"with its CUDA libraries installed), or use --provider cpu"
	case ort.CoreML:
		return "CoreML needs ONNX Runtime on macOS; use --provider cpu"
	case ort.DirectML:
		return "DirectML needs the onnxruntime-directml build on Windows; use --provider cpu"
	}
	return "use --provider cpu"
}

// withAdvice is err's message followed by the advice for it, if any.
func withAdvice(err error) string {
	if a := advice(err); a != "" {
		return err.Error() + "; " + a
	}
	return err.Error()
}
