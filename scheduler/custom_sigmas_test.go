package scheduler

import (
	"errors"
	"math"
	"testing"
)

// TestCustomSigmasShifted: by default a user σ list is shifted the way diffusers' pipelines shift a
// `sigmas=` argument — SD3's static shift 3 (σ' = 3σ/(1+2σ)), FLUX-dev's time shift with μ of the
// image size (σ' = e^μ/(e^μ + 1/σ − 1)) — in float32, with the terminal 0 appended.
func TestCustomSigmasShifted(t *testing.T) {
	in := []float64{1, 0.6, 0.1}
	sd3 := schedPreset(t, "sd3").Request(0, 0, 0)
	sd3.Steps, sd3.Sigmas = 0, in
	s, err := BuildSchedule(sd3)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1}
	for _, x := range in[1:] {
		x32 := float32(x)
		want = append(want, float64(float32(3*x32)/(1+float32(2*x32))))
	}
	schedCheckBits(t, "sd3 Sigmas", s.Sigmas, append(want, 0))
	if s.Scheduler != "custom" || s.DynamicShift {
		t.Errorf("sd3: %v", s)
	}

	dev := schedPreset(t, "flux-dev").Request(0, 1024, 1024)
	dev.Steps, dev.Sigmas = 0, in
	s, err = BuildSchedule(dev)
	if err != nil {
		t.Fatal(err)
	}
	e := float32(math.Exp(1.15))
	want = want[:0]
	for _, x := range in {
		want = append(want, float64(e/(e+(1/float32(x)-1))))
	}
	schedCheckBits(t, "flux-dev Sigmas", s.Sigmas, append(want, 0))
	if !s.DynamicShift || s.Mu != DynamicShiftMu(4096, dev.Config) {
		t.Errorf("flux-dev: DynamicShift %t, μ %v; want true, 1.15", s.DynamicShift, s.Mu)
	}
	for i, ts := range s.ModelTimesteps {
		if want := float64(float32(float32(s.Sigmas[i])*1000) / 1000); ts != want {
			t.Errorf("flux-dev model timestep %d = %v, want %v", i, ts, want)
		}
	}
	// FLUX's own default is the same computation on linspace(1, 1/N, N): passing that list as custom σ
	// gives the default schedule bit for bit.
	def, err := BuildSchedule(schedPreset(t, "flux-dev").Request(4, 1024, 1024))
	if err != nil {
		t.Fatal(err)
	}
	dev.Sigmas = fluxPipelineSigmas(4)
	if s, err = BuildSchedule(dev); err != nil {
		t.Fatal(err)
	}
	schedCheckBits(t, "flux-dev linspace as custom σ", s.Sigmas, def.Sigmas)

	// A flow shift override shifts the list too (diffusers: the scheduler built with that shift).
	sd3.Shift = 1
	if s, err = BuildSchedule(sd3); err != nil {
		t.Fatal(err)
	}
	schedCheckBits(t, "shift 1", s.Sigmas, []float64{1, float64(float32(0.6)), float64(float32(0.1)), 0})
}

// TestCustomSigmasFoldedByShift: a list whose neighbours the shift maps onto one float32 σ is refused
// (not sampled with a zero-length step).
func TestCustomSigmasFoldedByShift(t *testing.T) {
	r := schedPreset(t, "sd3").Request(0, 0, 0)
	r.Steps = 0
	r.Shift = 1e9 // σ' = sσ/(1+(s−1)σ) rounds to 1 for every σ not tiny
	r.Sigmas = []float64{0.9, 0.8, 0.1}
	_, err := BuildSchedule(r)
	var pe *ScheduleParamError
	if !errors.As(err, &pe) || pe.Field != "Sigmas" {
		t.Fatalf("want a Sigmas ParamError, got %v", err)
	}
	r.SigmasRaw = true
	if _, err := BuildSchedule(r); err != nil {
		t.Fatalf("raw: %v", err)
	}
}
