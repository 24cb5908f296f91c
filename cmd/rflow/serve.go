package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/server"
)

// serveFlags are rflow serve's flags.
type serveFlags struct {
	model, listen, apiKey, provider string
	insecure                        bool
	threads, deviceID               int
	maxQueue, maxSide, maxSteps     int
	maxImages, maxBatch             int
	maxBodyMB                       int64
	timeout, batchWindow, grace     time.Duration
	ckpt                            checkpointFlags
	ort                             *ortFlags
	sess                            *sessionFlags
	guidance                        slgFlags // --guidance-rule and --step-cache only: the requests' defaults
}

func runServe(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	f := &serveFlags{}
	fs.StringVarP(&f.model, "model", "m", "", "model to serve: an ONNX export folder, a checkpoint or an embedded demo (default the demo); the only model the server can use")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7860", "address to listen on; one that is not loopback needs --api-key (or --insecure-no-auth)")
	fs.StringVar(&f.apiKey, "api-key", "", "Bearer token every API call must carry (default: $RFLOW_API_KEY)")
	fs.BoolVar(&f.insecure, "insecure-no-auth", false, "allow a non-loopback --listen without --api-key")
	fs.IntVar(&f.maxQueue, "max-queue", 32, "jobs admitted at once, waiting or running; more get 429 with Retry-After")
	fs.IntVar(&f.maxSide, "max-side", 2048, "largest width or height a request may ask for")
	fs.IntVar(&f.maxSteps, "max-steps", 150, "most steps a request may ask for")
	fs.IntVar(&f.maxImages, "max-images", 8, "most images in one request (n, batch_size × n_iter)")
	fs.Int64Var(&f.maxBodyMB, "max-body-mb", 32, "largest request body in MiB")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "longest time one job may take")
	fs.IntVar(&f.maxBatch, "max-batch", 8, "most compatible requests drawn in one transformer run (1: no batching)")
	fs.DurationVar(&f.batchWindow, "batch-window", 0, "how long an idle server waits for compatible requests before a run starts")
	fs.DurationVar(&f.grace, "shutdown-grace", 30*time.Second, "on SIGTERM or Ctrl-C, how long running jobs may finish before they are cancelled")
	fs.StringVar(&f.provider, "provider", "cpu", "execution provider: cpu, cuda, tensorrt, coreml, directml")
	fs.IntVar(&f.deviceID, "device-id", 0, "GPU index for cuda, tensorrt and directml")
	fs.IntVarP(&f.threads, "threads", "t", 0, "intra-op threads (default: number of cores)")
	f.ckpt.register(fs)
	f.guidance.registerGuidance(fs)
	f.ort = addORTFlags(fs)
	f.sess = addSessionFlags(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	rule, cache, err := f.guidance.guidance()
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	if f.apiKey == "" {
		f.apiKey = os.Getenv("RFLOW_API_KEY")
	}
	if err := checkListen(f.listen, f.apiKey, f.insecure); err != nil {
		return &usageError{fs: fs, err: err}
	}
	if fs.Changed("lora-dir") { // $RFLOW_LORA_DIR, set for txt2img, is left alone
		return &usageError{fs: fs, err: errors.New("--lora-dir does not apply to serve: no request names a file; load each LoRA at start with --lora FILE:WEIGHT, and a prompt's <lora:NAME:WEIGHT> then names one of them by its file name")}
	}
	p, err := ort.ParseProvider(f.provider)
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	so := ort.SessionOptions{Provider: p, DeviceID: f.deviceID, IntraOpThreads: f.threads}
	if err := f.sess.apply(&so, os.Getenv); err != nil { // --spin, --low-mem, --no-cache, --cache-max-gb as txt2img
		return &usageError{fs: fs, err: err}
	}
	if err := f.ort.init(); err != nil {
		return err
	}
	m, err := openAnyModel(ctx, f.model, f.ckpt, errOut, false)
	if err != nil {
		return err
	}
	srv, err := server.New(m, server.Options{Session: so,
		APIKey: f.apiKey, MaxBodyBytes: f.maxBodyMB << 20, MaxQueue: f.maxQueue, MaxSide: f.maxSide, MaxSteps: f.maxSteps,
		MaxImages: f.maxImages, Timeout: f.timeout, MaxBatch: f.maxBatch, BatchWindow: f.batchWindow,
		GuidanceRule: rule, StepCache: cache})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	fmt.Fprintf(errOut, "rflow: serving %s (%s)%s%s on http://%s/ (OpenAI /v1/images, A1111 /sdapi/v1, jobs /rflow/v1/jobs, /metrics)\n",
		m.Name, m.Family, servedLoRAs(m), servedGuidance(rule, cache), ln.Addr())
	return serveUntilDone(ctx, srv, ln, f.grace, errOut)
}

// servedLoRAs says which LoRAs the server merged, as the prompt tags that name them.
func servedLoRAs(m *pipeline.Model) string {
	if len(m.LoRAs) == 0 {
		return ""
	}
	var tags []string
	for _, l := range m.LoRAs {
		tags = append(tags, fmt.Sprintf("<lora:%s:%g>", l.Name, l.Weight))
	}
	return " with LoRAs " + strings.Join(tags, " ")
}

// servedGuidance names the requests' default guidance rule and step cache when they are not plain
// CFG and no cache.
func servedGuidance(rule, cache string) string {
	var parts []string
	if rule != "" {
		parts = append(parts, "guidance rule "+rule)
	}
	if cache != "" {
		parts = append(parts, "step cache "+cache)
	}
	if len(parts) == 0 {
		return ""
	}
	return " with default " + strings.Join(parts, " and ")
}

// serveUntilDone serves until ctx ends (SIGTERM, Ctrl-C), then stops taking connections, lets running
// jobs finish for grace, cancels the rest and releases the model.
func serveUntilDone(ctx context.Context, srv *server.Server, ln net.Listener, grace time.Duration, errOut io.Writer) error {
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintf(errOut, "rflow: shutting down: running jobs get %s to finish\n", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	jobsDone := make(chan error, 1)
	go func() { jobsDone <- srv.Shutdown(sctx) }() // jobs end first, so waiting clients get their answers
	err := <-jobsDone
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	if herr := hs.Shutdown(hctx); herr != nil && !errors.Is(herr, context.DeadlineExceeded) {
		err = errors.Join(err, herr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(errOut, "rflow: stopped")
	return nil
}

// checkListen refuses a non-loopback address without an API key unless the user insists.
func checkListen(addr, apiKey string, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT (e.g. 127.0.0.1:7860): %w", addr, err)
	}
	if isLoopback(host) || apiKey != "" || insecure {
		return nil
	}
	return fmt.Errorf("--listen %s is reachable from other machines: set --api-key KEY (clients send Authorization: Bearer KEY), or pass --insecure-no-auth", addr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
