package textenc

import (
	"os"
	"path/filepath"
	"testing"
)

// t5BenchPrompt is a typical SD prompt of about 77 T5 tokens.
const t5BenchPrompt = "a majestic red fox standing in a snowy birch forest at dawn, soft golden light, " +
	"volumetric fog, highly detailed fur, shallow depth of field, 85mm lens, bokeh, award-winning " +
	"trending on artstation, masterpiece, " +
	"wildlife photography, National Geographic, 8k, sharp focus, cinematic color grading"

func BenchmarkT5Encode(b *testing.B) {
	tok := t5For(b, "sd3/tokenizer.json")
	b.Logf("prompt: %d ids", len(tok.Encode(t5BenchPrompt)))
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			tok.resetCache()
			tok.Encode(t5BenchPrompt)
		}
	})
	b.Run("warm", func(b *testing.B) {
		tok.Encode(t5BenchPrompt)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			tok.Encode(t5BenchPrompt)
		}
	})
	b.Run("padded256-warm", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			tok.EncodePadded(t5BenchPrompt, 256)
		}
	})
}

func BenchmarkLoadT5Tokenizer(b *testing.B) {
	needSharedT5(b)
	spDir := b.TempDir()
	t5CopyFile(b, filepath.Join(sharedT5, "spiece.model"), filepath.Join(spDir, "spiece.model"))
	t5CopyFile(b, filepath.Join(sharedT5, "tokenizer_config.json"), filepath.Join(spDir, "tokenizer_config.json"))
	for _, c := range []struct{ name, dir string }{{"tokenizer.json", sharedT5}, {"spiece.model", spDir}} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := os.Stat(c.dir); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				if _, err := LoadT5Tokenizer(c.dir, T5Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
