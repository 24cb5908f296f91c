package textenc

import (
	"testing"
)

// clipBenchPrompt is a typical SD prompt of 77 CLIP ids (75 content tokens).
const clipBenchPrompt = "a beautiful landscape painting of a mountain lake at sunrise, mist over the water, pine trees, " +
	"snow-capped peaks in the distance, golden light, reflections, highly detailed, 8k, trending on artstation, " +
	"by Albert Bierstadt and Thomas Moran, hudson river school, dramatic sky, volumetric lighting, romanticism, " +
	"oil on canvas, masterpiece, museum quality"

// BenchmarkCLIPEncode reports µs per prompt with an empty word cache (cold) and a filled one (warm).
func BenchmarkCLIPEncode(b *testing.B) {
	for _, slow := range []bool{false, true} {
		name := "fast"
		if slow {
			name = "slow"
		}
		tok := clipTokLoad(b, "shared", slow)
		if n := len(tok.Encode(clipBenchPrompt)); n < 70 || n > 85 {
			b.Fatalf("bench prompt has %d ids", n)
		}
		b.Run(name+"/cold", func(b *testing.B) {
			for b.Loop() {
				tok.resetCache()
				tok.Encode(clipBenchPrompt)
			}
		})
		b.Run(name+"/warm", func(b *testing.B) {
			tok.Encode(clipBenchPrompt)
			for b.Loop() {
				tok.Encode(clipBenchPrompt)
			}
		})
		b.Run(name+"/warm-parallel", func(b *testing.B) {
			tok.Encode(clipBenchPrompt)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tok.Encode(clipBenchPrompt)
				}
			})
		})
	}
}

// BenchmarkLoadCLIPTokenizer loads the real files: tokenizer.json, and vocab.json + merges.txt.
func BenchmarkLoadCLIPTokenizer(b *testing.B) {
	for _, kind := range []string{"json", "files"} {
		dir := clipTokFolder(b, kind)
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				if _, err := LoadCLIPTokenizer(dir, CLIPOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
