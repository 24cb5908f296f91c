//go:build ignore

// gen_testdata writes testdata/oracle-KIND.json from models built by the oracle
// (shared/oracle/make_models.py --formats diffusers,single-file --out MODELS/KIND): the tensor names, dtypes
// and shapes of every single file and diffusers component, and the components' config.json. No weights.
//
//	go run gen_testdata.go -models /tmp/km
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func header(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil || n > 100_000_000 {
		return nil, fmt.Errorf("%s: header length %d: %v", path, n, err)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 8); err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType string  `json:"dtype"`
			Shape []int64 `json:"shape"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, err
		}
		dims := make([]string, len(e.Shape))
		for i, d := range e.Shape {
			dims[i] = fmt.Sprint(d)
		}
		out[name] = e.DType + " " + strings.Join(dims, ",")
	}
	return out, nil
}

type component struct {
	Config  map[string]any    `json:"config"`
	Tensors map[string]string `json:"tensors"`
}

type oracle struct {
	Files      map[string]string            `json:"files"` // role → single file name
	SingleFile map[string]map[string]string `json:"single_file"`
	Diffusers  map[string]component         `json:"diffusers"`
}

func main() {
	models := flag.String("models", "/tmp/km", "folder with one make_models.py output per kind")
	flag.Parse()
	for _, kind := range []string{"flux-dev", "flux-schnell", "sd3", "sd3-no-t5"} {
		dir := filepath.Join(*models, kind)
		o := oracle{SingleFile: map[string]map[string]string{}, Diffusers: map[string]component{}}
		b, err := os.ReadFile(filepath.Join(dir, "single-file", "files.json"))
		check(err)
		check(json.Unmarshal(b, &o.Files))
		for _, f := range o.Files {
			h, err := header(filepath.Join(dir, "single-file", f))
			check(err)
			o.SingleFile[f] = h
		}
		subs, err := filepath.Glob(filepath.Join(dir, "diffusers", "*", "*.safetensors"))
		check(err)
		sort.Strings(subs)
		for _, p := range subs {
			sub := filepath.Base(filepath.Dir(p))
			h, err := header(p)
			check(err)
			var cfg map[string]any
			b, err := os.ReadFile(filepath.Join(filepath.Dir(p), "config.json"))
			check(err)
			check(json.Unmarshal(b, &cfg))
			o.Diffusers[sub] = component{Config: cfg, Tensors: h}
		}
		out, err := json.Marshal(o)
		check(err)
		check(os.WriteFile(filepath.Join("testdata", "oracle-"+kind+".json"), out, 0o644))
		fmt.Printf("testdata/oracle-%s.json: %d bytes\n", kind, len(out))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
