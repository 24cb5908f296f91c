package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // manifests' pictures are PNG or JPEG
	_ "image/png"
	"io"
	"os"
	"path/filepath"

	"github.com/rflowrt/rflow/pipeline"
)

// ErrInput is wrapped by ResolveInputs' errors: an item's picture file that cannot be read.
var ErrInput = errors.New("manifest input")

// ResolveInputs joins the items' relative picture paths (init_image, mask, ref_images) to dir, the
// manifest's folder, and records each file's content hash in InputSHA256 (each file is read once,
// however many items name it). An item whose files were already resolved is left as it is.
func ResolveInputs(items []Item, dir string) error {
	sums := map[string]string{}
	hash := func(it *Item, field string, path *string) error {
		if !filepath.IsAbs(*path) {
			*path = filepath.Join(dir, *path)
		}
		sum, ok := sums[*path]
		if !ok {
			var err error
			if sum, err = fileSHA256(*path); err != nil {
				return fmt.Errorf("%w: item %s: %s: %w", ErrInput, it.ID, field, err)
			}
			sums[*path] = sum
		}
		it.InputSHA256[field] = sum
		return nil
	}
	for i := range items {
		it := &items[i]
		if !it.Edits() || it.InputSHA256 != nil {
			continue
		}
		it.InputSHA256 = map[string]string{}
		it.RefImages = append([]string(nil), it.RefImages...) // items expanded from one entry share the slice
		if it.InitImage != "" {
			if err := hash(it, "init_image", &it.InitImage); err != nil {
				return err
			}
		}
		if it.Mask != "" {
			if err := hash(it, "mask", &it.Mask); err != nil {
				return err
			}
		}
		for k := range it.RefImages {
			if err := hash(it, fmt.Sprintf("ref_images[%d]", k), &it.RefImages[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// editRequest sets r's edit inputs from an edit item, reading its pictures. fill says the model is
// FLUX Fill, whose masked runs start from noise by default (diffusers' strength 1).
func editRequest(r *pipeline.Request, it Item, fill bool) error {
	if it.Edits() && it.InputSHA256 == nil {
		return fmt.Errorf("item %s: batch: the item's pictures were not resolved (ResolveInputs)", it.ID)
	}
	var err error
	if it.InitImage != "" {
		if r.InitImage, err = readPicture("init_image", it.InitImage); err != nil {
			return err
		}
		r.Strength = it.Strength
		if r.Strength == 0 {
			r.Strength = 0.75 // rflow txt2img's --strength default
			if fill && it.Mask != "" {
				r.Strength = 1
			}
		}
	}
	if it.Mask != "" {
		if r.Mask, err = readPicture("mask", it.Mask); err != nil {
			return err
		}
		r.MaskBlur = it.MaskBlur
	}
	for k, p := range it.RefImages {
		img, err := readPicture(fmt.Sprintf("ref_images[%d]", k), p)
		if err != nil {
			return err
		}
		r.RefImages = append(r.RefImages, img)
	}
	return nil
}

// readPicture reads a PNG or JPEG an item names.
func readPicture(field, path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: not a PNG or JPEG image: %w", field, path, err)
	}
	return img, nil
}
