package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// float32Bytes is the bit pattern of xs, for exact comparisons.
func float32Bytes(xs []float32) []byte {
	b := make([]byte, 0, 4*len(xs))
	for _, v := range xs {
		u := math.Float32bits(v)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return b
}

// checkItemsMatchSingles runs items in one batched Generate and each alone, and wants the same bits
// for noise, latents and pixels.
func checkItemsMatchSingles(t *testing.T, p *Pipeline, base Request, items []BatchItem) {
	t.Helper()
	ctx := context.Background()
	batched := base
	batched.Items = items
	res, err := p.Generate(ctx, batched, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != len(items) {
		t.Fatalf("%d images for %d items", len(res.Images), len(items))
	}
	per := len(res.Latents) / len(items)
	for i, it := range items {
		single := base
		single.Prompt, single.Prompt2, single.Prompt3, single.Seed = it.Prompt, it.Prompt2, it.Prompt3, it.Seed
		one, err := p.Generate(ctx, single, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(float32Bytes(one.Noise), float32Bytes(res.Noise[i*per:(i+1)*per])) {
			t.Errorf("item %d: noise differs from a single run", i)
		}
		if d := maxULPs(one.Latents, res.Latents[i*per:(i+1)*per]); d != 0 {
			t.Errorf("item %d (%q, seed %d): latents differ from a single run by up to %d ulps", i, it.Prompt, it.Seed, d)
		}
		if !bytes.Equal(one.Images[0].Pix, res.Images[i].Pix) {
			t.Errorf("item %d: pixels differ from a single run", i)
		}
	}
}

// maxULPs is the largest distance in units in the last place between a[i] and b[i].
func maxULPs(a, b []float32) int {
	worst := 0
	for i := range a {
		ua, ub := int64(math.Float32bits(a[i])), int64(math.Float32bits(b[i]))
		if ua&(1<<31) != 0 {
			ua = 1<<31 - ua
		}
		if ub&(1<<31) != 0 {
			ub = 1<<31 - ub
		}
		d := ua - ub
		if d < 0 {
			d = -d
		}
		worst = max(worst, int(min(d, 1<<30)))
	}
	return worst
}

var testItems = []BatchItem{
	{Prompt: "a green star on a black background", Seed: 3},
	{Prompt: "a red circle", Seed: 9},
	{Prompt: "a green star on a black background", Seed: 4},
}

// TestItemsMatchSingleRunsFixtures: on the random-weight SD3 and FLUX architectures (weights are
// initializers, which ORT pre-packs) a batch of different prompts and seeds gives each item the bits of
// its own run, with and without CFG and with a stochastic sampler.
func TestItemsMatchSingleRunsFixtures(t *testing.T) {
	for _, c := range []struct {
		kind testmodels.Kind
		req  Request
	}{
		{testmodels.KindSD3, Request{Width: 64, Height: 64, Steps: 2, CFGScale: 1}},
		{testmodels.KindSD3, Request{Width: 64, Height: 64, Steps: 2, CFGScale: 3, NegativePrompt: "blurry"}},
		{testmodels.KindSD3, Request{Width: 64, Height: 64, Steps: 2, CFGScale: 1, Sampler: "euler_ancestral"}},
		{testmodels.KindFluxDev, Request{Width: 64, Height: 64, Steps: 2}},
		{testmodels.KindFluxSchnell, Request{Width: 64, Height: 64, Steps: 2, TrueCFGScale: 2, NegativePrompt: "blurry"}},
	} {
		if testing.Short() && c.kind == testmodels.KindSD3 && (c.req.CFGScale != 3) {
			continue // -short: one SD3 case (CFG) and the FLUX ones
		}
		t.Run(fmt.Sprintf("%s/cfg%v/%s", c.kind, c.req.CFGScale, c.req.Sampler), func(t *testing.T) {
			m := openFixture(t, testmodels.Options{Kind: c.kind})
			checkItemsMatchSingles(t, newTestPipeline(t, m, true), c.req, testItems)
		})
	}
}

// TestItemsMatchSingleRunsDemo: on the demos, items match their single runs bit for bit, with and
// without CFG (a single run without CFG has one transformer row; the demo graph avoids the ORT kernels
// that are not row-count invariant, see TestORTRowInvariance).
func TestItemsMatchSingleRunsDemo(t *testing.T) {
	for _, c := range []struct {
		name string
		req  Request
	}{
		{"demo-sd3", Request{Width: 64, Height: 64, Steps: 3, CFGScale: 2, NegativePrompt: "a square"}},
		{"demo-sd3", Request{Width: 64, Height: 64, Steps: 4}},
		{"demo-sd3", Request{Width: 64, Height: 64, Steps: 4, Sampler: "euler_ancestral"}},
		{"demo-flux", Request{Width: 64, Height: 64, Steps: 4}},
	} {
		t.Run(fmt.Sprintf("%s/cfg%v/%s", c.name, c.req.CFGScale, c.req.Sampler), func(t *testing.T) {
			m, err := OpenDemo(c.name)
			if err != nil {
				t.Fatal(err)
			}
			checkItemsMatchSingles(t, newTestPipeline(t, m, true), c.req, testItems)
		})
	}
}

func TestItemsValidation(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := New(m, Options{Session: orttest.Options()})
	_, err = p.Generate(context.Background(), Request{Items: testItems, BatchSize: 2}, nil)
	if err == nil {
		t.Fatal("BatchSize 2 with 3 items: no error")
	}
}
