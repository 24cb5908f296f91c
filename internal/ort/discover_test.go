package ort

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noCommandLineAdvice fails when a library error tells the user which flag or command to use: the
// CLI adds that advice, and Go programs using the library have no flags.
func noCommandLineAdvice(t *testing.T, err error) {
	t.Helper()
	for _, advice := range []string{"--", "make setup", "install-ort"} {
		if strings.Contains(err.Error(), advice) {
			t.Errorf("library error carries command-line advice %q: %v", advice, err)
		}
	}
}

func TestFindLibraryExplicitMissing(t *testing.T) {
	_, err := FindLibrary("/nonexistent/libonnxruntime.so")
	var pe *LibraryPathError
	if !errors.As(err, &pe) || pe.FromEnv || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent/libonnxruntime.so") {
		t.Fatalf("want a LibraryPathError naming the path, got %v", err)
	}
	noCommandLineAdvice(t, err)
	t.Setenv(LibraryEnv, "/also/missing.so")
	_, err = FindLibrary("")
	if !errors.As(err, &pe) || !pe.FromEnv || !strings.Contains(err.Error(), "/also/missing.so") || !strings.Contains(err.Error(), LibraryEnv) {
		t.Fatalf("want a LibraryPathError naming the env path, got %v", err)
	}
	noCommandLineAdvice(t, err)
}

func TestFindLibraryNotFoundListsSearched(t *testing.T) {
	t.Setenv(LibraryEnv, "")
	t.Setenv("LD_LIBRARY_PATH", "/rflow-test-ld-path")
	t.Setenv("PATH", "") // no python3: the pip step is skipped
	t.Chdir(t.TempDir())
	path, err := FindLibrary("")
	if err == nil {
		t.Skipf("a system ONNX Runtime exists at %s; the not-found path cannot be exercised here", path)
	}
	var nf *LibraryNotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("want LibraryNotFoundError, got %v", err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	msg := err.Error()
	for _, want := range []string{filepath.Join(filepath.Dir(exe), ".ort"), "/rflow-test-ld-path", "/usr/local/lib"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q: %s", want, msg)
		}
	}
	noCommandLineAdvice(t, err)
}

// TestFindLibraryIgnoresWorkingDirectory: a library in ./.ort of an untrusted folder is not loaded.
func TestFindLibraryIgnoresWorkingDirectory(t *testing.T) {
	t.Setenv(LibraryEnv, "")
	t.Setenv("LD_LIBRARY_PATH", "")
	t.Setenv("PATH", "") // no python3
	wd := t.TempDir()
	planted := filepath.Join(wd, ".ort", libraryNames()[0])
	if err := os.MkdirAll(filepath.Dir(planted), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planted, []byte("planted"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	path, err := FindLibrary("")
	if path == planted {
		t.Fatalf("FindLibrary loaded %s from the working directory", planted)
	}
	if err != nil && strings.Contains(err.Error(), filepath.Join(wd, ".ort")) {
		t.Errorf("the working directory's .ort was searched: %v", err)
	}
}

func TestFindLibraryVersionedName(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "libonnxruntime.so.1.24.3")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := libraryIn(dir); got != p {
		t.Fatalf("libraryIn = %q, want the pip-style versioned file %q", got, p)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.24.3", "1.24.0", 1}, {"1.23.2", "1.24.0", -1}, {"1.24.0", "1.24", 0}, {"1.100.0", "1.24.0", 1}, {"2.0.0-dev", "1.24.0", 1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestVersionErrorHasNoAdvice(t *testing.T) {
	err := error(&VersionError{Version: "1.20.0", Path: "/x/libonnxruntime.so"})
	for _, want := range []string{"1.20.0", "/x/libonnxruntime.so", MinVersion} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("version error lacks %q: %v", want, err)
		}
	}
	noCommandLineAdvice(t, err)
}

func TestProbeRejectsNonLibrary(t *testing.T) {
	p := filepath.Join(t.TempDir(), "libonnxruntime.so")
	_ = os.WriteFile(p, []byte("not an ELF file"), 0o644)
	if _, _, err := probeLibrary(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("want a load error naming %s, got %v", p, err)
	}
}
