package onnx

import (
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// A small, independent protobuf decoder for tests: it shares no code with
// the writer or the streaming reader, so it checks the wire bytes directly.

type pval struct {
	typ protowire.Type
	v   uint64
	b   []byte
}

type pmsg map[protowire.Number][]pval

func decode(t testing.TB, b []byte) pmsg {
	t.Helper()
	m := pmsg{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("decode: bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		var v pval
		v.typ = typ
		switch typ {
		case protowire.VarintType:
			v.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v.v = uint64(x)
		case protowire.Fixed64Type:
			v.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v.b, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("decode: field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("decode: field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		m[num] = append(m[num], v)
	}
	return m
}

func (m pmsg) has(num protowire.Number) bool { return len(m[num]) > 0 }

func (m pmsg) one(t testing.TB, num protowire.Number, typ protowire.Type) pval {
	t.Helper()
	if len(m[num]) != 1 {
		t.Fatalf("field %d: %d occurrences, want 1", num, len(m[num]))
	}
	v := m[num][0]
	if v.typ != typ {
		t.Fatalf("field %d: wire type %d, want %d", num, v.typ, typ)
	}
	return v
}

func (m pmsg) uint(t testing.TB, num protowire.Number) uint64 {
	t.Helper()
	return m.one(t, num, protowire.VarintType).v
}

func (m pmsg) int(t testing.TB, num protowire.Number) int64 {
	t.Helper()
	return int64(m.uint(t, num))
}

func (m pmsg) str(t testing.TB, num protowire.Number) string {
	t.Helper()
	return string(m.one(t, num, protowire.BytesType).b)
}

func (m pmsg) strs(t testing.TB, num protowire.Number) []string {
	t.Helper()
	var out []string
	for _, v := range m[num] {
		if v.typ != protowire.BytesType {
			t.Fatalf("field %d: wire type %d, want bytes", num, v.typ)
		}
		out = append(out, string(v.b))
	}
	return out
}

func (m pmsg) msg(t testing.TB, num protowire.Number) pmsg {
	t.Helper()
	return decode(t, m.one(t, num, protowire.BytesType).b)
}

func (m pmsg) msgs(t testing.TB, num protowire.Number) []pmsg {
	t.Helper()
	var out []pmsg
	for _, s := range m.strs(t, num) {
		out = append(out, decode(t, []byte(s)))
	}
	return out
}

// ints accepts repeated int64 packed or unpacked, as protobuf parsers must.
func (m pmsg) ints(t testing.TB, num protowire.Number) []int64 {
	t.Helper()
	var out []int64
	for _, v := range m[num] {
		switch v.typ {
		case protowire.VarintType:
			out = append(out, int64(v.v))
		case protowire.BytesType:
			b := v.b
			for len(b) > 0 {
				x, n := protowire.ConsumeVarint(b)
				if n < 0 {
					t.Fatalf("field %d: bad packed varint", num)
				}
				out = append(out, int64(x))
				b = b[n:]
			}
		default:
			t.Fatalf("field %d: wire type %d for ints", num, v.typ)
		}
	}
	return out
}

// floats accepts repeated float packed or unpacked.
func (m pmsg) floats(t testing.TB, num protowire.Number) []float32 {
	t.Helper()
	var out []float32
	for _, v := range m[num] {
		switch v.typ {
		case protowire.Fixed32Type:
			out = append(out, math.Float32frombits(uint32(v.v)))
		case protowire.BytesType:
			b := v.b
			for len(b) > 0 {
				x, n := protowire.ConsumeFixed32(b)
				if n < 0 {
					t.Fatalf("field %d: bad packed fixed32", num)
				}
				out = append(out, math.Float32frombits(x))
				b = b[n:]
			}
		default:
			t.Fatalf("field %d: wire type %d for floats", num, v.typ)
		}
	}
	return out
}

// entries decodes repeated StringStringEntryProto in order.
func (m pmsg) entries(t testing.TB, num protowire.Number) [][2]string {
	t.Helper()
	var out [][2]string
	for _, e := range m.msgs(t, num) {
		out = append(out, [2]string{e.str(t, 1), e.str(t, 2)})
	}
	return out
}

func TestDecoderAcceptsPackedAndUnpacked(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 5)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendVarint(protowire.AppendVarint(nil, 6), uint64(1<<64-7)))
	b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, math.Float32bits(1.5))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendFixed32(nil, math.Float32bits(-2)))
	m := decode(t, b)
	if got := m.ints(t, 1); len(got) != 3 || got[0] != 5 || got[1] != 6 || got[2] != -7 {
		t.Errorf("ints = %v", got)
	}
	if got := m.floats(t, 2); len(got) != 2 || got[0] != 1.5 || got[1] != -2 {
		t.Errorf("floats = %v", got)
	}
}
