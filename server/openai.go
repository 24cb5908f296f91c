package server

import (
	"encoding/base64"
	"errors"
	"image"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// openAIRequest is POST /v1/images/generations. seed, steps, negative_prompt, sampler, scheduler,
// cfg_scale (SD3's), guidance and true_cfg_scale (FLUX's) are rflow's additions, named as the CLI's flags.
type openAIRequest struct {
	Prompt         string   `json:"prompt"`
	N              int      `json:"n"`
	Size           string   `json:"size"`
	ResponseFormat string   `json:"response_format"`
	OutputFormat   string   `json:"output_format"`
	Model          string   `json:"model"`
	Seed           *int64   `json:"seed"`
	Steps          int      `json:"steps"`
	NegativePrompt string   `json:"negative_prompt"`
	Sampler        string   `json:"sampler"`
	Scheduler      string   `json:"scheduler"`
	CFGScale       float64  `json:"cfg_scale"`
	Guidance       float64  `json:"guidance"`
	TrueCFGScale   float64  `json:"true_cfg_scale"`
	Strength       *float64 `json:"strength"`

	guidanceRequest // rflow's extension fields
}

// openAIFields are the fields accepted; quality, style, user, background, moderation,
// output_compression and input_fidelity are OpenAI's and ignored.
var openAIFields = append([]string{"prompt", "n", "size", "response_format", "output_format", "model", "seed", "steps",
	"negative_prompt", "sampler", "scheduler", "cfg_scale", "guidance", "true_cfg_scale", "strength", "quality", "style", "user", "background", "moderation",
	"output_compression", "input_fidelity", "ref_resize"}, guidanceFields...)

func (s *Server) openAIModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{
		{"id": s.m.Name, "object": "model", "created": 0, "owned_by": "rflow"}}})
}

// openAIParams turns the request into params, checking what OpenAI's API fixes.
func (s *Server) openAIParams(req openAIRequest) (params, error) {
	p := params{Prompt: req.Prompt, N: req.N, Steps: req.Steps, Negative: req.NegativePrompt, Sampler: req.Sampler,
		Scheduler: req.Scheduler, CFGScale: req.CFGScale, Guidance: req.Guidance, TrueCFGScale: req.TrueCFGScale, Seed: -1}
	if req.N == 0 {
		p.N = 1
	}
	if req.Seed != nil {
		p.Seed = *req.Seed
	}
	var err error
	if p.Width, p.Height, err = parseSize(req.Size); err != nil {
		return p, err
	}
	if p.Guide, err = s.guidance(req.guidanceRequest); err != nil {
		return p, err
	}
	switch req.ResponseFormat {
	case "", "b64_json", "url":
	default:
		return p, badRequest("response_format %q: use b64_json or url", req.ResponseFormat)
	}
	switch req.OutputFormat {
	case "", "png":
		p.OutputFormat = "png"
	case "jpeg", "jpg":
		p.OutputFormat = "jpeg"
	default:
		return p, badRequest("output_format %q: use png or jpeg", req.OutputFormat)
	}
	if req.Model != "" && req.Model != s.m.Name {
		p.Notes = append(p.Notes, "model "+strconv.Quote(req.Model)+" ignored: this server serves "+s.m.Name)
	}
	p.Strength = 0.75
	if req.Strength != nil {
		p.Strength = *req.Strength
	}
	return p, nil
}

func (s *Server) openAIGenerations(w http.ResponseWriter, r *http.Request) {
	var req openAIRequest
	if err := decodeStrict(r, &req, openAIFields); err != nil {
		s.writeRequestError(w, err)
		return
	}
	p, err := s.openAIParams(req)
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	s.openAIRun(w, r, "txt2img", p, req.ResponseFormat == "url")
}

// openAIEdits is POST /v1/images/edits: multipart/form-data (image or image[], mask, prompt, n, size,
// response_format, output_format, and rflow's strength, seed, steps, ref_resize), as OpenAI's clients send it. The
// mask's transparent pixels mark what to repaint (OpenAI's convention); without a mask, the first image's own
// transparent pixels do, when it has any (else the whole picture is redrawn: img2img). useImages says which
// task the model makes of it: Fill, Kontext references, inpainting or img2img.
func (s *Server) openAIEdits(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeRequestError(w, &tooLarge{limit: mbe.Limit})
			return
		}
		s.writeRequestError(w, badRequest("images/edits takes multipart/form-data: %v", err))
		return
	}
	defer r.MultipartForm.RemoveAll()
	for k := range r.MultipartForm.Value {
		if !contains(openAIFields, k) {
			s.writeRequestError(w, badRequest("unknown field %q", k))
			return
		}
	}
	var images []image.Image
	for _, field := range []string{"image", "image[]"} {
		for _, fh := range r.MultipartForm.File[field] {
			img, err := formImage(fh, field, s.o.MaxSide)
			if err != nil {
				s.writeRequestError(w, err)
				return
			}
			images = append(images, img)
		}
	}
	if len(images) == 0 {
		s.writeRequestError(w, badRequest("send the picture to edit as the file field image"))
		return
	}
	var mask image.Image
	if masks := r.MultipartForm.File["mask"]; len(masks) > 0 {
		m, err := formImage(masks[0], "mask", s.o.MaxSide)
		if err == nil {
			mask, err = openAIMask(m)
		}
		if err != nil {
			s.writeRequestError(w, err)
			return
		}
	}
	alphaMask := false
	if mask == nil { // OpenAI: without a mask, the picture's own fully transparent pixels are what to edit
		if m, err := openAIMask(images[0]); err == nil {
			mask, alphaMask = m, true
		}
	}
	v := r.MultipartForm.Value
	get := func(k string) string {
		if vs := v[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	req := openAIRequest{Prompt: get("prompt"), Size: get("size"), ResponseFormat: get("response_format"),
		OutputFormat: get("output_format"), Model: get("model"), NegativePrompt: get("negative_prompt"), Sampler: get("sampler"),
		Scheduler: get("scheduler")}
	for _, num := range []struct {
		k   string
		dst any
	}{{"n", &req.N}, {"steps", &req.Steps}, {"cfg_scale", &req.CFGScale}, {"guidance", &req.Guidance},
		{"true_cfg_scale", &req.TrueCFGScale}, {"seed", &req.Seed}, {"strength", &req.Strength}} {
		if err := formNumber(get(num.k), num.dst); err != nil {
			s.writeRequestError(w, badRequest("%s: %v", num.k, err))
			return
		}
	}
	g, err := formGuidance(get, func(k string) bool { return len(v[k]) > 0 })
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	req.guidanceRequest = g
	p, err := s.openAIParams(req)
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	if alphaMask {
		p.Notes = append(p.Notes, "no mask sent: the image's fully transparent pixels (alpha 0) are repainted, as OpenAI reads them")
	}
	if p.Edit.RefResize, err = refResize(get("ref_resize")); err != nil {
		s.writeRequestError(w, err)
		return
	}
	// OpenAI keeps the image's size (useImages rounds it to the model's multiple of 16).
	if err := s.useImages(&p, images, mask, req.Strength != nil); err != nil {
		s.writeRequestError(w, err)
		return
	}
	s.openAIRun(w, r, s.task(&p), p, req.ResponseFormat == "url")
}

// formNumber parses a form value into *int, *float64, **int64 or **float64 ("" leaves it).
func formNumber(s string, dst any) error {
	if s == "" {
		return nil
	}
	switch d := dst.(type) {
	case *int:
		v, err := strconv.Atoi(s)
		*d = v
		return err
	case *float64:
		v, err := strconv.ParseFloat(s, 64)
		*d = v
		return err
	case **int64:
		v, err := strconv.ParseInt(s, 10, 64)
		*d = &v
		return err
	case **float64:
		v, err := strconv.ParseFloat(s, 64)
		*d = &v
		return err
	}
	return errors.New("unsupported field type")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// openAIRun checks, runs and answers {created, data: [{b64_json | url, revised_prompt}]}.
func (s *Server) openAIRun(w http.ResponseWriter, r *http.Request, kind string, p params, asURL bool) {
	if err := s.check(&p); err != nil {
		s.writeRequestError(w, err)
		return
	}
	j, err := s.start(r.Context(), kind, p, asURL)
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	if err := s.wait(r.Context(), j); err != nil {
		if r.Context().Err() != nil {
			return // the client left; its job is cancelled
		}
		s.writeJobError(w, err)
		return
	}
	var data []map[string]any
	for i, b := range j.encoded {
		d := map[string]any{"revised_prompt": p.Prompt}
		if asURL {
			d["url"] = baseURL(r) + jobURL(j.id) + "/images/" + strconv.Itoa(i)
		} else {
			d["b64_json"] = base64.StdEncoding.EncodeToString(b)
		}
		data = append(data, d)
	}
	out := map[string]any{"created": time.Now().Unix(), "data": data, "output_format": p.OutputFormat,
		"size": strconv.Itoa(j.settings[0].Width) + "x" + strconv.Itoa(j.settings[0].Height)}
	j.mu.Lock()
	notes := append(append([]string{}, p.Notes...), j.warnings...)
	j.mu.Unlock()
	if len(notes) > 0 {
		out["notes"] = notes
	}
	writeJSON(w, http.StatusOK, out)
}

// baseURL is the scheme and host the client reached, for absolute image URLs.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if strings.ContainsAny(host, "/\\ \"<>") || host == "" {
		host = "127.0.0.1"
	}
	return scheme + "://" + host
}
