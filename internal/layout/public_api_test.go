package layout

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// listedPkg is what the public-API test needs of `go list -json`.
type listedPkg struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
}

func listModule(t *testing.T, gobin string) []listedPkg {
	t.Helper()
	out, err := exec.Command(gobin, "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []listedPkg
	for dec.More() {
		var p listedPkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func isInternal(importPath string) bool {
	return strings.Contains(importPath+"/", "/internal/")
}

// isPublic: a library package another module may import (not internal, not a command, has Go files).
func isPublic(p listedPkg) bool {
	rel := strings.TrimPrefix(p.ImportPath, module+"/")
	return !isInternal(p.ImportPath) && !strings.HasPrefix(rel, "cmd/") && p.Name != "main" && len(p.GoFiles) > 0
}

// imports maps the names p's files give the internal packages they import to those packages, and
// lists the names they give every other import.
func imports(t *testing.T, p listedPkg, names map[string]string) (local map[string]string, others map[string]bool) {
	t.Helper()
	local, others = map[string]string{}, map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range p.GoFiles {
		file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		for _, imp := range file.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatalf("%s: import %s: %v", f, imp.Path.Value, err)
			}
			name := names[path]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if names[path] != "" {
				local[name] = path
			} else if imp.Name != nil {
				others[name] = true
			} else {
				others[filepath.Base(path)] = true // a guess (versioned paths differ); only narrows the check
			}
		}
	}
	return local, others
}

var (
	aliasDecl  = regexp.MustCompile(`^type (\w+) = (\w+)\.(\w+)$`)
	valueSpec  = regexp.MustCompile(`^(?:const |var |\t)[A-Z]\w*(?:, \w+)* += `)
	fieldNames = regexp.MustCompile(`^\t([A-Z]\w*(?:, [A-Z]\w*)*)(?:\s|$)`)
)

// untypedValue: the const or var path.name is declared without a type of its package's own (untyped
// constant, inferred or predeclared type), so a public value initialised from it exposes no
// internal type. An iota continuation line counts as typed.
func untypedValue(t *testing.T, gobin, path, name string) bool {
	t.Helper()
	out, err := exec.Command(gobin, "doc", path+"."+name).CombinedOutput()
	if err != nil {
		t.Fatalf("go doc %s.%s: %v\n%s", path, name, err, out)
	}
	decl := regexp.MustCompile(`^(?:const |var |\t)` + name + `(?: ([a-z]\w*))? += `)
	for _, line := range strings.Split(string(out), "\n") {
		if decl.MatchString(line) {
			return true
		}
	}
	return false
}

// structFields lists the exported fields of the struct type path.name ("" fields: not a struct).
func structFields(t *testing.T, gobin, path, name string) []string {
	t.Helper()
	out, err := exec.Command(gobin, "doc", "-u=false", path+"."+name).CombinedOutput()
	if err != nil {
		t.Fatalf("go doc %s.%s: %v\n%s", path, name, err, out)
	}
	var fields []string
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "type "+name+" struct {"):
			in = true
		case in && line == "}":
			return fields
		case in:
			if m := fieldNames.FindStringSubmatch(line); m != nil {
				fields = append(fields, strings.Split(m[1], ", ")...)
			}
		}
	}
	return fields
}

// TestPublicAPINamesNoInternalPackage: `go doc -all` of every public package (not internal, not a
// command) names no identifier of an internal package, so a program in another module can spell every
// type of every exported signature. The one exception is an alias declaration `type X = pkg.Y`
// that gives an internal type its public name, and only when the alias's own doc says what users need
// of it: there must be one, and for a struct it names every exported field (go doc shows an alias
// without the target's fields). Public types defined in a public package (ortopts) are better.
func TestPublicAPINamesNoInternalPackage(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	pkgs := listModule(t, gobin)
	names := map[string]string{} // internal import path → package name
	allNames := map[string]bool{}
	for _, p := range pkgs {
		if isInternal(p.ImportPath) && p.Name != "" {
			names[p.ImportPath] = p.Name
			allNames[p.Name] = true
		}
	}
	checked := 0
	for _, p := range pkgs {
		if !isPublic(p) {
			continue
		}
		checked++
		local, others := imports(t, p, names)
		qualifiers := map[string]bool{}
		for n := range allNames {
			if !others[n] { // a public import of the same name is no internal reference
				qualifiers[n] = true
			}
		}
		for n := range local {
			qualifiers[n] = true
		}
		alt := make([]string, 0, len(qualifiers))
		for n := range qualifiers {
			alt = append(alt, regexp.QuoteMeta(n))
		}
		sort.Strings(alt)
		internalRef := regexp.MustCompile(`\b(` + strings.Join(alt, "|") + `)\.[A-Z]`)

		out, err := exec.Command(gobin, "doc", "-all", p.ImportPath).CombinedOutput()
		if err != nil {
			t.Fatalf("go doc %s: %v\n%s", p.ImportPath, err, out)
		}
		lines := strings.Split(string(out), "\n")
		for i, line := range lines {
			if !internalRef.MatchString(line) {
				continue
			}
			if loc := valueSpec.FindStringIndex(line); loc != nil && !internalRef.MatchString(line[:loc[1]]) {
				// A value initialised from an internal constant or variable: fine unless that one
				// carries an internal type.
				for _, ref := range internalRef.FindAllStringIndex(line[loc[1]:], -1) {
					q, rest, _ := strings.Cut(line[loc[1]+ref[0]:], ".")
					ident := regexp.MustCompile(`^\w+`).FindString(rest)
					if local[q] == "" || !untypedValue(t, gobin, local[q], ident) {
						t.Errorf("go doc %s: %q takes a typed value of an internal package", p.ImportPath, strings.TrimSpace(line))
					}
				}
				continue
			}
			m := aliasDecl.FindStringSubmatch(line)
			if m == nil || local[m[2]] == "" {
				t.Errorf("go doc %s: %q names an internal package", p.ImportPath, strings.TrimSpace(line))
				continue
			}
			var doc []string
			for _, d := range lines[i+1:] {
				if !strings.HasPrefix(d, "    ") {
					break
				}
				doc = append(doc, strings.TrimSpace(d))
			}
			if len(doc) == 0 {
				t.Errorf("go doc %s: alias %s of internal %s.%s has no doc of its own", p.ImportPath, m[1], m[2], m[3])
				continue
			}
			words := regexp.MustCompile(`\w+`).FindAllString(strings.Join(doc, " "), -1)
			for _, f := range structFields(t, gobin, local[m[2]], m[3]) {
				if !slices.Contains(words, f) {
					t.Errorf("go doc %s: alias %s of internal struct %s.%s: its doc does not name field %s", p.ImportPath, m[1], m[2], m[3], f)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("found only %d public packages", checked)
	}
}
