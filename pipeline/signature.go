package pipeline

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
)

// supportedType reports whether rflow can make tensors of element type t (internal/ort's typed tensors).
func supportedType(t onnx.DataType) bool {
	switch t {
	case onnx.Float, onnx.Float16, onnx.BFloat16, onnx.Int32, onnx.Int64:
		return true
	}
	return false
}

// valueKind is what a role's element type must be.
type valueKind int

const (
	kindFloat valueKind = iota // float32, float16, bfloat16
	kindInt                    // int32, int64
	kindIDs                    // FLUX position ids: integers or floats
)

func (k valueKind) accepts(t onnx.DataType) bool {
	isFloat := t == onnx.Float || t == onnx.Float16 || t == onnx.BFloat16
	isInt := t == onnx.Int32 || t == onnx.Int64
	switch k {
	case kindFloat:
		return isFloat
	case kindInt:
		return isInt
	}
	return isFloat || isInt
}

func (k valueKind) String() string {
	switch k {
	case kindFloat:
		return "float32, float16 or bfloat16"
	case kindInt:
		return "int32 or int64"
	}
	return "int32, int64, float32, float16 or bfloat16"
}

// ioRole is one transformer input the pipeline feeds.
type ioRole struct {
	role     string   // diffusers' argument name, for messages
	dst      *string  // the TransformerIO field that receives the export's name
	names    []string // names exporters give it, Optimum's first
	kind     valueKind
	ranks    []int
	optional bool
}

// fit returns why t cannot take the role, or "".
func (r ioRole) fit(t ort.TensorInfo) string {
	if !r.kind.accepts(t.Type) {
		return fmt.Sprintf("input %s (%s) is %v; it must be %s", t.Name, r.role, t.Type, r.kind)
	}
	if t.Shape != nil && !slices.Contains(r.ranks, len(t.Shape)) {
		return fmt.Sprintf("input %s (%s) has rank %d; it must have rank %s", t, r.role, len(t.Shape), sigJoinInts(r.ranks, " or "))
	}
	return ""
}

// transformerRoles lists the inputs of a family's transformer; FLUX's are in OnnxStack's positional order.
func transformerRoles(f scheduler.Family, io *TransformerIO) []ioRole {
	if f == scheduler.FamilyFLUX {
		return []ioRole{
			{"hidden_states", &io.HiddenStates, []string{"hidden_states", "img"}, kindFloat, []int{3}, false},
			{"encoder_hidden_states", &io.EncoderHiddenStates, []string{"encoder_hidden_states", "txt"}, kindFloat, []int{3}, false},
			{"pooled_projections", &io.Pooled, []string{"pooled_projections", "y"}, kindFloat, []int{2}, false},
			{"timestep", &io.Timestep, []string{"timestep", "timesteps"}, kindFloat, []int{0, 1}, false},
			{"img_ids", &io.ImgIDs, []string{"img_ids"}, kindIDs, []int{2, 3}, false},
			{"txt_ids", &io.TxtIDs, []string{"txt_ids"}, kindIDs, []int{2, 3}, false},
			{"guidance", &io.Guidance, []string{"guidance"}, kindFloat, []int{0, 1}, true},
		}
	}
	return []ioRole{
		{"hidden_states", &io.HiddenStates, []string{"hidden_states", "sample"}, kindFloat, []int{4}, false},
		{"timestep", &io.Timestep, []string{"timestep", "sigma"}, kindFloat, []int{0, 1}, false},
		{"encoder_hidden_states", &io.EncoderHiddenStates, []string{"encoder_hidden_states", "c_crossattn"}, kindFloat, []int{3}, false},
		{"pooled_projections", &io.Pooled, []string{"pooled_projections", "y"}, kindFloat, []int{2}, false},
		{"skip_layers", &io.SkipLayers, []string{"skip_layers"}, kindInt, []int{0, 1}, true},
		{controlnetResidual, &io.ControlNet, []string{controlnetResidual}, kindFloat, []int{3, 4}, true},
	}
}

// transformerOutputs are the names exporters give the prediction: Optimum, NVIDIA demo, others.
var transformerOutputs = []string{"out_hidden_states", "latent", "noise_pred", "output"}

// adaptTransformer maps a transformer's signature to the pipeline's roles. It returns every reason the
// export does not fit; the TransformerIO is only meaningful when there is none.
func adaptTransformer(f scheduler.Family, in, out []ort.TensorInfo) (TransformerIO, []string) {
	io := TransformerIO{TimestepScale: 1}
	roles := transformerRoles(f, &io)
	at, msgs := matchByName(roles, in)
	if len(msgs) > 0 && f == scheduler.FamilyFLUX {
		if pos, ok := matchByPosition(roles, in); ok {
			at, msgs = pos, nil
		}
	}
	for r, i := range at {
		if i >= 0 {
			*roles[r].dst = in[i].Name
		}
	}
	if len(msgs) > 0 {
		return io, msgs
	}
	if f == scheduler.FamilySD3 && io.Timestep == "sigma" {
		io.TimestepScale = 1.0 / 1000 // the NVIDIA MMDiT wrapper computes timestep = 1000·σ in the graph
	}
	hidden, _ := componentTensor(in, io.HiddenStates)
	var msg string
	if io.Output, msg = pickTransformerOutput(out, len(hidden.Shape)); msg != "" {
		msgs = append(msgs, msg)
	}
	if f == scheduler.FamilyFLUX {
		msgs = append(msgs, adaptIDs(&io, in)...)
	}
	io.FixedHeight, io.FixedWidth = fixedLatentSize(f, hidden)
	return io, msgs
}

// matchByName assigns each role the first of its names among the inputs. It returns the input index of
// each role (-1 when absent) and what is missing, mistyped or left over.
func matchByName(roles []ioRole, in []ort.TensorInfo) ([]int, []string) {
	at := make([]int, len(roles))
	used := make([]bool, len(in))
	var msgs []string
	for r, role := range roles {
		at[r] = -1
		for _, name := range role.names {
			if i := slices.IndexFunc(in, func(t ort.TensorInfo) bool { return t.Name == name }); i >= 0 && !used[i] {
				at[r], used[i] = i, true
				break
			}
		}
		switch {
		case at[r] < 0 && !role.optional:
			msgs = append(msgs, fmt.Sprintf("missing input %s (looked for %s; the inputs are %s)",
				role.role, strings.Join(role.names, ", "), sigNames(in)))
		case at[r] >= 0 && supportedType(in[at[r]].Type): // unsupported types are reported once, elsewhere
			if m := role.fit(in[at[r]]); m != "" {
				msgs = append(msgs, m)
			}
		}
	}
	for i, t := range in {
		if !used[i] {
			msgs = append(msgs, fmt.Sprintf("unexpected input %s: rflow does not know what to feed it", t))
		}
	}
	return at, msgs
}

// matchByPosition assigns inputs to roles in order (OnnxStack's FLUX convention, used when the names are
// not known). It fails unless every input fits its role and no input carries another role's name.
func matchByPosition(roles []ioRole, in []ort.TensorInfo) ([]int, bool) {
	required := 0
	for _, r := range roles {
		if !r.optional {
			required++
		}
	}
	if len(in) < required || len(in) > len(roles) {
		return nil, false
	}
	at := make([]int, len(roles))
	for r := range at {
		at[r] = -1
	}
	for i, t := range in {
		if roles[i].fit(t) != "" {
			return nil, false
		}
		for r, role := range roles {
			if r != i && slices.Contains(role.names, t.Name) {
				return nil, false
			}
		}
		at[i] = i
	}
	return at, true
}

// pickTransformerOutput returns the prediction output: a known name, else the only output.
func pickTransformerOutput(out []ort.TensorInfo, rank int) (string, string) {
	var pick ort.TensorInfo
	found := false
	for _, name := range transformerOutputs {
		if pick, found = componentTensor(out, name); found {
			break
		}
	}
	if !found && len(out) == 1 {
		pick, found = out[0], true
	}
	switch {
	case !found && len(out) == 0:
		return "", "the model has no output"
	case !found:
		return "", fmt.Sprintf("none of the outputs %s is the prediction (looked for %s)", sigNames(out), strings.Join(transformerOutputs, ", "))
	case supportedType(pick.Type) && !kindFloat.accepts(pick.Type):
		return "", fmt.Sprintf("output %s is %v; it must be float32, float16 or bfloat16", pick.Name, pick.Type)
	case pick.Shape != nil && rank > 0 && len(pick.Shape) != rank:
		return "", fmt.Sprintf("output %s has rank %d; the prediction has the rank of the latent input (%d)", pick, len(pick.Shape), rank)
	}
	return pick.Name, ""
}

// adaptIDs sets the FLUX ids' element type and layout and checks that img_ids and txt_ids agree.
func adaptIDs(io *TransformerIO, in []ort.TensorInfo) []string {
	img, _ := componentTensor(in, io.ImgIDs)
	txt, _ := componentTensor(in, io.TxtIDs)
	io.IDsType = img.Type
	io.IDs3D = len(img.Shape) == 3
	var msgs []string
	if txt.Type != img.Type {
		msgs = append(msgs, fmt.Sprintf("img_ids is %v but txt_ids is %v; an export gives both the same type", img.Type, txt.Type))
	}
	if img.Shape != nil && txt.Shape != nil && len(img.Shape) != len(txt.Shape) {
		msgs = append(msgs, fmt.Sprintf("img_ids has rank %d but txt_ids rank %d; both are [seq, 3] or both [B, seq, 3]", len(img.Shape), len(txt.Shape)))
	}
	for _, t := range []ort.TensorInfo{img, txt} {
		if n := len(t.Shape); n > 0 && t.Shape[n-1] > 0 && t.Shape[n-1] != 3 {
			msgs = append(msgs, fmt.Sprintf("%s has %d coordinates per token; FLUX ids have 3", t, t.Shape[n-1]))
		}
	}
	return msgs
}

// fixedLatentSize returns the latent height and width the export fixes (0 where it is free). FLUX's
// packed input fixes only the token count N = (h/2)(w/2), which is read as a square latent.
func fixedLatentSize(f scheduler.Family, hidden ort.TensorInfo) (h, w int) {
	s := hidden.Shape
	if f == scheduler.FamilySD3 && len(s) == 4 {
		return int(max(s[2], 0)), int(max(s[3], 0))
	}
	if f == scheduler.FamilyFLUX && len(s) == 3 && s[1] > 0 {
		side := int(math.Round(math.Sqrt(float64(s[1]))))
		if int64(side)*int64(side) == s[1] {
			return 2 * side, 2 * side
		}
	}
	return 0, 0
}

// transformerDims returns the joint (encoder_hidden_states) and pooled widths and the input channels
// from the signature, falling back to config.json's joint_attention_dim, pooled_projection_dim and
// in_channels where the signature leaves a dimension symbolic.
func transformerDims(f scheduler.Family, c *Component, io TransformerIO) (joint, pooled, inCh int) {
	if t, ok := c.Input(io.EncoderHiddenStates); ok {
		joint = sigLastDim(t)
	}
	if t, ok := c.Input(io.Pooled); ok {
		pooled = sigLastDim(t)
	}
	if t, ok := c.Input(io.HiddenStates); ok {
		ch := 1 // SD3: [B, C, h, w]
		if f == scheduler.FamilyFLUX {
			ch = 2 // FLUX: [B, N, C]
		}
		if len(t.Shape) > ch && t.Shape[ch] > 0 {
			inCh = int(t.Shape[ch])
		}
	}
	joint = sigOr(joint, configInt(c.Config, "joint_attention_dim"))
	pooled = sigOr(pooled, configInt(c.Config, "pooled_projection_dim"))
	inCh = sigOr(inCh, configInt(c.Config, "in_channels"))
	return joint, pooled, inCh
}

// guidanceProblem cross-checks a FLUX transformer's guidance input with config.json's guidance_embeds.
func guidanceProblem(c *Component, io TransformerIO) string {
	embeds, ok := configBool(c.Config, "guidance_embeds")
	switch {
	case !ok || embeds == (io.Guidance != ""):
		return ""
	case embeds:
		return "config.json says guidance_embeds (a guidance-distilled model such as FLUX.1-dev) but model.onnx has no guidance input: " +
			"the two come from different models; re-export the transformer"
	}
	return fmt.Sprintf("model.onnx has a guidance input (%s) but config.json says guidance_embeds false: "+
		"the two come from different models; re-export the transformer", io.Guidance)
}

// encoderKind is what the pipeline needs from a text encoder.
type encoderKind int

const (
	encoderCLIPHidden encoderKind = iota // SD3 CLIP: pooled output and hidden_states.N
	encoderCLIPPooled                    // FLUX CLIP: pooled output
	encoderT5                            // T5: last_hidden_state
)

// encoderKindOf returns the kind of a family's text encoder component.
func encoderKindOf(f scheduler.Family, name string) (encoderKind, bool) {
	switch {
	case name == compTextEncoder && f == scheduler.FamilyFLUX:
		return encoderCLIPPooled, true
	case name == compTextEncoder || (name == compTextEncoder2 && f == scheduler.FamilySD3):
		return encoderCLIPHidden, true
	case name == compTextEncoder2 || name == compTextEncoder3:
		return encoderT5, true
	}
	return 0, false
}

// checkEncoder returns why a text encoder's signature does not fit what the pipeline feeds and reads.
func checkEncoder(kind encoderKind, c *Component) []string {
	var msgs []string
	ids, ok := c.Input("input_ids")
	switch {
	case !ok:
		msgs = append(msgs, fmt.Sprintf("missing input input_ids (the inputs are %s): not a text encoder export", sigNames(c.Inputs)))
	case supportedType(ids.Type) && !kindInt.accepts(ids.Type):
		msgs = append(msgs, fmt.Sprintf("input %s must be int32 or int64", ids))
	case ids.Shape != nil && len(ids.Shape) != 2:
		msgs = append(msgs, fmt.Sprintf("input %s must be [batch, sequence]", ids))
	}
	for _, t := range c.Inputs {
		if t.Name != "input_ids" && t.Name != "attention_mask" { // a TensorRT-demo CLIP's mask: fed all ones
			msgs = append(msgs, fmt.Sprintf("unexpected input %s: rflow feeds text encoders input_ids only (re-export without it, e.g. with optimum-cli)", t))
		}
	}
	if kind == encoderT5 {
		if textenc.T5HiddenOutput(outputRanks(c)) == "" {
			msgs = append(msgs, fmt.Sprintf("missing output last_hidden_state (the outputs are %s): not a T5 encoder export", sigNames(c.Outputs)))
		}
		return msgs
	}
	if textenc.CLIPPooledOutput(outputRanks(c)) == "" {
		msgs = append(msgs, fmt.Sprintf("missing output text_embeds or pooler_output (the outputs are %s): not a CLIP text encoder export", sigNames(c.Outputs)))
	}
	if kind == encoderCLIPHidden && lastHiddenLayer(c.Outputs) < 1 && textenc.CLIPPenultimateOutput(outputRanks(c)) == "" {
		msgs = append(msgs, "missing outputs hidden_states.0…N: SD3 uses CLIP's penultimate layer; re-export with output_hidden_states "+
			"(`optimum-cli export onnx --task text-to-image` does this for SD3)")
	}
	return msgs
}

// outputRanks maps a component's outputs to their declared ranks (textenc's output-name rules).
func outputRanks(c *Component) textenc.OutputRanks {
	r := textenc.OutputRanks{}
	for _, o := range c.Outputs {
		r[o.Name] = len(o.Shape)
	}
	return r
}

// lastHiddenLayer is N of the highest hidden_states.N output, or -1 when there is none.
func lastHiddenLayer(outs []ort.TensorInfo) int {
	last := -1
	for _, t := range outs {
		if s, ok := strings.CutPrefix(t.Name, "hidden_states."); ok {
			if n, err := strconv.Atoi(s); err == nil && n > last {
				last = n
			}
		}
	}
	return last
}

// clipWidths returns a CLIP encoder's per-token hidden width and pooled width (0 when unknown).
func clipWidths(c *Component) (hidden, pooled int) {
	switch name := textenc.CLIPPooledOutput(outputRanks(c)); name {
	case "text_embeds", "text_embeddings": // projected
		t, _ := c.Output(name)
		pooled = sigOr(sigLastDim(t), configInt(c.Config, "projection_dim"))
	case "":
	default:
		t, _ := c.Output(name)
		pooled = sigOr(sigLastDim(t), configInt(c.Config, "hidden_size"))
	}
	for _, t := range c.Outputs {
		if strings.HasPrefix(t.Name, "hidden_states") || t.Name == "last_hidden_state" || (t.Name == "text_embeddings" && len(t.Shape) == 3) {
			if hidden = sigLastDim(t); hidden > 0 {
				break
			}
		}
	}
	return sigOr(hidden, configInt(c.Config, "hidden_size")), pooled
}

// t5Width returns a T5 encoder's width (0 when unknown).
func t5Width(c *Component) int {
	t, _ := c.Output(textenc.T5HiddenOutput(outputRanks(c)))
	return sigOr(sigLastDim(t), configInt(c.Config, "d_model"))
}

// checkVAEModel returns why a VAE decoder or encoder signature does not fit: one float [B, C, h, w]
// input and a float [B, C, h, w] output.
func checkVAEModel(c *Component) []string {
	var msgs []string
	if len(c.Inputs) != 1 {
		msgs = append(msgs, fmt.Sprintf("has %d inputs (%s); a VAE %s takes one", len(c.Inputs), sigNames(c.Inputs), vaeRole(c.Name)))
	}
	if len(c.Outputs) == 0 {
		msgs = append(msgs, "the model has no output")
	}
	var first []ort.TensorInfo // the input and the output the VAE code uses
	if len(c.Inputs) > 0 {
		first = append(first, c.Inputs[0])
	}
	if len(c.Outputs) > 0 {
		first = append(first, c.Outputs[0])
	}
	for _, t := range first {
		switch {
		case supportedType(t.Type) && !kindFloat.accepts(t.Type):
			msgs = append(msgs, fmt.Sprintf("%s must be float32, float16 or bfloat16", t))
		case t.Shape != nil && len(t.Shape) != 4:
			msgs = append(msgs, fmt.Sprintf("%s must be [batch, channels, height, width]", t))
		}
	}
	return msgs
}

func vaeRole(name string) string {
	if name == compVAEEncoder {
		return "encoder"
	}
	return "decoder"
}

// latentChannelsOf returns the channels of a VAE decoder's input (0 when unknown).
func latentChannelsOf(dec *Component) int {
	if len(dec.Inputs) != 1 || len(dec.Inputs[0].Shape) != 4 {
		return 0
	}
	return int(max(dec.Inputs[0].Shape[1], 0))
}

// sigLastDim is the size of t's last dimension, 0 when unknown.
func sigLastDim(t ort.TensorInfo) int {
	if n := len(t.Shape); n > 0 && t.Shape[n-1] > 0 {
		return int(t.Shape[n-1])
	}
	return 0
}

// sigOr returns a unless it is 0, else b.
func sigOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func sigNames(ts []ort.TensorInfo) string {
	if len(ts) == 0 {
		return "none"
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

func sigJoinInts(v []int, sep string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}
