// Package server is rflow's HTTP API: OpenAI's images API, AUTOMATIC1111's sdapi, asynchronous jobs
// and a web page, all served from one model kept in memory by a pipeline.Engine (concurrent compatible
// requests share transformer runs). It bounds what it accepts before any work: body size, image size,
// steps, images per request and waiting jobs; no request field ever names a file.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rflowrt/rflow/pipeline"
)

// Options configure a Server. Zero values take the defaults given.
type Options struct {
	// Session configures every ONNX Runtime session.
	Session pipeline.SessionOptions
	// APIKey, when set, is the Bearer token every API call must carry (the page and /healthz are open).
	APIKey string
	// MaxBodyBytes bounds a request body (default 32 MiB: base64 init images).
	MaxBodyBytes int64
	// MaxQueue is the most jobs admitted at once, waiting or running (default 32); more get 429.
	MaxQueue int
	// MaxSide bounds width and height (default 2048), MaxSteps the steps (default 150) and MaxImages
	// the images of one request (default 8).
	MaxSide, MaxSteps, MaxImages int
	// Timeout bounds one job from admission to its last image (default 10 minutes).
	Timeout time.Duration
	// KeepJobs is how many finished asynchronous jobs stay retrievable (default 64).
	KeepJobs int
	// MaxBatch and BatchWindow configure the engine's dynamic batching (pipeline.EngineOptions).
	MaxBatch    int
	BatchWindow time.Duration
	// GuidanceRule and StepCache are the defaults of requests that do not name their own
	// (scheduler.ParseGuidanceRule, scheduler.ParseStepCache; "" is plain CFG and no cache). The
	// default rule is left off, with a note, for a request that runs no CFG.
	GuidanceRule, StepCache string
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxQueue, 32)
	def(&o.MaxSide, 2048)
	def(&o.MaxSteps, 150)
	def(&o.MaxImages, 8)
	def(&o.KeepJobs, 64)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
}

// Server serves one model over HTTP. Create it with New, mount Handler, end it with Shutdown.
type Server struct {
	o       Options
	m       *pipeline.Model
	engine  *pipeline.Engine
	mux     *http.ServeMux
	metrics *metrics
	jobs    *jobStore

	// base is cancelled by Shutdown once its grace period is over: every job's context derives from it.
	base     context.Context
	stopJobs context.CancelFunc
	mu       sync.Mutex
	closing  bool
}

// New starts a server for m (nothing is loaded before the first request).
func New(m *pipeline.Model, o Options) (*Server, error) {
	if m == nil {
		return nil, errors.New("server: no model")
	}
	o.defaults()
	if err := o.checkDefaults(); err != nil {
		return nil, err
	}
	base, stop := context.WithCancel(context.Background())
	s := &Server{o: o, m: m, mux: http.NewServeMux(), base: base, stopJobs: stop,
		engine: pipeline.NewEngine(m, pipeline.EngineOptions{Session: o.Session, MaxBatch: o.MaxBatch, BatchWindow: o.BatchWindow})}
	s.jobs = newJobStore(o.KeepJobs)
	s.metrics = newMetrics(s)
	s.routes()
	return s, nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s }

// Registry is the Prometheus registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// ServeHTTP applies the body limit, authentication and metrics, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	defer func() { s.metrics.request(routeLabel(r), rec.code) }()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rec, r.Body, s.o.MaxBodyBytes)
	}
	if s.needsKey(r) && !s.authorized(r) {
		rec.Header().Set("WWW-Authenticate", `Bearer realm="rflow"`)
		writeError(rec, http.StatusUnauthorized, "missing or wrong API key: send Authorization: Bearer <key>")
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// needsKey: with an API key, everything but the page and the health check needs it.
func (s *Server) needsKey(r *http.Request) bool {
	return s.o.APIKey != "" && r.URL.Path != "/" && r.URL.Path != "/healthz"
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.o.APIKey)) == 1
}

func (s *Server) routes() {
	allowed := map[string][]string{} // path → methods, for JSON 405 answers
	handle := func(method, path string, h http.HandlerFunc) {
		s.mux.HandleFunc(method+" "+path, h)
		if _, seen := allowed[path]; !seen {
			s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Allow", strings.Join(allowed[path], ", "))
				writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes %s, not %s", r.URL.Path,
					strings.Join(allowed[path], " or "), r.Method))
			})
		}
		allowed[path] = append(allowed[path], method)
	}
	handle("GET", "/{$}", s.page)
	handle("GET", "/healthz", s.healthz)
	handle("GET", "/metrics", s.metrics.handler().ServeHTTP)
	handle("GET", "/v1/models", s.openAIModels)
	handle("POST", "/v1/images/generations", s.openAIGenerations)
	handle("POST", "/v1/images/edits", s.openAIEdits)
	handle("POST", "/sdapi/v1/txt2img", s.a1111Txt2img)
	handle("POST", "/sdapi/v1/img2img", s.a1111Img2img)
	handle("GET", "/sdapi/v1/samplers", s.a1111Samplers)
	handle("GET", "/sdapi/v1/schedulers", s.a1111Schedulers)
	handle("GET", "/sdapi/v1/sd-models", s.a1111Models)
	handle("GET", "/sdapi/v1/options", s.a1111Options)
	handle("POST", "/sdapi/v1/options", s.a1111SetOptions)
	handle("GET", "/sdapi/v1/progress", s.a1111Progress)
	handle("POST", "/sdapi/v1/interrupt", s.a1111Interrupt)
	handle("GET", "/sdapi/v1/loras", s.a1111LoRAs)
	// What front-ends list besides: rflow has none of these, so the lists are empty.
	for _, name := range []string{"upscalers", "latent-upscale-modes", "sd-vae", "hypernetworks", "face-restorers", "prompt-styles"} {
		handle("GET", "/sdapi/v1/"+name, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, []any{}) })
	}
	handle("GET", "/sdapi/v1/embeddings", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"loaded": map[string]any{}, "skipped": map[string]any{}})
	})
	handle("GET", "/sdapi/v1/cmd-flags", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, map[string]any{}) })
	for _, name := range []string{"refresh-checkpoints", "refresh-loras", "refresh-vae"} {
		handle("POST", "/sdapi/v1/"+name, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, nil) })
	}
	handle("POST", "/rflow/v1/jobs", s.createJob)
	handle("GET", "/rflow/v1/jobs", s.listJobs)
	handle("GET", "/rflow/v1/jobs/{id}", s.getJob)
	handle("DELETE", "/rflow/v1/jobs/{id}", s.deleteJob)
	handle("GET", "/rflow/v1/jobs/{id}/preview", s.jobPreview)
	handle("GET", "/rflow/v1/jobs/{id}/images/{n}", s.jobImage)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
}

// Shutdown stops admitting jobs, lets the admitted ones finish until ctx is done, then cancels what is
// left, waits for it and releases the model. Pair it with http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case <-s.jobs.idle():
	case <-ctx.Done():
	}
	s.stopJobs()
	<-s.jobs.idle()
	if err := s.engine.Close(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.isClosing() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": s.m.Name, "family": string(s.m.Family),
		"queued": s.jobs.waiting(), "running": s.jobs.running()})
}

// apiError is every error body: {"error": {"message", "type", "code"}} (OpenAI's shape, which A1111
// clients also read).
type apiError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    int    `json:"code"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	var e apiError
	e.Error.Message, e.Error.Code = msg, code
	e.Error.Type = "invalid_request_error"
	if code >= 500 {
		e.Error.Type = "server_error"
	}
	writeJSON(w, code, e)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v) // the client may have gone; nothing to tell it
}

// statusRecorder remembers the status code for the metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routeLabel is a bounded label for a request: the route pattern the mux chose ("other" for unknown
// paths), never the path itself (ids and junk paths would make unbounded series).
func routeLabel(r *http.Request) string {
	p := r.Pattern
	if _, after, ok := strings.Cut(p, " "); ok {
		p = after
	}
	if p == "" || p == "/" {
		return "other"
	}
	return p
}

// retryAfter is the Retry-After seconds for a full queue: about one average job.
func (s *Server) retryAfter() string {
	return strconv.Itoa(max(1, int(s.metrics.avgJobSeconds()+0.5)))
}
