package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/scheduler"
)

// maxImageSide is the largest width or height the pipeline draws (pipeline/plan.go's maxSide): sizes
// are checked here, before anything loads, with suggestions that stay within it.
const maxImageSide = 16384

// checkSide refuses a width or height that is not a multiple of 16 in [16, maxImageSide], suggesting
// the nearest sizes that are.
func checkSide(flag string, v int) error {
	switch {
	case v < 16:
		return fmt.Errorf("%s %d: the smallest size is 16 (leave it out for the model's default)", flag, v)
	case v > maxImageSide:
		return fmt.Errorf("%s %d: the largest size is %d", flag, v, maxImageSide)
	case v%16 != 0:
		lo := v / 16 * 16
		if lo+16 > maxImageSide {
			return fmt.Errorf("%s %d is not a multiple of 16; try %d", flag, v, lo)
		}
		if lo < 16 {
			return fmt.Errorf("%s %d is not a multiple of 16; try %d", flag, v, lo+16)
		}
		return fmt.Errorf("%s %d is not a multiple of 16; try %d or %d", flag, v, lo, lo+16)
	}
	return nil
}

// checkGenerationNumbers refuses the numeric flags shared by txt2img and batch that no run can use: a
// size, step count or T5 length given as 0 or less (left out, they take the model's default),
// negative counts and indices.
func checkGenerationNumbers(fs *pflag.FlagSet, f *txt2imgFlags) error {
	var errs []error
	errs = append(errs, checkSides(fs, f.width, f.height))
	if fs.Changed("steps") && (f.steps < 1 || f.steps > scheduler.MaxSteps) {
		errs = append(errs, fmt.Errorf("--steps %d: want 1 to %d (leave it out for the model's default)", f.steps, scheduler.MaxSteps))
	}
	if fs.Changed("max-sequence-length") && f.maxSeq < 1 {
		errs = append(errs, fmt.Errorf("--max-sequence-length %d: want at least 1 (leave it out for the model's default)", f.maxSeq))
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"--threads", f.threads}, {"--device-id", f.deviceID}, {"--preview-every", f.previewEvery}, {"--clip-skip", f.clipSkip}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: want 0 or more", n.flag, n.v))
		}
	}
	return joinErrors(errs)
}

// joinErrors joins errors into one error whose message reads on one line: "a; b".
func joinErrors(errs []error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// checkSides checks -W and -H where they were given.
func checkSides(fs *pflag.FlagSet, width, height int) error {
	var errs []error
	if fs.Changed("width") {
		errs = append(errs, checkSide("-W/--width", width))
	}
	if fs.Changed("height") {
		errs = append(errs, checkSide("-H/--height", height))
	}
	return joinErrors(errs)
}
