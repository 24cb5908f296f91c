package scheduler

import "testing"

// BenchmarkBuildSchedule times whole schedules as the CLI and pipeline build them once per run.
func BenchmarkBuildSchedule(b *testing.B) {
	req := func(preset, scheduler string) ScheduleRequest {
		r := schedPreset(b, preset).Request(28, 0, 0)
		r.Scheduler = scheduler
		return r
	}
	cases := []struct {
		name string
		req  ScheduleRequest
	}{
		{"sd3-28", req("sd3", "")},
		{"flux-dev-28", req("flux-dev", "")},
		{"comfy-karras-sd3-28", req("sd3", "karras")},
		{"comfy-karras-flux-dev-28", req("flux-dev", "karras")},
		{"comfy-beta-flux-dev-28", req("flux-dev", "beta")},
		{"unipc-sd3-28", req("sd3", "unipc")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := BuildSchedule(c.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
