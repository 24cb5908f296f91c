package main

import (
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/internal/rng"
)

// outputNames names txt2img's images from -o: the template, with "-{index}" added before the
// extension when several images come from a template without placeholders.
type outputNames struct {
	flag, tmpl string
	images     int
	overwrite  bool
}

func (f *txt2imgFlags) outputNames() outputNames {
	n := outputNames{flag: f.out, tmpl: f.out, images: f.batchCount * f.batchSize, overwrite: f.overwrite}
	if n.images > 1 && !strings.Contains(n.tmpl, "{") {
		ext := filepath.Ext(n.tmpl)
		n.tmpl = strings.TrimSuffix(n.tmpl, ext) + "-{index}" + ext
	}
	return n
}

// imageSeedAt is the seed that reproduces image index of the whole invocation on its own: base+index
// with a generator per image; with one generator per run, the run's seed (the image is then entry
// index mod batch-size of that seed's batch).
func imageSeedAt(base uint64, index, batchSize int, mode rng.BatchMode) uint64 {
	if mode == rng.SeedPerImage {
		return base + uint64(index)
	}
	return base + uint64(index/batchSize*batchSize)
}

// outputProblem is a path problem found before the work; usage says whether it is a mistake in the
// command line (template, extension) rather than in the file system.
type outputProblem struct {
	err   error
	usage bool
}

func (p *outputProblem) Error() string { return p.err.Error() }
func (p *outputProblem) Unwrap() error { return p.err }

// check finds every problem of the output names that can be found before a model loads: the
// template's syntax, extensions, two images given one name, existing files (without --overwrite),
// and folders that cannot be created or written. vars gives the values known so far; known says
// which placeholders they fill (a name using another one is checked only for its folder and
// extension, and again when it is written).
func (n outputNames) check(vars func(index int) imagefile.TemplateVars, known func(field string) bool) error {
	fields, err := imagefile.TemplateFields(n.tmpl, false)
	if err != nil {
		return &outputProblem{fmt.Errorf("-o %s: %w", n.flag, err), true}
	}
	complete := true
	for _, fl := range fields {
		complete = complete && known(fl)
	}
	seen := map[string]int{}
	dirs := map[string]bool{}
	for i := range n.images {
		path, err := imagefile.ExpandTemplate(n.tmpl, vars(i))
		if err != nil {
			return &outputProblem{fmt.Errorf("-o %s: %w", n.flag, err), true}
		}
		if _, err := imagefile.FormatForPath(path); err != nil {
			return &outputProblem{fmt.Errorf("-o %s: %w", n.flag, err), true}
		}
		if !complete {
			if i == 0 {
				if err := imagefile.CheckOutput(path, imagefile.WriteOptions{Overwrite: true}); err != nil {
					return &outputProblem{fmt.Errorf("-o %s: %w", n.flag, err), false}
				}
			}
			continue
		}
		if j, dup := seen[path]; dup {
			return &outputProblem{fmt.Errorf("-o %s names images %d and %d both %s: add {index} or {seed} to it", n.flag, j, i, path), true}
		}
		seen[path] = i
		if !dirs[filepath.Dir(path)] {
			dirs[filepath.Dir(path)] = true
			if err := imagefile.CheckOutput(path, imagefile.WriteOptions{Overwrite: true}); err != nil {
				return &outputProblem{fmt.Errorf("-o %s: %w", n.flag, err), false}
			}
		}
		if !n.overwrite {
			if _, err := os.Lstat(path); err == nil {
				return &outputProblem{existsError(path), false}
			}
		}
	}
	return nil
}

// existsError is the CLI's word for an output file that is already there.
func existsError(path string) error {
	return fmt.Errorf("%s already exists; pass --overwrite to replace it, or name another file with -o: %w", path, fs.ErrExist)
}

// writeError adds the CLI's advice to an imagefile write error.
func writeError(path string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return existsError(path)
	}
	return err
}

// keepImage writes an image that could not go where it was asked into the temporary directory, else
// the working directory, under a new name, as PNG, and returns where it went.
func keepImage(wanted string, img image.Image, params imagefile.Params, o imagefile.WriteOptions) (string, error) {
	base := strings.TrimSuffix(filepath.Base(wanted), filepath.Ext(wanted))
	if base == "" || base == "." || base == string(filepath.Separator) {
		base = "image"
	}
	o.Format, o.Overwrite = imagefile.PNG, false
	var errs []error
	for _, dir := range fallbackDirs() {
		for k := range 100 {
			name := fmt.Sprintf("rflow-kept-%s-%s", base, time.Now().Format("20060102-150405"))
			if k > 0 {
				name += fmt.Sprintf("-%d", k)
			}
			path := filepath.Join(dir, name+".png")
			err := imagefile.Write(path, img, params, o)
			if err == nil {
				return path, nil
			}
			if !errors.Is(err, fs.ErrExist) {
				errs = append(errs, err)
				break
			}
		}
	}
	return "", errors.Join(errs...)
}

func fallbackDirs() []string {
	dirs := []string{os.TempDir()}
	if wd, err := os.Getwd(); err == nil && !slices.Contains(dirs, wd) {
		dirs = append(dirs, wd)
	}
	return dirs
}
