package checkpoint

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rowsOf is a RowReader over in-memory 1-byte-element tensors (U8), for checking data movement.
type rowsOf map[string]tensor

func (m rowsOf) read(name string, start, end int64) ([]byte, error) {
	return fileRows(m).read(name, start, end)
}

func u8(shape []int64) tensor {
	d := make([]byte, count(shape))
	for i := range d {
		d[i] = byte(i)
	}
	return tensor{"U8", shape, d}
}

func TestAssemble(t *testing.T) {
	src := rowsOf{"qkv": u8([]int64{6, 2}), "ada": u8([]int64{4}), "proj": u8([]int64{2, 3}), "attn": u8([]int64{2, 2, 1, 1})}
	cases := []struct {
		r    Recipe
		want []byte
	}{
		{Recipe{Pieces: []Piece{{"qkv", 2, 4}}, Shape: []int64{2, 2}, DType: "U8"}, []byte{4, 5, 6, 7}},
		{Recipe{Pieces: []Piece{{"ada", 2, 4}, {"ada", 0, 2}}, Shape: []int64{4}, DType: "U8"}, []byte{2, 3, 0, 1}},
		{Recipe{Pieces: []Piece{{"proj", 0, -1}}, Shape: []int64{3, 2}, DType: "U8", Transpose: true}, []byte{0, 3, 1, 4, 2, 5}},
		{Recipe{Pieces: []Piece{{"attn", 0, -1}}, Shape: []int64{2, 2}, DType: "U8"}, []byte{0, 1, 2, 3}},
		{Recipe{Shape: []int64{2, 2}, DType: "BF16", Fill: FillEye}, []byte{0x80, 0x3f, 0, 0, 0, 0, 0x80, 0x3f}},
		{Recipe{Shape: []int64{2, 2}, DType: "F16", Fill: FillEye}, []byte{0, 0x3c, 0, 0, 0, 0, 0, 0x3c}},
		{Recipe{Shape: []int64{1, 1}, DType: "F32", Fill: FillEye}, []byte{0, 0, 0x80, 0x3f}},
	}
	for i, c := range cases {
		got, err := c.r.Assemble(src.read)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("case %d: %v %v, want %v", i, got, err, c.want)
		}
	}
	for i, r := range []Recipe{
		{Pieces: []Piece{{"qkv", 0, 2}}, Shape: []int64{2, 3}, DType: "U8"},                 // too few bytes
		{Pieces: []Piece{{"qkv", 0, -1}}, Shape: []int64{2, 2}, DType: "U8"},                // too many
		{Pieces: []Piece{{"nope", 0, -1}}, Shape: []int64{1}, DType: "U8"},                  // no source
		{Pieces: []Piece{{"qkv", 0, 9}}, Shape: []int64{9, 2}, DType: "U8"},                 // rows out of range
		{Shape: []int64{2, 3}, DType: "BF16", Fill: FillEye},                                // not square
		{Shape: []int64{1 << 40, 1 << 40}, DType: "F32"},                                    // absurd
		{Pieces: []Piece{{"qkv", 0, -1}}, Shape: []int64{12}, DType: "X"},                   // dtype
		{Pieces: []Piece{{"proj", 0, -1}}, Shape: []int64{6}, DType: "U8", Transpose: true}, // 1-D transpose
	} {
		if _, err := r.Assemble(src.read); err == nil {
			t.Errorf("bad recipe %d assembled", i)
		}
	}
}

// checkRecipes asserts what every consumer of Detect relies on: each piece names a tensor of the listing
// with rows in range, all pieces of a recipe share its dtype and trailing dims, and the pieces hold exactly
// the recipe's element count (after the transpose or reshape).
func checkRecipes(l Listing, comps []Component) error {
	for _, c := range comps {
		for name, r := range c.Tensors {
			n := count(r.Shape)
			if n < 0 {
				return fmt.Errorf("%s: shape %v", name, r.Shape)
			}
			if r.Fill != "" {
				if len(r.Pieces) != 0 || r.Fill != FillEye {
					return fmt.Errorf("%s: fill %q with %d pieces", name, r.Fill, len(r.Pieces))
				}
				continue
			}
			var total int64
			for _, p := range r.Pieces {
				m, ok := l.Meta(p.Tensor)
				if !ok {
					return fmt.Errorf("%s: piece of unknown tensor %s", name, p.Tensor)
				}
				if m.DType != r.DType {
					return fmt.Errorf("%s: piece %s is %s, recipe %s", name, p.Tensor, m.DType, r.DType)
				}
				if p.Whole() {
					total += count(m.Shape)
					continue
				}
				if len(m.Shape) == 0 || p.Start < 0 || p.End <= p.Start || p.End > m.Shape[0] {
					return fmt.Errorf("%s: rows [%d,%d) of %s%v", name, p.Start, p.End, p.Tensor, m.Shape)
				}
				if len(r.Shape) != len(m.Shape) || !slices.Equal(r.Shape[1:], m.Shape[1:]) {
					return fmt.Errorf("%s: %v from rows of %s%v", name, r.Shape, p.Tensor, m.Shape)
				}
				total += (p.End - p.Start) * count(m.Shape[1:])
			}
			if total != n {
				return fmt.Errorf("%s: pieces hold %d elements, shape %v has %d", name, total, r.Shape, n)
			}
		}
	}
	return nil
}

func TestRecipesConsistent(t *testing.T) {
	for _, kind := range oracleKinds {
		o := loadOracle(t, kind)
		h := oracleHints(t, kind, o)
		for file, m := range o.SingleFile {
			l := listing(t, m)
			comps, err := DetectWith(l, h)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkRecipes(l, comps); err != nil {
				t.Errorf("%s %s: %v", kind, file, err)
			}
		}
	}
}

// parseListing reads "name dim,dim,…" lines (a fuzz input).
func parseListing(s string) MapListing {
	l := MapListing{}
	for _, line := range strings.Split(s, "\n") {
		name, dims, _ := strings.Cut(line, " ")
		shape := []int64{}
		for _, d := range strings.Split(dims, ",") {
			if n, err := strconv.ParseInt(d, 10, 64); err == nil {
				shape = append(shape, n)
			}
		}
		if name != "" {
			l[name] = TensorMeta{DType: "BF16", Shape: shape}
		}
	}
	return l
}

// FuzzDetect: any listing gives components whose recipes are consistent with it, or an error; never a
// panic or a runaway loop.
func FuzzDetect(f *testing.F) {
	for _, kind := range []string{"flux-dev", "sd3"} {
		b, err := readOracleFile(kind)
		if err != nil {
			f.Skip(err)
		}
		for _, m := range b.SingleFile {
			var sb strings.Builder
			for _, name := range sortedKeys(m) {
				_, dims, _ := strings.Cut(m[name], " ")
				fmt.Fprintf(&sb, "%s %s\n", name, dims)
			}
			f.Add(sb.String())
		}
	}
	f.Add("double_blocks.1000000000.img_attn.qkv.weight 3,1\nimg_in.weight 4,2")
	f.Add("joint_blocks.0.x_block.attn.qkv.weight 9223372036854775807,9223372036854775807\npos_embed 1,-4,2")
	f.Fuzz(func(t *testing.T, s string) {
		l := parseListing(s)
		h := Hints{NormNumGroups: 8, AxesDimsRope: []int{4, 6, 6}, HeadDim: map[Role]int{RoleTransformer: 32, RoleCLIPL: 16, RoleCLIPG: 24}}
		comps, err := DetectWith(l, h)
		if err != nil {
			return
		}
		if err := checkRecipes(l, comps); err != nil {
			t.Fatal(err)
		}
	})
}
