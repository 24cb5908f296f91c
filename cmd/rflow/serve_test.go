package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/draw"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/ort/orttest"
)

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr, key string
		insecure  bool
		ok        bool
	}{
		{"127.0.0.1:7860", "", false, true},
		{"[::1]:7860", "", false, true},
		{"localhost:7860", "", false, true},
		{"0.0.0.0:7860", "", false, false},
		{":7860", "", false, false},
		{"192.168.1.5:80", "", false, false},
		{"0.0.0.0:7860", "k", false, true},
		{"0.0.0.0:7860", "", true, true},
		{"7860", "", false, false},
	} {
		err := checkListen(c.addr, c.key, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("checkListen(%q, key %q, insecure %v) = %v, want ok %v", c.addr, c.key, c.insecure, err, c.ok)
		}
	}
}

// TestServeRefusesOpenListen: a non-loopback --listen without a key is a usage error before anything
// loads.
func TestServeRefusesOpenListen(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"serve", "--listen", "0.0.0.0:0"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--api-key") {
		t.Errorf("exit %d, stderr %q: want 2 and advice to set --api-key", code, errOut.String())
	}
}

// TestServeSessionFlags: serve takes txt2img's session flags, and a bad $RFLOW_CACHE_MAX_GB is a usage
// error before any model is opened.
func TestServeSessionFlags(t *testing.T) {
	code, out, _ := runCLI("serve", "--help")
	for _, flag := range []string{"--spin", "--low-mem", "--no-cache", "--cache-max-gb"} {
		if code != 0 || !strings.Contains(out, flag) {
			t.Errorf("serve --help (exit %d) does not list %s", code, flag)
		}
	}
	t.Setenv(cacheMaxEnv, "lots")
	code, _, errOut := runCLI("serve", "-m", filepath.Join(t.TempDir(), "no-such-model"), "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, cacheMaxEnv) {
		t.Errorf("exit %d, stderr %q: want 2 naming $%s", code, errOut, cacheMaxEnv)
	}
}

// syncBuffer is a log a child process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `rflow serve` as a child process on a free loopback port and returns its base URL.
func startServe(t *testing.T, args ...string) (*exec.Cmd, <-chan struct{}, string, *syncBuffer) {
	t.Helper()
	cmd := rflowCmd(append([]string{"serve", "--ort-lib", orttest.Library(), "--listen", "127.0.0.1:0", "-t", "1"}, args...)...)
	log := &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	re := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+)/`)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			return cmd, exited, m[1], log
		}
		select {
		case <-exited:
			t.Fatalf("rflow serve ended before listening:\n%s", log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("rflow serve did not listen within a minute:\n%s", log.String())
	return nil, nil, "", nil
}

// TestServeProcess: the real binary serves over loopback; curl's answer carries the image the CLI
// writes for the same seed; SIGTERM during a job shuts it down cleanly (exit 0).
func TestServeProcess(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not on PATH")
	}
	cmd, exited, base, log := startServe(t, "--shutdown-grace", "200ms")
	body := `{"prompt": "a red circle", "seed": 21, "width": 64, "height": 64, "steps": 4}`
	out, err := exec.Command(curl, "-sS", "--fail-with-body", "-H", "Content-Type: application/json", "-d", body,
		base+"/sdapi/v1/txt2img").Output()
	if err != nil {
		t.Fatalf("curl txt2img: %v\n%s", err, out)
	}
	var a struct{ Images []string }
	if err := json.Unmarshal(out, &a); err != nil || len(a.Images) != 1 {
		t.Fatalf("curl txt2img: %v %s", err, out)
	}
	served := decodeB64(t, a.Images[0])

	png := filepath.Join(t.TempDir(), "cli.png")
	var cliOut, cliErr bytes.Buffer
	if code := run(t.Context(), []string{"txt2img", "--ort-lib", orttest.Library(), "-p", "a red circle", "--seed", "21", "-W", "64", "-H", "64", "--steps", "4",
		"-o", png, "-q"}, &cliOut, &cliErr); code != 0 {
		t.Fatalf("txt2img: exit %d: %s", code, cliErr.String())
	}
	if !bytes.Equal(served.Pix, readNRGBA(t, png).Pix) {
		t.Error("the served image differs from rflow txt2img's for the same seed")
	}

	out, err = exec.Command(curl, "-sS", base+"/v1/models").Output()
	if err != nil || !bytes.Contains(out, []byte(`"demo-sd3"`)) {
		t.Errorf("curl /v1/models: %v %s", err, out)
	}
	out, _ = exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
		"-d", `{"prompt": "x", "width": 99999}`, base+"/sdapi/v1/txt2img").Output()
	if string(out) != "400" {
		t.Errorf("curl with an absurd width: status %s, want 400", out)
	}

	// A long job is running when SIGTERM comes: the server cancels it after the grace period and exits 0.
	resp, err := http.Post(base+"/rflow/v1/jobs", "application/json",
		strings.NewReader(`{"prompt": "x", "width": 256, "height": 256, "steps": 150}`))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("job: %v %v", err, resp)
	}
	resp.Body.Close()
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("rflow serve did not stop within 30 s of SIGTERM:\n%s", log.String())
	}
	if st := cmd.ProcessState; st.ExitCode() != 0 || !strings.Contains(log.String(), "shutting down") ||
		!strings.Contains(log.String(), "rflow: stopped") {
		t.Errorf("rflow serve after SIGTERM: %v, want exit 0 after a clean shutdown:\n%s", st, log.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}
}

func decodeB64(t *testing.T, s string) *image.NRGBA {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return toNRGBA(img)
}

func readNRGBA(t *testing.T, path string) *image.NRGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return toNRGBA(img)
}

func toNRGBA(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok {
		return n
	}
	n := image.NewNRGBA(img.Bounds())
	draw.Draw(n, n.Bounds(), img, img.Bounds().Min, draw.Src)
	return n
}
