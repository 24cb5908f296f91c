package ort

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/rflowrt/rflow/internal/onnx"
)

// TensorInfo describes one model input or output as the model file declares it.
type TensorInfo struct {
	Name string
	Type onnx.DataType
	// Shape has -1 for a symbolic or unknown dimension; nil when the model declares no shape.
	Shape []int64
	// DimNames holds the symbolic name of each dimension ("" for a fixed one).
	DimNames []string
}

func (i TensorInfo) String() string {
	dims := ""
	for k, d := range i.Shape {
		if k > 0 {
			dims += ","
		}
		if d < 0 && i.DimNames[k] != "" {
			dims += i.DimNames[k]
		} else {
			dims += fmt.Sprint(d)
		}
	}
	return fmt.Sprintf("%s %v[%s]", i.Name, i.Type, dims)
}

func tensorInfos(vs []onnx.ValueInfo) []TensorInfo {
	out := make([]TensorInfo, len(vs))
	for k, v := range vs {
		ti := TensorInfo{Name: v.Name, Type: v.Type}
		if v.Dims != nil { // nil: the model does not declare a rank
			ti.Shape, ti.DimNames = make([]int64, len(v.Dims)), make([]string, len(v.Dims))
		}
		for d, dim := range v.Dims {
			ti.Shape[d], ti.DimNames[d] = dim.Value, dim.Param
			if dim.Param != "" || dim.Value <= 0 {
				ti.Shape[d] = -1
			}
		}
		out[k] = ti
	}
	return out
}

// Signature reads a model file's inputs and outputs without loading its weights.
func Signature(path string) (inputs, outputs []TensorInfo, err error) {
	info, err := onnx.ReadInfo(path)
	if err != nil {
		return nil, nil, err
	}
	return tensorInfos(info.Inputs), tensorInfos(info.Outputs), nil
}

// SignatureError says that a tensor handed to Run does not match what the model declares.
type SignatureError struct {
	Model string
	Name  string
	Want  string
	Got   string
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("%s: %s: model declares %s, got %s", e.Model, e.Name, e.Want, e.Got)
}

// Session is a loaded model. Run may be called from several goroutines; calls are serialised.
type Session struct {
	name    string
	sess    *ortgo.DynamicAdvancedSession
	inputs  []TensorInfo
	outputs []TensorInfo
	cached  bool

	mu      sync.Mutex
	runOpts *ortgo.RunOptions
	inVals  []ortgo.Value
	outVals []ortgo.Value
}

// NewSession loads the model at path. External data files (model.onnx_data) are found beside it.
func NewSession(ctx context.Context, path string, o SessionOptions) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkInit(); err != nil {
		return nil, err
	}
	info, err := onnx.ReadInfo(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	key := ""
	if cacheable(o) && worthCaching(info, modelSize(path, filepath.Dir(path), info), o) {
		if key, err = fileCacheKey(path, info, o); err != nil {
			return nil, fmt.Errorf("load %s: optimized-graph cache: %w", path, err)
		}
	}
	return newSession(ctx, path, info, o, key, func(so *ortgo.SessionOptions, in, out []string, cachedPath string) (*ortgo.DynamicAdvancedSession, error) {
		if cachedPath != "" {
			return ortgo.NewDynamicAdvancedSession(cachedPath, in, out, so)
		}
		return ortgo.NewDynamicAdvancedSession(path, in, out, so)
	})
}

// NewSessionFromBytes loads a model held in memory. name labels errors; externalDataDir is where the
// model's external data files live ("" when it has none).
func NewSessionFromBytes(ctx context.Context, name string, data []byte, externalDataDir string, o SessionOptions) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkInit(); err != nil {
		return nil, err
	}
	info, err := onnx.ReadInfoBytes(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	if info.ExternalData && externalDataDir == "" {
		return nil, fmt.Errorf("load %s: the model keeps weights in external data files %v; give the directory that holds them", name, info.ExternalFiles)
	}
	key := ""
	if cacheable(o) && worthCaching(info, int64(len(data))+modelSize("", externalDataDir, info), o) {
		key = bytesCacheKey(data, externalDataDir, info, o)
	}
	return newSession(ctx, name, info, o, key, func(so *ortgo.SessionOptions, in, out []string, cachedPath string) (*ortgo.DynamicAdvancedSession, error) {
		if cachedPath != "" {
			return ortgo.NewDynamicAdvancedSession(cachedPath, in, out, so)
		}
		if externalDataDir != "" {
			abs, err := filepath.Abs(externalDataDir)
			if err != nil {
				return nil, err
			}
			if err := so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", abs); err != nil {
				return nil, err
			}
		}
		return ortgo.NewDynamicAdvancedSessionWithONNXData(data, in, out, so)
	})
}

// modelSize is the size of the model file at path ("" for none) plus its external data files in dir;
// files that cannot be read count nothing (loading reports them).
func modelSize(path, dir string, info *onnx.Info) int64 {
	var n int64
	if path != "" {
		if fi, err := os.Stat(path); err == nil {
			n += fi.Size()
		}
	}
	for _, ext := range info.ExternalFiles {
		if fi, err := os.Stat(filepath.Join(dir, ext)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

type loadFunc func(so *ortgo.SessionOptions, inputs, outputs []string, cachedPath string) (*ortgo.DynamicAdvancedSession, error)

func newSession(ctx context.Context, name string, info *onnx.Info, o SessionOptions, cacheKey string, load loadFunc) (*Session, error) {
	s := &Session{name: name, inputs: tensorInfos(info.Inputs), outputs: tensorInfos(info.Outputs)}
	if o.Outputs != nil {
		sel, err := selectOutputs(s.outputs, o.Outputs)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", name, err)
		}
		s.outputs = sel
	}
	if len(s.outputs) == 0 {
		return nil, fmt.Errorf("load %s: the model declares no outputs", name)
	}
	inNames, outNames := names(s.inputs), names(s.outputs)
	so, err := newORTOptions(o)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	defer so.Destroy()
	if cacheKey != "" {
		s.sess, s.cached, err = loadCached(o.CacheDir, cacheKey, cacheLimit(o), o.OptLevel, so, inNames, outNames, load)
	} else {
		s.sess, err = load(so, inNames, outNames, "")
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: onnxruntime: %w", name, err)
	}
	if s.runOpts, err = ortgo.NewRunOptions(); err != nil {
		s.sess.Destroy()
		return nil, fmt.Errorf("load %s: run options: %w", name, err)
	}
	s.inVals, s.outVals = make([]ortgo.Value, len(s.inputs)), make([]ortgo.Value, len(s.outputs))
	if err := ctx.Err(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func selectOutputs(all []TensorInfo, want []string) ([]TensorInfo, error) {
	out := make([]TensorInfo, 0, len(want))
	for _, w := range want {
		found := false
		for _, a := range all {
			if a.Name == w {
				out, found = append(out, a), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("the model has no output %q (it has %v)", w, names(all))
		}
	}
	return out, nil
}

func names(ts []TensorInfo) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// Name is the path or label the session was loaded from.
func (s *Session) Name() string { return s.name }

// Inputs lists the model's inputs in the order Run takes them.
func (s *Session) Inputs() []TensorInfo { return s.inputs }

// Outputs lists the computed outputs in the order Run takes them.
func (s *Session) Outputs() []TensorInfo { return s.outputs }

// FromCache reports whether the session was loaded from the optimized-graph cache.
func (s *Session) FromCache() bool { return s.cached }

// Input returns the declared input with that name.
func (s *Session) Input(name string) (TensorInfo, bool) { return find(s.inputs, name) }

// Output returns the declared output with that name.
func (s *Session) Output(name string) (TensorInfo, bool) { return find(s.outputs, name) }

func find(ts []TensorInfo, name string) (TensorInfo, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// Run computes the outputs. inputs and outputs follow the order of Inputs() and Outputs(); every
// output must be pre-allocated with the exact shape the model will produce. A cancelled context
// stops a Run in progress.
func (s *Session) Run(ctx context.Context, inputs, outputs []*Tensor) error {
	if err := s.check("input", s.inputs, inputs); err != nil {
		return err
	}
	if err := s.check("output", s.outputs, outputs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return fmt.Errorf("run %s: session is closed", s.name)
	}
	for i, t := range inputs {
		s.inVals[i] = t.value
	}
	for i, t := range outputs {
		s.outVals[i] = t.value
	}
	var err error
	if ctx.Done() == nil { // not cancellable: skip the watcher
		err = s.sess.Run(s.inVals, s.outVals)
	} else {
		err = s.runCancellable(ctx)
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", s.name, err)
	}
	return nil
}

func (s *Session) runCancellable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terminated sync.WaitGroup
	terminated.Add(1)
	stop := context.AfterFunc(ctx, func() {
		defer terminated.Done()
		_ = s.runOpts.Terminate()
	})
	err := s.sess.RunWithOptions(s.inVals, s.outVals, s.runOpts)
	if !stop() { // the context fired: wait for Terminate, then re-arm the options for the next Run
		terminated.Wait()
		_ = s.runOpts.UnsetTerminate()
		return ctx.Err()
	}
	return err
}

func (s *Session) check(kind string, want []TensorInfo, got []*Tensor) error {
	if len(got) != len(want) {
		return fmt.Errorf("run %s: got %d %ss, the model takes %d (%v)", s.name, len(got), kind, len(want), names(want))
	}
	for i, t := range got {
		w := want[i]
		if t == nil || t.value == nil {
			return &SignatureError{Model: s.name, Name: w.Name, Want: w.String(), Got: "no tensor (outputs must be pre-allocated)"}
		}
		if t.typ != w.Type || (w.Shape != nil && !shapeFits(w.Shape, t.shape)) {
			return &SignatureError{Model: s.name, Name: w.Name, Want: w.String(), Got: fmt.Sprintf("%v%v", t.typ, t.shape)}
		}
	}
	return nil
}

func shapeFits(decl, got []int64) bool {
	if len(decl) != len(got) {
		return false
	}
	for i, d := range decl {
		if d >= 0 && d != got[i] {
			return false
		}
	}
	return true
}

// NewInput allocates a tensor for the named input with the declared element type.
func (s *Session) NewInput(name string, shape ...int64) (*Tensor, error) {
	return s.newFor("input", s.inputs, name, shape)
}

// NewOutput allocates a tensor for the named output with the declared element type.
func (s *Session) NewOutput(name string, shape ...int64) (*Tensor, error) {
	return s.newFor("output", s.outputs, name, shape)
}

func (s *Session) newFor(kind string, ts []TensorInfo, name string, shape []int64) (*Tensor, error) {
	info, ok := find(ts, name)
	if !ok {
		return nil, fmt.Errorf("%s: no %s %q (the model has %v)", s.name, kind, name, names(ts))
	}
	if info.Shape != nil && !shapeFits(info.Shape, shape) {
		return nil, &SignatureError{Model: s.name, Name: name, Want: info.String(), Got: fmt.Sprint(shape)}
	}
	return NewTensor(info.Type, shape...)
}

// Close releases the session. It is safe to call twice.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.runOpts != nil {
		errs = append(errs, s.runOpts.Destroy())
		s.runOpts = nil
	}
	if s.sess != nil {
		errs = append(errs, s.sess.Destroy())
		s.sess = nil
	}
	return errors.Join(errs...)
}
