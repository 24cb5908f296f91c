package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

func runSchedule(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("schedule", pflag.ContinueOnError)
	model := fs.StringP("model", "m", "", "model folder (diffusers layout) or embedded demo: its scheduler_config.json and pipeline family")
	preset := fs.String("preset", "", "built-in preset: "+strings.Join(scheduler.PresetNames(), ", "))
	steps := fs.Int("steps", 0, "number of steps (default: the preset's)")
	width := fs.IntP("width", "W", 0, "image width in pixels, for the resolution shift μ (default: the preset's, 1024 for --model)")
	height := fs.IntP("height", "H", 0, "image height in pixels (default: the preset's, 1024 for --model)")
	sched := fs.String("scheduler", "", "schedule: "+strings.Join(scheduler.SchedulerNames(), ", ")+" (default: the model's own)")
	shift := fs.Float64("flow-shift", 0, "static shift; replaces the config's shift and turns dynamic shifting off (0: keep the config's)")
	fs.Float64Var(shift, "shift", 0, "same as --flow-shift")
	sigmas := fs.String("sigmas", "", "comma-separated custom σ list, decreasing in [0, 1] (a final 0 is added), shifted like the model's schedule, as diffusers does")
	sigmasRaw := fs.Bool("sigmas-raw", false, "use --sigmas exactly as given, without the model's shift")
	asJSON := fs.Bool("json", false, `print {"sigmas":[…],"timesteps":[…],"model_timesteps":[…]}`)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	usage := func(format string, a ...any) error { return &usageError{fs: fs, err: fmt.Errorf(format, a...)} }
	if *steps < 0 {
		return usage("--steps must be at least 1, got %d", *steps)
	}
	if (*model == "") == (*preset == "") {
		return usage("give exactly one of --model DIR and --preset NAME")
	}
	var req scheduler.ScheduleRequest
	var err error
	if *preset != "" {
		p, err := scheduler.LookupPreset(*preset)
		if err != nil {
			return usage("%v", err)
		}
		req = p.Request(*steps, *width, *height)
	} else {
		if *model, err = modelFolder(*model); err != nil {
			return err
		}
		mi, err := pipeline.ReadModelIndex(*model)
		if err != nil {
			return err
		}
		cfg, err := pipeline.ReadSchedulerConfig(*model)
		if err != nil {
			return err
		}
		if *steps == 0 && *sigmas == "" {
			return usage("--steps is required with --model")
		}
		w, h := orDefault(*width, 1024), orDefault(*height, 1024)
		req = scheduler.ScheduleRequest{Family: mi.Family, Config: cfg, Steps: *steps, ImageSeqLen: scheduler.ImageSeqLen(w, h)}
	}
	req.Scheduler, req.Shift = *sched, *shift
	if *sigmas != "" {
		vals, err := parseFloats(*sigmas)
		if err != nil {
			return usage("--sigmas: %v", err)
		}
		req.Sigmas, req.Steps, req.SigmasRaw = vals, *steps, *sigmasRaw
	} else if *sigmasRaw {
		return usage("--sigmas-raw needs --sigmas")
	}
	s, err := scheduler.BuildSchedule(req)
	if err != nil {
		var ne *scheduler.ScheduleNameError
		if errorsAs(err, &ne) {
			return usage("%v", err)
		}
		return err
	}
	if *asJSON {
		return json.NewEncoder(out).Encode(struct {
			Sigmas         []float64 `json:"sigmas"`
			Timesteps      []float64 `json:"timesteps"`
			ModelTimesteps []float64 `json:"model_timesteps"`
		}{s.Sigmas, s.Timesteps, s.ModelTimesteps})
	}
	printScheduleTable(out, req, s)
	return nil
}

func printScheduleTable(out io.Writer, req scheduler.ScheduleRequest, s scheduler.Schedule) {
	fmt.Fprintf(out, "family %s, scheduler %s, %d steps", req.Family, s.Scheduler, len(s.Timesteps))
	if s.DynamicShift {
		fmt.Fprintf(out, ", dynamic shift μ=%v (image tokens %d)", s.Mu, req.ImageSeqLen)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tsigma\ttimestep\tmodel_timestep\t")
	for i, sigma := range s.Sigmas {
		if i < len(s.Timesteps) {
			fmt.Fprintf(tw, "%d\t%v\t%v\t%v\t\n", i, sigma, s.Timesteps[i], s.ModelTimesteps[i])
		} else {
			fmt.Fprintf(tw, "%d\t%v\t\t\t\n", i, sigma)
		}
	}
	tw.Flush()
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func parseFloats(s string) ([]float64, error) {
	parts := strings.Split(s, ",")
	out := make([]float64, 0, len(parts))
	for _, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		out = append(out, v)
	}
	return out, nil
}
