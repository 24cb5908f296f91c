package vae

import (
	"fmt"
	"math"
)

// Stages that NonFiniteError names.
const (
	StageLatents = "latents"    // Decode's input
	StageDecode  = "vae decode" // the decoder's output
	StagePixels  = "pixels"     // Encode's and ToImages' input
	StageEncode  = "vae encode" // the encoder's output
)

// NonFiniteError says that a tensor holds NaN or ±Inf, and where the values were found: Stage names
// the tensor (StageLatents, StageDecode, … or the name given to CheckFinite), Index is the flat index
// of the first bad value. A NaN in the latents usually comes from the sampler or the transformer
// (fp16 overflow); a NaN only in the decoder's output from the VAE itself (fp16 VAEs overflow, which
// is why diffusers upcasts SD3/FLUX VAEs to float32: force_upcast).
type NonFiniteError struct {
	Stage string
	Index int
	Value float32 // the first bad value: NaN, +Inf or −Inf
	Count int     // how many values are NaN or ±Inf
	Len   int     // how many values were checked
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("%s: %d of %d values are not finite (the first, %v, at index %d)", e.Stage, e.Count, e.Len, e.Value, e.Index)
}

// CheckFinite returns a *NonFiniteError naming stage when x holds NaN or ±Inf, else nil.
func CheckFinite(stage string, x []float32) error {
	if i := FirstNonFinite(x); i >= 0 {
		return nonFinite(stage, x, i)
	}
	return nil
}

// FirstNonFinite returns the index of the first NaN or ±Inf in x, or −1.
func FirstNonFinite(x []float32) int {
	for i, v := range x {
		if v-v != 0 { // NaN − NaN and Inf − Inf are NaN; finite − itself is 0
			return i
		}
	}
	return -1
}

func nonFinite(stage string, x []float32, first int) *NonFiniteError {
	e := &NonFiniteError{Stage: stage, Index: first, Value: x[first], Len: len(x)}
	for _, v := range x[first:] {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			e.Count++
		}
	}
	return e
}
