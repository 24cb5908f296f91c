package server

import (
	"net/http"
	"strconv"
)

// jobRequest is POST /rflow/v1/jobs: the settings the web page sends.
type jobRequest struct {
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	Steps          int     `json:"steps"`
	CFGScale       float64 `json:"cfg_scale"` // SD3's; FLUX takes guidance and true_cfg_scale, as the CLI's flags
	Guidance       float64 `json:"guidance"`
	TrueCFGScale   float64 `json:"true_cfg_scale"`
	Sampler        string  `json:"sampler"`
	Scheduler      string  `json:"scheduler"`
	Seed           *int64  `json:"seed"`
	N              int     `json:"n"`
	OutputFormat   string  `json:"output_format"`
	// The edit fields, pictures in base64 (PNG or JPEG): init_image with strength is img2img; with a
	// mask (greyscale, white repaints) inpainting, or FLUX Fill on a Fill model; ref_images are FLUX
	// Kontext's reference pictures.
	InitImage             string   `json:"init_image"`
	Strength              *float64 `json:"strength"`
	Mask                  string   `json:"mask"`
	MaskBlur              float64  `json:"mask_blur"`
	InpaintFullRes        bool     `json:"inpaint_full_res"`
	InpaintFullResPadding *int     `json:"inpaint_full_res_padding"`
	RefImages             []string `json:"ref_images"`
	RefResize             string   `json:"ref_resize"`
	guidanceRequest                // rflow's extension fields
}

var jobFields = append([]string{"prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "guidance", "true_cfg_scale", "sampler",
	"scheduler", "seed", "n", "output_format", "init_image", "strength", "mask", "mask_blur", "inpaint_full_res",
	"inpaint_full_res_padding", "ref_images", "ref_resize"}, guidanceFields...)

// createJob admits an asynchronous job: 202 with its URL in Location and the body.
func (s *Server) createJob(w http.ResponseWriter, r *http.Request) {
	var req jobRequest
	if err := decodeStrict(r, &req, jobFields); err != nil {
		s.writeRequestError(w, err)
		return
	}
	p := params{Prompt: req.Prompt, Negative: req.NegativePrompt, Width: req.Width, Height: req.Height, Steps: req.Steps,
		CFGScale: req.CFGScale, Guidance: req.Guidance, TrueCFGScale: req.TrueCFGScale, Sampler: req.Sampler, Scheduler: req.Scheduler, Seed: -1, N: req.N,
		OutputFormat: "png"}
	if req.Seed != nil {
		p.Seed = *req.Seed
	}
	switch req.OutputFormat {
	case "", "png":
	case "jpeg", "jpg":
		p.OutputFormat = "jpeg"
	default:
		s.writeRequestError(w, badRequest("output_format %q: use png or jpeg", req.OutputFormat))
		return
	}
	var err error
	if p.Guide, err = s.guidance(req.guidanceRequest); err != nil {
		s.writeRequestError(w, err)
		return
	}
	if err := s.jobEdit(&p, req); err != nil {
		s.writeRequestError(w, err)
		return
	}
	if err := s.check(&p); err != nil {
		s.writeRequestError(w, err)
		return
	}
	j, err := s.start(s.base, s.task(&p), p, true)
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	w.Header().Set("Location", jobURL(j.id))
	sn := j.snapshot()
	writeJSON(w, http.StatusAccepted, map[string]any{"id": j.id, "url": jobURL(j.id), "status": sn.Status, "job": sn})
}

// jobEdit reads a job's edit fields as the CLI's flags: each names its picture's role, whatever the
// model (a mask of a Fill model is Fill; references on a model without Kontext are an error).
func (s *Server) jobEdit(p *params, req jobRequest) error {
	if req.InitImage != "" {
		img, err := fieldImage(req.InitImage, "init_image", s.o.MaxSide)
		if err != nil {
			return err
		}
		p.Init, p.Strength = img, 0.75
		if req.Mask != "" && s.m.FillModel() {
			p.Strength = 1
		}
		if req.Strength != nil {
			p.Strength = *req.Strength
		}
		if p.Width == 0 && p.Height == 0 {
			b := img.Bounds()
			p.Width, p.Height = max(16, b.Dx()/16*16), max(16, b.Dy()/16*16)
		}
	}
	switch {
	case req.Mask != "" && req.InitImage == "":
		return badRequest("mask needs init_image (the picture to repaint)")
	case req.Mask == "" && (req.MaskBlur != 0 || req.InpaintFullRes || req.InpaintFullResPadding != nil):
		return badRequest("mask_blur and inpaint_full_res need a mask")
	case req.Strength != nil && req.InitImage == "":
		return badRequest("strength needs init_image")
	case req.InpaintFullResPadding != nil && !req.InpaintFullRes:
		return badRequest("inpaint_full_res_padding needs inpaint_full_res")
	}
	if req.Mask != "" {
		m, err := fieldImage(req.Mask, "mask", s.o.MaxSide)
		if err != nil {
			return err
		}
		p.Edit.Mask, p.Edit.MaskBlur, p.Edit.FullRes, p.Edit.FullResPadding = m, req.MaskBlur, req.InpaintFullRes, 32
		if req.InpaintFullResPadding != nil {
			p.Edit.FullResPadding = *req.InpaintFullResPadding
		}
	}
	var err error
	if p.Edit.RefResize, err = refResize(req.RefResize); err != nil {
		return err
	}
	for i, b64 := range req.RefImages {
		img, err := fieldImage(b64, "ref_images["+strconv.Itoa(i)+"]", s.o.MaxSide)
		if err != nil {
			return err
		}
		p.Edit.Refs = append(p.Edit.Refs, img)
	}
	return nil
}

func (s *Server) jobOr404(w http.ResponseWriter, r *http.Request) *job {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		writeError(w, http.StatusNotFound, "no such job (finished jobs are kept for a while, then forgotten)")
	}
	return j
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	if j := s.jobOr404(w, r); j != nil {
		writeJSON(w, http.StatusOK, j.snapshot())
	}
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	out := []snapshot{}
	for _, j := range s.jobs.list() {
		out = append(out, j.snapshot())
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

// deleteJob cancels a job that has not ended; an ended one is left as it is.
func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) {
	j := s.jobOr404(w, r)
	if j == nil {
		return
	}
	j.cancel()
	<-j.done
	writeJSON(w, http.StatusOK, j.snapshot())
}

func (s *Server) jobPreview(w http.ResponseWriter, r *http.Request) {
	j := s.jobOr404(w, r)
	if j == nil {
		return
	}
	j.mu.Lock()
	b := j.preview
	j.mu.Unlock()
	if b == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeImage(w, b, "png")
}

func (s *Server) jobImage(w http.ResponseWriter, r *http.Request) {
	j := s.jobOr404(w, r)
	if j == nil {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil || n < 0 || n >= len(j.encoded) || j.encoded[n] == nil || j.state != stateSucceeded {
		writeError(w, http.StatusNotFound, "no such image (the job has not succeeded, or n is out of range)")
		return
	}
	writeImage(w, j.encoded[n], j.p.OutputFormat)
}

func writeImage(w http.ResponseWriter, b []byte, format string) {
	w.Header().Set("Content-Type", "image/"+format)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
