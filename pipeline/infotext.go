package pipeline

// GuidanceInfo are the A1111 parameters-text entries ("Key", "value") that record a run's guidance
// rule and step cache, for the CLI's PNG text and the server's infotexts alike: "Guidance rule" and
// "Step cache", each left out when it is the default (plain CFG, no cache).
func (s Resolved) GuidanceInfo() [][2]string {
	var kv [][2]string
	if s.GuidanceRule != "" {
		kv = append(kv, [2]string{"Guidance rule", s.GuidanceRule})
	}
	if s.StepCache != "" {
		kv = append(kv, [2]string{"Step cache", s.StepCache})
	}
	return kv
}
