package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/batch"
)

// batchStatusUsage heads rflow batch status --help.
const batchStatusUsage = `Usage: rflow batch status --manifest FILE --out DIR [--merge]

Report every item of a batch: done, missing, failed, stale (drawn with another prompt, seed or
settings than the manifest now gives) and duplicate (drawn more than once), per shard and overall.
The exit status is 0 when every item is done, 1 when any is missing, failed or stale.

Flags:
`

// maxListed bounds the items listed by name under the table.
const maxListed = 20

func runBatchStatus(args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("batch status", pflag.ContinueOnError)
	manifest := fs.String("manifest", "", "the batch's manifest (required)")
	outDir := fs.String("out", "", "the batch's output folder (required)")
	merge := fs.Bool("merge", false, "also write "+batch.MergedJSONL+" and "+batch.MergedCSV+" into --out: one line per item, its state and latest record")
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(out, batchStatusUsage+fs.FlagUsages())
			return errHelp
		}
		return &usageError{fs: fs, err: err}
	}
	if err := strayArgsError(fs, args); err != nil {
		return &usageError{fs: fs, err: err}
	}
	if *manifest == "" || *outDir == "" {
		return &usageError{fs: fs, err: errors.New("--manifest and --out are required")}
	}
	if err := batch.CheckOutDir(*outDir); err != nil {
		return &codedError{fmt.Errorf("--out: %w", err), 2}
	}
	pin, err := batch.ReadPin(*outDir)
	if err != nil {
		return err
	}
	items, sha, err := readManifestFile(*manifest, pin.Defaults)
	if err != nil {
		return err
	}
	ck := checkpointFlags{loraDir: pin.LoRADir} // prompts' <lora:…> tags become item LoRAs, as in the runs
	if err := ck.itemPromptLoRAs(items); err != nil {
		return err
	}
	rep, err := batch.Check(*outDir, pin, items, sha)
	if err != nil {
		return err
	}
	printStatus(out, rep)
	if *merge {
		if err := rep.WriteMerged(); err != nil {
			return err
		}
		fmt.Fprintf(out, "merged: %s, %s\n", filepath.Join(*outDir, batch.MergedJSONL), filepath.Join(*outDir, batch.MergedCSV))
	}
	if !rep.OK() {
		t := rep.Total
		return fmt.Errorf("%d of %d items not done: %d missing, %d failed, %d stale", t.Items-t.Done, t.Items, t.Missing, t.Failed, t.Stale)
	}
	return nil
}

// printStatus writes the report: a header, one row per shard and the total, then the items that are
// not done (the first few by name) and anything odd in the folder.
func printStatus(w io.Writer, r batch.Report) {
	p := r.Pin
	fmt.Fprintf(w, "batch in %s: %d items, %d shards, model %s, manifest sha256 %.12s… (started %s)\n", r.Dir, len(r.Items),
		p.Shards, p.Settings.Model, p.ManifestSHA256, p.Created)
	if r.ManifestChanged {
		fmt.Fprintf(w, "the manifest changed since the batch started (sha256 now %.12s…): changed items show as stale\n", r.ManifestSHA256)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "shard\titems\tdone\tmissing\tfailed\tstale\tduplicate\tresults")
	row := func(name string, c batch.ShardCounts, results string) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", name, c.Items, c.Done, c.Missing, c.Failed, c.Stale, c.Dup, results)
	}
	for _, c := range r.Shards {
		res := c.Results
		if !c.HasResults {
			res = "(none: never started)"
		}
		row(c.Shard.String(), c, res)
	}
	row("all", r.Total, "")
	tw.Flush()
	listed := 0
	for _, st := range r.Items {
		if st.State == batch.StateDone && st.Successes <= 1 {
			continue
		}
		if listed == maxListed {
			fmt.Fprintln(w, "…")
			break
		}
		listed++
		what := st.State
		if st.State == batch.StateDone {
			what = fmt.Sprintf("duplicate (drawn %d times)", st.Successes)
		}
		if st.State == batch.StateFailed && st.Latest != nil {
			what += ": " + oneLine(st.Latest.Error)
		}
		fmt.Fprintf(w, "  %s (shard %d): %s\n", st.Item.ID, st.Shard, what)
	}
	if len(r.Unknown) > 0 {
		fmt.Fprintf(w, "%d id(s) with results are not in the manifest (%s)\n", len(r.Unknown), firstFew(r.Unknown))
	}
	if len(r.Foreign) > 0 {
		fmt.Fprintf(w, "results files of another shard count are ignored: %s\n", firstFew(r.Foreign))
	}
}

func firstFew(xs []string) string {
	if len(xs) <= 5 {
		return fmt.Sprint(xs)
	}
	return fmt.Sprintf("%v and %d more", xs[:5], len(xs)-5)
}
