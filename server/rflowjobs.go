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
	CFGScale       float64 `json:"cfg_scale"`
	Guidance       float64 `json:"guidance"`
	Sampler        string  `json:"sampler"`
	Scheduler      string  `json:"scheduler"`
	Seed           *int64  `json:"seed"`
	N              int     `json:"n"`
	OutputFormat   string  `json:"output_format"`
}

var jobFields = []string{"prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "guidance", "sampler",
	"scheduler", "seed", "n", "output_format"}

// createJob admits an asynchronous job: 202 with its URL in Location and the body.
func (s *Server) createJob(w http.ResponseWriter, r *http.Request) {
	var req jobRequest
	if err := decodeStrict(r, &req, jobFields); err != nil {
		s.writeRequestError(w, err)
		return
	}
	p := params{Prompt: req.Prompt, Negative: req.NegativePrompt, Width: req.Width, Height: req.Height, Steps: req.Steps,
		CFGScale: req.CFGScale, Guidance: req.Guidance, Sampler: req.Sampler, Scheduler: req.Scheduler, Seed: -1, N: req.N,
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
	if err := s.check(&p); err != nil {
		s.writeRequestError(w, err)
		return
	}
	j, err := s.start(s.base, "txt2img", p, true)
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	w.Header().Set("Location", jobURL(j.id))
	sn := j.snapshot()
	writeJSON(w, http.StatusAccepted, map[string]any{"id": j.id, "url": jobURL(j.id), "status": sn.Status, "job": sn})
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
