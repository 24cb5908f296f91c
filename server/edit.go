package server

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"mime/multipart"
	"strconv"

	"github.com/rflowrt/rflow/pipeline"
)

// editParams are an edit request's mask and reference pictures, in rflow's convention (the mask is
// greyscale, white repaints), whichever API they came from.
type editParams struct {
	Mask           image.Image
	MaskBlur       float64
	FullRes        bool
	FullResPadding int
	// Refs are FLUX Kontext's reference pictures, sized as RefResize says (rflow's ref_resize field:
	// kontext, the default, or none).
	Refs      []image.Image
	RefResize pipeline.RefResize
	// MaskInvert and Fill are A1111's inpainting_mask_invert and inpainting_fill, kept for its info
	// (Fill < 0: not given).
	MaskInvert bool
	Fill       int
}

// apply sets the edit fields of r.
func (e *editParams) apply(r *pipeline.Request) {
	if e.Mask != nil {
		r.Mask, r.MaskBlur = e.Mask, e.MaskBlur
		if e.FullRes {
			r.InpaintFullRes, r.InpaintFullResPadding = true, e.FullResPadding
		}
	}
	if len(e.Refs) > 0 {
		r.RefImages, r.RefResize = e.Refs, e.RefResize
	}
}

// refResize reads the ref_resize field ("" is Kontext's preferred resolutions).
func refResize(s string) (pipeline.RefResize, error) {
	switch mode := pipeline.RefResize(s); mode {
	case "", pipeline.RefResizeKontext, pipeline.RefResizeNone:
		return mode, nil
	}
	return "", badRequest("ref_resize %q: use kontext (Kontext's preferred resolutions, as diffusers) or none (the picture's own size)", s)
}

// task is the job kind p asks of the server's model: fill, inpaint, kontext, img2img or txt2img.
func (s *Server) task(p *params) string {
	switch {
	case p.Edit.Mask != nil && s.m.FillModel():
		return pipeline.TaskFill
	case p.Edit.Mask != nil:
		return pipeline.TaskInpaint
	case len(p.Edit.Refs) > 0:
		return pipeline.TaskKontext
	case p.Init != nil:
		return pipeline.TaskImg2Img
	}
	return pipeline.TaskTxt2Img
}

// useImages places an edit endpoint's pictures by the model it serves. On FLUX Kontext they are all
// reference pictures; with a mask the first is the picture repainted and the others its references,
// or itself its reference when alone (diffusers' FluxKontextInpaintPipeline conditions on image when
// image_reference is not given). Elsewhere there is one picture, repainted under the mask if there is
// one (FLUX Fill: its masked-picture input). strengthSet says whether the client chose the strength:
// Fill's default is 1 (diffusers' FluxFillPipeline), and a Kontext reference edit starts from noise.
func (s *Server) useImages(p *params, images []image.Image, mask image.Image, strengthSet bool) error {
	if len(images) == 0 {
		return badRequest("send the picture to edit")
	}
	switch {
	case s.m.KontextModel():
		p.Edit.Refs = images
		if mask != nil {
			p.Init = images[0]
			if len(images) > 1 {
				p.Edit.Refs = images[1:]
			}
		}
	case len(images) > 1:
		return badRequest("%d images sent: several images are FLUX Kontext reference pictures (model_index.json class "+
			"FluxKontextPipeline), and %s is not a Kontext model; send one image", len(images), s.m.Name)
	default:
		p.Init = images[0]
	}
	p.Edit.Mask = mask
	if mask != nil && s.m.FillModel() && !strengthSet {
		p.Strength = 1
	}
	if p.Init == nil && strengthSet {
		p.Notes = append(p.Notes, "strength (denoising_strength) ignored: a Kontext reference edit starts from noise, as txt2img")
	}
	if p.Width == 0 && p.Height == 0 { // the picture's size, rounded down to the model's multiple of 16
		b := images[0].Bounds()
		p.Width, p.Height = max(16, b.Dx()/16*16), max(16, b.Dy()/16*16)
	}
	return nil
}

// openAIMask turns an OpenAI mask, whose fully transparent pixels (alpha 0) mark what to edit, into
// rflow's: white where alpha is 0, black elsewhere.
func openAIMask(img image.Image) (*image.Gray, error) {
	b := img.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	edit := false
	for y := range b.Dy() {
		for x := range b.Dx() {
			if _, _, _, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA(); a == 0 {
				g.Pix[y*g.Stride+x], edit = 255, true
			}
		}
	}
	if !edit {
		return nil, badRequest("mask: no fully transparent pixel, so nothing to edit (an OpenAI mask is a PNG whose " +
			"transparent pixels, alpha 0, mark what to repaint; opaque pixels are kept)")
	}
	return g, nil
}

// a1111Mask reads an A1111 mask as its create_binary_mask does: a mask with any transparency is its
// alpha channel (alpha > 128 repaints), else its grey levels (white repaints). invert swaps repaint and
// keep (inpainting_mask_invert). A coloured mask is passed on as it is, for the pipeline to refuse.
func a1111Mask(img image.Image, invert bool) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	px := make([]color.NRGBA, 0, w*h)
	alpha, grey := false, true
	for y := range h {
		for x := range w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			alpha = alpha || c.A != 255
			grey = grey && c.R == c.G && c.G == c.B
			px = append(px, c)
		}
	}
	if !alpha && (!invert || !grey) {
		return img
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i, c := range px {
		v := c.R
		if alpha {
			v = 0
			if c.A > 128 {
				v = 255
			}
		}
		if invert {
			v = 255 - v
		}
		g.Pix[i] = v
	}
	return g
}

// formImage reads an uploaded PNG or JPEG, naming the field in its error.
func formImage(fh *multipart.FileHeader, field string, maxSide int) (image.Image, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, badRequest("%s: %v", field, err)
	}
	defer f.Close()
	img, err := readImage(f, maxSide)
	if err != nil {
		return nil, badRequest("%s: %v", field, err)
	}
	return img, nil
}

// fieldImage reads a base64 PNG or JPEG, naming the field in its error.
func fieldImage(s, field string, maxSide int) (image.Image, error) {
	img, err := decodeImage(s, maxSide)
	if err != nil {
		return nil, badRequest("%s: %v", field, err)
	}
	return img, nil
}

// flexNumber is a JSON number that clients also send as a boolean (A1111's pydantic models take
// inpaint_full_res: true and inpainting_mask_invert: 1 alike).
type flexNumber float64

func (f *flexNumber) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*f = 1
		return nil
	case "false", "null":
		*f = 0
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a number or a boolean, got %s", b)
	}
	*f = flexNumber(v)
	return nil
}

// numOr is *f, or def when the field was not sent.
func numOr(f *flexNumber, def float64) float64 {
	if f == nil {
		return def
	}
	return float64(*f)
}

// inpaintingFills are A1111's inpainting_fill choices ("Masked content").
var inpaintingFills = []string{"fill", "original", "latent noise", "latent nothing"}

// editInfo are the infotext entries A1111 writes for an img2img or inpaint run.
func editInfo(p *params, st pipeline.Resolved) [][2]string {
	var kv [][2]string
	if p.Init != nil {
		kv = append(kv, [2]string{"Denoising strength", strconv.FormatFloat(st.Strength, 'g', -1, 64)})
	}
	e := &p.Edit
	if e.Mask != nil {
		kv = append(kv, [2]string{"Mask blur", strconv.FormatFloat(e.MaskBlur, 'g', -1, 64)})
		if e.FullRes {
			kv = append(kv, [2]string{"Inpaint area", "Only masked"}, [2]string{"Masked area padding", strconv.Itoa(e.FullResPadding)})
		}
		if e.MaskInvert {
			kv = append(kv, [2]string{"Mask mode", "Inpaint not masked"})
		}
		kv = append(kv, [2]string{"Masked content", "original"})
	}
	if len(e.Refs) > 0 {
		kv = append(kv, [2]string{"Reference images", strconv.Itoa(len(e.Refs))})
	}
	return kv
}

// editParamsOut are the edit settings as the APIs echo them (no image data).
func editParamsOut(p *params, out map[string]any) {
	e := &p.Edit
	if e.Mask != nil {
		out["mask_blur"], out["inpaint_full_res"] = e.MaskBlur, e.FullRes
		if e.FullRes {
			out["inpaint_full_res_padding"] = e.FullResPadding
		}
		if e.MaskInvert {
			out["inpainting_mask_invert"] = 1
		}
		out["inpainting_fill"] = 1
	}
	if len(e.Refs) > 0 {
		out["ref_images"] = len(e.Refs)
	}
}
