package arch

import (
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// The encoder and decoder against diffusers' AutoencoderKL (testdata/gen_vae.py): SD3/FLUX style (16
// latent channels, no quant convs, a non-square batch of two), SD style (quant convs) and a three-level
// VAE with two ResNets per block and no mid-block attention.
func TestVAEMatchesDiffusers(t *testing.T) {
	for _, name := range []string{"vae_sd3", "vae_sd", "vae_noattn"} {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			c := goldenConfig(t, g)
			enc, err := VAEEncoder(g.weights, c, IO{})
			if err != nil {
				t.Fatal(err)
			}
			got := runModel(t, enc, g, "latent_parameters")
			assertClose(t, "latent_parameters", got["latent_parameters"], g.outputs["latent_parameters"], 1e-5, 1e-5)
			dec, err := VAEDecoder(g.weights, c, IO{})
			if err != nil {
				t.Fatal(err)
			}
			got = runModel(t, dec, g, "sample")
			assertClose(t, "sample", got["sample"], g.outputs["sample"], 1e-5, 1e-5)
		})
	}
}

// Every parameter the builders ask for is in the real state dict and every state-dict tensor is used:
// the graphs are named exactly as diffusers names the module.
func TestVAEUsesEveryTensor(t *testing.T) {
	for _, name := range []string{"vae_sd3", "vae_sd", "vae_noattn"} {
		g := loadGolden(t, name)
		c := goldenConfig(t, g)
		used := map[string]bool{}
		for _, build := range []func(Weights, Config, IO) (*onnx.Model, error){VAEEncoder, VAEDecoder} {
			m, err := build(g.weights, c, IO{})
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range m.Graph.Initializers {
				if _, ok := g.weights[stateDictName(in.Name)]; ok {
					used[stateDictName(in.Name)] = true
				}
			}
		}
		for k := range g.weights {
			if !used[k] {
				t.Errorf("%s: state-dict tensor %q is not used", name, k)
			}
		}
	}
}

// The graph I/O is Optimum's: names, symbolic dims and the requested float type.
func TestVAESignature(t *testing.T) {
	g := loadGolden(t, "vae_sd3")
	c := goldenConfig(t, g)
	for _, io := range []onnx.DataType{onnx.Float, onnx.Float16} {
		for _, tc := range []struct {
			build   func(Weights, Config, IO) (*onnx.Model, error)
			in, out string
			inDims  []string
			outDims []string
		}{
			{VAEDecoder, "latent_sample", "sample",
				[]string{"batch_size", "16", "latent_height", "latent_width"}, []string{"batch_size", "3", "height", "width"}},
			{VAEEncoder, "sample", "latent_parameters",
				[]string{"batch_size", "3", "height", "width"}, []string{"batch_size", "32", "latent_height", "latent_width"}},
		} {
			m, err := tc.build(g.weights, c, IO{Float: io})
			if err != nil {
				t.Fatal(err)
			}
			data, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			info, err := onnx.ReadInfoBytes(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Inputs) != 1 || len(info.Outputs) != 1 {
				t.Fatalf("inputs %v outputs %v", info.Inputs, info.Outputs)
			}
			in, out := info.Inputs[0], info.Outputs[0]
			if in.Name != tc.in || in.Type != io || !slices.Equal(dimStrings(in), tc.inDims) {
				t.Errorf("input %s %v %v, want %s %v %v", in.Name, in.Type, dimStrings(in), tc.in, io, tc.inDims)
			}
			if out.Name != tc.out || out.Type != io || !slices.Equal(dimStrings(out), tc.outDims) {
				t.Errorf("output %s %v %v, want %s %v %v", out.Name, out.Type, dimStrings(out), tc.out, io, tc.outDims)
			}
		}
	}
}

// stateDictName is the parameter an initializer named by paramInitName holds.
func stateDictName(init string) string {
	if i := strings.LastIndex(init, subPixelSuffix); i >= 0 && len(init)-i == len(subPixelSuffix)+2 {
		return init[:i]
	}
	return strings.TrimSuffix(init, ".T")
}

func dimStrings(v onnx.ValueInfo) []string {
	var s []string
	for _, d := range v.Dims {
		s = append(s, d.String())
	}
	return s
}

// The real SD3 and FLUX configs parse to their published sizes.
func TestParseVAEConfigReal(t *testing.T) {
	for _, tc := range []struct {
		path         string
		scale, shift float64
	}{
		{"stabilityai/stable-diffusion-3-medium-diffusers", 1.5305, 0.0609},
		{"black-forest-labs/FLUX.1-dev", 0.3611, 0.1159},
	} {
		c, err := ReadConfig("/work/shared/model-configs/" + tc.path + "/vae/config.json")
		if err != nil {
			t.Skip(err)
		}
		v, err := ParseVAEConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		if v.LatentChannels != 16 || !slices.Equal(v.BlockOut, []int{128, 256, 512, 512}) || v.LayersPerBlock != 2 ||
			v.NormGroups != 32 || v.QuantConv || v.PostQuantConv || !v.MidAttention || v.ScaleFactor() != 8 ||
			v.ScalingFactor != tc.scale || v.ShiftFactor != tc.shift {
			t.Errorf("%s: %+v", tc.path, v)
		}
	}
}

// A config no AutoencoderKL can have, or a checkpoint that disagrees with its config, is an error
// naming the field or tensor.
func TestVAEBadInput(t *testing.T) {
	base := func() Config {
		return Config{"block_out_channels": []any{8.0, 16.0}, "norm_num_groups": 4.0, "latent_channels": 16.0,
			"down_block_types": []any{"DownEncoderBlock2D", "DownEncoderBlock2D"},
			"up_block_types":   []any{"UpDecoderBlock2D", "UpDecoderBlock2D"}}
	}
	for _, tc := range []struct {
		key  string
		val  any
		want string
	}{
		{"norm_num_groups", 3.0, "divisible by norm_num_groups 3"},
		{"block_out_channels", []any{}, "block_out_channels []"},
		{"block_out_channels", []any{8.0, 0.0}, "block_out_channels [8 0]"},
		{"block_out_channels", []any{8.0, 16.0, 16.0}, "2 down_block_types and 2 up_block_types for 3"},
		{"down_block_types", []any{"DownEncoderBlock2D", "AttnDownEncoderBlock2D"}, "AttnDownEncoderBlock2D"},
		{"act_fn", "tanh", `act_fn "tanh"`},
		{"latent_channels", 0.0, "latent_channels 0"},
		{"latent_channels", 1e12, "latent_channels 1000000000000"},
		{"layers_per_block", 0.0, "layers_per_block 0"},
		{"layers_per_block", "2", `"layers_per_block" is 2, want a number`},
		{"up_block_types", "UpDecoderBlock2D", "want a list of strings"},
	} {
		c := base()
		c[tc.key] = tc.val
		for _, build := range []func(Weights, Config, IO) (*onnx.Model, error){VAEEncoder, VAEDecoder} {
			_, err := build(Tensors{}, c, IO{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s = %v: err %v, want it to say %q", tc.key, tc.val, err, tc.want)
			}
		}
	}
	g := loadGolden(t, "vae_sd3")
	w := Tensors{}
	for k, v := range g.weights {
		w[k] = v
	}
	w["decoder.up_blocks.1.resnets.0.conv_shortcut.weight"] = Tensor{Shape: []int64{8, 12, 1, 1}, Data: make([]float32, 96)}
	delete(w, "encoder.mid_block.attentions.0.to_k.bias")
	if _, err := VAEDecoder(w, goldenConfig(t, g), IO{}); err == nil ||
		!strings.Contains(err.Error(), `tensor "decoder.up_blocks.1.resnets.0.conv_shortcut.weight": expected shape [8 16 1 1], found [8 12 1 1]`) {
		t.Errorf("decoder with a wrong shape: %v", err)
	}
	if _, err := VAEEncoder(w, goldenConfig(t, g), IO{}); err == nil ||
		!strings.Contains(err.Error(), `tensor "encoder.mid_block.attentions.0.to_k.bias" is missing`) {
		t.Errorf("encoder with a missing tensor: %v", err)
	}
	// an SD-style checkpoint given an SD3-style config (quant convs off) leaves them unused; the other
	// way round it names the missing tensor
	c := goldenConfig(t, g)
	c["use_quant_conv"] = true
	if _, err := VAEEncoder(g.weights, c, IO{}); err == nil || !strings.Contains(err.Error(), `tensor "quant_conv.weight" is missing`) {
		t.Errorf("quant conv without its tensor: %v", err)
	}
}
