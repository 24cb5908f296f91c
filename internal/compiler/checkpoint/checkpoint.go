// Package checkpoint recognises the checkpoint files people download (BFL FLUX, SAI SD3/SD3.5 with or
// without bundled text encoders and VAE, ComfyUI-prefixed variants, LDM-keyed VAEs, transformers- and
// OpenCLIP-keyed text encoders, diffusers-keyed files) from their tensor names and shapes alone, and turns
// each model found into the canonical form the graph builders read: diffusers/transformers state-dict
// names, each with a Recipe saying which source rows make it, and the config.json that model would have
// in a diffusers folder, inferred from the shapes.
//
// The key maps follow diffusers 0.38's single-file converters (loaders/single_file_utils.py:
// convert_flux_transformer_checkpoint_to_diffusers, convert_sd3_transformer_checkpoint_to_diffusers,
// convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint, convert_open_clip_checkpoint,
// convert_sd3_t5_checkpoint_to_diffusers). This package reads no tensor data.
//
// What shapes cannot tell is taken from Hints, whose zero value means the released models' values:
// attention head size 64 for SD3 transformers without qk norm and for CLIP encoders, FLUX.1's rope axes
// (16, 56, 56), 32 VAE norm groups, SD3 sample size 128. The VAE's scaling and shift factors come from
// the family (Hints.Family, or the transformer bundled in the same file); without one they are left out
// of the VAE's config and the caller must add them (see VAEFactors). Activations follow the released
// configs: CLIP-L quick_gelu, CLIP-G gelu, T5 gated gelu_new. Component.Assumed lists such fields.
//
// Every tensor of a file must belong to a recognised model: a tensor that fits no format is an error, a
// tensor of a recognised model that no recipe uses is reported in Component.Unused. Expected gives the
// canonical tensor set of a class and config (what the builders read, and what random test weights need).
package checkpoint

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// TensorMeta is what this package needs to know of a tensor: its safetensors dtype ("BF16", "F16",
// "F32", ...) and shape.
type TensorMeta struct {
	DType string
	Shape []int64
}

// Listing is a checkpoint file (or a sharded set of files) seen as tensor names and their metadata.
type Listing interface {
	Names() []string
	Meta(name string) (TensorMeta, bool)
}

// MapListing is a Listing held in a map (for tests, and for callers that already have the header).
type MapListing map[string]TensorMeta

// Names returns the tensor names in sorted order.
func (m MapListing) Names() []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Meta returns the metadata of one tensor.
func (m MapListing) Meta(name string) (TensorMeta, bool) {
	t, ok := m[name]
	return t, ok
}

// Piece is rows [Start,End) of dim 0 of source tensor Tensor (Start=0,End=-1: the whole tensor).
type Piece struct {
	Tensor     string
	Start, End int64
}

// Whole reports whether the piece is the whole source tensor.
func (p Piece) Whole() bool { return p.Start == 0 && p.End == -1 }

// Recipe builds one canonical tensor as the concatenation of Pieces along dim 0 (one piece = rename, or a
// row split of a fused qkv / linear1, several = e.g. BFL's swapped scale/shift halves), with the resulting
// Shape. A Shape with other dims than the concatenation's but the same element count is a reshape (the
// LDM VAE's 1×1 attention convolutions [C,C,1,1] become Linear weights [C,C]). Transpose (2-D only, applied
// after the concatenation, before the reshape) is set for OpenCLIP's text_projection, stored [in, out].
// A Recipe with no Pieces and Fill "eye" is the identity matrix of Shape (SD3's CLIP-L text_projection,
// which SAI files do not carry and diffusers substitutes). DType is the source dtype, unchanged.
type Recipe struct {
	Pieces    []Piece
	Shape     []int64
	DType     string
	Transpose bool   `json:",omitempty"`
	Fill      string `json:",omitempty"`
}

// FillEye is Recipe.Fill for an identity matrix.
const FillEye = "eye"

// Role is the slot a component fills in a pipeline.
type Role string

// The roles.
const (
	RoleTransformer Role = "transformer"
	RoleVAE         Role = "vae"
	RoleCLIPL       Role = "clip_l"
	RoleCLIPG       Role = "clip_g"
	RoleT5          Role = "t5"
)

// Component is one model found in a checkpoint, in canonical form.
type Component struct {
	Role  Role
	Class string // "SD3Transformer2DModel", "FluxTransformer2DModel", "AutoencoderKL", "CLIPTextModel",
	// "CLIPTextModelWithProjection", "T5EncoderModel"
	Config  map[string]any    // the config.json this component would have in a diffusers folder (json.Unmarshal types)
	Tensors map[string]Recipe // canonical state-dict name → recipe
	Format  string            // what was recognised, for `rflow inspect`
	Unused  []string          // source tensors no recipe uses (less buffers and tied copies: CLIP's
	// position_ids and logit_scale, T5's encoder.embed_tokens beside shared)
	Assumed []string // config fields that the shapes do not carry, taken from Hints or the released models
}

// ListingFuncs adapts any tensor index to a Listing, e.g. a safetensors reader:
//
//	checkpoint.ListingFuncs{List: r.Names, Info: func(n string) (checkpoint.TensorMeta, bool) {
//		i, ok := r.Info(n); return checkpoint.TensorMeta{DType: i.DType, Shape: i.Shape}, ok }}
type ListingFuncs struct {
	List func() []string
	Info func(name string) (TensorMeta, bool)
}

// Names returns List().
func (f ListingFuncs) Names() []string { return f.List() }

// Meta returns Info(name).
func (f ListingFuncs) Meta(name string) (TensorMeta, bool) { return f.Info(name) }

// Hints carry what tensor shapes cannot tell. The zero value means the released models' values.
type Hints struct {
	// Family is "sd3" or "flux" when the caller knows it. It picks the VAE's scaling/shift factors and, for
	// "sd3", gives a CLIP-L without text_projection the identity projection SD3 uses. A file that bundles
	// a transformer implies its family for the rest of the file.
	Family string
	// Role is the slot the caller will use a lone text-encoder file for (its --clip-l/--clip-g/--t5xxl
	// flag). Without it a transformers CLIP of hidden size 1280 is CLIP-G, any other CLIP-L.
	Role Role
	// HeadDim is the attention head size where shapes cannot tell it: an SD3 transformer without qk norm
	// (RoleTransformer; SAI's MMDiT fixes it at 64) and CLIP encoders (RoleCLIPL, RoleCLIPG; 64 for
	// OpenAI CLIP-L and OpenCLIP bigG). FLUX, SD3.5 (qk norm) and T5 carry it in their shapes.
	HeadDim map[Role]int
	// AxesDimsRope are FLUX's rope axes; they must sum to the head size. Default FLUX.1's (16, 56, 56).
	AxesDimsRope []int
	// NormNumGroups is the VAE's GroupNorm group count (default 32, every released AutoencoderKL).
	NormNumGroups int
	// SampleSize is an SD3 transformer's sample_size (default 128, every released SD3/SD3.5); it only sets
	// the pipeline's default resolution.
	SampleSize int
}

// Family names for Hints.Family.
const (
	FamilySD3  = "sd3"
	FamilyFLUX = "flux"
)

// VAEFactors are the latent scaling and shift factors of each family's VAE (the released diffusers
// configs: SD3 1.5305/0.0609, FLUX.1 0.3611/0.1159).
var VAEFactors = map[string][2]float64{
	FamilySD3:  {1.5305, 0.0609},
	FamilyFLUX: {0.3611, 0.1159},
}

// ErrUnknownFormat is wrapped by the error for tensors that match no understood format.
var ErrUnknownFormat = errors.New("checkpoint: unknown format")

// ErrMismatch is wrapped by errors about missing tensors and tensors whose shape disagrees with the
// architecture the other tensors imply.
var ErrMismatch = errors.New("checkpoint: tensors do not fit the architecture")

// Formats lists the formats Detect understands (for error messages and `rflow inspect`).
var Formats = []string{
	"BFL FLUX transformer (double_blocks/single_blocks; also with ComfyUI prefixes model.diffusion_model. and diffusion_model.)",
	"SAI SD3/SD3.5 MMDiT (joint_blocks; model.diffusion_model. prefix; bundled text_encoders.clip_l|clip_g|t5xxl.transformer. and first_stage_model.)",
	"diffusers SD3Transformer2DModel / FluxTransformer2DModel state dict",
	"LDM VAE (encoder.down.N.block.M, decoder.up.N, mid.attn_1; prefixes first_stage_model., vae.)",
	"diffusers AutoencoderKL state dict",
	"transformers CLIPTextModel / CLIPTextModelWithProjection (text_model.)",
	"OpenCLIP text tower (transformer.resblocks.N, token_embedding, ln_final)",
	"transformers T5EncoderModel (shared / encoder.block.N)",
}

// Detect classifies every tensor of one file (or a sharded set): one Component per model found (an SAI
// SD3 file with bundled text encoders and VAE gives transformer, clip_l, clip_g, t5 and vae), with the
// released models' defaults for what shapes cannot tell.
func Detect(l Listing) ([]Component, error) {
	return DetectWith(l, Hints{})
}

// DetectWith is Detect with hints for what shapes cannot tell.
func DetectWith(l Listing, h Hints) ([]Component, error) {
	groups, unknown, err := split(l)
	if err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		return nil, unknownError(unknown, len(groups) > 0)
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("%w: the file holds no tensors", ErrUnknownFormat)
	}
	// A bundled transformer names the family of everything else in the file.
	if h.Family == "" {
		for _, g := range groups {
			switch g.kind {
			case kindBFLFlux, kindDiffusersFlux:
				h.Family = FamilyFLUX
			case kindSAISD3, kindDiffusersSD3:
				h.Family = FamilySD3
			}
		}
	}
	var out []Component
	seen := map[Role]string{}
	for _, g := range groups {
		c, err := g.convert(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.describe(), err)
		}
		if other, dup := seen[c.Role]; dup {
			return nil, fmt.Errorf("%w: two %s models in one file (%s and %s)", ErrUnknownFormat, c.Role, other, g.describe())
		}
		seen[c.Role] = g.describe()
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b Component) int { return roleOrder(a.Role) - roleOrder(b.Role) })
	return out, nil
}

func roleOrder(r Role) int {
	return slices.Index([]Role{RoleTransformer, RoleCLIPL, RoleCLIPG, RoleT5, RoleVAE}, r)
}

func unknownError(names []string, someKnown bool) error {
	what := "no tensor matches any of the formats understood"
	if someKnown && len(names) == 1 {
		what = "1 tensor matches none of the formats understood"
	} else if someKnown {
		what = fmt.Sprintf("%d tensors match none of the formats understood", len(names))
	}
	return fmt.Errorf("%w: %s: %s; formats understood: %s", ErrUnknownFormat, what, listNames(names),
		strings.Join(Formats, "; "))
}
