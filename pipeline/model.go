package pipeline

import (
	"fmt"
	"strings"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
	"github.com/rflowrt/rflow/vae"
)

// Component is one ONNX model of a folder, as its file declares it (no session is loaded).
type Component struct {
	// Name is the component's role: "transformer", "text_encoder_2", "vae_decoder", …
	Name string
	// Dir is its folder (unet/ for a transformer kept there) and Path its model.onnx.
	Dir, Path string
	// Inputs and Outputs are the model's declared signature.
	Inputs, Outputs []TensorInfo
	// Config is the component's config.json; nil when the folder has none.
	Config map[string]any
}

// Input returns the declared input called name.
func (c *Component) Input(name string) (TensorInfo, bool) { return componentTensor(c.Inputs, name) }

// Output returns the declared output called name.
func (c *Component) Output(name string) (TensorInfo, bool) {
	return componentTensor(c.Outputs, name)
}

func componentTensor(ts []ort.TensorInfo, name string) (ort.TensorInfo, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return ort.TensorInfo{}, false
}

// TransformerIO maps the roles the pipeline feeds to the export's actual input/output names ("" when
// absent). Optimum's names (flow-sampling.md §5.2) are tried first, then the alternates of other
// exporters (§5.5, peers-and-conventions.md §4.2):
//
//   - SD3 MMDiT of NVIDIA's TensorRT demo / onnxruntime's SD3 demo: sample, sigma, c_crossattn, y → latent.
//   - FLUX of BFL's reference code: img, img_ids, txt, txt_ids, timesteps, y, guidance.
//   - FLUX of OnnxStack, matched by position when the names are unknown: hidden_states,
//     encoder_hidden_states, pooled_projections, timestep, img_ids, txt_ids[, guidance].
type TransformerIO struct {
	HiddenStates, Timestep, EncoderHiddenStates, Pooled, Guidance, ImgIDs, TxtIDs, SkipLayers, Output string
	// ControlNet is the SD3.5 TensorRT transformer's block_controlnet_hidden_states, fed zeros ("" when absent).
	ControlNet string
	// IDsType is the img_ids/txt_ids element type: Int64 in Optimum exports, Float (or Float16) in others.
	IDsType DataType
	// IDs3D marks legacy [B, seq, 3] ids (diffusers < 0.31, OnnxStack legacy) instead of [seq, 3].
	IDs3D bool
	// TimestepScale is what the graph's timestep input expects relative to the value diffusers passes
	// the transformer (σ·1000 for SD3, σ for FLUX): 1 for Optimum, BFL and OnnxStack exports; 1/1000 for
	// an SD3 MMDiT whose input is `sigma` (NVIDIA demo: the graph multiplies σ by 1000 itself).
	TimestepScale float64
	// FixedHeight and FixedWidth are the latent height and width (image size / VAE scale factor) when the
	// export fixes them, else 0. A FLUX export that fixes its token count fixes a square latent.
	FixedHeight, FixedWidth int
}

// Model is a model folder read cheaply: its index, configs and each component's signature, with no
// session loaded. Open returns one only when Inspect finds no problem.
type Model struct {
	// Dir is the folder; Name is its base name, or the demo's name.
	Dir, Name string
	Index     ModelIndex
	Family    scheduler.Family
	Scheduler scheduler.FlowMatchConfig
	// Components holds the present components: text_encoder, text_encoder_2, text_encoder_3 (SD3 with
	// T5), transformer, vae_decoder and vae_encoder (when the export has one).
	Components map[string]*Component
	// Tokenizers maps tokenizer, tokenizer_2 and tokenizer_3 to their folders.
	Tokenizers map[string]string
	// loadedTokenizers holds the tokenizers Open loaded to check them, for the pipeline to reuse.
	loadedTokenizers map[string]textenc.Tokenizer
	Transformer      TransformerIO
	// GuidanceEmbeds is set for guidance-distilled FLUX (dev): the transformer has a guidance input
	// (config.json's guidance_embeds agrees, or Inspect reports the mismatch).
	GuidanceEmbeds bool
	// JointDim (encoder_hidden_states width), PooledDim (pooled_projections width) and InChannels (16 for
	// SD3, 64 packed for FLUX) come from the transformer's signature, else its config.json.
	JointDim, PooledDim, InChannels int
	// VAE is the VAE config: vae_decoder/config.json, else vae_encoder/ or vae/ (vae.ReadConfig).
	VAE vae.Config
	// Layout is the ONNX layout Inspect recognised (LayoutOptimum, LayoutAMDIO32, …).
	Layout string
	// Compiled marks a folder rflow compiled from a checkpoint (OpenCheckpoint): its sessions skip ONNX
	// Runtime's optimized-graph cache, which would keep a second full copy of the weights on disk.
	Compiled bool
	// LoRAs are the LoRAs merged into a compiled model's weights (OpenCheckpoint with CheckpointSource.LoRAs).
	LoRAs []AppliedLoRA
}

// Has reports whether the folder has the component (e.g. "text_encoder_3", "vae_encoder").
func (m *Model) Has(component string) bool {
	return m != nil && m.Components[component] != nil
}

// Open reads a model folder in the diffusers/Optimum ONNX layout: model_index.json, the scheduler
// config, every component's signature and config, the tokenizer folders and the VAE config. It loads no
// session. When Inspect finds problems it returns a *FolderError listing every one of them.
func Open(dir string) (*Model, error) {
	m, rep := scan(dir)
	if len(rep.Problems) > 0 {
		return nil, &FolderError{Dir: dir, Problems: rep.Problems}
	}
	return m, nil
}

// FolderError is Open's error for a folder with problems; it lists all of them.
type FolderError struct {
	Dir      string
	Problems []Problem
}

func (e *FolderError) Error() string {
	var b strings.Builder
	n := len(e.Problems)
	fmt.Fprintf(&b, "model folder %s has %d problem%s:", e.Dir, n, problemPlural(n))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

func problemPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
