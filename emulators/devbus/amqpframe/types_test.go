package amqpframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValueRoundTrip(t *testing.T) {
	ts := time.UnixMilli(1740830400123).UTC()
	long := string(bytes.Repeat([]byte("x"), 300))
	cases := []struct {
		name string
		in   any
		want any // nil means "same as in"
	}{
		{"null", nil, nil},
		{"true", true, nil},
		{"false", false, nil},
		{"ubyte", uint8(200), nil},
		{"ushort", uint16(65000), nil},
		{"uint zero", uint32(0), nil},
		{"uint small", uint32(255), nil},
		{"uint large", uint32(math.MaxUint32), nil},
		{"ulong zero", uint64(0), nil},
		{"ulong small", uint64(7), nil},
		{"ulong large", uint64(math.MaxUint64), nil},
		{"byte", int8(-100), nil},
		{"short", int16(-30000), nil},
		{"int small", int32(-128), nil},
		{"int large", int32(math.MinInt32), nil},
		{"long small", int64(127), nil},
		{"long large", int64(math.MaxInt64), nil},
		{"float", float32(1.5), nil},
		{"double", math.Pi, nil},
		{"char", Char('€'), nil},
		{"decimal32", Decimal32{1, 2, 3, 4}, nil},
		{"decimal64", Decimal64{1, 2, 3, 4, 5, 6, 7, 8}, nil},
		{"decimal128", Decimal128{15: 9}, nil},
		{"timestamp", ts, nil},
		{"uuid", UUID{0xde, 0xad, 15: 0xef}, nil},
		{"binary empty", []byte{}, nil},
		{"binary", []byte{0, 1, 2}, nil},
		{"string", "héllo", nil},
		{"long string", long, nil},
		{"symbol", Symbol("amqp:accepted:list"), nil},
		{"empty list", []any{}, nil},
		{"list", []any{uint32(1), "two", nil, []any{true}}, nil},
		{"long list", func() []any {
			l := make([]any, 300)
			for i := range l {
				l[i] = int64(i)
			}
			return l
		}(), nil},
		{"empty map", Map{}, nil},
		{"map", Map{{Key: Symbol("k"), Value: "v"}, {Key: uint64(1), Value: []byte{1}}, {Key: []byte("bin"), Value: nil}}, nil},
		{"symbol array", []Symbol{"a", "b"}, Array{Code: codeSym32, Values: []any{Symbol("a"), Symbol("b")}}},
		{"uint array", Array{Code: codeUint, Values: []any{uint32(0), uint32(5), uint32(70000)}}, nil},
		{"long array", Array{Code: codeLong, Values: []any{int64(-1), int64(1) << 40}}, nil},
		{"bool array", Array{Code: codeBool, Values: []any{true, false}}, nil},
		{"uuid array", Array{Code: codeUUID, Values: []any{UUID{1}, UUID{2}}}, nil},
		{"timestamp array", Array{Code: codeTimestamp, Values: []any{ts}}, nil},
		{"empty array", Array{Code: codeSym32, Values: []any{}}, nil},
		{"list array", Array{Code: codeList32, Values: []any{[]any{}, []any{"x"}}}, nil},
		{"map array", Array{Code: codeMap32, Values: []any{Map{{Key: "a", Value: int32(1)}}}}, nil},
		{"array of arrays", Array{Code: codeArray32, Values: []any{Array{Code: codeInt, Values: []any{int32(1)}}}}, nil},
		{"described array", Array{Descriptor: uint64(0x77), Code: codeStr32, Values: []any{
			Described{Descriptor: uint64(0x77), Value: "a"}}}, nil},
		{"described", Described{Descriptor: Symbol("com.example:thing"), Value: Map{{Key: "x", Value: int64(1)}}}, nil},
		{"error", &Error{Condition: ErrNotFound, Description: "gone", Info: Map{{Key: Symbol("k"), Value: "v"}}},
			Described{Descriptor: uint64(descError), Value: []any{ErrNotFound, "gone", Map{{Key: Symbol("k"), Value: "v"}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendValue([]byte{0xaa}, tc.in) // appending keeps what is there
			if err != nil {
				t.Fatalf("AppendValue: %v", err)
			}
			if b[0] != 0xaa {
				t.Fatal("AppendValue overwrote the buffer")
			}
			got, n, err := DecodeValue(b[1:])
			if err != nil {
				t.Fatalf("DecodeValue(% x): %v", b[1:], err)
			}
			if n != len(b)-1 {
				t.Errorf("decoded %d of %d bytes", n, len(b)-1)
			}
			want := tc.want
			if want == nil {
				want = tc.in
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip = %#v, want %#v", got, want)
			}
			skipped, err := SkipValue(b[1:])
			if err != nil || skipped != n {
				t.Errorf("SkipValue = %d, %v; want %d", skipped, err, n)
			}
		})
	}
}

func TestEncodingIsCompact(t *testing.T) {
	cases := []struct {
		in   any
		want []byte
	}{
		{uint32(0), []byte{0x43}},
		{uint32(9), []byte{0x52, 9}},
		{uint32(256), []byte{0x70, 0, 0, 1, 0}},
		{uint64(0), []byte{0x44}},
		{uint64(0x10), []byte{0x53, 0x10}},
		{int32(-1), []byte{0x54, 0xff}},
		{int64(-2), []byte{0x55, 0xfe}},
		{true, []byte{0x41}},
		{"hi", []byte{0xa1, 2, 'h', 'i'}},
		{Symbol("s"), []byte{0xa3, 1, 's'}},
		{[]any{}, []byte{0x45}},
		{[]any{true}, []byte{0xc0, 2, 1, 0x41}},
		{Map{}, []byte{0xc1, 1, 0}},
		{[]Symbol{"a"}, []byte{0xe0, 7, 1, 0xb3, 0, 0, 0, 1, 'a'}},
		{&Accepted{}, []byte{0x00, 0x53, 0x24, 0x45}},
	}
	for _, tc := range cases {
		got, err := AppendValue(nil, tc.in)
		if err != nil {
			t.Errorf("AppendValue(%#v): %v", tc.in, err)
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("AppendValue(%#v) = % x, want % x", tc.in, got, tc.want)
		}
	}
}

func TestAppendValueRejectsUnsupported(t *testing.T) {
	cases := []any{
		struct{}{},
		map[string]any{},
		int(1),
		Array{Code: codeUint, Values: []any{"not a uint"}},
		deepList(maxDepth + 2),
	}
	for _, in := range cases {
		if _, err := AppendValue(nil, in); err == nil {
			t.Errorf("AppendValue(%T) succeeded", in)
		}
	}
}

func deepList(depth int) any {
	var v any = "leaf"
	for range depth {
		v = []any{v}
	}
	return v
}

func TestDecodeRejectsMalformed(t *testing.T) {
	nested := []byte{0x45}
	for range maxDepth + 1 {
		nested = append(binary.BigEndian.AppendUint32([]byte{0xd0}, uint32(len(nested)+4)), append([]byte{0, 0, 0, 1}, nested...)...)
	}
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown type code", []byte{0xff}},
		{"reserved type code", []byte{0x57}},
		{"truncated uint", []byte{0x70, 0, 0}},
		{"truncated uuid", []byte{0x98, 1, 2}},
		{"bad boolean octet", []byte{0x56, 2}},
		{"string longer than input", []byte{0xa1, 5, 'a'}},
		{"str32 length beyond input", []byte{0xb1, 0xff, 0xff, 0xff, 0xff, 'a'}},
		{"list size beyond input", []byte{0xc0, 9, 1, 0x41}},
		{"list count beyond size", []byte{0xc0, 2, 5, 0x41}},
		{"list size below count field", []byte{0xd0, 0, 0, 0, 2, 0, 0, 0, 0}},
		{"list elements overrun size", []byte{0xc0, 2, 1, 0x70, 0, 0, 0, 1}},
		{"list elements short of size", []byte{0xc0, 3, 1, 0x41, 0x41}},
		{"map with odd count", []byte{0xc1, 2, 1, 0x41}},
		{"array with many empty elements", []byte{0xf0, 0, 0, 0, 5, 0x7f, 0xff, 0xff, 0xff, 0x40}},
		{"array count beyond bytes", []byte{0xe0, 3, 200, 0x50, 1}},
		{"array element truncated", []byte{0xe0, 3, 1, 0x70, 1}},
		{"array constructor described twice", []byte{0xe0, 5, 1, 0x00, 0x53, 0x01, 0x00}},
		{"described descriptor", []byte{0x00, 0x00, 0x53, 1, 0x41, 0x41}},
		{"nested too deeply", nested},
		{"described too deeply", append(bytes.Repeat([]byte{0x00, 0x41}, maxDepth+2), 0x41)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, _, err := DecodeValue(tc.in)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeValue(% x) = %#v, %v; want ErrMalformed", tc.in, v, err)
			}
			if strings.HasSuffix(tc.name, "too deeply") && !strings.Contains(fmt.Sprint(err), "nested deeper") {
				t.Errorf("error %v does not say the value is nested too deeply", err)
			}
		})
	}
}

func TestSkipValueChecksBounds(t *testing.T) {
	for _, in := range [][]byte{
		{0xb0, 0, 0, 0, 9, 1},
		{0xd0, 0, 0, 0, 20, 0, 0, 0, 1},
		{0x00, 0x53},
		{0x56, 7},
		{0xe1},
	} {
		if _, err := SkipValue(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("SkipValue(% x) = %v, want ErrMalformed", in, err)
		}
	}
}

func TestMapHelpers(t *testing.T) {
	m := Map{{Key: Symbol("a"), Value: 1}, {Key: []byte("b"), Value: 2}}
	if v, ok := m.Get(Symbol("a")); !ok || v != 1 {
		t.Errorf("Get(a) = %v, %v", v, ok)
	}
	if _, ok := m.Get("a"); ok {
		t.Error("a string key matched a symbol key")
	}
	if _, ok := m.Get([]byte("b")); ok {
		t.Error("an uncomparable key matched")
	}
	m = m.Set(Symbol("a"), 3).Set(Symbol("c"), 4)
	if len(m) != 3 || m[0].Value != 3 || m[2].Key != Symbol("c") {
		t.Errorf("after Set: %#v", m)
	}
	m = m.Delete(Symbol("c")).Delete([]byte("b")) // uncomparable keys are never matched
	if len(m) != 2 || m[0].Key != Symbol("a") {
		t.Errorf("after Set and Delete: %#v", m)
	}
	if got := (UUID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}).String(); got != "01234567-89ab-cdef-0123-456789abcdef" {
		t.Errorf("UUID.String() = %s", got)
	}
}
