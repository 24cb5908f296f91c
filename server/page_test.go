package server

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/pipeline"
)

// browser finds a headless-capable Chromium, or skips.
func browser(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (Debian: apt-get install chromium); the web page test needs a real browser")
	return ""
}

// headless runs the browser on url with extra flags (--screenshot=…, --dump-dom) and returns stdout.
func headless(t *testing.T, bin, pageURL string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + filepath.Join(t.TempDir(), "profile"), "--window-size=900,700", "--virtual-time-budget=30000"}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, pageURL)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// TestPageInBrowser drives the web page in headless Chromium against the real server: the page fills
// its form from the query, submits a job, follows its progress and shows the image. The screenshot must
// show the generated demo image's colours (its background and the circle); a prompt holding HTML must
// come out as text.
func TestPageInBrowser(t *testing.T) {
	bin := browser(t)
	_, hs := testServer(t, Options{})
	q := url.Values{"auto": {"1"}, "prompt": {"a red circle"}, "seed": {"3"}, "width": {"128"}, "height": {"128"}, "steps": {"4"}}
	shot := filepath.Join(t.TempDir(), "page.png")
	headless(t, bin, hs.URL+"/?"+q.Encode(), "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := newLone(t).image(t, pipeline.Request{Prompt: "a red circle", Seed: 3, Width: 128, Height: 128, Steps: 4})
	for _, c := range dominantColours(want, 2) {
		n := countNear(page, c, 10)
		t.Logf("colour %v: %d pixels in the image, %d in the screenshot", c.rgb, c.n, n)
		if n < c.n/2 {
			t.Errorf("the screenshot has %d pixels near the image's colour %v (%d in the image): the image is not shown", n, c.rgb, c.n)
		}
	}

	evil := `<img src=x onerror="document.title='pwned'"><b>bold</b>`
	q.Set("prompt", evil)
	dom := string(headless(t, bin, hs.URL+"/?"+q.Encode(), "--dump-dom"))
	if !strings.Contains(dom, "done in") {
		t.Fatalf("the page did not finish its job:\n%s", dom)
	}
	if strings.Contains(dom, "<b>bold</b>") || strings.Contains(dom, `<img src="x"`) || strings.Contains(dom, "pwned</title>") {
		t.Errorf("the prompt's HTML reached the page's markup:\n%s", dom)
	}
	if !strings.Contains(dom, "&lt;b&gt;bold&lt;/b&gt;") {
		t.Errorf("the prompt is not shown as text:\n%s", dom)
	}
}

type colourCount struct {
	rgb [3]uint8
	n   int
}

// dominantColours are the k most frequent exact colours of img.
func dominantColours(img *image.NRGBA, k int) []colourCount {
	counts := map[[3]uint8]int{}
	for i := 0; i+3 < len(img.Pix); i += 4 {
		counts[[3]uint8{img.Pix[i], img.Pix[i+1], img.Pix[i+2]}]++
	}
	var out []colourCount
	for c, n := range counts {
		out = append(out, colourCount{c, n})
	}
	for i := range out { // selection of the k largest
		for j := i + 1; j < len(out); j++ {
			if out[j].n > out[i].n {
				out[i], out[j] = out[j], out[i]
			}
		}
		if i == k-1 {
			break
		}
	}
	return out[:min(k, len(out))]
}

// countNear counts the pixels of img within tol of c in every channel.
func countNear(img image.Image, c colourCount, tol int) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(int(r>>8), int(c.rgb[0]), tol) && near(int(g>>8), int(c.rgb[1]), tol) && near(int(bl>>8), int(c.rgb[2]), tol) {
				n++
			}
		}
	}
	return n
}

func near(a, b, tol int) bool { return a-b <= tol && b-a <= tol }

// TestPageGuidanceControls drives the page's guidance controls in headless Chromium: on SD3 the CFG
// scale and the guidance rule reach the job (its shown parameters carry the rule's canonical spelling);
// on FLUX the page shows distilled guidance and true CFG in place of the CFG scale, and they reach the
// job as the true CFG scale and guidance used.
func TestPageGuidanceControls(t *testing.T) {
	bin := browser(t)
	_, hs := testServer(t, Options{})
	q := url.Values{"auto": {"1"}, "prompt": {"a blue square"}, "seed": {"21"}, "width": {"64"}, "height": {"64"}, "steps": {"8"},
		"cfg": {"3"}, "rule": {"cfg-zero-star"}}
	dom := string(headless(t, bin, hs.URL+"/?"+q.Encode(), "--dump-dom"))
	if !strings.Contains(dom, "done in") {
		t.Fatalf("the page did not finish its job:\n%s", dom)
	}
	for _, want := range []string{`"guidance_rule": "` + zeroStar + `"`, `"cfg_scale": 3`, `id="fluxrow" hidden=""`} {
		if !strings.Contains(dom, want) {
			t.Errorf("SD3 page: no %s in the page:\n%s", want, dom)
		}
	}

	q = url.Values{"auto": {"1"}, "edit": {"1"}} // edit mode without a picture: the page says what is missing, sends nothing
	dom = string(headless(t, bin, hs.URL+"/?"+q.Encode(), "--dump-dom"))
	if !strings.Contains(dom, "choose the picture to edit") || !strings.Contains(dom, `id="width" type="number" min="16" step="16" value="256" disabled=""`) {
		t.Errorf("edit mode without a picture: no message, or the size fields are not disabled:\n%s", dom)
	}

	m, err := pipeline.OpenDemo("demo-flux")
	if err != nil {
		t.Fatal(err)
	}
	_, fs, _ := serveModel(t, m, Options{})
	q = url.Values{"auto": {"1"}, "prompt": {"a white ring on a purple background"}, "negative": {"a green square"},
		"seed": {"5"}, "width": {"64"}, "height": {"64"}, "steps": {"4"}, "guidance": {"2.5"}, "truecfg": {"3"}, "rule": {"apg"}}
	dom = string(headless(t, bin, fs.URL+"/?"+q.Encode(), "--dump-dom"))
	if !strings.Contains(dom, "done in") {
		t.Fatalf("the FLUX page did not finish its job:\n%s", dom)
	}
	for _, want := range []string{`"true_cfg_scale": 3`, `"distilled_cfg_scale": 2.5`, `"guidance_rule": "apg:`, `id="cfgrow" hidden=""`,
		"true CFG &gt; 1 and a negative prompt"} {
		if !strings.Contains(dom, want) {
			t.Errorf("FLUX page: no %s in the page:\n%s", want, dom)
		}
	}
}

// TestPageEditMode drives the page's edit mode in headless Chromium over the DevTools protocol: it
// ticks Edit a picture, chooses a picture and a mask file, sets the strength and generates; the job's
// image equals the lone inpainting run of the same picture, mask and settings, and the page shows it
// with its parameters.
func TestPageEditMode(t *testing.T) {
	bin := browser(t)
	_, hs := testServer(t, Options{})
	dir := t.TempDir()
	init, mask := testInit(), rectMask(64, 64, image.Rect(32, 8, 56, 40))
	initPath, maskPath := filepath.Join(dir, "init.png"), filepath.Join(dir, "mask.png")
	for path, img := range map[string]image.Image{initPath: init, maskPath: mask} {
		if err := os.WriteFile(path, pngBytes(t, img), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q := url.Values{"prompt": {"a blue square"}, "seed": {"9"}, "steps": {"4"}, "width": {"256"}, "height": {"256"}}
	d := openDevtools(t, bin, hs.URL+"/?"+q.Encode())
	d.waitFor(`document.readyState === "complete" && !!(document.getElementById("model") || {}).textContent`, 30*time.Second)
	d.eval(`(() => { const e = document.getElementById("edit"); e.click(); return e.checked; })()`, nil)
	d.setFiles("#init", initPath)
	d.setFiles("#mask", maskPath)
	d.eval(`document.getElementById("strength").value = "0.6"; document.getElementById("go").click(); true`, nil)
	d.waitFor(`/done in|failed|error|choose/.test(document.getElementById("status").textContent)`, 60*time.Second)
	var shown struct {
		Status, Params string
		Images         int
	}
	d.eval(`({status: document.getElementById("status").textContent, params: document.getElementById("params").textContent,
		images: document.querySelectorAll("#out img.result").length})`, &shown)
	if !strings.HasPrefix(shown.Status, "done in") || shown.Images != 1 {
		t.Fatalf("the page's edit: status %q, %d images shown", shown.Status, shown.Images)
	}
	for _, want := range []string{`"denoising_strength": 0.6`, `"mask_blur": 0`, `"width": 64`} {
		if !strings.Contains(shown.Params, want) {
			t.Errorf("the page's parameters lack %s:\n%s", want, shown.Params)
		}
	}
	var jobs struct{ Jobs []jobSnapshot }
	var b []byte
	if get(t, hs.URL+"/rflow/v1/jobs", &jobs); len(jobs.Jobs) != 1 || len(jobs.Jobs[0].Images) != 1 ||
		get(t, hs.URL+jobs.Jobs[0].Images[0], &b) != 200 {
		t.Fatalf("jobs after the page's edit: %+v", jobs)
	}
	want := newLone(t).image(t, pipeline.Request{Prompt: "a blue square", Width: 64, Height: 64, Steps: 4, Seed: 9,
		InitImage: init, Mask: mask, Strength: 0.6})
	if !samePixels(decodePNG(t, b), want) {
		t.Error("the page's edit differs from the lone inpainting run of the same picture and mask")
	}
}
