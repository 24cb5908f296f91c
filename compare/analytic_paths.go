package compare

import (
	"context"
	"fmt"
	"strings"

	"github.com/rflowrt/rflow/scheduler"
)

// exactStats are a (path, seed)'s properties of the flow itself, independent of the samplers.
type exactStats struct {
	path string
	seed uint64
	// straightness of the exact flow: rk4 with exactStraightSteps uniform steps (error ≈ 1e-8,
	// so the left Riemann sum over its steps is the integral to O(1/steps)).
	straightness float64
	// w2Floor is the sliced W₂ of the exact transport to the target draws: the sampling-noise floor
	// of the distribution distance at this number of points.
	w2Floor float64
}

const exactStraightSteps = 256

func (a *analyticRun) exactStats(ctx context.Context) (exactStats, error) {
	es := exactStats{path: a.flow.Path.Name(), seed: a.sd.seed}
	x := append([]float32(nil), a.sd.start...)
	meter := NewStraightness(a.flow.Path)
	sig := make([]float64, exactStraightSteps+1)
	for i := range sig {
		sig[i] = 1 - float64(i)/exactStraightSteps
	}
	o := scheduler.Options{Path: a.flow.Path, Callback: meter.Observe}
	if err := scheduler.RK4(ctx, a.flow, x, sig, o); err != nil {
		return es, fmt.Errorf("exact-flow straightness: %w", err)
	}
	var err error
	if es.straightness, err = meter.Value(a.sd.start); err != nil {
		return es, err
	}
	t, err := a.exact(ctx, 1, 0)
	if err != nil {
		return es, err
	}
	if es.w2Floor, err = SlicedWasserstein(t, a.sd.target, a.flow.Target.Dim(), a.spec.Projections, 1); err != nil {
		return es, err
	}
	return es, nil
}

// analyticSections writes the flow's own properties and, for --path both, the rectified-flow vs
// flow-matching comparison.
func analyticSections(exact []exactStats, rows []Row, both bool) []Section {
	var b strings.Builder
	b.WriteString("Properties of the exact flow, independent of the samplers: its straightness (rk4, 256 uniform steps) and the sliced W₂ of the exact transport to the target draws — the sampling-noise floor of the W₂ column.\n\n")
	b.WriteString("| path | seed | straightness of the exact flow | W₂ floor |\n|---|---|---|---|\n")
	for _, e := range exact {
		fmt.Fprintf(&b, "| %s | %d | %.4f | %.4f |\n", e.path, e.seed, e.straightness, e.w2Floor)
	}
	secs := []Section{{Heading: "The exact flow", Body: b.String()}}
	if both {
		secs = append(secs, Section{Heading: "Rectified flow (linear path) vs flow matching (cosine path)", Body: pathComparison(rows)})
	}
	return secs
}

// pathComparison tabulates, per sampler and step count, the error and straightness on both paths
// (geometric mean of the RMSE and mean straightness over seeds and schedule blocks).
func pathComparison(rows []Row) string {
	type key struct {
		sampler string
		steps   int
	}
	var keys []key
	errs := map[key]map[string][]float64{}
	straight := map[key]map[string][]float64{}
	for _, r := range rows {
		k := key{r.Sampler, r.Steps}
		if errs[k] == nil {
			errs[k], straight[k] = map[string][]float64{}, map[string][]float64{}
			keys = append(keys, k)
		}
		errs[k][r.Path] = append(errs[k][r.Path], r.RMSE)
		straight[k][r.Path] = append(straight[k][r.Path], r.Straightness)
	}
	var b strings.Builder
	b.WriteString("Same target, same start points, same σ grid; the cosine path's σ list is read as path time t.\n\n")
	b.WriteString("| sampler | steps | RMSE linear | RMSE cosine | cosine / linear | straightness linear | straightness cosine |\n|---|---|---|---|---|---|---|\n")
	for _, k := range keys {
		el, ec := GeoMean(errs[k]["linear"]), GeoMean(errs[k]["cosine"])
		fmt.Fprintf(&b, "| %s | %d | %.3g | %.3g | %.2f | %.4f | %.4f |\n", k.sampler, k.steps, el, ec, ec/el,
			mean(straight[k]["linear"]), mean(straight[k]["cosine"]))
	}
	return b.String()
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
