package batch

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
)

// isStorageError reports whether err says the output folder cannot take files at all (permission,
// read-only or full file system, quota): every later item would fail the same way.
func isStorageError(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC) ||
		errors.Is(err, syscall.EDQUOT)
}

// ErrObjectStorage is wrapped by CheckOutDir's error for an object-storage URL.
var ErrObjectStorage = errors.New("object storage is not a folder")

// CheckOutDir refuses an output folder given as a URL (s3://bucket/x, gs://…). A batch needs what
// object stores do not offer: files renamed into place atomically, a results log appended to and
// fsynced line by line, and a lock per shard.
func CheckOutDir(dir string) error {
	scheme, _, ok := strings.Cut(dir, "://")
	if !ok || len(scheme) < 2 || strings.ContainsAny(scheme, `/\. :`) { // C://x is a Windows path
		return nil
	}
	return fmt.Errorf("%s: %w (a batch needs atomic renames, appends and locks)", dir, ErrObjectStorage)
}
