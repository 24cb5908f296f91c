package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// a1111Request holds the StableDiffusionProcessing fields rflow uses; a1111Fields lists every field
// A1111's API accepts (the others are ignored, with a note in info when they ask for something rflow
// does not do).
type a1111Request struct {
	Prompt                string         `json:"prompt"`
	NegativePrompt        string         `json:"negative_prompt"`
	Seed                  *int64         `json:"seed"`
	Steps                 int            `json:"steps"`
	CFGScale              float64        `json:"cfg_scale"`
	DistilledCFG          float64        `json:"distilled_cfg_scale"`
	Width                 int            `json:"width"`
	Height                int            `json:"height"`
	SamplerName           string         `json:"sampler_name"`
	SamplerIndex          string         `json:"sampler_index"`
	Scheduler             string         `json:"scheduler"`
	BatchSize             int            `json:"batch_size"`
	NIter                 int            `json:"n_iter"`
	DenoisingStrength     *float64       `json:"denoising_strength"`
	InitImages            []string       `json:"init_images"`
	Mask                  string         `json:"mask"`
	MaskBlur              *flexNumber    `json:"mask_blur"`
	MaskBlurX             *flexNumber    `json:"mask_blur_x"`
	MaskBlurY             *flexNumber    `json:"mask_blur_y"`
	InpaintingFill        *flexNumber    `json:"inpainting_fill"`
	InpaintFullRes        *flexNumber    `json:"inpaint_full_res"`
	InpaintFullResPadding *flexNumber    `json:"inpaint_full_res_padding"`
	InpaintingMaskInvert  *flexNumber    `json:"inpainting_mask_invert"`
	RefResize             string         `json:"ref_resize"`
	OverrideSettings      map[string]any `json:"override_settings"`
	EnableHR              bool           `json:"enable_hr"`
	RestoreFaces          bool           `json:"restore_faces"`
	Tiling                bool           `json:"tiling"`
	Styles                []string       `json:"styles"`
	AlwaysOnScripts       map[string]any `json:"alwayson_scripts"`
	ScriptName            string         `json:"script_name"`
	guidanceRequest                      // rflow's extension fields
}

var a1111Fields = append(strings.Fields(`prompt negative_prompt styles seed subseed subseed_strength seed_resize_from_h
	seed_resize_from_w sampler_name sampler_index scheduler batch_size n_iter steps cfg_scale distilled_cfg_scale width height
	restore_faces tiling do_not_save_samples do_not_save_grid eta denoising_strength s_min_uncond s_churn s_tmax s_tmin s_noise
	override_settings override_settings_restore_afterwards refiner_checkpoint refiner_switch_at disable_extra_networks
	firstpass_image comments enable_hr firstphase_width firstphase_height hr_scale hr_upscaler hr_second_pass_steps
	hr_resize_x hr_resize_y hr_checkpoint_name hr_sampler_name hr_scheduler hr_prompt hr_negative_prompt hr_cfg
	hr_distilled_cfg force_task_id script_name script_args send_images save_images alwayson_scripts infotext
	init_images resize_mode image_cfg_scale mask mask_blur mask_blur_x mask_blur_y inpainting_fill inpaint_full_res
	inpaint_full_res_padding inpainting_mask_invert initial_noise_multiplier latent_mask include_init_images ref_resize`),
	guidanceFields...)

// a1111Params turns the request into params, noting what rflow ignores.
func (s *Server) a1111Params(req a1111Request, img2img bool) (params, error) {
	p := params{Prompt: req.Prompt, Negative: req.NegativePrompt, Steps: req.Steps, CFGScale: req.CFGScale,
		Guidance: req.DistilledCFG, Width: req.Width, Height: req.Height, Sampler: req.SamplerName, Scheduler: req.Scheduler,
		Seed: -1, OutputFormat: "png", names: guidanceNames{forge: true}}
	if s.flux() { // Forge: cfg_scale is FLUX's true CFG scale; left out, true CFG is off
		p.TrueCFGScale, p.CFGScale = req.CFGScale, 0
	}
	if p.Sampler == "" {
		p.Sampler = req.SamplerIndex
	}
	if req.Seed != nil {
		p.Seed = *req.Seed
	}
	p.N = max(req.BatchSize, 1) * max(req.NIter, 1)
	if req.BatchSize < 0 || req.NIter < 0 {
		return p, badRequest("batch_size and n_iter must be positive")
	}
	var err error
	if p.Guide, err = s.guidance(req.guidanceRequest); err != nil {
		return p, err
	}
	if len(req.OverrideSettings) > 0 {
		keys := make([]string, 0, len(req.OverrideSettings))
		for k := range req.OverrideSettings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p.Notes = append(p.Notes, "override_settings ignored: "+strings.Join(keys, ", "))
	}
	for _, n := range []struct {
		on   bool
		what string
	}{{req.EnableHR, "enable_hr (hires fix)"}, {req.RestoreFaces, "restore_faces"}, {req.Tiling, "tiling"},
		{len(req.Styles) > 0, "styles"}, {len(req.AlwaysOnScripts) > 0, "alwayson_scripts"}, {req.ScriptName != "", "script_name"}} {
		if n.on {
			p.Notes = append(p.Notes, n.what+" ignored: not supported by rflow")
		}
	}
	if !img2img {
		return p, nil
	}
	return p, s.a1111Edit(&p, req)
}

// a1111Edit reads img2img's pictures and inpainting fields with A1111's API defaults: mask_blur 4,
// inpaint_full_res true with padding 0, denoising_strength 0.75.
func (s *Server) a1111Edit(p *params, req a1111Request) error {
	if len(req.InitImages) == 0 {
		return badRequest("img2img needs the picture to edit in init_images (base64 PNG or JPEG)")
	}
	images := make([]image.Image, len(req.InitImages))
	for i, b64 := range req.InitImages {
		img, err := fieldImage(b64, "init_images["+strconv.Itoa(i)+"]", s.o.MaxSide)
		if err != nil {
			return err
		}
		images[i] = img
	}
	p.Strength = 0.75
	if req.DenoisingStrength != nil {
		p.Strength = *req.DenoisingStrength
	}
	var err error
	if p.Edit.RefResize, err = refResize(req.RefResize); err != nil {
		return err
	}
	var mask image.Image
	if req.Mask != "" {
		m, err := fieldImage(req.Mask, "mask", s.o.MaxSide)
		if err != nil {
			return err
		}
		e := &p.Edit
		e.MaskInvert = numOr(req.InpaintingMaskInvert, 0) != 0
		mask = a1111Mask(m, e.MaskInvert)
		bx, by := numOr(req.MaskBlurX, 4), numOr(req.MaskBlurY, 4)
		if req.MaskBlur != nil {
			bx, by = float64(*req.MaskBlur), float64(*req.MaskBlur)
		} else if bx != by {
			p.Notes = append(p.Notes, fmt.Sprintf("mask_blur_y %g ignored: rflow blurs the mask alike both ways, by mask_blur_x %g", by, bx))
		}
		e.MaskBlur = bx
		e.FullRes = numOr(req.InpaintFullRes, 1) != 0
		e.FullResPadding = int(numOr(req.InpaintFullResPadding, 0))
		e.Fill = int(numOr(req.InpaintingFill, -1))
		if e.Fill >= 0 && e.Fill != 1 {
			what := strconv.Itoa(e.Fill)
			if e.Fill < len(inpaintingFills) {
				what += " (" + inpaintingFills[e.Fill] + ")"
			}
			p.Notes = append(p.Notes, "inpainting_fill "+what+" ignored: the masked area starts from the original picture "+
				"noised (1, original), as diffusers' inpaint pipelines do")
		}
	}
	return s.useImages(p, images, mask, req.DenoisingStrength != nil)
}

func (s *Server) a1111Txt2img(w http.ResponseWriter, r *http.Request) { s.a1111Run(w, r, false) }
func (s *Server) a1111Img2img(w http.ResponseWriter, r *http.Request) { s.a1111Run(w, r, true) }

// a1111Run answers {images, parameters, info}, info being A1111's JSON string.
func (s *Server) a1111Run(w http.ResponseWriter, r *http.Request, img2img bool) {
	var req a1111Request
	if err := decodeStrict(r, &req, a1111Fields); err != nil {
		s.writeRequestError(w, err)
		return
	}
	p, err := s.a1111Params(req, img2img)
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	if err := s.check(&p); err != nil {
		s.writeRequestError(w, err)
		return
	}
	j, err := s.start(r.Context(), s.task(&p), p, false)
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	if err := s.wait(r.Context(), j); err != nil {
		if r.Context().Err() != nil {
			return
		}
		s.writeJobError(w, err)
		return
	}
	images := make([]string, len(j.encoded))
	for i, b := range j.encoded {
		images[i] = base64.StdEncoding.EncodeToString(b)
	}
	raw := resolvedParams(&p, j.settings[0]) // what was drawn: A1111 echoes the request with its defaults filled
	if img2img {
		raw["init_images"] = []string{} // not echoed back: it is the client's own data
	}
	info, _ := json.Marshal(s.a1111Info(j))
	writeJSON(w, http.StatusOK, map[string]any{"images": images, "parameters": raw, "info": string(info)})
}

// a1111Info is A1111's info object for a finished job.
func (s *Server) a1111Info(j *job) map[string]any {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.settings[0]
	seeds := make([]uint64, len(j.settings))
	prompts := make([]string, len(j.settings))
	infotexts := make([]string, len(j.settings))
	for i, set := range j.settings {
		seeds[i], prompts[i] = set.Seed, j.p.Prompt
		infotexts[i] = infotext(&j.p, set, s.m.Name)
	}
	extra := map[string]any{"Shift": st.Shift, "RNG": st.RNG}
	for _, kv := range editInfo(&j.p, st) {
		extra[kv[0]] = kv[1]
	}
	if st.Guidance != 0 {
		extra["Distilled CFG Scale"] = st.Guidance
	}
	for _, kv := range append(st.GuidanceInfo(), slgInfo(&j.p.Guide)...) {
		extra[kv[0]] = kv[1]
	}
	if j.p.LoRAHashes != "" {
		extra["Lora hashes"] = j.p.LoRAHashes
	}
	info := map[string]any{"prompt": j.p.Prompt, "all_prompts": prompts, "negative_prompt": j.p.Negative,
		"all_negative_prompts": repeat(j.p.Negative, len(seeds)), "seed": st.Seed, "all_seeds": seeds, "subseed": -1,
		"all_subseeds": repeat(-1, len(seeds)), "width": st.Width, "height": st.Height, "sampler_name": st.Sampler,
		"scheduler": st.Scheduler, "cfg_scale": cfgUsed(&j.p, st), "steps": st.Steps, "batch_size": len(seeds), "sd_model_name": s.m.Name,
		"sd_model_hash": nil, "seed_resize_from_w": -1, "seed_resize_from_h": -1, "denoising_strength": st.Strength,
		"infotexts": infotexts, "job_timestamp": j.created.UTC().Format("20060102150405"), "version": "rflow",
		"extra_generation_params": extra}
	if len(j.p.Notes) > 0 || len(j.warnings) > 0 {
		info["notes"] = append(append([]string{}, j.p.Notes...), j.warnings...)
	}
	return info
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// infotext is A1111's one-paragraph summary of an image's settings.
func infotext(p *params, st pipeline.Resolved, model string) string {
	var b strings.Builder
	b.WriteString(p.Prompt)
	if p.Negative != "" && negativeUsed(p, st) { // as the CLI's PNG text: not written as if it had been used
		b.WriteString("\nNegative prompt: " + p.Negative)
	}
	b.WriteString("\n")
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	kv := [][2]string{{"Steps", strconv.Itoa(st.Steps)}, {"Sampler", st.Sampler}, {"Schedule type", orDefault(st.Scheduler)},
		{"CFG scale", f(cfgUsed(p, st))}}
	if st.Guidance != 0 { // Forge writes FLUX's guidance right after the CFG scale
		kv = append(kv, [2]string{"Distilled CFG Scale", f(st.Guidance)})
	}
	b.WriteString(joinKV(append(kv, [][2]string{{"Seed", strconv.FormatUint(st.Seed, 10)},
		{"Size", strconv.Itoa(st.Width) + "x" + strconv.Itoa(st.Height)}, {"Model", model}, {"Shift", f(st.Shift)}}...)))
	for _, kv := range append(st.GuidanceInfo(), slgInfo(&p.Guide)...) { // as the CLI's PNG text writes them
		b.WriteString(", " + kv[0] + ": " + quoteInfo(kv[1]))
	}
	if kv := editInfo(p, st); len(kv) > 0 {
		b.WriteString(", " + joinKV(kv))
	}
	if p.LoRAHashes != "" {
		b.WriteString(", Lora hashes: " + quoteInfo(p.LoRAHashes))
	}
	return b.String()
}

// publicParams are a job's settings as the APIs echo them (no image data).
func publicParams(p *params) map[string]any {
	out := map[string]any{"prompt": p.Prompt, "negative_prompt": p.Negative, "width": p.Width, "height": p.Height,
		"steps": p.Steps, "sampler_name": p.Sampler, "scheduler": p.Scheduler, "seed": p.Seed, "batch_size": p.N}
	cfgOut(out, p.flux, p.CFGScale, p.TrueCFGScale, p.Guidance)
	if p.Init != nil {
		out["denoising_strength"] = p.Strength
	}
	editParamsOut(p, out)
	guidanceOut(&p.Guide, out)
	if p.LoRAHashes != "" {
		out["lora_hashes"] = p.LoRAHashes
	}
	return out
}

// resolvedParams are publicParams with the names and values the run resolved (sampler, scheduler,
// guidance, shift) in place of the defaults asked for.
func resolvedParams(p *params, st pipeline.Resolved) map[string]any {
	out := publicParams(p)
	out["sampler_name"], out["scheduler"], out["shift"] = st.Sampler, orDefault(st.Scheduler), st.Shift
	out["width"], out["height"], out["steps"] = st.Width, st.Height, st.Steps
	delete(out, "distilled_cfg_scale")
	cfgOut(out, p.flux, st.CFGScale, st.TrueCFGScale, st.Guidance)
	return out
}

func (s *Server) a1111Samplers(w http.ResponseWriter, r *http.Request) {
	var out []map[string]any
	for _, si := range scheduler.Samplers() {
		out = append(out, map[string]any{"name": si.Name, "aliases": []string{si.Name}, "options": map[string]string{}})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) a1111Schedulers(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{{"name": "automatic", "label": "Automatic (the model's own)", "aliases": []string{"discrete"}}}
	for _, n := range scheduler.SchedulerNames() {
		out = append(out, map[string]any{"name": n, "label": n, "aliases": nil})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) a1111Models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []map[string]any{{"title": s.m.Name, "model_name": s.m.Name, "hash": nil, "sha256": nil,
		"filename": s.m.Name, "config": nil}})
}

func (s *Server) a1111Options(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"sd_model_checkpoint": s.m.Name, "samples_format": "png",
		"sd_checkpoint_hash": nil})
}

// a1111SetOptions accepts option changes and applies none: the model comes from the command line.
func (s *Server) a1111SetOptions(w http.ResponseWriter, r *http.Request) {
	var opts map[string]any
	if err := json.NewDecoder(r.Body).Decode(&opts); err != nil {
		s.writeRequestError(w, badRequest("body is not a JSON object: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, nil)
}

// a1111Progress reports the oldest running job, A1111's way.
func (s *Server) a1111Progress(w http.ResponseWriter, r *http.Request) {
	jobs := s.jobs.activeJobs()
	out := map[string]any{"progress": 0.0, "eta_relative": 0.0, "current_image": nil, "textinfo": nil,
		"state": map[string]any{"skipped": false, "interrupted": false, "job": "", "job_count": len(jobs),
			"job_timestamp": "0", "job_no": 0, "sampling_step": 0, "sampling_steps": 0}}
	var cur *job
	for _, j := range jobs {
		if cur == nil || j.created.Before(cur.created) {
			cur = j
		}
	}
	if cur != nil {
		sn := cur.snapshot()
		cur.mu.Lock()
		if cur.preview != nil {
			out["current_image"] = base64.StdEncoding.EncodeToString(cur.preview)
		}
		elapsed := 0.0
		if !cur.started.IsZero() {
			elapsed = time.Since(cur.started).Seconds()
		}
		cur.mu.Unlock()
		out["progress"] = sn.Progress
		if sn.Progress > 0 {
			out["eta_relative"] = elapsed / sn.Progress * (1 - sn.Progress)
		}
		st := out["state"].(map[string]any)
		st["job"], st["sampling_step"], st["sampling_steps"] = cur.id, sn.Step, sn.Steps
		st["job_timestamp"] = cur.created.UTC().Format("20060102150405")
	}
	writeJSON(w, http.StatusOK, out)
}

// a1111Interrupt cancels every job admitted so far (A1111 stops the one generating).
func (s *Server) a1111Interrupt(w http.ResponseWriter, r *http.Request) {
	for _, j := range s.jobs.activeJobs() {
		j.cancel()
	}
	writeJSON(w, http.StatusOK, nil)
}
