package server

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series, in a registry of its own (no global state).
type metrics struct {
	reg                *prometheus.Registry
	requests           *prometheus.CounterVec
	jobs               *prometheus.CounterVec
	images             prometheus.Counter
	admitted, rejected prometheus.Counter
	stepSeconds        prometheus.Histogram
	jobSeconds         prometheus.Histogram

	mu       sync.Mutex // guards the running mean of job seconds (Retry-After)
	jobSum   float64
	jobCount int
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rflow_http_requests_total",
		Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rflow_jobs_total",
		Help: "Jobs ended, by final state."}, []string{"state"})
	m.images = prometheus.NewCounter(prometheus.CounterOpts{Name: "rflow_images_generated_total", Help: "Images generated."})
	m.admitted = prometheus.NewCounter(prometheus.CounterOpts{Name: "rflow_jobs_admitted_total", Help: "Jobs admitted to the queue."})
	m.rejected = prometheus.NewCounter(prometheus.CounterOpts{Name: "rflow_jobs_rejected_total",
		Help: "Jobs refused because the queue was full (429)."})
	m.stepSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rflow_step_seconds",
		Help: "Wall time of one denoising step (first image of each job).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	m.jobSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rflow_job_seconds",
		Help: "Wall time of a successful job from admission to its last image.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)})
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rflow_queue_depth", Help: "Jobs admitted and waiting to start."},
		func() float64 { return float64(s.jobs.waiting()) })
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rflow_jobs_running", Help: "Jobs generating now."},
		func() float64 { return float64(s.jobs.running()) })
	runs := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rflow_denoise_runs_total",
		Help: "Denoising runs; requests batched together share one."}, func() float64 { return float64(s.engine.Stats().Runs) })
	batched := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rflow_batched_images_total",
		Help: "Images drawn in a run shared with other requests."}, func() float64 { return float64(s.engine.Stats().BatchedRequests) })
	m.reg.MustRegister(m.requests, m.jobs, m.images, m.admitted, m.rejected, m.stepSeconds, m.jobSeconds, queue, running, runs, batched)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) request(route string, code int) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

// observeJob records a successful job's seconds.
func (m *metrics) observeJob(sec float64) {
	m.jobSeconds.Observe(sec)
	m.mu.Lock()
	m.jobSum, m.jobCount = m.jobSum+sec, m.jobCount+1
	m.mu.Unlock()
}

// avgJobSeconds is the mean successful job time so far (0 before the first).
func (m *metrics) avgJobSeconds() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.jobCount == 0 {
		return 0
	}
	return m.jobSum / float64(m.jobCount)
}
