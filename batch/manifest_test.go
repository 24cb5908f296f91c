package batch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseManifestJSONL(t *testing.T) {
	src := `# comment
{"prompt": "a cat", "id": "cat", "count": 3, "seed": 100, "steps": 5}

{"prompt": "a dog", "width": 512, "height": 256, "cfg_scale": 4.5, "sampler": "heun", "negative_prompt": "blurry"}
{"prompt": "a bird", "id": "bird", "guidance": 2, "flow_shift": 3, "scheduler": "karras"}
`
	items, err := ParseManifest(strings.NewReader(src), Item{Seed: 1000, Steps: 8, NegativePrompt: "ugly"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ID: "cat-0", Index: 0, Prompt: "a cat", NegativePrompt: "ugly", Seed: 100, Steps: 5},
		{ID: "cat-1", Index: 1, Prompt: "a cat", NegativePrompt: "ugly", Seed: 101, Steps: 5},
		{ID: "cat-2", Index: 2, Prompt: "a cat", NegativePrompt: "ugly", Seed: 102, Steps: 5},
		{ID: "item-000003", Index: 3, Prompt: "a dog", NegativePrompt: "blurry", Seed: 1003, Steps: 8, Width: 512, Height: 256,
			CFGScale: 4.5, Sampler: "heun"},
		{ID: "bird", Index: 4, Prompt: "a bird", NegativePrompt: "ugly", Seed: 1004, Steps: 8, Guidance: 2, FlowShift: 3,
			Scheduler: "karras"},
	}
	if fmt.Sprint(items) != fmt.Sprint(want) {
		t.Fatalf("got\n%+v\nwant\n%+v", items, want)
	}
}

func TestParseManifestText(t *testing.T) {
	src := "a red circle\n\n# not a prompt\n  a blue square on white  \r\n{not json but not first}\n"
	items, err := ParseManifest(strings.NewReader(src), Item{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].Prompt != "a red circle" || items[1].Prompt != "a blue square on white" ||
		items[2].Prompt != "{not json but not first}" || items[1].ID != "item-000001" || items[2].Seed != 7 {
		t.Fatalf("%+v", items)
	}
	empty, err := ParseManifest(strings.NewReader("\n# only comments\n"), Item{})
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty manifest: %v, %v", empty, err)
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`{"prompt": "a"}` + "\n" + `{"prompt": "b", "colour": "red"}`, `line 2: unknown field "colour"`},
		{`{"prompt": "a", "steps": "many"}`, "line 1: "},
		{`{"id": "x"}`, "line 1: no prompt"},
		{`{"prompt": "a", "count": 0}`, "line 1: count 0"},
		{`{"prompt": "a", "id": "../etc"}`, `line 1: id "../etc"`},
		{`{"prompt": "a", "id": "x"}` + "\n" + `{"prompt": "b", "id": "x"}`, `line 2: id "x" is also item 0's`},
		{`{"prompt": "a", "id": "x", "count": 2}` + "\n" + `{"prompt": "b", "id": "x-1"}`, `line 2: id "x-1"`},
		{`{"prompt": "a"} {"prompt": "b"}`, "line 1: more than one"},
		{`{"prompt": "a", "seed": -1}`, "line 1: "},
		{"{\"prompt\": \"a\"}\nplain text line", "line 2: "},
	} {
		_, err := ParseManifest(strings.NewReader(c.src), Item{})
		if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.src, err, c.want)
		}
	}
}

// TestShardsPartition: for N = 1…7 and 0…50 items, the shards are disjoint and cover every item.
func TestShardsPartition(t *testing.T) {
	for n := 1; n <= 7; n++ {
		for length := 0; length <= 50; length++ {
			items := make([]Item, length)
			for i := range items {
				items[i] = Item{ID: fmt.Sprint(i), Index: i}
			}
			seen := make([]int, length)
			for i := range n {
				for _, it := range (Shard{Index: i, Count: n}).Select(items) {
					if it.Index%n != i {
						t.Fatalf("N=%d: item %d in shard %d", n, it.Index, i)
					}
					seen[it.Index]++
				}
			}
			for k, c := range seen {
				if c != 1 {
					t.Fatalf("N=%d, %d items: item %d is in %d shards", n, length, k, c)
				}
			}
		}
	}
}

func TestParseShard(t *testing.T) {
	if s, err := ParseShard("2/5"); err != nil || s != (Shard{2, 5}) || s.ResultsName() != "results-2-of-5.jsonl" {
		t.Fatalf("%v %v", s, err)
	}
	for _, bad := range []string{"", "3", "5/5", "-1/4", "1/0", "a/b", "1/2/3"} {
		if _, err := ParseShard(bad); !errors.Is(err, ErrShard) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestShardFromEnv(t *testing.T) {
	for _, c := range []struct {
		env   map[string]string
		count int
		want  Shard
		from  string
		err   error
	}{
		{nil, 0, Shard{0, 1}, "", nil},
		{nil, 4, Shard{}, "", ErrShardIndexMissing},
		{map[string]string{"JOB_COMPLETION_INDEX": "3"}, 4, Shard{3, 4}, "JOB_COMPLETION_INDEX", nil},
		{map[string]string{"JOB_COMPLETION_INDEX": "3"}, 0, Shard{}, "", ErrShardCountMissing},
		{map[string]string{"JOB_COMPLETION_INDEX": "4"}, 4, Shard{}, "", ErrShard},
		{map[string]string{"JOB_COMPLETION_INDEX": "x"}, 4, Shard{}, "", ErrShard},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "2"}, 3, Shard{2, 3}, "SLURM_ARRAY_TASK_ID", nil},
		// A retry of one task of an array (sbatch --array=1) or of a subset (--array=1,4): Slurm's
		// _MIN and _COUNT describe the subset, and the index is the task id as it is.
		{map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "1"}, 3,
			Shard{1, 3}, "SLURM_ARRAY_TASK_ID", nil},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, 8,
			Shard{4, 8}, "SLURM_ARRAY_TASK_ID", nil},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "3"}, 0,
			Shard{}, "", ErrShardCountMissing},
		{map[string]string{"JOB_COMPLETION_INDEX": "1", "SLURM_ARRAY_TASK_ID": "0"}, 2, Shard{1, 2}, "JOB_COMPLETION_INDEX", nil},
	} {
		got, from, err := ShardFromEnv(c.count, func(k string) string { return c.env[k] })
		if c.err != nil {
			if !errors.Is(err, c.err) || !errors.Is(err, ErrShard) {
				t.Errorf("%v count %d: got %v, %v; want error %v", c.env, c.count, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want || from != c.from {
			t.Errorf("%v count %d: got %v from %q, %v; want %v from %q", c.env, c.count, got, from, err, c.want, c.from)
		}
	}
}

func TestResultsLogTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	l, err := OpenResultsLog(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Record{{ID: "a", Status: StatusOK}, {ID: "b", Status: StatusError, Error: "boom"}} {
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"id":"c","status":"o`) // a crash mid-write
	f.Close()
	l, err = OpenResultsLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Succeeded("a"); !ok {
		t.Error("a not recorded")
	}
	if _, ok := l.Succeeded("b"); ok {
		t.Error("failed b counts as succeeded")
	}
	if err := l.Append(Record{ID: "c", Status: StatusOK}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	recs, err := ReadResults(path)
	if err != nil || len(recs) != 3 || recs[2].ID != "c" {
		t.Fatalf("%+v %v", recs, err)
	}
	os.WriteFile(path, []byte("{\"id\":\"a\"}\nnot json\n"), 0o644)
	if _, err := OpenResultsLog(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("damaged middle line: %v", err)
	}
}

// A UTF-8 byte order mark (Windows editors write one) is not part of the first line.
func TestParseManifestBOM(t *testing.T) {
	for _, src := range []string{"\ufeff{\"prompt\": \"a cat\", \"id\": \"c\"}\n", "\ufeffa cat\n", "\ufeff[{\"prompt\": \"a cat\", \"id\": \"c\"}]"} {
		items, err := ParseManifest(strings.NewReader(src), Item{})
		if err != nil || len(items) != 1 || items[0].Prompt != "a cat" {
			t.Errorf("%q: %+v, %v", src, items, err)
		}
	}
}

// A manifest may be one JSON array of the same objects, on one line or pretty-printed; errors name
// the line where the object starts.
func TestParseManifestJSONArray(t *testing.T) {
	lines := `{"prompt": "a cat", "id": "cat", "count": 2, "seed": 100}
{"prompt": "a dog", "width": 512}`
	want, err := ParseManifest(strings.NewReader(lines), Item{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		`[{"prompt": "a cat", "id": "cat", "count": 2, "seed": 100}, {"prompt": "a dog", "width": 512}]`,
		"# generated\n[\n  {\n    \"prompt\": \"a cat\", \"id\": \"cat\",\n    \"count\": 2, \"seed\": 100\n  },\n  {\"prompt\": \"a dog\", \"width\": 512}\n]\n",
		"[" + strings.Repeat(" ", 5000) + `{"prompt": "a cat", "id": "cat", "count": 2, "seed": 100},{"prompt": "a dog", "width": 512}]`,
	} {
		items, err := ParseManifest(strings.NewReader(src), Item{Seed: 7})
		if err != nil || fmt.Sprint(items) != fmt.Sprint(want) {
			t.Errorf("%.60q: %+v, %v; want %+v", src, items, err, want)
		}
	}
	if items, err := ParseManifest(strings.NewReader("[]"), Item{}); err != nil || len(items) != 0 {
		t.Errorf("empty array: %v, %v", items, err)
	}
	// A prompt that starts with a bracket is still a prompt.
	if items, err := ParseManifest(strings.NewReader("[cinematic] a cat\n"), Item{}); err != nil || len(items) != 1 ||
		items[0].Prompt != "[cinematic] a cat" {
		t.Errorf("bracketed prompt: %+v, %v", items, err)
	}
	for src, want := range map[string]string{
		"[\n {\"prompt\": \"a\"},\n {\"prompt\": \"b\", \"colour\": \"red\"}\n]": `line 3: unknown field "colour"`,
		"[\n {\"prompt\": \"a\"},\n\n {\"id\": \"x\"}]":                          "line 4: no prompt",
		"[\n {\"prompt\": \"a\"},\n \"just text\"\n]":                            "line 3: ",
		"[{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}]":                             "line 2: ",
		"[{\"prompt\": \"a\"}] {\"prompt\": \"b\"}":                              "text after the JSON array",
		"[{\"prompt\": \"a\"},\n":                                                "line 2: ",
	} {
		_, err := ParseManifest(strings.NewReader(src), Item{})
		if err == nil || !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", src, err, want)
		}
	}
}

// A manifest's sampler may be spelled as in sd.cpp or A1111; items carry the registry's name.
func TestParseManifestSamplerAliases(t *testing.T) {
	items, err := ParseManifest(strings.NewReader(`{"prompt": "a", "sampler": "Euler a"}
{"prompt": "b", "sampler": "dpm++2m"}
{"prompt": "c", "sampler": "nope"}`), Item{Sampler: "heun"})
	if err != nil {
		t.Fatal(err)
	}
	if items[0].Sampler != "euler_ancestral" || items[1].Sampler != "dpmpp_2m" || items[2].Sampler != "nope" {
		t.Errorf("samplers %q %q %q; want euler_ancestral, dpmpp_2m and the unknown name kept for its error", items[0].Sampler,
			items[1].Sampler, items[2].Sampler)
	}
}
