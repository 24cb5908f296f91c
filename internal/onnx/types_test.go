package onnx

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/rflowrt/rflow/internal/half"
)

func TestDataType(t *testing.T) {
	cases := []struct {
		t    DataType
		name string
		size int
		wire int32
	}{
		{Float, "float32", 4, 1}, {Uint8, "uint8", 1, 2}, {Int8, "int8", 1, 3},
		{Int32, "int32", 4, 6}, {Int64, "int64", 8, 7}, {Bool, "bool", 1, 9},
		{Float16, "float16", 2, 10}, {Double, "float64", 8, 11}, {BFloat16, "bfloat16", 2, 16},
		{DataType(8), "DataType(8)", 0, 8}, {0, "DataType(0)", 0, 0},
	}
	for _, c := range cases {
		if c.t.String() != c.name || c.t.Size() != c.size || int32(c.t) != c.wire {
			t.Errorf("%d: String %q Size %d, want %q %d", int32(c.t), c.t.String(), c.t.Size(), c.name, c.size)
		}
	}
}

func TestDimString(t *testing.T) {
	for d, want := range map[Dim]string{Fixed(3): "3", Sym("batch"): "batch", {Value: -1}: "?", Fixed(0): "0"} {
		if d.String() != want {
			t.Errorf("%#v.String() = %q, want %q", d, d.String(), want)
		}
	}
}

func TestTensorConstructors(t *testing.T) {
	vals := []float32{0, 1, -2.5, 65504, 1e-7, 3.14159, float32(math.Inf(-1)), 1.0009765625}
	f16 := Float16Tensor("h", []int64{2, 4}, vals)
	bf := BFloat16Tensor("b", []int64{8}, vals)
	for i, v := range vals {
		if got, want := binary.LittleEndian.Uint16(f16.Raw[2*i:]), half.FromFloat32(v); got != want {
			t.Errorf("float16 %v: %#04x, want %#04x", v, got, want)
		}
		if got, want := binary.LittleEndian.Uint16(bf.Raw[2*i:]), half.BFloat16FromFloat32(v); got != want {
			t.Errorf("bfloat16 %v: %#04x, want %#04x", v, got, want)
		}
	}
	if f16.Type != Float16 || bf.Type != BFloat16 || len(f16.Raw) != 16 || len(bf.Raw) != 16 || f16.Name != "h" {
		t.Errorf("half tensors: %v %v %d %d", f16.Type, bf.Type, len(f16.Raw), len(bf.Raw))
	}
	// One value whose binary16 bits are known independently of the half package.
	if got := Float16Tensor("", nil, []float32{1}).Raw; !bytes.Equal(got, []byte{0x00, 0x3c}) {
		t.Errorf("float16(1) = %x, want 003c", got)
	}

	checks := []struct {
		name string
		got  Tensor
		typ  DataType
		want []byte
	}{
		{"float32", Float32Tensor("f", []int64{2}, []float32{1, -2}), Float, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}},
		{"int32", Int32Tensor("i", []int64{3}, []int32{-1, 2, 0x01020304}), Int32,
			[]byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 4, 3, 2, 1}},
		{"int64", Int64Tensor("l", []int64{2}, []int64{-2, 0x0102030405060708}), Int64,
			[]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 8, 7, 6, 5, 4, 3, 2, 1}},
	}
	for _, c := range checks {
		if c.got.Type != c.typ || !bytes.Equal(c.got.Raw, c.want) {
			t.Errorf("%s: type %v raw %x, want %v %x", c.name, c.got.Type, c.got.Raw, c.typ, c.want)
		}
	}

	dims := []int64{2}
	tt := Int64Tensor("x", dims, []int64{1, 2})
	dims[0] = 99
	if tt.Dims[0] != 2 {
		t.Error("constructor aliases the caller's dims")
	}
}

func TestAttrConstructorsCopy(t *testing.T) {
	ints := []int64{1, 2}
	a := AttrInts("a", ints...)
	ints[0] = 9
	if a.Ints[0] != 1 || a.Type != AttrTypeInts {
		t.Error("AttrInts aliases its argument")
	}
	tt := Float32Tensor("t", []int64{1}, []float32{1})
	at := AttrTensor("v", tt)
	tt.Name = "changed"
	if at.T.Name != "t" || at.Type != AttrTypeTensor {
		t.Error("AttrTensor aliases its argument")
	}
}
