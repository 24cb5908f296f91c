package arch

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"strings"
	"sync"
)

// sources are the builders' Go files, so that what caches built graphs (internal/testmodels' fixture
// folders) can tell when the graph code changed.
//
//go:embed *.go
var sources embed.FS

// SourcesDigest is a SHA-256 over the package's non-test Go sources (names and contents): it changes
// whenever a builder's code does, whether or not the change was meant to alter a graph.
var SourcesDigest = sync.OnceValue(func() string {
	h := sha256.New()
	_ = fs.WalkDir(sources, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		data, err := sources.ReadFile(p)
		if err == nil {
			h.Write([]byte(p + "\x00"))
			h.Write(data)
			h.Write([]byte{0})
		}
		return err
	})
	return hex.EncodeToString(h.Sum(nil))
})
