// Package layout holds a test that keeps the import graph to DESIGN.md's table.
package layout

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/rflowrt/rflow"

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// TestImportGraph checks the edges DESIGN.md fixes: scheduler, ortopts, internal/rng, internal/linkdir and
// internal/benchutil use only the standard library, and benchutil serves tests and scripts alone;
// onnxruntime_go (cgo) is imported by internal/ort alone; internal/onnx stays free of cgo;
// only cmd/rflow, compare, batch and server import pipeline; compare, batch and server import no other rflow
// package than pipeline and scheduler, and only commands import them; nothing imports cmd. The model compiler writes graphs without running
// them (no internal/ort), and its checkpoint readers and architecture builders do not know each other.
func TestImportGraph(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(gobin, "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	stdlibOnly := map[string]bool{module + "/scheduler": true, module + "/internal/rng": true, module + "/ortopts": true,
		module + "/internal/linkdir": true, module + "/internal/benchutil": true}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			rel := strings.TrimPrefix(imp, module+"/")
			switch {
			case stdlibOnly[p.ImportPath] && strings.Contains(strings.Split(imp, "/")[0], "."):
				t.Errorf("%s must use only the standard library, imports %s", p.ImportPath, imp)
			case imp == "github.com/yalue/onnxruntime_go" && p.ImportPath != module+"/internal/ort":
				t.Errorf("%s imports onnxruntime_go; only internal/ort may (the one cgo package)", p.ImportPath)
			case rel == "internal/benchutil" && !strings.HasPrefix(strings.TrimPrefix(p.ImportPath, module+"/"), "scripts/"):
				t.Errorf("%s imports internal/benchutil; only tests and scripts may", p.ImportPath)
			case strings.HasPrefix(rel, "cmd/"):
				t.Errorf("%s imports a command (%s)", p.ImportPath, imp)
			case rel == "pipeline" && !strings.HasPrefix(strings.TrimPrefix(p.ImportPath, module+"/"), "cmd/") && p.ImportPath != module+"/compare" &&
				p.ImportPath != module+"/batch" && p.ImportPath != module+"/server":
				t.Errorf("%s imports pipeline; only commands, compare, batch and server may", p.ImportPath)
			case rel == "server" && !strings.HasPrefix(strings.TrimPrefix(p.ImportPath, module+"/"), "cmd/"):
				t.Errorf("%s imports server; only commands may", p.ImportPath)
			case p.ImportPath == module+"/server" && strings.HasPrefix(imp, module+"/") && rel != "pipeline" && rel != "scheduler":
				t.Errorf("server imports %s; it may import only pipeline and scheduler of rflow", imp)
			case rel == "batch" && !strings.HasPrefix(strings.TrimPrefix(p.ImportPath, module+"/"), "cmd/"):
				t.Errorf("%s imports batch; only commands may", p.ImportPath)
			case p.ImportPath == module+"/batch" && strings.HasPrefix(imp, module+"/") && rel != "pipeline" && rel != "scheduler":
				t.Errorf("batch imports %s; it may import only pipeline and scheduler of rflow", imp)
			case rel == "compare" && !strings.HasPrefix(strings.TrimPrefix(p.ImportPath, module+"/"), "cmd/"):
				t.Errorf("%s imports compare; only commands may", p.ImportPath)
			case p.ImportPath == module+"/compare" && strings.HasPrefix(imp, module+"/") && rel != "pipeline" && rel != "scheduler":
				t.Errorf("compare imports %s; it may import only pipeline and scheduler of rflow", imp)
			case p.ImportPath == module+"/internal/onnx" && strings.HasPrefix(rel, "internal/ort"):
				t.Errorf("internal/onnx must stay free of cgo, imports %s", imp)
			case strings.HasPrefix(p.ImportPath, module+"/internal/compiler") && (strings.HasPrefix(rel, "internal/ort") || rel == "pipeline"):
				t.Errorf("%s imports %s; the compiler only writes graphs", p.ImportPath, imp)
			case p.ImportPath == module+"/internal/compiler/arch" && rel == "internal/compiler/checkpoint",
				p.ImportPath == module+"/internal/compiler/checkpoint" && rel == "internal/compiler/arch":
				t.Errorf("%s imports %s; checkpoint readers and architecture builders stay separate", p.ImportPath, imp)
			}
		}
	}
}
