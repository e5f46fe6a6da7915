// Package amqpframe is an AMQP 1.0 type system and frame codec: just enough of the
// specification (part 1 types, part 2 transport, part 5 SASL) for a broker to talk to
// clients such as go-amqp. Decoding never panics on hostile input: every length and count
// is checked against the bytes actually present, and nesting is bounded.
package amqpframe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrMalformed is wrapped by every decoding error, so callers can answer with
// amqp:decode-error without inspecting messages.
var ErrMalformed = errors.New("amqp: malformed data")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Type codes of the AMQP 1.0 primitive encodings.
const (
	codeDescribed  = 0x00
	codeNull       = 0x40
	codeTrue       = 0x41
	codeFalse      = 0x42
	codeUint0      = 0x43
	codeUlong0     = 0x44
	codeList0      = 0x45
	codeUbyte      = 0x50
	codeByte       = 0x51
	codeSmallUint  = 0x52
	codeSmallUlong = 0x53
	codeSmallInt   = 0x54
	codeSmallLong  = 0x55
	codeBool       = 0x56
	codeUshort     = 0x60
	codeShort      = 0x61
	codeUint       = 0x70
	codeInt        = 0x71
	codeFloat      = 0x72
	codeChar       = 0x73
	codeDecimal32  = 0x74
	codeUlong      = 0x80
	codeLong       = 0x81
	codeDouble     = 0x82
	codeTimestamp  = 0x83
	codeDecimal64  = 0x84
	codeDecimal128 = 0x94
	codeUUID       = 0x98
	codeVbin8      = 0xa0
	codeStr8       = 0xa1
	codeSym8       = 0xa3
	codeVbin32     = 0xb0
	codeStr32      = 0xb1
	codeSym32      = 0xb3
	codeList8      = 0xc0
	codeMap8       = 0xc1
	codeList32     = 0xd0
	codeMap32      = 0xd1
	codeArray8     = 0xe0
	codeArray32    = 0xf0
)

// Limits that keep hostile input from costing more than it weighs.
const (
	maxDepth = 32 // nesting of lists, maps, arrays and described values
)

// Symbol is an AMQP symbol: an ASCII name such as an error condition or an annotation key.
type Symbol string

// UUID is an AMQP uuid, in RFC 4122 byte order.
type UUID [16]byte

// String formats u as the usual 8-4-4-4-12 hexadecimal groups.
func (u UUID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Char is an AMQP char (one UTF-32 code point).
type Char rune

// Decimal32, Decimal64 and Decimal128 carry IEEE 754 decimals opaquely: the broker only
// passes them through.
type (
	Decimal32  [4]byte
	Decimal64  [8]byte
	Decimal128 [16]byte
)

// Described is a described value: a descriptor (usually a ulong code or a symbol) and the
// value it describes.
type Described struct {
	Descriptor any
	Value      any
}

// MapEntry is one key/value pair of a Map.
type MapEntry struct {
	Key   any
	Value any
}

// Map is an AMQP map. It is a slice, not a Go map, because AMQP keys may be values Go
// cannot hash (binary, lists) and because the order on the wire is worth keeping.
type Map []MapEntry

// Get returns the value stored under key, comparing keys with ==. Symbol and string keys
// are distinct, as on the wire.
func (m Map) Get(key any) (any, bool) {
	for _, e := range m {
		if keyEqual(e.Key, key) {
			return e.Value, true
		}
	}
	return nil, false
}

// Set replaces the value under key or appends the pair.
func (m Map) Set(key, value any) Map {
	for i, e := range m {
		if keyEqual(e.Key, key) {
			m[i].Value = value
			return m
		}
	}
	return append(m, MapEntry{Key: key, Value: value})
}

// Delete removes key.
func (m Map) Delete(key any) Map {
	out := m[:0]
	for _, e := range m {
		if !keyEqual(e.Key, key) {
			out = append(out, e)
		}
	}
	return out
}

func keyEqual(a, b any) bool {
	switch a.(type) {
	case []byte, []any, Map, Array, Described:
		return false // uncomparable keys never match a lookup
	}
	switch b.(type) {
	case []byte, []any, Map, Array, Described:
		return false
	}
	return a == b
}

// Array is an AMQP array: elements that share one constructor. Code is the element type
// code in its wide form (for example 0xb3 for symbols), Descriptor is set for arrays of
// described values.
type Array struct {
	Descriptor any
	Code       byte
	Values     []any
}

// SymbolArray builds an Array of symbols, the wire form of the "multiple" symbol fields.
func SymbolArray(syms ...Symbol) Array {
	vals := make([]any, len(syms))
	for i, s := range syms {
		vals[i] = s
	}
	return Array{Code: codeSym32, Values: vals}
}

// ---------------------------------------------------------------------------------------
// Encoding

// AppendValue appends the AMQP encoding of v to b. Supported Go types: nil, bool, uint8,
// uint16, uint32, uint64, int8, int16, int32, int64, float32, float64, string, Symbol,
// []byte, time.Time (timestamp), UUID, Char, the decimals, []any (list), Map, Array,
// []Symbol (array of symbols), Described, and *Error and the delivery states.
func AppendValue(b []byte, v any) ([]byte, error) {
	return appendValue(b, v, 0)
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errors.New("amqp: value nested too deeply to encode")
	}
	switch v := v.(type) {
	case nil:
		return append(b, codeNull), nil
	case bool:
		if v {
			return append(b, codeTrue), nil
		}
		return append(b, codeFalse), nil
	case uint8:
		return append(b, codeUbyte, v), nil
	case uint16:
		return binary.BigEndian.AppendUint16(append(b, codeUshort), v), nil
	case uint32:
		switch {
		case v == 0:
			return append(b, codeUint0), nil
		case v < 256:
			return append(b, codeSmallUint, byte(v)), nil
		}
		return binary.BigEndian.AppendUint32(append(b, codeUint), v), nil
	case uint64:
		switch {
		case v == 0:
			return append(b, codeUlong0), nil
		case v < 256:
			return append(b, codeSmallUlong, byte(v)), nil
		}
		return binary.BigEndian.AppendUint64(append(b, codeUlong), v), nil
	case int8:
		return append(b, codeByte, byte(v)), nil
	case int16:
		return binary.BigEndian.AppendUint16(append(b, codeShort), uint16(v)), nil
	case int32:
		if v >= math.MinInt8 && v <= math.MaxInt8 {
			return append(b, codeSmallInt, byte(int8(v))), nil
		}
		return binary.BigEndian.AppendUint32(append(b, codeInt), uint32(v)), nil
	case int64:
		if v >= math.MinInt8 && v <= math.MaxInt8 {
			return append(b, codeSmallLong, byte(int8(v))), nil
		}
		return binary.BigEndian.AppendUint64(append(b, codeLong), uint64(v)), nil
	case float32:
		return binary.BigEndian.AppendUint32(append(b, codeFloat), math.Float32bits(v)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(b, codeDouble), math.Float64bits(v)), nil
	case Char:
		return binary.BigEndian.AppendUint32(append(b, codeChar), uint32(v)), nil
	case Decimal32:
		return append(append(b, codeDecimal32), v[:]...), nil
	case Decimal64:
		return append(append(b, codeDecimal64), v[:]...), nil
	case Decimal128:
		return append(append(b, codeDecimal128), v[:]...), nil
	case time.Time:
		return binary.BigEndian.AppendUint64(append(b, codeTimestamp), uint64(v.UnixMilli())), nil
	case UUID:
		return append(append(b, codeUUID), v[:]...), nil
	case []byte:
		return appendVariable(b, codeVbin8, codeVbin32, v), nil
	case string:
		return appendVariable(b, codeStr8, codeStr32, []byte(v)), nil
	case Symbol:
		return appendVariable(b, codeSym8, codeSym32, []byte(v)), nil
	case []Symbol:
		vals := make([]any, len(v))
		for i, s := range v {
			vals[i] = s
		}
		return appendArray(b, Array{Code: codeSym32, Values: vals}, depth)
	case []any:
		return appendList(b, v, depth)
	case Map:
		return appendMap(b, v, depth)
	case Array:
		return appendArray(b, v, depth)
	case Described:
		b = append(b, codeDescribed)
		b, err := appendValue(b, v.Descriptor, depth+1)
		if err != nil {
			return b, err
		}
		return appendValue(b, v.Value, depth+1)
	case composite:
		return appendValue(b, described(v), depth)
	default:
		return b, fmt.Errorf("amqp: cannot encode Go type %T", v)
	}
}

func appendVariable(b []byte, small, wide byte, v []byte) []byte {
	if len(v) < 256 {
		b = append(b, small, byte(len(v)))
	} else {
		b = binary.BigEndian.AppendUint32(append(b, wide), uint32(len(v)))
	}
	return append(b, v...)
}

// appendCompound writes the constructor, size and count of a list or map whose encoded
// elements are body.
func appendCompound(b []byte, small, wide byte, count int, body []byte) []byte {
	if len(body)+1 < 256 && count < 256 {
		b = append(b, small, byte(len(body)+1), byte(count))
	} else {
		b = append(b, wide)
		b = binary.BigEndian.AppendUint32(b, uint32(len(body)+4))
		b = binary.BigEndian.AppendUint32(b, uint32(count))
	}
	return append(b, body...)
}

func appendList(b []byte, l []any, depth int) ([]byte, error) {
	if len(l) == 0 {
		return append(b, codeList0), nil
	}
	var body []byte
	var err error
	for _, e := range l {
		if body, err = appendValue(body, e, depth+1); err != nil {
			return b, err
		}
	}
	return appendCompound(b, codeList8, codeList32, len(l), body), nil
}

func appendMap(b []byte, m Map, depth int) ([]byte, error) {
	var body []byte
	var err error
	for _, e := range m {
		if body, err = appendValue(body, e.Key, depth+1); err != nil {
			return b, err
		}
		if body, err = appendValue(body, e.Value, depth+1); err != nil {
			return b, err
		}
	}
	return appendCompound(b, codeMap8, codeMap32, 2*len(m), body), nil
}

// appendArray writes an array; elements use the wide form of their type so that one
// constructor fits them all.
func appendArray(b []byte, a Array, depth int) ([]byte, error) {
	code := wideCode(a.Code)
	var body []byte
	var err error
	if a.Descriptor != nil {
		body = append(body, codeDescribed)
		if body, err = appendValue(body, a.Descriptor, depth+1); err != nil {
			return b, err
		}
	}
	body = append(body, code)
	for _, e := range a.Values {
		if d, ok := e.(Described); ok && a.Descriptor != nil {
			e = d.Value // the descriptor was written once, in the constructor
		}
		if body, err = appendElement(body, code, e, depth+1); err != nil {
			return b, err
		}
	}
	if len(body)+1 < 256 && len(a.Values) < 256 {
		b = append(b, codeArray8, byte(len(body)+1), byte(len(a.Values)))
	} else {
		b = append(b, codeArray32)
		b = binary.BigEndian.AppendUint32(b, uint32(len(body)+4))
		b = binary.BigEndian.AppendUint32(b, uint32(len(a.Values)))
	}
	return append(b, body...), nil
}

// wideCode maps a type code to the member of its family that can hold any value.
func wideCode(c byte) byte {
	switch c {
	case codeTrue, codeFalse:
		return codeBool
	case codeUint0, codeSmallUint:
		return codeUint
	case codeUlong0, codeSmallUlong:
		return codeUlong
	case codeSmallInt:
		return codeInt
	case codeSmallLong:
		return codeLong
	case codeVbin8:
		return codeVbin32
	case codeStr8:
		return codeStr32
	case codeSym8:
		return codeSym32
	case codeList0, codeList8:
		return codeList32
	case codeMap8:
		return codeMap32
	case codeArray8:
		return codeArray32
	}
	return c
}

// appendElement writes one array element without its constructor.
func appendElement(b []byte, code byte, v any, depth int) ([]byte, error) {
	enc, err := appendValue(nil, v, depth)
	if err != nil {
		return b, err
	}
	if len(enc) == 0 || wideCode(enc[0]) != code {
		return b, fmt.Errorf("amqp: array element %T does not match array type %#02x", v, code)
	}
	// Re-encode in the wide form the constructor announced.
	switch enc[0] {
	case codeTrue:
		return append(b, 1), nil
	case codeFalse:
		return append(b, 0), nil
	case codeUint0:
		return append(b, 0, 0, 0, 0), nil
	case codeSmallUint:
		return append(b, 0, 0, 0, enc[1]), nil
	case codeUlong0:
		return append(b, 0, 0, 0, 0, 0, 0, 0, 0), nil
	case codeSmallUlong:
		return append(b, 0, 0, 0, 0, 0, 0, 0, enc[1]), nil
	case codeSmallInt:
		return binary.BigEndian.AppendUint32(b, uint32(int32(int8(enc[1])))), nil
	case codeSmallLong:
		return binary.BigEndian.AppendUint64(b, uint64(int64(int8(enc[1])))), nil
	case codeVbin8, codeStr8, codeSym8:
		b = binary.BigEndian.AppendUint32(b, uint32(enc[1]))
		return append(b, enc[2:]...), nil
	case codeList0:
		return append(b, 0, 0, 0, 4, 0, 0, 0, 0), nil
	case codeList8, codeMap8, codeArray8:
		b = binary.BigEndian.AppendUint32(b, uint32(enc[1])+3)
		b = binary.BigEndian.AppendUint32(b, uint32(enc[2]))
		return append(b, enc[3:]...), nil
	}
	return append(b, enc[1:]...), nil
}

// ---------------------------------------------------------------------------------------
// Decoding

// DecodeValue decodes one AMQP value from the start of b and returns it with the number of
// bytes it took. Lists decode to []any, maps to Map, arrays to Array, described values to
// Described, timestamps to time.Time (UTC), symbols to Symbol.
func DecodeValue(b []byte) (any, int, error) {
	return decodeValue(b, len(b))
}

// decodeValue decodes with an allowance of zeroWidth elements of zero width in all (see
// decoder.zeroLeft).
func decodeValue(b []byte, zeroWidth int) (any, int, error) {
	d := decoder{buf: b, zeroLeft: &zeroWidth}
	v, err := d.value(0)
	return v, d.off, err
}

// SkipValue returns the length of the value at the start of b without building it; it is
// how message bodies are stepped over.
func SkipValue(b []byte) (int, error) {
	var none int // skipping builds no arrays
	d := decoder{buf: b, zeroLeft: &none}
	err := d.skip(0)
	return d.off, err
}

type decoder struct {
	buf []byte
	off int
	// zeroLeft is what remains of the allowance for array elements of zero width (null,
	// true, uint0, list0, ...), shared by the decoders of nested values. Such an array
	// claims any number of elements in a few bytes, and each element still costs memory;
	// the allowance (the size of the input) keeps what one input can make the decoder
	// allocate proportional to its size.
	zeroLeft *int
}

func (d *decoder) need(n int) ([]byte, error) {
	if n < 0 || len(d.buf)-d.off < n {
		return nil, malformed("value needs %d bytes, %d left", n, len(d.buf)-d.off)
	}
	p := d.buf[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *decoder) byte1() (byte, error) {
	p, err := d.need(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (d *decoder) value(depth int) (any, error) {
	code, err := d.byte1()
	if err != nil {
		return nil, err
	}
	if code == codeDescribed {
		if depth >= maxDepth {
			return nil, malformed("values nested deeper than %d", maxDepth)
		}
		desc, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, ok := desc.(Described); ok {
			return nil, malformed("a descriptor cannot itself be described")
		}
		val, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		return Described{Descriptor: desc, Value: val}, nil
	}
	return d.body(code, depth)
}

// fixedWidth returns the byte width of fixed-width type codes, or -1.
func fixedWidth(code byte) int {
	switch code {
	case codeNull, codeTrue, codeFalse, codeUint0, codeUlong0, codeList0:
		return 0
	case codeUbyte, codeByte, codeSmallUint, codeSmallUlong, codeSmallInt, codeSmallLong, codeBool:
		return 1
	case codeUshort, codeShort:
		return 2
	case codeUint, codeInt, codeFloat, codeChar, codeDecimal32:
		return 4
	case codeUlong, codeLong, codeDouble, codeTimestamp, codeDecimal64:
		return 8
	case codeDecimal128, codeUUID:
		return 16
	}
	return -1
}

// body decodes the encoding of a value whose constructor code was already read.
func (d *decoder) body(code byte, depth int) (any, error) {
	if w := fixedWidth(code); w >= 0 {
		p, err := d.need(w)
		if err != nil {
			return nil, err
		}
		return fixedValue(code, p)
	}
	switch code {
	case codeVbin8, codeStr8, codeSym8, codeVbin32, codeStr32, codeSym32:
		var n int
		if code&0xf0 == 0xa0 {
			c, err := d.byte1()
			if err != nil {
				return nil, err
			}
			n = int(c)
		} else {
			p, err := d.need(4)
			if err != nil {
				return nil, err
			}
			n64 := uint64(binary.BigEndian.Uint32(p))
			if n64 > uint64(len(d.buf)-d.off) {
				return nil, malformed("variable-width value of %d bytes, %d left", n64, len(d.buf)-d.off)
			}
			n = int(n64)
		}
		p, err := d.need(n)
		if err != nil {
			return nil, err
		}
		switch code {
		case codeVbin8, codeVbin32:
			return append([]byte{}, p...), nil
		case codeStr8, codeStr32:
			return string(p), nil
		}
		return Symbol(p), nil
	case codeList8, codeList32, codeMap8, codeMap32:
		if depth >= maxDepth {
			return nil, malformed("values nested deeper than %d", maxDepth)
		}
		size, count, err := d.compoundHeader(code == codeList8 || code == codeMap8)
		if err != nil {
			return nil, err
		}
		// Every element takes at least its constructor byte; checked before the count
		// sizes an allocation.
		if count > size {
			return nil, malformed("compound of %d elements in %d bytes", count, size)
		}
		end := d.off + size
		inner := decoder{buf: d.buf[:end], off: d.off, zeroLeft: d.zeroLeft}
		vals := make([]any, count)
		for i := range vals {
			if vals[i], err = inner.value(depth + 1); err != nil {
				return nil, err
			}
		}
		if inner.off != end {
			return nil, malformed("compound declares %d bytes but its %d elements take %d", size, count, inner.off-d.off)
		}
		d.off = end
		if code == codeList8 || code == codeList32 {
			return vals, nil
		}
		if count%2 != 0 {
			return nil, malformed("map with an odd number (%d) of elements", count)
		}
		m := make(Map, count/2)
		for i := range m {
			m[i] = MapEntry{Key: vals[2*i], Value: vals[2*i+1]}
		}
		return m, nil
	case codeArray8, codeArray32:
		if depth >= maxDepth {
			return nil, malformed("values nested deeper than %d", maxDepth)
		}
		size, count, err := d.compoundHeader(code == codeArray8)
		if err != nil {
			return nil, err
		}
		end := d.off + size
		inner := decoder{buf: d.buf[:end], off: d.off, zeroLeft: d.zeroLeft}
		arr, err := inner.arrayBody(count, depth+1)
		if err != nil {
			return nil, err
		}
		if inner.off != end {
			return nil, malformed("array declares %d bytes but its elements take %d", size, inner.off-d.off)
		}
		d.off = end
		return arr, nil
	}
	return nil, malformed("unknown type code %#02x", code)
}

// compoundHeader reads size and count of a list, map or array and checks both against the
// bytes present. size is returned without the count field.
func (d *decoder) compoundHeader(small bool) (size, count int, err error) {
	var size64, count64 uint64
	var countBytes uint64
	if small {
		p, err := d.need(2)
		if err != nil {
			return 0, 0, err
		}
		size64, count64, countBytes = uint64(p[0]), uint64(p[1]), 1
	} else {
		p, err := d.need(8)
		if err != nil {
			return 0, 0, err
		}
		size64 = uint64(binary.BigEndian.Uint32(p[:4]))
		count64 = uint64(binary.BigEndian.Uint32(p[4:]))
		countBytes = 4
	}
	if size64 < countBytes {
		return 0, 0, malformed("compound size %d smaller than its count field", size64)
	}
	size64 -= countBytes
	if size64 > uint64(len(d.buf)-d.off) {
		return 0, 0, malformed("compound of %d bytes, %d left", size64, len(d.buf)-d.off)
	}
	return int(size64), int(count64), nil
}

func (d *decoder) arrayBody(count int, depth int) (Array, error) {
	var arr Array
	code, err := d.byte1()
	if err != nil {
		return arr, err
	}
	if code == codeDescribed {
		if arr.Descriptor, err = d.value(depth); err != nil {
			return arr, err
		}
		if code, err = d.byte1(); err != nil {
			return arr, err
		}
		if code == codeDescribed {
			return arr, malformed("array element constructor described twice")
		}
	}
	// Every element of a non-zero-width type takes at least one byte; elements of zero
	// width are paid for from the input's allowance.
	if fixedWidth(code) == 0 {
		if count > *d.zeroLeft {
			return arr, malformed("array of %d empty elements, beyond the %d this input may still claim", count, *d.zeroLeft)
		}
		*d.zeroLeft -= count
	} else if count > len(d.buf)-d.off {
		return arr, malformed("array of %d elements in %d bytes", count, len(d.buf)-d.off)
	}
	arr.Code = wideCode(code)
	arr.Values = make([]any, count)
	for i := range arr.Values {
		v, err := d.body(code, depth)
		if err != nil {
			return arr, err
		}
		if arr.Descriptor != nil {
			v = Described{Descriptor: arr.Descriptor, Value: v}
		}
		arr.Values[i] = v
	}
	return arr, nil
}

func fixedValue(code byte, p []byte) (any, error) {
	switch code {
	case codeNull:
		return nil, nil
	case codeTrue:
		return true, nil
	case codeFalse:
		return false, nil
	case codeUint0:
		return uint32(0), nil
	case codeUlong0:
		return uint64(0), nil
	case codeList0:
		return []any{}, nil
	case codeUbyte:
		return p[0], nil
	case codeByte:
		return int8(p[0]), nil
	case codeSmallUint:
		return uint32(p[0]), nil
	case codeSmallUlong:
		return uint64(p[0]), nil
	case codeSmallInt:
		return int32(int8(p[0])), nil
	case codeSmallLong:
		return int64(int8(p[0])), nil
	case codeBool:
		switch p[0] {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		return nil, malformed("boolean octet %#02x", p[0])
	case codeUshort:
		return binary.BigEndian.Uint16(p), nil
	case codeShort:
		return int16(binary.BigEndian.Uint16(p)), nil
	case codeUint:
		return binary.BigEndian.Uint32(p), nil
	case codeInt:
		return int32(binary.BigEndian.Uint32(p)), nil
	case codeFloat:
		return math.Float32frombits(binary.BigEndian.Uint32(p)), nil
	case codeChar:
		return Char(binary.BigEndian.Uint32(p)), nil
	case codeDecimal32:
		return Decimal32(p), nil
	case codeUlong:
		return binary.BigEndian.Uint64(p), nil
	case codeLong:
		return int64(binary.BigEndian.Uint64(p)), nil
	case codeDouble:
		return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
	case codeTimestamp:
		return time.UnixMilli(int64(binary.BigEndian.Uint64(p))).UTC(), nil
	case codeDecimal64:
		return Decimal64(p), nil
	case codeDecimal128:
		return Decimal128(p), nil
	case codeUUID:
		return UUID(p), nil
	}
	return nil, malformed("unknown type code %#02x", code)
}

// skip steps over one value, checking lengths but building nothing.
func (d *decoder) skip(depth int) error {
	code, err := d.byte1()
	if err != nil {
		return err
	}
	if code == codeDescribed {
		if depth >= maxDepth {
			return malformed("values nested deeper than %d", maxDepth)
		}
		if err := d.skip(depth + 1); err != nil {
			return err
		}
		return d.skip(depth + 1)
	}
	if w := fixedWidth(code); w >= 0 {
		_, err := d.need(w)
		if err == nil && code == codeBool && d.buf[d.off-1] > 1 {
			return malformed("boolean octet %#02x", d.buf[d.off-1])
		}
		return err
	}
	switch code {
	case codeVbin8, codeStr8, codeSym8:
		n, err := d.byte1()
		if err != nil {
			return err
		}
		_, err = d.need(int(n))
		return err
	case codeVbin32, codeStr32, codeSym32:
		p, err := d.need(4)
		if err != nil {
			return err
		}
		n := uint64(binary.BigEndian.Uint32(p))
		if n > uint64(len(d.buf)-d.off) {
			return malformed("variable-width value of %d bytes, %d left", n, len(d.buf)-d.off)
		}
		d.off += int(n)
		return nil
	case codeList8, codeList32, codeMap8, codeMap32, codeArray8, codeArray32:
		// A compound's size field bounds it; validating its content is left to whoever
		// decodes it, as a broker passes bodies through untouched.
		size, _, err := d.compoundHeader(code == codeList8 || code == codeMap8 || code == codeArray8)
		if err != nil {
			return err
		}
		d.off += size
		return nil
	}
	return malformed("unknown type code %#02x", code)
}
