package ort

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// LibraryEnv is the environment variable that names the ONNX Runtime shared library to load.
const LibraryEnv = "RFLOW_ORT_LIB"

// ErrLibraryNotFound is wrapped by the error FindLibrary returns when no library was found.
var ErrLibraryNotFound = errors.New("ONNX Runtime library not found")

// LibraryNotFoundError lists every place that was searched, so the user can see why.
type LibraryNotFoundError struct {
	Searched []string
}

func (e *LibraryNotFoundError) Error() string {
	return fmt.Sprintf("%v; searched: %s", ErrLibraryNotFound, strings.Join(e.Searched, ", "))
}

func (e *LibraryNotFoundError) Unwrap() error { return ErrLibraryNotFound }

// LibraryPathError says that a library named explicitly (Config.LibraryPath, or $RFLOW_ORT_LIB) cannot
// be used; FindLibrary never falls back to searching in that case.
type LibraryPathError struct {
	Path string
	// FromEnv is set when the path came from $RFLOW_ORT_LIB rather than the caller.
	FromEnv bool
	Err     error
}

func (e *LibraryPathError) Error() string {
	if e.FromEnv {
		return fmt.Sprintf("ONNX Runtime library %s (from $%s): %v", e.Path, LibraryEnv, e.Err)
	}
	return fmt.Sprintf("ONNX Runtime library %s: %v", e.Path, e.Err)
}

func (e *LibraryPathError) Unwrap() error { return e.Err }

// libraryNames are the file names ONNX Runtime's shared library goes by on this OS, most specific first.
func libraryNames() []string {
	switch runtime.GOOS {
	case "darwin":
		return []string{"libonnxruntime.dylib", "libonnxruntime.1.24.3.dylib"}
	case "windows":
		return []string{"onnxruntime.dll"}
	default:
		return []string{"libonnxruntime.so.1", "libonnxruntime.so"}
	}
}

// FindLibrary returns the path of the ONNX Runtime library to load. An explicit path wins, then
// RFLOW_ORT_LIB; both must exist. Otherwise it looks, in order, in .ort/ beside the executable (and in
// its parent, for bin/rflow in a checkout), a pip-installed onnxruntime or onnxruntime-gpu,
// $LD_LIBRARY_PATH and the system library directories. The working directory is never searched: a
// library planted in an untrusted folder would otherwise run as soon as rflow is started there.
func FindLibrary(explicit string) (string, error) {
	for _, p := range []struct {
		path    string
		fromEnv bool
	}{{explicit, false}, {os.Getenv(LibraryEnv), true}} {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			return "", &LibraryPathError{Path: p.path, FromEnv: p.fromEnv, Err: err}
		}
		return filepath.Abs(p.path)
	}
	var searched []string
	seen := map[string]bool{}
	for _, stage := range searchStages() {
		dirs, note := stage()
		if note != "" {
			searched = append(searched, note)
		}
		for _, dir := range dirs {
			if seen[dir] {
				continue
			}
			seen[dir] = true
			searched = append(searched, filepath.Join(dir, libraryGlob()))
			if p := libraryIn(dir); p != "" {
				return p, nil
			}
		}
	}
	return "", &LibraryNotFoundError{Searched: searched}
}

// searchStages yields the directories to search, in order. Each stage runs only when the ones before
// it found nothing, so python3 is started only when no .ort/ copy exists.
func searchStages() []func() (dirs []string, note string) {
	return []func() ([]string, string){
		func() ([]string, string) {
			var dirs []string
			if exe, err := os.Executable(); err == nil {
				if exe, err = filepath.EvalSymlinks(exe); err == nil {
					// bin/rflow inside a checkout finds the checkout's .ort too.
					dirs = append(dirs, filepath.Join(filepath.Dir(exe), ".ort"), filepath.Join(filepath.Dir(filepath.Dir(exe)), ".ort"))
				}
			}
			return dirs, ""
		},
		func() ([]string, string) {
			if d := pipOnnxruntimeDir(); d != "" {
				return []string{filepath.Join(d, "capi")}, ""
			}
			return nil, "python3's onnxruntime package (not installed)"
		},
		func() ([]string, string) { return systemDirs(), "" },
	}
}

// libraryIn returns the ONNX Runtime library in dir, or "". Exact names are tried first; then any
// versioned file, as pip wheels ship capi/libonnxruntime.so.1.24.3.
func libraryIn(dir string) string {
	for _, name := range libraryNames() {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, libraryGlob())); len(matches) > 0 {
		return matches[len(matches)-1]
	}
	return ""
}

func libraryGlob() string {
	switch runtime.GOOS {
	case "darwin":
		return "libonnxruntime*.dylib"
	case "windows":
		return "onnxruntime.dll"
	}
	return "libonnxruntime.so*"
}

// systemDirs are the dynamic loader's path and the usual library directories.
func systemDirs() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv(ldPathEnv())) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	switch runtime.GOOS {
	case "darwin":
		dirs = append(dirs, "/opt/homebrew/lib", "/usr/local/lib")
	case "linux":
		arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
		dirs = append(dirs, "/usr/local/lib", "/usr/lib/"+arch+"-linux-gnu", "/usr/lib64", "/usr/lib")
	}
	return dirs
}

func ldPathEnv() string {
	switch runtime.GOOS {
	case "darwin":
		return "DYLD_LIBRARY_PATH"
	case "windows":
		return "PATH"
	}
	return "LD_LIBRARY_PATH"
}

// pipOnnxruntimeDir finds the package directory of a pip-installed onnxruntime (or onnxruntime-gpu,
// which installs the same package name) without importing it: find_spec only reads sys.path.
func pipOnnxruntimeDir() string {
	py, err := exec.LookPath("python3")
	if err != nil {
		return ""
	}
	cmd := exec.Command(py, "-c",
		"import importlib.util as u; s=u.find_spec('onnxruntime'); print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
