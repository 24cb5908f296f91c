package testmodels

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/rflowrt/rflow/internal/onnx"
)

// Kind is a model family and variant that Write can produce.
type Kind string

// The kinds of model folder Write produces.
const (
	KindSD3         Kind = "sd3"          // StableDiffusion3Pipeline with CLIP-L, CLIP-G and T5
	KindSD3NoT5     Kind = "sd3-no-t5"    // StableDiffusion3Pipeline with text_encoder_3 = [null, null]
	KindFluxDev     Kind = "flux-dev"     // FluxPipeline with a guidance-distilled transformer
	KindFluxSchnell Kind = "flux-schnell" // FluxPipeline without guidance embedding
)

// Kinds lists every kind, in a fixed order.
func Kinds() []Kind { return []Kind{KindSD3, KindSD3NoT5, KindFluxDev, KindFluxSchnell} }

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown model kind %q (valid: %s)", s, joinKinds())
}

func joinKinds() string {
	names := make([]string, 0, 4)
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// IsFlux reports whether the kind is a FLUX pipeline (else SD3).
func (k Kind) IsFlux() bool { return k == KindFluxDev || k == KindFluxSchnell }

// HasT5 reports whether the kind has a T5 text encoder.
func (k Kind) HasT5() bool { return k != KindSD3NoT5 }

// T5Length is the T5 sequence length the family's pipeline pads to by default: SD3 256, FLUX.1-dev 512,
// FLUX.1-schnell 256 (flow-sampling.md §3.2, §4.2); 0 without T5.
func (k Kind) T5Length() int {
	switch k {
	case KindSD3, KindFluxSchnell:
		return 256
	case KindFluxDev:
		return 512
	}
	return 0
}

// repo is the folder of the kind's real configs under shared/model-configs.
func (k Kind) repo() string {
	switch k {
	case KindFluxDev:
		return fluxDevRepo
	case KindFluxSchnell:
		return fluxSchnellRepo
	}
	return sd3Repo
}

// Size selects the component sizes.
type Size string

// Sizes: tiny for tests (each kind writes in about a second), bench for benchmarks (hundreds of MB),
// large for memory and conversion benchmarks: bench's text encoders and VAE with a transformer of about
// 550M parameters (1.1 GB as bf16, 2.2 GB as fp32).
const (
	SizeTiny  Size = "tiny"
	SizeBench Size = "bench"
	SizeLarge Size = "large"
)

// Real vocabulary sizes: CLIP's tokenizer has 49408 ids; T5 v1.1's embedding has 32128 rows (the
// tokenizer uses 32100), as the real configs' vocab_size say.
const (
	clipVocab = 49408
	t5Vocab   = 32128
)

// Dims are the component configurations of one folder.
type Dims struct {
	CLIPL, CLIPG CLIPConfig // SD3: text_encoder, text_encoder_2; FLUX: CLIPL is text_encoder, CLIPG unused
	T5           T5Config   // SD3 text_encoder_3, FLUX text_encoder_2 (unused for sd3-no-t5)
	SD3          SD3Config  // SD3 only
	Flux         FluxConfig // FLUX only
	VAE          VAEConfig
}

// clipDims is a CLIP text encoder with the real vocabulary and positions at the given width.
func clipDims(hidden, heads, layers, proj int) CLIPConfig {
	c := TinyCLIP(proj)
	c.Vocab, c.MaxPositions = clipVocab, 77
	c.Hidden, c.Heads, c.Layers, c.Intermediate = hidden, heads, layers, 4*hidden
	return c
}

// t5Dims is a T5 encoder with the real vocabulary at width dModel.
func t5Dims(dModel int, bench bool) T5Config {
	c := TinyT5()
	c.Vocab, c.DModel = t5Vocab, dModel
	if bench {
		c.Layers, c.Heads, c.DKV, c.FF = 4, 8, 64, 1024
	}
	return c
}

// DimsFor returns the component configurations Write uses for o: SD3 joins CLIP-L and CLIP-G widths
// that sum to less than the T5 width (so the CLIP concatenation is zero-padded, as with the real
// 768+1280 < 4096), and the transformer's joint_attention_dim is the T5 width and its
// pooled_projection_dim the pooled CLIP width(s).
func DimsFor(o Options) (Dims, error) {
	o, err := o.normalized()
	if err != nil {
		return Dims{}, err
	}
	bench := o.Size == SizeBench || o.Size == SizeLarge
	var d Dims
	if o.Kind.IsFlux() {
		d.CLIPL = clipDims(32, 2, 2, 0)
		d.T5 = t5Dims(64, false)
		d.Flux = TinyFlux(o.Kind == KindFluxDev)
		if bench {
			d.CLIPL, d.T5, d.Flux = clipDims(128, 2, 4, 0), t5Dims(512, true), BenchFlux(o.Kind == KindFluxDev)
		}
		if o.Size == SizeLarge {
			d.Flux = LargeFlux(o.Kind == KindFluxDev)
		}
		d.Flux.JointDim, d.Flux.PooledDim = d.T5.DModel, d.CLIPL.Hidden
	} else {
		d.CLIPL, d.CLIPG = clipDims(32, 2, 2, 32), clipDims(48, 2, 3, 48)
		d.T5, d.SD3 = t5Dims(96, false), TinySD3()
		if bench {
			d.CLIPL, d.CLIPG = clipDims(128, 2, 4, 128), clipDims(192, 3, 4, 192)
			d.T5, d.SD3 = t5Dims(512, true), BenchSD3()
		}
		if o.Size == SizeLarge {
			d.SD3 = LargeSD3()
		}
		d.SD3.JointDim, d.SD3.PooledDim = d.T5.DModel, d.CLIPL.Projection+d.CLIPG.Projection
	}
	d.VAE = TinyVAE()
	if bench {
		d.VAE = BenchVAE()
	}
	if o.Edit == EditFill {
		d.Flux.InChannels, d.Flux.OutChannels = fillInChannels(d.VAE), 4*d.VAE.LatentChannels
	}
	d.setIO(o)
	return d, d.check(o.Kind)
}

// setIO sets the element types and the per-component seeds.
func (d *Dims) setIO(o Options) {
	d.CLIPL.IDs, d.CLIPG.IDs, d.T5.IDs, d.Flux.IDs = o.IDs, o.IDs, onnx.Int64, onnx.Int64
	d.CLIPL.IO, d.CLIPG.IO, d.T5.IO, d.SD3.IO, d.Flux.IO, d.VAE.IO = o.Precision, o.Precision, o.Precision,
		o.Precision, o.Precision, o.Precision
	d.CLIPL.Seed, d.CLIPG.Seed = componentSeed(o.Seed, "text_encoder"), componentSeed(o.Seed, "text_encoder_clip_g")
	d.T5.Seed = componentSeed(o.Seed, "text_encoder_t5")
	d.SD3.Seed, d.Flux.Seed = componentSeed(o.Seed, "transformer"), componentSeed(o.Seed, "transformer")
	d.VAE.Seed = componentSeed(o.Seed, "vae") // one seed for decoder and encoder: a checkpoint has one vae
	d.CLIPL.BF16Weights, d.CLIPG.BF16Weights, d.T5.BF16Weights = o.BF16Weights, o.BF16Weights, o.BF16Weights
	d.SD3.BF16Weights, d.Flux.BF16Weights, d.VAE.BF16Weights = o.BF16Weights, o.BF16Weights, o.BF16Weights
}

// check verifies the cross-component widths the pipelines rely on.
func (d Dims) check(k Kind) error {
	if k.IsFlux() {
		if d.Flux.JointDim != d.T5.DModel || d.Flux.PooledDim != d.CLIPL.Hidden || d.CLIPL.Projection != 0 {
			return fmt.Errorf("testmodels: flux widths: joint %d vs T5 %d, pooled %d vs CLIP %d (projection %d)",
				d.Flux.JointDim, d.T5.DModel, d.Flux.PooledDim, d.CLIPL.Hidden, d.CLIPL.Projection)
		}
		return nil
	}
	switch {
	case d.SD3.JointDim != d.T5.DModel:
		return fmt.Errorf("testmodels: sd3 joint width %d ≠ T5 width %d", d.SD3.JointDim, d.T5.DModel)
	case d.CLIPL.Hidden+d.CLIPG.Hidden > d.SD3.JointDim:
		return fmt.Errorf("testmodels: sd3 CLIP widths %d+%d exceed the joint width %d", d.CLIPL.Hidden, d.CLIPG.Hidden, d.SD3.JointDim)
	case d.SD3.PooledDim != d.CLIPL.Projection+d.CLIPG.Projection || d.CLIPL.Projection == 0 || d.CLIPG.Projection == 0:
		return fmt.Errorf("testmodels: sd3 pooled width %d ≠ %d+%d", d.SD3.PooledDim, d.CLIPL.Projection, d.CLIPG.Projection)
	}
	return nil
}

// componentSeed derives a component's weight seed from the folder seed, so components differ from
// each other and every one changes with the folder seed.
func componentSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	z := seed ^ h.Sum64()
	// splitmix64 finalizer
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// component is one model subfolder: how to build its model and which real config it patches.
type component struct {
	dir   string
	build func() (*onnx.Model, error)
	// config is the real config (a path under the kind's repo in the config source) and set the keys changed to the fixture's sizes.
	config string
	set    []kv
	// heavy components (transformer, T5) keep their weights in model.onnx_data with Options.ExternalData.
	heavy bool
	// weights are the component's random weights (WriteCheckpoint stores them).
	weights RandomWeights
}

// components lists the model subfolders of a kind, in folder order.
func (d Dims) components(k Kind) []component {
	// The decoder and encoder share the VAE's seed (their tensors have distinct names, encoder.* and
	// decoder.*), so both are the one AutoencoderKL a checkpoint stores.
	vaeSet, vaeW := d.VAE.configKeys(), RandomWeights{Seed: d.VAE.Seed, BF16: d.VAE.BF16Weights}
	vae := []component{
		{dir: "vae_decoder", build: func() (*onnx.Model, error) { return VAEDecoder(d.VAE) }, config: "vae/config.json", set: vaeSet, weights: vaeW},
		{dir: "vae_encoder", build: func() (*onnx.Model, error) { return VAEEncoder(d.VAE) }, config: "vae/config.json", set: vaeSet, weights: vaeW},
	}
	t5 := func(dir string) component {
		return component{dir: dir, build: func() (*onnx.Model, error) { return T5Encoder(d.T5) },
			config: dir + "/config.json", set: t5ConfigKeys(d.T5), heavy: true,
			weights: RandomWeights{Seed: d.T5.Seed, BF16: d.T5.BF16Weights}}
	}
	clip := func(dir string, c CLIPConfig) component {
		return component{dir: dir, build: func() (*onnx.Model, error) { return CLIPTextEncoder(c) },
			config: dir + "/config.json", set: clipConfigKeys(c), weights: RandomWeights{Seed: c.Seed, BF16: c.BF16Weights}}
	}
	if k.IsFlux() {
		return append([]component{
			clip("text_encoder", d.CLIPL),
			t5("text_encoder_2"),
			{dir: "transformer", build: func() (*onnx.Model, error) { return FluxTransformer(d.Flux) },
				config: "transformer/config.json", set: fluxConfigKeys(d.Flux), heavy: true,
				weights: RandomWeights{Seed: d.Flux.Seed, BF16: d.Flux.BF16Weights}},
		}, vae...)
	}
	cs := []component{clip("text_encoder", d.CLIPL), clip("text_encoder_2", d.CLIPG)}
	if k.HasT5() {
		cs = append(cs, t5("text_encoder_3"))
	}
	return append(append(cs, component{dir: "transformer", build: func() (*onnx.Model, error) { return SD3Transformer(d.SD3) },
		config: "transformer/config.json", set: sd3ConfigKeys(d.SD3), heavy: true,
		weights: RandomWeights{Seed: d.SD3.Seed, BF16: d.SD3.BF16Weights}}), vae...)
}

// kv is one config key to set.
type kv struct {
	key string
	val any
}

func clipConfigKeys(c CLIPConfig) []kv {
	proj := c.Projection
	if proj == 0 {
		proj = c.Hidden // CLIPTextModel configs carry an unused projection_dim; keep it meaningful
	}
	// CLIPTextEncoder's MLP is quick_gelu (CLIP-L's; the real CLIP-G config says gelu).
	return []kv{{"hidden_act", "quick_gelu"}, {"hidden_size", c.Hidden}, {"intermediate_size", c.Intermediate}, {"max_position_embeddings", c.MaxPositions},
		{"num_attention_heads", c.Heads}, {"num_hidden_layers", c.Layers}, {"projection_dim", proj}, {"vocab_size", c.Vocab}}
}

func t5ConfigKeys(c T5Config) []kv {
	return []kv{{"d_ff", c.FF}, {"d_kv", c.DKV}, {"d_model", c.DModel}, {"num_decoder_layers", c.Layers},
		{"num_heads", c.Heads}, {"num_layers", c.Layers}, {"vocab_size", c.Vocab}}
}

func sd3ConfigKeys(c SD3Config) []kv {
	return []kv{{"attention_head_dim", c.Hidden / c.Heads}, {"caption_projection_dim", c.Hidden},
		{"in_channels", c.InChannels}, {"joint_attention_dim", c.JointDim}, {"num_attention_heads", c.Heads},
		{"num_layers", c.Layers}, {"out_channels", c.InChannels}, {"patch_size", c.PatchSize},
		{"pooled_projection_dim", c.PooledDim}, {"pos_embed_max_size", c.PosEmbedMaxSize}, {"sample_size", c.SampleSize}}
}

func fluxConfigKeys(c FluxConfig) []kv {
	set := []kv{{"attention_head_dim", c.Hidden / c.Heads}, {"guidance_embeds", c.Guidance},
		{"in_channels", c.InChannels}, {"joint_attention_dim", c.JointDim}, {"num_attention_heads", c.Heads},
		{"num_layers", c.DoubleLayers}, {"num_single_layers", c.SingleLayers}, {"pooled_projection_dim", c.PooledDim}}
	if c.OutChannels != 0 {
		set = append(set, kv{"out_channels", c.OutChannels})
	}
	if c.AxesDim != [3]int{16, 56, 56} { // diffusers' default axes_dims_rope, absent from the real configs
		set = append(set, kv{"axes_dims_rope", c.AxesDim[:]})
	}
	return set
}

func (c VAEConfig) configKeys() []kv {
	c, _ = c.normalized()
	down, up := make([]string, len(c.BlockOut)), make([]string, len(c.BlockOut))
	for i := range down {
		down[i], up[i] = "DownEncoderBlock2D", "UpDecoderBlock2D"
	}
	return []kv{{"block_out_channels", c.BlockOut}, {"down_block_types", down}, {"latent_channels", c.LatentChannels},
		{"layers_per_block", c.LayersPerBlock}, {"norm_num_groups", c.NormGroups}, {"up_block_types", up}}
}
