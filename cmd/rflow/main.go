// Command rflow generates images with SD3- and FLUX-style rectified-flow models exported to ONNX.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/pflag"
)

// command is one subcommand. run gets the arguments after the subcommand name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer) error
}

// commands is the dispatch table; each subcommand lives in its own file.
func commands() []command {
	return []command{
		{name: "convert", summary: "compile a checkpoint (.safetensors file or diffusers folder) into an ONNX folder any ONNX Runtime user can load", run: runConvert},
		{name: "compare", summary: "compare samplers × steps × schedules on a model or an analytic flow: grid, metrics, orders, plots", run: runCompare},
		{name: "batch", summary: "generate every image of a manifest, sharded, resumable, models loaded once (batch status: what is done)", run: runBatch},
		{name: "inspect", summary: "list a model folder's components, signatures and tokenizers, and every problem found", run: runInspect},
		{name: "quantize", summary: "rewrite an ONNX export folder with quantized weights (int8, q8, q4, q4s) and/or fused attention", run: runQuantize},
		{name: "noise", summary: "print torch-compatible initial noise for a seed and shape", run: runNoise},
		{name: "schedule", summary: "print the σ schedule and the timesteps the model sees", run: runSchedule},
		{name: "serve", summary: "serve a model over HTTP: OpenAI images API, A1111 sdapi, async jobs, a web page", run: runServe},
		{name: "txt2img", summary: "generate images from a prompt (default model: the embedded demo)", run: runTxt2img},
		{name: "tokenize", summary: "print the token ids a CLIP or T5 tokenizer gives a text", run: runTokenize},
		{name: "version", summary: "print rflow, Go and ONNX Runtime versions and the execution providers", run: runVersion},
	}
}

// usageError marks a mistake in how rflow was called: exit status 2, one line and a hint to --help.
type usageError struct {
	fs  *pflag.FlagSet
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCoder is an error that chooses its exit status (rflow batch's run-level failures).
type exitCoder interface{ exitCode() int }

// errHelp is returned when the user asked for help; usage goes to stdout and the exit status is 0.
var errHelp = pflag.ErrHelp

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value // the first signal, once one arrived
	go func() {
		for s := range sigs {
			if got.Load() != nil { // a second Ctrl-C: stop now
				os.Exit(signalExitCode(s))
			}
			got.Store(s)
			cancel() // the run stops between steps and returns
		}
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(sigs)
	if s, ok := got.Load().(os.Signal); ok && code != 0 {
		code = signalExitCode(s)
	}
	os.Exit(code)
}

// signalExitCode is the shell's status for a process ended by a signal: 128 + its number (SIGINT 130,
// SIGTERM 143).
func signalExitCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 130
}

// run executes one rflow invocation and returns the exit status: 0 success, 1 failure, 2 usage error
// (rflow batch: 3 when the run as a whole cannot go on).
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 {
		printHelp(errOut)
		return 2
	}
	name := args[0]
	switch name {
	case "--version", "-V":
		name, args = "version", append([]string{"version"}, args[1:]...)
	case "help", "-h", "--help":
		if len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				_ = c.run(ctx, []string{"--help"}, out, errOut)
				return 0
			}
			unknownCommand(errOut, args[1])
			return 2
		}
		printHelp(out)
		return 0
	}
	c, ok := lookup(name)
	if !ok {
		unknownCommand(errOut, name)
		return 2
	}
	err := c.run(ctx, args[1:], out, errOut)
	var ue *usageError
	var coded exitCoder
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(errOut, "rflow %s: %s\nRun 'rflow %s --help' for its flags.\n", name, oneLine(ue.err.Error()), name)
		return 2
	case errors.As(err, &coded):
		fmt.Fprintf(errOut, "rflow %s: %s\n", name, oneLine(withAdvice(err)))
		return coded.exitCode()
	default:
		fmt.Fprintf(errOut, "rflow %s: %s\n", name, oneLine(withAdvice(err)))
		return 1
	}
}

// errorsAs is errors.As, named so subcommand files need not import errors for one call.
func errorsAs(err error, target any) bool { return errors.As(err, target) }

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// unknownCommand says so in one line, with the nearest command name when one is close.
func unknownCommand(w io.Writer, name string) {
	hint := ""
	if strings.HasPrefix(name, "-") {
		hint = " (flags go after the command: rflow txt2img -p \"…\")"
	}
	for _, c := range commands() {
		if strings.HasPrefix(c.name, name) || strings.HasPrefix(name, c.name) {
			hint = fmt.Sprintf("; did you mean %q?", c.name)
			break
		}
	}
	fmt.Fprintf(w, "rflow: unknown command %q%s\nRun 'rflow help' for the commands.\n", name, hint)
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "rflow turns text prompts into images with SD3- and FLUX-style rectified-flow models (ONNX).")
	fmt.Fprintln(w, "\nUsage: rflow <command> [flags]\n\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'rflow help <command>' or 'rflow <command> --help' for a command's flags.")
}

func printUsage(w io.Writer, name string, fs *pflag.FlagSet) {
	c, _ := lookup(name)
	fmt.Fprintf(w, "Usage: rflow %s [flags]\n\n%s.\n\nFlags:\n%s", name, c.summary, fs.FlagUsages())
}

// parseFlags parses a subcommand's flags, turning pflag's errors into usage errors and --help into
// usage on out. No subcommand takes positional arguments: they are usage errors.
func parseFlags(fs *pflag.FlagSet, args []string, out io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printUsage(out, fs.Name(), fs)
			return errHelp
		}
		return &usageError{fs: fs, err: err}
	}
	if err := strayArgsError(fs, args); err != nil {
		return &usageError{fs: fs, err: err}
	}
	return nil
}

// oneLine folds a multi-line error (ORT's messages carry newlines) into the one line rflow prints.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
