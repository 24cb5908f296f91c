package main

import (
	"fmt"
	"github.com/rflowrt/rflow/batch"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/internal/safetensors"
	"github.com/rflowrt/rflow/pipeline"
)

// batchWriter stores a batch item's image (and latents) in the output folder, named after its id.
type batchWriter struct {
	dir         string
	model       *pipeline.Model
	saveLatents bool
}

// present reports whether the files an item's success record names exist (and, with --save-latents,
// its latents file too).
func (w *batchWriter) present(it batch.Item, rec batch.Record) bool {
	names := []string{rec.Path}
	if w.saveLatents {
		names = append(names, rec.Latents)
	}
	for _, n := range names {
		if n == "" {
			return false
		}
		if st, err := os.Stat(filepath.Join(w.dir, n)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// write stores the latents (first) and the image, each atomically (temporary file, fsync, rename over
// any earlier copy: a crash between writing the image and recording it leaves an image that the next run
// redraws bit for bit).
func (w *batchWriter) write(it batch.Item, out batch.ItemOutput) (batch.ItemFiles, error) {
	var files batch.ItemFiles
	w.removeStaleTemps(it.ID)
	if w.saveLatents {
		files.Latents = it.ID + ".safetensors"
		if err := w.writeLatents(filepath.Join(w.dir, files.Latents), it, out); err != nil {
			return files, err
		}
	}
	files.Image = it.ID + ".png"
	im := newImageMeta(w.model, out.Settings, it.Prompt, "", "", it.NegativePrompt, it.Seed)
	im.id = it.ID
	params := im.params()
	settings, err := im.rflowJSON()
	if err != nil {
		return files, err
	}
	err = imagefile.Write(filepath.Join(w.dir, files.Image), out.Image, params,
		imagefile.WriteOptions{Overwrite: true, RflowJSON: settings})
	return files, err
}

// removeStaleTemps removes temporary files an earlier, killed run left for this item (".<id>.png.*.tmp",
// ".<id>.safetensors.*.tmp"). Items belong to one shard, so no other process writes these names.
func (w *batchWriter) removeStaleTemps(id string) {
	for _, base := range []string{id + ".png", id + ".safetensors"} {
		if len(base) > 64 { // imagefile shortens long temporary names; leave those alone
			continue
		}
		stale, _ := filepath.Glob(filepath.Join(w.dir, "."+base+".*.tmp"))
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
}

// writeLatents writes the (noise, latent) coupling as safetensors: F32 [C, H, W] each.
func (w *batchWriter) writeLatents(path string, it batch.Item, out batch.ItemOutput) error {
	return writeLatentsFile(path, w.model, out.Settings, latentsInfo{id: it.ID, seed: it.Seed, prompt: it.Prompt,
		negative: it.NegativePrompt}, []int{out.C, out.H, out.W}, out.Noise, out.Latent)
}

// latentsInfo names the image a latents file belongs to.
type latentsInfo struct {
	id               string // batch items only
	seed             uint64
	prompt, negative string
}

// writeLatentsFile writes one image's (noise, latent) coupling, shape [C, H, W] each in model space,
// as safetensors tensors "noise" and "latent" with the settings as metadata (rflow batch and rflow
// txt2img --save-latents).
func writeLatentsFile(path string, m *pipeline.Model, s pipeline.Resolved, info latentsInfo, shape []int, noise, latent []float32) error {
	meta := map[string]string{"seed": strconv.FormatUint(info.seed, 10), "prompt": info.prompt,
		"negative_prompt": info.negative, "model": m.Name, "family": string(m.Family),
		"sampler": s.Sampler, "scheduler": s.Scheduler, "steps": strconv.Itoa(s.Steps),
		"rng": s.RNG, "space": "model (before the VAE's unscaling)", "rflow_version": versionString()}
	if info.id != "" {
		meta["id"] = info.id
	}
	return safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.F32("noise", shape, noise), safetensors.F32("latent", shape, latent)}, meta)
}

// itemProgress shows a tqdm-style bar over items on a terminal, plain lines otherwise, nothing with
// --quiet.
type itemProgress struct {
	rep   *reporter
	bar   *tqdmBar
	start time.Time
}

func newItemProgress(rep *reporter, total int) *itemProgress {
	p := &itemProgress{rep: rep, start: time.Now()}
	if rep.tty && !rep.quiet && total > 0 {
		p.bar = newTqdmBar(rep.w, "batch", "img", total, rep.now)
	}
	return p
}

func (p *itemProgress) item(ev batch.Progress) {
	if p.rep.quiet {
		return
	}
	if p.bar != nil {
		if ev.Err != nil {
			p.bar.clear()
			fmt.Fprintf(p.rep.w, "item %s failed: %s\n", ev.Item.ID, oneLine(ev.Err.Error()))
		}
		p.bar.set(ev.Done)
		return
	}
	msg := ev.Status
	if ev.Err != nil {
		msg = "failed: " + oneLine(ev.Err.Error())
	}
	fmt.Fprintf(p.rep.w, "batch: %d/%d %s %s (%.1fs)\n", ev.Done, ev.Total, ev.Item.ID, msg, time.Since(p.start).Seconds())
}

func (p *itemProgress) finish() {
	if p.bar != nil {
		p.bar.finish()
	}
}
