package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/rflowrt/rflow/pipeline"
)

// Settings are the run-wide settings that decide a batch's images beside each item's own: the model
// and the request fields every item shares. Execution details that do not change what is drawn
// (provider, threads, --batch-size, --save-latents) are not part of them.
type Settings struct {
	Model             string  `json:"model"`
	Family            string  `json:"family"`
	RNG               string  `json:"rng"`
	TrueCFGScale      float64 `json:"true_cfg_scale"`
	MaxSequenceLength int     `json:"max_sequence_length"`
	ClipSkip          int     `json:"clip_skip"`
	VAETiling         bool    `json:"vae_tiling"`
	// GuidanceRule and StepCache are the request's (empty: plain CFG, no cache).
	GuidanceRule string `json:"guidance_rule,omitempty"`
	StepCache    string `json:"step_cache,omitempty"`
	// LoRAs are the run-wide LoRAs merged into a checkpoint (file base name:weight, in order; an item's
	// own LoRAs are part of the item); Weights and TextEncoderWeights how a compiled checkpoint stores
	// its weights (fp32, fp16, int8, q8, q4, q4s; empty for an ONNX export, which the flags do not change).
	LoRAs              []string `json:"loras,omitempty"`
	Weights            string   `json:"weights,omitempty"`
	TextEncoderWeights string   `json:"te_weights,omitempty"`
}

// SettingsOf is the Settings of a run of model m with base request base.
func SettingsOf(m *pipeline.Model, base pipeline.Request) Settings {
	s := Settings{RNG: fmt.Sprint(base.RNG), TrueCFGScale: base.TrueCFGScale, MaxSequenceLength: base.MaxSequenceLength,
		ClipSkip: base.ClipSkip, VAETiling: base.VAETiling, GuidanceRule: base.GuidanceRule, StepCache: base.StepCache}
	if m != nil {
		s.Model, s.Family = m.Name, string(m.Family)
	}
	return s
}

// Fingerprint identifies what an item draws under settings s: a hex SHA-256 prefix of its prompt,
// seed and settings (not its id or position; its pictures by content once ResolveInputs hashed them). Results records carry it, so a finished item whose
// manifest line or settings changed is never taken for done.
func (it Item) Fingerprint(s Settings) string {
	it.ID, it.Index = "", 0
	if it.InputSHA256 != nil { // the files' content, not where this node finds them
		it.InitImage, it.Mask, it.RefImages = "", "", nil
	}
	v := struct {
		Item     Item     `json:"item"`
		Settings Settings `json:"settings"`
	}{it, s}
	data, err := json.Marshal(v)
	if err != nil { // a NaN or an infinity: Go's own notation is as deterministic
		data = fmt.Appendf(nil, "%#v", v)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}
