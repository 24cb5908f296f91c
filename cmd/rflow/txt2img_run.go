package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// runTotals add up the timings of all runs for --timings.
type runTotals struct {
	Steps         int   `json:"steps"`
	TokenizeMS    int64 `json:"tokenize_ms"`
	EncodeMS      int64 `json:"encode_ms"`
	LoadMS        int64 `json:"load_ms"`
	DenoiseMS     int64 `json:"denoise_ms"`
	TransformerMS int64 `json:"transformer_ms"`
	SchedulerMS   int64 `json:"scheduler_ms"`
	DecodeMS      int64 `json:"decode_ms"`
	WriteMS       int64 `json:"write_ms"`
	TotalMS       int64 `json:"total_ms"`
	PeakRSSBytes  int64 `json:"peak_rss_bytes"`
	Images        int   `json:"images"`
}

func (t *runTotals) add(tm pipeline.Timings) {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	t.Steps += tm.Steps
	t.TokenizeMS += ms(tm.Tokenize)
	t.EncodeMS += ms(tm.Encode)
	t.LoadMS += ms(tm.Load)
	t.DenoiseMS += ms(tm.Denoise)
	t.TransformerMS += ms(tm.Transformer)
	t.SchedulerMS += ms(tm.Scheduler)
	t.DecodeMS += ms(tm.Decode)
	t.PeakRSSBytes = max(t.PeakRSSBytes, tm.PeakRSSBytes)
}

// runBatches runs --batch-count generations and writes every image as soon as its run finishes, so an
// interrupt loses only the run in progress.
func (f *txt2imgFlags) runBatches(ctx context.Context, p *pipeline.Pipeline, m *pipeline.Model, req pipeline.Request, log *reporter, out io.Writer) error {
	start := time.Now()
	var totals runTotals
	var preview *previewWriter
	if f.previewEvery > 0 {
		preview = &previewWriter{tmpl: f.previewPath, factor: m.VAE.ScaleFactor, log: log}
		req.OnPreview = preview.write
	}
	base := req.Seed
	var kept []string  // images written under a fallback name
	var writeErr error // the first write failure
	for run := 0; run < f.batchCount; run++ {
		req.Seed = base + uint64(run*req.BatchSize)
		if preview != nil { // previews show the run's first image
			preview.vars = imagefile.TemplateVars{Seed: req.Seed, Index: run * req.BatchSize, Prompt: req.Prompt, Steps: f.steps,
				Sampler: f.sampler, Width: f.width, Height: f.height, Model: m.Name}
		}
		res, err := p.Generate(ctx, req, log.progress(run, f.batchCount))
		log.done()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during run %d of %d; nothing of that run was written", run+1, f.batchCount)
			}
			return err
		}
		if run == 0 && req.NegativePrompt != "" && f.cfg == 0 && !negativeUsed(m, res.Settings) && m.Family != scheduler.FamilyFLUX {
			log.linef("rflow: warning: -n was not used: this model's default CFG scale is %s (no classifier-free guidance); pass --cfg-scale > 1",
				imagefile.FormatFloat(res.Settings.CFGScale))
		}
		totals.add(res.Timings)
		w := time.Now()
		for j, img := range res.Images {
			path, err := f.writeImage(m, req, res, run, j, img)
			var k *keptError
			switch {
			case errorsAs(err, &k):
				log.linef("rflow: %s; the image is kept as %s", oneLine(k.err.Error()), k.kept)
				kept = append(kept, k.kept)
				writeErr = cmp.Or(writeErr, k.err)
			case err != nil:
				return err
			default:
				log.linef("rflow: wrote %s", path)
			}
		}
		totals.WriteMS += time.Since(w).Milliseconds()
		totals.Images += len(res.Images)
	}
	totals.TotalMS = time.Since(start).Milliseconds()
	if err := f.writeTimings(totals, out); err != nil {
		return err
	}
	if len(kept) > 0 {
		return fmt.Errorf("%d of %d images could not be written where -o asked (%w); kept as %s", len(kept), totals.Images,
			writeErr, strings.Join(kept, ", "))
	}
	return nil
}

// keptError is a failed image write whose image was kept under another name.
type keptError struct {
	err  error
	kept string
}

func (e *keptError) Error() string { return fmt.Sprintf("%v (kept as %s)", e.err, e.kept) }
func (e *keptError) Unwrap() error { return e.err }

// imageSeed is the seed that reproduces image j of a run on its own: seed+j when each image has its own
// generator, else the run's seed (the image is then entry j of that seed's batch).
func imageSeed(res pipeline.Result, j int) uint64 {
	if res.Settings.BatchMode == "seed-per-image" {
		return res.Settings.Seed + uint64(j)
	}
	return res.Settings.Seed
}

func (f *txt2imgFlags) writeImage(m *pipeline.Model, req pipeline.Request, res pipeline.Result, run, j int, img image.Image) (string, error) {
	index := run*req.BatchSize + j
	tmpl := f.outputNames().tmpl
	s := res.Settings
	path, err := imagefile.ExpandTemplate(tmpl, imagefile.TemplateVars{Seed: imageSeed(res, j), Index: index, Prompt: req.Prompt,
		Steps: s.Steps, Sampler: s.Sampler, Width: s.Width, Height: s.Height, Model: m.Name})
	if err != nil {
		path = "image.png" // checked before the run, so not expected; the image is kept below
	}
	im := newImageMeta(m, s, req.Prompt, req.Prompt2, req.Prompt3, req.NegativePrompt, imageSeed(res, j))
	if s.BatchMode != "seed-per-image" {
		im.batchSize, im.batchPos = len(res.Images), j
	}
	params := im.params()
	settings, err := im.rflowJSON()
	if err != nil {
		return "", err
	}
	o := imagefile.WriteOptions{Overwrite: f.overwrite, RflowJSON: settings}
	err = imagefile.Write(path, img, params, o)
	if err == nil {
		if f.saveLatents {
			if err := f.writeLatents(m, req, res, j, path); err != nil {
				return "", err
			}
		}
		return path, nil
	}
	err = writeError(path, err)
	where, kerr := keepImage(path, img, params, o)
	if kerr != nil {
		return "", fmt.Errorf("%w; keeping the image elsewhere failed too: %w", err, kerr)
	}
	return "", &keptError{err: err, kept: where}
}

// latentsPath is where --save-latents writes an image's latents: beside it, extension .safetensors.
func latentsPath(imagePath string) string {
	return strings.TrimSuffix(imagePath, filepath.Ext(imagePath)) + ".safetensors"
}

// writeLatents writes image j's initial noise and final latents (--save-latents) as rflow batch does.
func (f *txt2imgFlags) writeLatents(m *pipeline.Model, req pipeline.Request, res pipeline.Result, j int, imagePath string) error {
	s := res.Settings
	sf := m.VAE.ScaleFactor
	h, w := s.Height/sf, s.Width/sf
	per := len(res.Latents) / len(res.Images)
	if h*w == 0 || per%(h*w) != 0 || len(res.Noise) != len(res.Latents) {
		return fmt.Errorf("--save-latents: %d latent values for %d images of %d×%d", len(res.Latents), len(res.Images), s.Width, s.Height)
	}
	path := latentsPath(imagePath)
	info := latentsInfo{seed: imageSeed(res, j), prompt: req.Prompt, negative: req.NegativePrompt}
	err := writeLatentsFile(path, m, s, info, []int{per / (h * w), h, w}, res.Noise[j*per:(j+1)*per], res.Latents[j*per:(j+1)*per])
	if err != nil {
		return fmt.Errorf("--save-latents %s: %w", path, err)
	}
	return nil
}

func (f *txt2imgFlags) writeTimings(t runTotals, out io.Writer) error {
	if f.timings == "" {
		return nil
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if f.timings == "-" {
		_, err = out.Write(data)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.timings), 0o777); err != nil {
		return fmt.Errorf("--timings: %w", err)
	}
	if err := os.WriteFile(f.timings, data, 0o644); err != nil {
		return fmt.Errorf("--timings: %w", err)
	}
	return nil
}
