package scheduler

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// The reference tables of shared/spec/flow-sampling.md §8, exact doubles of float32 values.
var (
	spec81Sigmas = []float64{1.0, 0.9873806238174438, 0.9741077423095703, 0.9601293206214905, 0.9453874826431274,
		0.9298179149627686, 0.9133489727973938, 0.895900309085846, 0.8773819208145142, 0.857692301273346,
		0.8367166519165039, 0.8143247961997986, 0.7903682589530945, 0.764677107334137, 0.7370558381080627,
		0.7072784900665283, 0.6750823259353638, 0.6401602029800415, 0.602150559425354, 0.5606250166893005,
		0.5150721073150635, 0.4648760259151459, 0.40928882360458374, 0.34739264845848083, 0.2780487835407257,
		0.19982698559761047, 0.1109057292342186, 0.008928571827709675, 0.0}
	spec81Timesteps = []float64{1000.0, 987.380615234375, 974.1077270507812, 960.1293334960938, 945.3875122070312,
		929.8179321289062, 913.3489990234375, 895.9003295898438, 877.3818969726562, 857.6923217773438,
		836.7166748046875, 814.3247680664062, 790.3682861328125, 764.6771240234375, 737.0558471679688,
		707.2785034179688, 675.0823364257812, 640.1602172851562, 602.1505737304688, 560.625, 515.0720825195312,
		464.87603759765625, 409.288818359375, 347.39263916015625, 278.0487976074219, 199.8269805908203,
		110.90573120117188, 8.928571701049805}
	spec82Sigmas = []float64{1.0, 0.988408625125885, 0.9762224555015564, 0.9633944034576416, 0.9498725533485413,
		0.9355989098548889, 0.9205089807510376, 0.9045307636260986, 0.8875834345817566, 0.8695759177207947,
		0.8504056930541992, 0.8299564123153687, 0.8080955147743225, 0.7846716046333313, 0.7595109343528748,
		0.7324128150939941, 0.7031447291374207, 0.6714348196983337, 0.6369644999504089, 0.5993567109107971,
		0.5581628680229187, 0.5128441452980042, 0.4627484083175659, 0.40707841515541077, 0.3448489308357239,
		0.2748279869556427, 0.19545459747314453, 0.10472089797258377, 0.0}
	spec82Timesteps = []float64{1000.0, 988.4086303710938, 976.2224731445312, 963.3944091796875, 949.87255859375,
		935.5989379882812, 920.5089721679688, 904.53076171875, 887.5834350585938, 869.575927734375,
		850.4057006835938, 829.9564208984375, 808.0955200195312, 784.671630859375, 759.5109252929688,
		732.412841796875, 703.1447143554688, 671.434814453125, 636.9644775390625, 599.356689453125,
		558.162841796875, 512.8441162109375, 462.7484130859375, 407.07843017578125, 344.84893798828125,
		274.8279724121094, 195.45458984375, 104.72090148925781}
	spec82ModelTimesteps = []float64{1.0, 0.988408625125885, 0.9762224555015564, 0.9633944034576416,
		0.9498725533485413, 0.9355989098548889, 0.9205089807510376, 0.9045307636260986, 0.8875834345817566,
		0.8695759177207947, 0.8504056930541992, 0.8299564123153687, 0.8080955147743225, 0.7846716046333313,
		0.7595109343528748, 0.7324128150939941, 0.7031447291374207, 0.6714348196983337, 0.6369644999504089,
		0.5993567109107971, 0.5581628680229187, 0.5128441452980042, 0.4627484083175659, 0.40707844495773315,
		0.3448489308357239, 0.2748279869556427, 0.19545458257198334, 0.10472089797258377}
)

func schedPreset(t testing.TB, name string) Preset {
	t.Helper()
	p, err := LookupPreset(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestScheduleSpecTables reproduces spec §8.1–§8.4 to the float32 bit through the presets.
func TestScheduleSpecTables(t *testing.T) {
	tests := []struct {
		name, preset     string
		steps            int
		sigmas, ts, mts  []float64
		mu               float64
		dynamic          bool
		expMuFloat32Bits uint32
	}{
		{name: "8.1 sd3 shift 3, 28", preset: "sd3", steps: 28, sigmas: spec81Sigmas, ts: spec81Timesteps,
			mts: spec81Timesteps},
		{name: "8.2 flux-dev 1024², 28", preset: "flux-dev", steps: 28, sigmas: spec82Sigmas, ts: spec82Timesteps,
			mts: spec82ModelTimesteps, mu: 1.15, dynamic: true},
		{name: "8.3 flux-schnell 4", preset: "flux-schnell", steps: 4, sigmas: []float64{1, 0.75, 0.5, 0.25, 0},
			ts: []float64{1000, 750, 500, 250}, mts: []float64{1, 0.75, 0.5, 0.25}},
		{name: "8.4 sd3.5-large-turbo 4", preset: "sd3.5-large-turbo", steps: 4,
			sigmas: []float64{1.0, 0.857692301273346, 0.602150559425354, 0.008928571827709675, 0},
			ts:     []float64{1000.0, 857.6923217773438, 602.1505737304688, 8.928571701049805},
			mts:    []float64{1000.0, 857.6923217773438, 602.1505737304688, 8.928571701049805}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := schedPreset(t, tt.preset)
			if p.Steps != tt.steps {
				t.Errorf("preset steps = %d, want %d", p.Steps, tt.steps)
			}
			s, err := BuildSchedule(p.Request(0, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			schedCheckBits(t, "Sigmas", s.Sigmas, tt.sigmas)
			schedCheckBits(t, "Timesteps", s.Timesteps, tt.ts)
			schedCheckBits(t, "ModelTimesteps", s.ModelTimesteps, tt.mts)
			if s.Mu != tt.mu || s.DynamicShift != tt.dynamic {
				t.Errorf("Mu, DynamicShift = %v, %v; want %v, %v", s.Mu, s.DynamicShift, tt.mu, tt.dynamic)
			}
		})
	}
}

// TestFlowMatchInitRange: __init__'s sigma_min/sigma_max (spec §2.2), the source of the low-end double shift.
func TestFlowMatchInitRange(t *testing.T) {
	sd3 := schedPreset(t, "sd3").Config
	if lo, hi := flowMatchInitRange(sd3); lo != 0.002994012087583542 || hi != 1 {
		t.Errorf("SD3 range = %v, %v; want 0.002994012087583542, 1", lo, hi)
	}
	dev := schedPreset(t, "flux-dev").Config
	if lo, hi := flowMatchInitRange(dev); lo != 0.0010000000474974513 || hi != 1 {
		t.Errorf("dynamic range = %v, %v; want 0.0010000000474974513, 1", lo, hi)
	}
	if e := float32(math.Exp(DynamicShiftMu(4096, dev))); float64(e) != 3.1581928730010986 {
		t.Errorf("float32(e^μ) = %v, want 3.1581928730010986", e)
	}
}

// TestComfySpec85 checks ComfyUI simple and normal against spec §8.5 (float64 approximations at 6 dp; the
// FLUX table there is float64 where ComfyUI's — and rflow's — is float32, hence 1.5e-6).
func TestComfySpec85(t *testing.T) {
	sd3Simple := []float64{1.0, 0.988055, 0.975157, 0.961594, 0.947717, 0.932678, 0.916796, 0.9, 0.882716,
		0.863868, 0.843832, 0.823105, 0.800373, 0.776062, 0.75, 0.722798, 0.69268, 0.660134, 0.625874, 0.587591,
		0.545802, 0.5, 0.451049, 0.395434, 0.333593, 0.266447, 0.188811, 0.100746, 0}
	fluxSimple := []float64{1.0, 0.988413, 0.976232, 0.96341, 0.949895, 0.935628, 0.920546, 0.904531, 0.88759,
		0.869591, 0.850429, 0.82999, 0.808141, 0.78473, 0.759511, 0.732424, 0.703169, 0.671475, 0.637022, 0.599435,
		0.558266, 0.512844, 0.46277, 0.407125, 0.344928, 0.274947, 0.195624, 0.104954, 0}
	tests := []struct {
		preset, scheduler string
		want              []float64
	}{
		{"sd3", "simple", sd3Simple},
		{"sd3", "normal", spec81Sigmas},
		{"flux-dev", "simple", fluxSimple},
	}
	for _, tt := range tests {
		t.Run(tt.preset+"/"+tt.scheduler, func(t *testing.T) {
			r := schedPreset(t, tt.preset).Request(28, 0, 0)
			r.Scheduler = tt.scheduler
			s, err := BuildSchedule(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Sigmas) != len(tt.want) {
				t.Fatalf("len %d, want %d", len(s.Sigmas), len(tt.want))
			}
			for i, w := range tt.want {
				if math.Abs(s.Sigmas[i]-w) > 1.5e-6 {
					t.Errorf("σ[%d] = %.7f, want %.6f", i, s.Sigmas[i], w)
				}
			}
		})
	}
}

func TestFamilyModelTimestep(t *testing.T) {
	tests := []struct {
		f    Family
		t    float64
		want float64
	}{
		{FamilySD3, 987.380615234375, 987.380615234375},
		{FamilyFLUX, 407.07843017578125, 0.40707844495773315}, // true float32 division, not t·float32(1/1000)
		{FamilyFLUX, 195.45458984375, 0.19545458257198334},
		{FamilyFLUX, 999, 0.9990000128746033},
	}
	for _, tt := range tests {
		if got := tt.f.ModelTimestep(tt.t); got != tt.want {
			t.Errorf("%s.ModelTimestep(%v) = %v, want %v", tt.f, tt.t, got, tt.want)
		}
	}
}

// TestBuildScheduleErrors: bad input is an error naming the problem (and the valid names), never a panic.
// (Longer than 60 lines: it is one table of cases.)
func TestBuildScheduleErrors(t *testing.T) {
	sd3 := schedPreset(t, "sd3").Request(28, 0, 0)
	dev := schedPreset(t, "flux-dev").Request(28, 0, 0)
	with := func(r ScheduleRequest, f func(*ScheduleRequest)) ScheduleRequest { f(&r); return r }
	tests := []struct {
		name  string
		req   ScheduleRequest
		want  []string // substrings of the message
		names bool     // a ScheduleNameError
	}{
		{"zero request", ScheduleRequest{}, []string{`unknown family ""`, "sd3, flux"}, true},
		{"unknown family", with(sd3, func(r *ScheduleRequest) { r.Family = "sdxl" }), []string{"sd3, flux"}, true},
		{"unknown scheduler", with(sd3, func(r *ScheduleRequest) { r.Scheduler = "foo" }),
			[]string{`unknown scheduler "foo" (valid: simple, normal, sgm_uniform, karras`, "flowmatch, flowmatch_heun, dpmpp, unipc)"}, true},
		{"steps 0", with(sd3, func(r *ScheduleRequest) { r.Steps = 0 }), []string{"Steps", "[1, 10000]"}, false},
		{"steps negative", with(sd3, func(r *ScheduleRequest) { r.Steps = -3 }), []string{"Steps"}, false},
		{"steps too many", with(sd3, func(r *ScheduleRequest) { r.Steps = MaxSteps + 1 }), []string{"Steps"}, false},
		{"negative shift", with(sd3, func(r *ScheduleRequest) { r.Shift = -1 }), []string{"Shift"}, false},
		{"NaN shift", with(sd3, func(r *ScheduleRequest) { r.Shift = math.NaN() }), []string{"Shift"}, false},
		{"dynamic without size", with(dev, func(r *ScheduleRequest) { r.ImageSeqLen = 0 }), []string{"ImageSeqLen", "(H/16)·(W/16)"}, false},
		{"sigma above 1", with(sd3, func(r *ScheduleRequest) { r.Sigmas = []float64{1.2, 0.5} }), []string{"Sigmas[0] = 1.2", "[0, 1]"}, false},
		{"sigma negative", with(sd3, func(r *ScheduleRequest) { r.Sigmas = []float64{1, -0.1} }), []string{"Sigmas[1]"}, false},
		{"sigma NaN", with(sd3, func(r *ScheduleRequest) { r.Sigmas = []float64{math.NaN()} }), []string{"Sigmas[0]"}, false},
		{"sigmas increasing", with(sd3, func(r *ScheduleRequest) { r.Sigmas = []float64{0.5, 0.7, 0} }), []string{"strictly decreasing"}, false},
		{"sigmas repeated", with(sd3, func(r *ScheduleRequest) { r.Sigmas = []float64{0.5, 0.5} }), []string{"strictly decreasing"}, false},
		{"sigmas equal as float32", with(sd3, func(r *ScheduleRequest) { r.Sigmas = []float64{0.5, 0.49999999999} }), []string{"float32"}, false},
		{"sigmas only zero", with(sd3, func(r *ScheduleRequest) { r.Sigmas = []float64{0} }), []string{"Sigmas"}, false},
		{"sigmas vs steps", with(sd3, func(r *ScheduleRequest) { r.Sigmas = []float64{1, 0.5} }), []string{"Steps", "2 steps"}, false},
		{"karras and beta", with(sd3, func(r *ScheduleRequest) { r.Config.UseKarrasSigmas, r.Config.UseBetaSigmas = true, true }),
			[]string{"only one of use_beta_sigmas, use_exponential_sigmas, use_karras_sigmas"}, false},
		{"bad time shift type", with(dev, func(r *ScheduleRequest) { r.Config.TimeShiftType = "cubic" }),
			[]string{`unknown time_shift_type "cubic" (valid: exponential, linear)`}, true},
		{"bad class", with(sd3, func(r *ScheduleRequest) { r.Config.ClassName = "EulerDiscreteScheduler" }),
			[]string{"FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler"}, true},
		{"terminal stretch of one step", with(sd3, func(r *ScheduleRequest) { r.Steps, r.Config.ShiftTerminal = 1, 0.1 }),
			[]string{"σ[0] = NaN"}, false},
		{"comfy with linear time shift", with(dev, func(r *ScheduleRequest) { r.Scheduler, r.Config.TimeShiftType = "karras", TimeShiftLinear }),
			[]string{"exponential"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := BuildSchedule(tt.req)
			if err == nil {
				t.Fatalf("BuildSchedule succeeded: %v", s)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "scheduler: ") {
				t.Errorf("error %q does not name the package", err)
			}
			var ne *ScheduleNameError
			var pe *ScheduleParamError
			if tt.names && !errors.As(err, &ne) || !tt.names && !errors.As(err, &pe) {
				t.Errorf("error %T (%v): want ScheduleNameError=%v", err, err, tt.names)
			}
		})
	}
}

// TestScheduleInvariants runs every scheduler over every preset and a spread of step counts: the
// schedule starts ≤ 1, never increases, ends in 0, has one timestep per step, and the same request gives
// the same bits.
func TestScheduleInvariants(t *testing.T) {
	steps := []int{1, 2, 3, 4, 7, 28, 50}
	if testing.Short() {
		steps = []int{1, 4, 28}
	}
	for _, preset := range PresetNames() {
		p := schedPreset(t, preset)
		for _, name := range append([]string{""}, SchedulerNames()...) {
			for _, n := range steps {
				r := p.Request(n, 768, 1344)
				r.Scheduler = name
				s, err := BuildSchedule(r)
				if err != nil {
					t.Errorf("%s/%q/%d: %v", preset, name, n, err)
					continue
				}
				schedCheckInvariants(t, preset+"/"+s.Scheduler, s)
				again, _ := BuildSchedule(r)
				if schedBitsDiff(again.Sigmas, s.Sigmas) >= 0 || schedBitsDiff(again.ModelTimesteps, s.ModelTimesteps) >= 0 {
					t.Errorf("%s/%s/%d: not deterministic", preset, s.Scheduler, n)
				}
				if name != "ddim_uniform" && name != "beta" && len(s.Sigmas) != n+1 {
					t.Errorf("%s/%s/%d: %d σ, want %d", preset, s.Scheduler, n, len(s.Sigmas), n+1)
				}
			}
		}
	}
}

func schedCheckInvariants(t *testing.T, what string, s Schedule) {
	t.Helper()
	n := len(s.Sigmas)
	switch {
	case n < 2:
		t.Errorf("%s: only %d σ", what, n)
	case s.Sigmas[0] > 1 || s.Sigmas[n-1] != 0:
		t.Errorf("%s: σ runs %v … %v", what, s.Sigmas[0], s.Sigmas[n-1])
	case !slices.IsSortedFunc(s.Sigmas, func(a, b float64) int { return -schedCmp(a, b) }):
		t.Errorf("%s: σ increases: %v", what, s.Sigmas)
	case len(s.Timesteps) != n-1 || len(s.ModelTimesteps) != n-1:
		t.Errorf("%s: %d timesteps, %d model timesteps for %d σ", what, len(s.Timesteps), len(s.ModelTimesteps), n)
	}
	for i, v := range s.Sigmas {
		if float64(float32(v)) != v {
			t.Errorf("%s: σ[%d] = %v is not a float32 value", what, i, v)
		}
	}
}

func schedCmp(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestInvertSigmas: Mochi's inversion is the one schedule that increases and ends in 1.
func TestInvertSigmas(t *testing.T) {
	r := schedPreset(t, "sd3").Request(4, 0, 0)
	r.Config.InvertSigmas = true
	s, err := BuildSchedule(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, float64(1 - float32(0.857692301273346)), float64(1 - float32(0.602150559425354)),
		float64(1 - float32(0.008928571827709675)), 1}
	schedCheckBits(t, "Sigmas", s.Sigmas, want)
}

// TestCustomSigmasRaw: with SigmasRaw a user σ list is used as given, float32-rounded, with the
// terminal 0 appended.
func TestCustomSigmasRaw(t *testing.T) {
	r := schedPreset(t, "flux-dev").Request(0, 0, 0)
	r.Scheduler = "nonsense: ignored" // Sigmas override the scheduler
	r.Shift = 7                       // … and, raw, the shift
	r.Sigmas, r.SigmasRaw = []float64{1, 0.6, 0.1}, true
	r.Steps = 0 // inferred from Sigmas
	s, err := BuildSchedule(r)
	if err != nil {
		t.Fatal(err)
	}
	schedCheckBits(t, "Sigmas", s.Sigmas, []float64{1, float64(float32(0.6)), float64(float32(0.1)), 0})
	schedCheckBits(t, "ModelTimesteps", s.ModelTimesteps, []float64{1, float64(float32(600.0) / 1000),
		float64(float32(float32(0.1)*1000) / 1000)})
	if s.Scheduler != "custom" || s.DynamicShift || len(s.Timesteps) != 3 {
		t.Errorf("got %v", s)
	}
	r.Sigmas = append(r.Sigmas, 0)
	r.Steps = 3
	if s2, err := BuildSchedule(r); err != nil || schedBitsDiff(s2.Sigmas, s.Sigmas) >= 0 {
		t.Errorf("with explicit terminal 0: %v, %v", s2, err)
	}
}

// TestShiftOverride: Shift > 0 is a static shift that also turns FLUX's dynamic shift off.
func TestShiftOverride(t *testing.T) {
	r := schedPreset(t, "flux-dev").Request(28, 0, 0)
	r.Shift = math.Exp(DynamicShiftMu(r.ImageSeqLen, r.Config))
	s, err := BuildSchedule(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.DynamicShift || s.Mu != 0 {
		t.Errorf("DynamicShift, Mu = %v, %v; want false, 0", s.DynamicShift, s.Mu)
	}
	// s = e^μ statically is the same function as the μ time shift; in float32 they agree to an ulp or two.
	for i, v := range s.Sigmas {
		if d := math.Abs(v - spec82Sigmas[i]); d > 2e-7 {
			t.Errorf("σ[%d] = %v, dynamic %v (Δ %g)", i, v, spec82Sigmas[i], d)
		}
	}
}

// TestSchedulerTable: every name has help, and the names are unique.
func TestSchedulerTable(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range SchedulerNames() {
		if seen[name] {
			t.Errorf("duplicate scheduler %q", name)
		}
		seen[name] = true
		if SchedulerHelp(name) == "" {
			t.Errorf("scheduler %q has no help", name)
		}
	}
	if SchedulerHelp("nope") != "" {
		t.Error("help for an unknown name")
	}
	for _, class := range FlowMatchClassNames() {
		if !seen[classSchedule(class)] {
			t.Errorf("class %s maps to unknown schedule %q", class, classSchedule(class))
		}
	}
}

// TestFlowMatchHeunIgnoresDynamic: FlowMatchHeun's config has only N and the static shift (spec §2.7), so
// a FLUX-dev folder switched to Heun gets the static shift 3 — the SD3 schedule — and no μ.
func TestFlowMatchHeunIgnoresDynamic(t *testing.T) {
	r := schedPreset(t, "flux-dev").Request(28, 0, 0)
	r.Scheduler = "flowmatch_heun"
	s, err := BuildSchedule(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.DynamicShift || s.Mu != 0 {
		t.Errorf("DynamicShift, Mu = %v, %v", s.DynamicShift, s.Mu)
	}
	schedCheckBits(t, "Sigmas", s.Sigmas, spec81Sigmas)
	schedCheckBits(t, "ModelTimesteps", s.ModelTimesteps, familyModelTimesteps(FamilyFLUX, spec81Timesteps))
}
