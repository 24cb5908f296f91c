package checkpoint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The oracle's tiny models (shared/oracle/make_models.py --formats diffusers,single-file), as tensor
// names, dtypes and shapes plus the diffusers folders' config.json files: testdata/oracle-KIND.json
// (regenerate with `go run gen_testdata.go -models DIR`). The single files are proven by the oracle to
// convert back to the diffusers folder with diffusers' own converters.

type oracleComponent struct {
	Config  map[string]any    `json:"config"`
	Tensors map[string]string `json:"tensors"`
}

type oracleModel struct {
	Files      map[string]string            `json:"files"`
	SingleFile map[string]map[string]string `json:"single_file"`
	Diffusers  map[string]oracleComponent   `json:"diffusers"`
}

var oracleKinds = []string{"flux-dev", "flux-schnell", "sd3", "sd3-no-t5"}

func loadOracle(t *testing.T, kind string) oracleModel {
	t.Helper()
	o, err := readOracleFile(kind)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func readOracleFile(kind string) (oracleModel, error) {
	var o oracleModel
	b, err := os.ReadFile(filepath.Join("testdata", "oracle-"+kind+".json"))
	if err == nil {
		err = json.Unmarshal(b, &o)
	}
	return o, err
}

// listing turns "BF16 3,4" strings into a MapListing.
func listing(t *testing.T, m map[string]string) MapListing {
	t.Helper()
	out := MapListing{}
	for name, s := range m {
		dtype, dims, _ := strings.Cut(s, " ")
		var shape []int64
		if dims != "" {
			for _, d := range strings.Split(dims, ",") {
				n, err := strconv.ParseInt(d, 10, 64)
				if err != nil {
					t.Fatalf("%s: %q", name, s)
				}
				shape = append(shape, n)
			}
		}
		if shape == nil {
			shape = []int64{}
		}
		out[name] = TensorMeta{DType: dtype, Shape: shape}
	}
	return out
}

// subfolder is the diffusers folder component of each role.
func subfolder(kind string, r Role) string {
	flux := strings.HasPrefix(kind, "flux")
	switch r {
	case RoleTransformer:
		return "transformer"
	case RoleVAE:
		return "vae"
	case RoleCLIPL:
		return "text_encoder"
	case RoleCLIPG:
		return "text_encoder_2"
	case RoleT5:
		if flux {
			return "text_encoder_2"
		}
		return "text_encoder_3"
	}
	return ""
}

// oracleHints are what shapes cannot tell about the tiny models, read from the folder's configs.
func oracleHints(t *testing.T, kind string, o oracleModel) Hints {
	h := Hints{HeadDim: map[Role]int{}}
	geti := func(sub, key string) int {
		v, ok := o.Diffusers[sub].Config[key].(float64)
		if !ok {
			t.Fatalf("%s %s/config.json: no %s", kind, sub, key)
		}
		return int(v)
	}
	h.NormNumGroups = geti("vae", "norm_num_groups")
	for _, r := range []Role{RoleCLIPL, RoleCLIPG} {
		sub := subfolder(kind, r)
		if c, ok := o.Diffusers[sub]; ok && c.Config["model_type"] == "clip_text_model" {
			h.HeadDim[r] = geti(sub, "hidden_size") / geti(sub, "num_attention_heads")
		}
	}
	if strings.HasPrefix(kind, "flux") {
		h.Family = FamilyFLUX
		for _, a := range o.Diffusers["transformer"].Config["axes_dims_rope"].([]any) {
			h.AxesDimsRope = append(h.AxesDimsRope, int(a.(float64)))
		}
	} else {
		h.Family = FamilySD3
		h.HeadDim[RoleTransformer] = geti("transformer", "attention_head_dim")
		h.SampleSize = geti("transformer", "sample_size")
	}
	return h
}

// builderFields are the config fields the graph builders and the pipeline read, per class.
var builderFields = map[string][]string{
	"FluxTransformer2DModel": {"_class_name", "patch_size", "in_channels", "out_channels", "num_layers",
		"num_single_layers", "attention_head_dim", "num_attention_heads", "joint_attention_dim",
		"pooled_projection_dim", "guidance_embeds", "axes_dims_rope"},
	"SD3Transformer2DModel": {"_class_name", "sample_size", "patch_size", "in_channels", "num_layers",
		"attention_head_dim", "num_attention_heads", "joint_attention_dim", "caption_projection_dim",
		"pooled_projection_dim", "out_channels", "pos_embed_max_size", "dual_attention_layers", "qk_norm"},
	"AutoencoderKL": {"_class_name", "in_channels", "out_channels", "down_block_types", "up_block_types",
		"block_out_channels", "layers_per_block", "act_fn", "latent_channels", "norm_num_groups", "sample_size",
		"scaling_factor", "shift_factor", "latents_mean", "latents_std", "force_upcast", "use_quant_conv",
		"use_post_quant_conv", "mid_block_add_attention"},
	"CLIPTextModel": {"architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
		"num_attention_heads", "projection_dim", "hidden_act", "max_position_embeddings", "vocab_size",
		"layer_norm_eps", "bos_token_id", "eos_token_id", "pad_token_id"},
	"T5EncoderModel": {"architectures", "model_type", "d_model", "d_kv", "num_heads", "num_layers", "d_ff",
		"vocab_size", "relative_attention_num_buckets", "relative_attention_max_distance", "feed_forward_proj",
		"dense_act_fn", "is_gated_act", "layer_norm_epsilon", "pad_token_id", "eos_token_id",
		"decoder_start_token_id", "tie_word_embeddings"},
}

// classDefaults are the __init__ defaults of config fields that released config.json files leave out.
var classDefaults = map[string]map[string]any{
	"FluxTransformer2DModel": {"axes_dims_rope": []any{16.0, 56.0, 56.0}, "out_channels": nil},
	"SD3Transformer2DModel":  {"dual_attention_layers": []any{}, "qk_norm": nil},
	"AutoencoderKL":          {"mid_block_add_attention": true},
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func init() { builderFields["CLIPTextModelWithProjection"] = builderFields["CLIPTextModel"] }

// compareConfig checks that got has every builder field, equal to want's, and that every other field of
// got that want has is equal too.
func compareConfig(t *testing.T, label string, class string, got, want map[string]any) {
	t.Helper()
	for _, k := range builderFields[class] {
		w, ok := want[k]
		if !ok {
			w = classDefaults[class][k] // absent in the config.json: the class's default applies
		}
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: config has no %s (want %v)", label, k, w)
			continue
		}
		if !reflect.DeepEqual(g, w) && !(k == "out_channels" && class == "FluxTransformer2DModel" && g == nil && w == nil) {
			t.Errorf("%s: config %s = %#v, want %#v", label, k, g, w)
		}
	}
	for k, g := range got {
		if w, ok := want[k]; ok && !reflect.DeepEqual(g, w) {
			t.Errorf("%s: config %s = %#v, folder has %#v", label, k, g, w)
		}
	}
}

// TestDetectOracleSingleFiles: each single file, detected, gives exactly the diffusers folder's tensors
// (names, shapes, dtypes) and configs.
func TestDetectOracleSingleFiles(t *testing.T) {
	for _, kind := range oracleKinds {
		t.Run(kind, func(t *testing.T) {
			o := loadOracle(t, kind)
			h := oracleHints(t, kind, o)
			seen := map[string]bool{}
			for _, file := range sortedKeys(o.SingleFile) {
				comps, err := DetectWith(listing(t, o.SingleFile[file]), h)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				for _, c := range comps {
					sub := subfolder(kind, c.Role)
					label := file + " " + string(c.Role)
					want, ok := o.Diffusers[sub]
					if !ok {
						t.Errorf("%s: no diffusers component %s", label, sub)
						continue
					}
					seen[sub] = true
					compareTensors(t, label, c, listing(t, want.Tensors))
					compareConfig(t, label, c.Class, c.Config, want.Config)
					if len(c.Unused) > 0 {
						t.Errorf("%s: unused %v", label, c.Unused)
					}
					for _, k := range c.Assumed {
						if _, ok := c.Config[k]; !ok {
							t.Errorf("%s: assumed %s is not in the config", label, k)
						}
					}
					if wantClass := want.Config["architectures"]; wantClass != nil && wantClass.([]any)[0] != c.Class {
						t.Errorf("%s: class %s, folder %v", label, c.Class, wantClass)
					}
					if wantClass := want.Config["_class_name"]; wantClass != nil && wantClass != c.Class {
						t.Errorf("%s: class %s, folder %v", label, c.Class, wantClass)
					}
					t.Logf("%s: %s, %s, %d tensors", label, c.Format, c.Class, len(c.Tensors))
				}
			}
			for sub := range o.Diffusers {
				if !seen[sub] {
					t.Errorf("diffusers component %s found in no single file", sub)
				}
			}
		})
	}
}

// TestDetectOracleDiffusersFiles: each diffusers folder file, detected, maps onto itself with the
// folder's config.
func TestDetectOracleDiffusersFiles(t *testing.T) {
	for _, kind := range oracleKinds {
		t.Run(kind, func(t *testing.T) {
			o := loadOracle(t, kind)
			h := oracleHints(t, kind, o)
			for _, sub := range sortedKeys(o.Diffusers) {
				want := o.Diffusers[sub]
				hs := h
				if strings.HasPrefix(sub, "text_encoder") && want.Config["model_type"] == "clip_text_model" {
					hs.Role = RoleCLIPL
					if sub == "text_encoder_2" {
						hs.Role = RoleCLIPG
					}
				}
				comps, err := DetectWith(listing(t, want.Tensors), hs)
				if err != nil {
					t.Fatalf("%s: %v", sub, err)
				}
				if len(comps) != 1 {
					t.Fatalf("%s: %d components", sub, len(comps))
				}
				c := comps[0]
				if got := subfolder(kind, c.Role); got != sub {
					t.Errorf("%s: detected as %s", sub, c.Role)
				}
				compareTensors(t, sub, c, listing(t, want.Tensors))
				compareConfig(t, sub, c.Class, c.Config, want.Config)
				for name, r := range c.Tensors {
					if len(r.Pieces) != 1 || r.Pieces[0] != (Piece{name, 0, -1}) {
						t.Errorf("%s: %s is not an identity recipe: %+v", sub, name, r)
					}
				}
			}
		})
	}
}

func compareTensors(t *testing.T, label string, c Component, want MapListing) {
	t.Helper()
	for _, name := range want.Names() {
		r, ok := c.Tensors[name]
		if !ok {
			t.Errorf("%s: missing %s", label, name)
			continue
		}
		w, _ := want.Meta(name)
		if !slices.Equal(r.Shape, w.Shape) || r.DType != w.DType {
			t.Errorf("%s: %s is %s%v, want %s%v", label, name, r.DType, r.Shape, w.DType, w.Shape)
		}
	}
	for name := range c.Tensors {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: extra %s", label, name)
		}
	}
}
