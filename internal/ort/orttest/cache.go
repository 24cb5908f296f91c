package orttest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// cacheEnv is the variable os.UserCacheDir reads on this OS.
func cacheEnv() string {
	switch runtime.GOOS {
	case "windows":
		return "LocalAppData"
	case "darwin", "ios":
		return "HOME" // $HOME/Library/Caches
	case "plan9":
		return "home"
	}
	return "XDG_CACHE_HOME"
}

// cachePrefix names the temporary cache folders; staleCache is the age after which one is certainly
// left over by a test binary that was killed (a -timeout panic skips TestMain's cleanup).
const (
	cachePrefix = "rflow-test-cache-"
	staleCache  = 24 * time.Hour
)

// IsolateCache points os.UserCacheDir — where rflow keeps ONNX Runtime's optimized graphs and the
// extracted demo folders — at a fresh temporary folder, so a test binary never writes into the
// user's cache. The Go build cache stays where it was for go commands the tests start (GOCACHE is
// pinned to its old default). restore removes the folder and puts the environment back. Folders
// older than a day that killed test binaries left behind are removed.
func IsolateCache() (restore func(), err error) {
	removeStaleCaches(time.Now())
	dir, err := os.MkdirTemp("", cachePrefix)
	if err != nil {
		return nil, err
	}
	type saved struct {
		name, value string
		set         bool
	}
	var env []saved
	setenv := func(name, value string) {
		old, set := os.LookupEnv(name)
		env = append(env, saved{name, old, set})
		os.Setenv(name, value)
	}
	if _, set := os.LookupEnv("GOCACHE"); !set {
		if user, err := os.UserCacheDir(); err == nil {
			setenv("GOCACHE", filepath.Join(user, "go-build"))
		}
	}
	cache := dir
	if cacheEnv() == "HOME" {
		cache = filepath.Join(dir, "home") // os.UserCacheDir is $HOME/Library/Caches
		if err := os.MkdirAll(filepath.Join(cache, "Library", "Caches"), 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	setenv(cacheEnv(), cache)
	return func() {
		for i := len(env) - 1; i >= 0; i-- {
			if env[i].set {
				os.Setenv(env[i].name, env[i].value)
			} else {
				os.Unsetenv(env[i].name)
			}
		}
		os.RemoveAll(dir)
	}, nil
}

// removeStaleCaches removes temporary cache folders not modified for staleCache.
func removeStaleCaches(now time.Time) {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), cachePrefix+"*"))
	for _, p := range old {
		if st, err := os.Stat(p); err == nil && now.Sub(st.ModTime()) > staleCache {
			os.RemoveAll(p)
		}
	}
}

// RunIsolated runs the tests with the user's cache folder isolated (IsolateCache) and returns the exit
// code, for a TestMain: os.Exit(orttest.RunIsolated(m)).
func RunIsolated(m *testing.M) int {
	restore, err := IsolateCache()
	if err != nil {
		os.Stderr.WriteString("orttest: isolate the cache folder: " + err.Error() + "\n")
		return 1
	}
	defer restore()
	return m.Run()
}
