package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // init images may be JPEG
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// params are one request's generation settings, whichever API they came from.
type params struct {
	Prompt, Negative string
	Width, Height    int
	Steps            int
	// CFGScale is SD3's CFG scale, Guidance FLUX-dev's distilled guidance and TrueCFGScale FLUX's true
	// CFG scale (pipeline.Request's fields; 0: the model's default).
	CFGScale, Guidance, TrueCFGScale float64
	// names spell the guidance fields as the request's API does, for notes and errors; flux: the model
	// is FLUX (set by check).
	names        guidanceNames
	flux         bool
	Sampler      string
	Scheduler    string
	Seed         int64 // < 0: random
	N            int
	Init         image.Image
	Strength     float64
	Notes        []string // what the server ignored or changed, for the response's info
	OutputFormat string   // png or jpeg
	Edit         editParams
	LoRAHashes   string // A1111's "Lora hashes" of the LoRAs loaded at start ("" with none)
	Guide        guidanceParams
}

// requestError is a client mistake: 400 with its message.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, a ...any) error { return &requestError{fmt.Sprintf(format, a...)} }

// check applies the server's limits before any work and resolves names; then the engine checks the
// request as Generate would.
func (s *Server) check(p *params) error {
	o := s.o
	if p.N == 0 {
		p.N = 1
	}
	if err := s.useLoRATags(p); err != nil {
		return err
	}
	p.flux = s.flux()
	if err := checkGuidanceValues(p); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(p.Prompt) == "" && p.Init == nil && len(p.Edit.Refs) == 0:
		return badRequest("prompt is empty")
	case len(p.Prompt) > 20000 || len(p.Negative) > 20000:
		return badRequest("prompt longer than 20000 bytes")
	case p.N < 1 || p.N > o.MaxImages:
		return badRequest("n/batch_size %d out of range: 1 to %d images per request", p.N, o.MaxImages)
	case p.Width < 0 || p.Width > o.MaxSide || p.Height < 0 || p.Height > o.MaxSide:
		return badRequest("size %dx%d out of range: each side at most %d pixels (multiples of 16)", p.Width, p.Height, o.MaxSide)
	case p.Steps < 0 || p.Steps > o.MaxSteps:
		return badRequest("steps %d out of range: 1 to %d", p.Steps, o.MaxSteps)
	case p.Strength < 0 || p.Strength > 1:
		return badRequest("denoising_strength %g out of range [0, 1]", p.Strength)
	}
	if p.Sampler != "" {
		info, err := scheduler.LookupSampler(p.Sampler)
		if err != nil {
			return badRequest("unknown sampler %q (GET /sdapi/v1/samplers lists them)", p.Sampler)
		}
		p.Sampler = info.Name
	}
	p.Scheduler = schedulerName(p.Scheduler)
	if p.Seed < 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		p.Seed = int64(binary.LittleEndian.Uint64(b[:]) >> 33) // A1111 seeds are 32-bit; keep them printable
	}
	s.familyNotes(p)
	set, err := s.engine.Check(s.request(p, 0))
	if err != nil && dropDefaultRule(err, p) {
		set, err = s.engine.Check(s.request(p, 0))
	}
	if err != nil {
		if gerr := guidanceError(err, p); gerr != nil {
			return gerr
		}
		return badRequest("%s", strings.TrimPrefix(err.Error(), "pipeline: "))
	}
	p.Width, p.Height = set.Width, set.Height // the same size: the echo shows what is drawn
	if p.Steps == 0 && p.Init == nil {
		p.Steps = set.Steps
	}
	return nil
}

// schedulerName maps A1111's and sd.cpp's spellings to the registry's ("" is the model's own).
func schedulerName(s string) string {
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "_")
	switch key {
	case "", "discrete", "automatic", "default":
		return ""
	case "ddim":
		return "ddim_uniform"
	}
	if slices.Contains(scheduler.SchedulerNames(), key) {
		return key
	}
	return s // the engine's check lists the valid names
}

// request is image i of p: seed+i, as A1111 and stable-diffusion.cpp number a batch's seeds, so each
// image is the lone run of its own seed (the CLI's image for that seed).
func (s *Server) request(p *params, i int) pipeline.Request {
	r := pipeline.Request{Prompt: p.Prompt, NegativePrompt: p.Negative, Width: p.Width, Height: p.Height, Steps: p.Steps,
		CFGScale: p.CFGScale, Guidance: p.Guidance, TrueCFGScale: p.TrueCFGScale, Sampler: p.Sampler, Scheduler: p.Scheduler, Seed: uint64(p.Seed) + uint64(i)}
	if p.Init != nil {
		r.InitImage, r.Strength = p.Init, p.Strength
	}
	p.Edit.apply(&r)
	p.Guide.apply(&r)
	return r
}

// decodeStrict reads a JSON object into dst, refusing unknown fields (named in the error, with the
// accepted ones) and trailing data. ignored are fields clients send that rflow accepts and ignores.
func decodeStrict(r *http.Request, dst any, accepted []string) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &tooLarge{limit: mbe.Limit}
		}
		return badRequest("cannot read the body: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return badRequest("body is not a JSON object: %v", err)
	}
	var unknown []string
	for k := range raw {
		if !slices.Contains(accepted, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return badRequest("unknown field(s) %s", strings.Join(quoteAll(unknown), ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(dst); err != nil {
		return badRequest("bad JSON: %v", err)
	}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// tooLarge is a body over the limit: 413.
type tooLarge struct{ limit int64 }

func (e *tooLarge) Error() string {
	return fmt.Sprintf("request body over the server's limit of %d bytes", e.limit)
}

// decodeImage reads a base64 image (optionally a data: URL) as A1111's init_images carry it.
func decodeImage(s string, maxSide int) (image.Image, error) {
	if i := strings.Index(s, ","); strings.HasPrefix(s, "data:") && i > 0 {
		s = s[i+1:]
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, badRequest("image is not base64: %v", err)
	}
	return readImage(bytes.NewReader(data), maxSide)
}

// readImage decodes a PNG or JPEG after checking its declared size, so a small file declaring a huge
// image is refused before its pixels are allocated.
func readImage(r io.Reader, maxSide int) (image.Image, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, badRequest("cannot read the image: %v", err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, badRequest("image is not a PNG or JPEG: %v", err)
	}
	if cfg.Width > 2*maxSide || cfg.Height > 2*maxSide {
		return nil, badRequest("image is %dx%d; at most %d pixels a side", cfg.Width, cfg.Height, 2*maxSide)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, badRequest("cannot decode the image: %v", err)
	}
	return img, nil
}

// parseSize reads OpenAI's "WxH" ("auto" or "": the model's default).
func parseSize(s string) (w, h int, err error) {
	if s == "" || s == "auto" {
		return 0, 0, nil
	}
	if _, err := fmt.Sscanf(s, "%dx%d", &w, &h); err != nil || fmt.Sprintf("%dx%d", w, h) != s {
		return 0, 0, badRequest("size %q is not WIDTHxHEIGHT (e.g. 1024x1024)", s)
	}
	return w, h, nil
}

// writeRequestError answers a params or body error with its status.
func (s *Server) writeRequestError(w http.ResponseWriter, err error) {
	var tl *tooLarge
	var re *requestError
	switch {
	case errors.As(err, &tl):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.As(err, &re):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, errQueueFull):
		w.Header().Set("Retry-After", s.retryAfter())
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, errClosing):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}
