package main

import (
	"errors"
	"fmt"
	"image"
	"os"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/pipeline"
)

// editFlags are txt2img's inpainting, Fill and Kontext flags.
type editFlags struct {
	mask      string
	maskBlur  float64
	noOverlay bool
	fullRes   bool
	padding   int
	refImages []string
	refResize string
}

func addEditFlags(fs *pflag.FlagSet) *editFlags {
	e := &editFlags{}
	fs.StringVar(&e.mask, "mask", "", "inpainting: a greyscale mask (PNG or JPEG) of the init image, white = repaint, black = keep; with a FLUX Fill model the mask and masked image are its inputs (use --strength 1, the default there)")
	fs.Float64Var(&e.maskBlur, "mask-blur", 0, "inpainting: blur the mask first (Gaussian radius in pixels, A1111's mask blur)")
	fs.BoolVar(&e.noOverlay, "no-mask-overlay", false, "inpainting: keep the decoded picture as drawn (by default it is pasted over the init image through the mask, so black keeps the original pixels)")
	fs.BoolVar(&e.fullRes, "inpaint-full-res", false, "inpainting: draw only the mask's rectangle (grown by --inpaint-full-res-padding and to the output's aspect ratio) at -W×-H and paste it back into the init image, whose size the result keeps (A1111's \"only masked\", diffusers' padding_mask_crop)")
	fs.IntVar(&e.padding, "inpaint-full-res-padding", 32, "inpainting: pixels added around the mask's rectangle with --inpaint-full-res")
	fs.StringArrayVar(&e.refImages, "ref-image", nil, "FLUX Kontext: a reference picture (PNG or JPEG); repeat for several")
	fs.StringVar(&e.refResize, "ref-resize", string(pipeline.RefResizeKontext), "FLUX Kontext: kontext (fit each reference to Kontext's preferred resolution nearest its aspect ratio, as diffusers) or none (keep its size, cut to multiples of 16)")
	return e
}

// apply reads the mask and reference images into r (after the init image is read).
func (e *editFlags) apply(fs *pflag.FlagSet, r *pipeline.Request) error {
	if e.mask != "" {
		if r.InitImage == nil {
			return errors.New("--mask needs --init-image (the picture to repaint)")
		}
		img, err := readPicture("--mask", e.mask)
		if err != nil {
			return err
		}
		r.Mask, r.MaskBlur, r.NoOverlay = img, e.maskBlur, e.noOverlay
		if e.fullRes {
			r.InpaintFullRes, r.InpaintFullResPadding = true, e.padding
		} else if fs.Changed("inpaint-full-res-padding") {
			return errors.New("--inpaint-full-res-padding needs --inpaint-full-res")
		}
	} else {
		for _, name := range []string{"mask-blur", "no-mask-overlay", "inpaint-full-res", "inpaint-full-res-padding"} {
			if fs.Changed(name) {
				return fmt.Errorf("--%s needs --mask", name)
			}
		}
	}
	for _, path := range e.refImages {
		img, err := readPicture("--ref-image", path)
		if err != nil {
			return err
		}
		r.RefImages = append(r.RefImages, img)
	}
	switch mode := pipeline.RefResize(e.refResize); mode {
	case pipeline.RefResizeKontext, pipeline.RefResizeNone:
		r.RefResize = mode
	default:
		return fmt.Errorf("--ref-resize %q: want kontext or none", e.refResize)
	}
	if len(e.refImages) == 0 && fs.Changed("ref-resize") {
		return errors.New("--ref-resize needs --ref-image")
	}
	return nil
}

// editDefaults applies the model's own defaults once it is open: FLUX Fill starts from noise
// (diffusers' strength 1.0) unless --strength says otherwise.
func editDefaults(fs *pflag.FlagSet, m *pipeline.Model, r *pipeline.Request) {
	if m.FillModel() && r.Mask != nil && !fs.Changed("strength") {
		r.Strength = 1
	}
}

// readPicture reads a PNG or JPEG for the flag that names it.
func readPicture(flag, path string) (image.Image, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer fh.Close()
	img, _, err := image.Decode(fh)
	if err != nil {
		return nil, fmt.Errorf("%s %s: not a PNG or JPEG image: %w", flag, path, err)
	}
	return img, nil
}
