package amqpframe

import "fmt"

// composite is implemented by the described list types of this package.
type composite interface {
	// list returns the descriptor code and the fields, each bound to the member
	// that holds it, so one list serves both encoding and decoding.
	list() (uint64, []field)
}

// field is one entry of a described list: its specification name and the struct
// member that holds it. The member's type decides how the field is encoded and read.
type field struct {
	name      string
	ptr       any    // *string, *uint32, **Error, ...
	def       uint32 // the number an absent field stands for; that value is omitted
	limit     uint16 // binary: the most bytes accepted, 0 for any
	mandatory bool   // always encoded; its absence is a decode error
	omitEmpty bool   // binary: omit an empty value, not only a nil one
}

func optional(name string, ptr any) field {
	return field{name: name, ptr: ptr}
}

func mandatory(name string, ptr any) field {
	return field{name: name, ptr: ptr, mandatory: true}
}

func withDefault(name string, ptr any, def uint32) field {
	return field{name: name, ptr: ptr, def: def}
}

// described encodes c as a described list, dropping trailing nulls as the
// specification allows.
func described(c composite) Described {
	code, fs := c.list()
	l := make([]any, len(fs))
	for i := range fs {
		l[i] = fs[i].value()
	}
	for len(l) > 0 && l[len(l)-1] == nil {
		l = l[:len(l)-1]
	}
	return Described{Descriptor: code, Value: l}
}

// decodeFields reads list l into the members of fs. Mandatory fields are checked
// first, so a missing one is the error reported even when others are malformed.
func decodeFields(fs []field, name string, l []any) error {
	r := fieldReader{name: name, l: l}
	for i := range fs {
		if fs[i].mandatory {
			r.require(i, fs[i].name)
		}
	}
	for i := range fs {
		fs[i].decode(&r, i)
	}
	return r.err
}

// value is the member as encoded: nil (omitted) when an optional field holds what its
// absence would stand for.
func (f *field) value() any {
	switch p := f.ptr.(type) {
	case *string:
		return f.orNil(*p, *p == "")
	case *Symbol:
		return f.orNil(*p, *p == "")
	case *bool:
		return f.orNil(*p, !*p)
	case *Role:
		return f.orNil(bool(*p), !bool(*p))
	case *uint8:
		return f.orNil(*p, uint32(*p) == f.def)
	case *uint16:
		return f.orNil(*p, uint32(*p) == f.def)
	case *uint32:
		return f.orNil(*p, *p == f.def)
	case *uint64:
		return f.orNil(*p, *p == uint64(f.def))
	case *[]Symbol:
		return f.orNil(*p, len(*p) == 0)
	case *Map:
		return f.orNil(*p, *p == nil)
	case *[]byte:
		return f.binary(*p)
	case **uint8:
		return deref(*p)
	case **uint16:
		return deref(*p)
	case **uint32:
		return deref(*p)
	case **Source:
		return nonNil(*p)
	case **Target:
		return nonNil(*p)
	case **Error:
		return nonNil(*p)
	case *DeliveryState:
		return *p
	case *any:
		return *p
	}
	panic(fmt.Sprintf("amqpframe: field %s of unsupported type %T", f.name, f.ptr))
}

func (f *field) orNil(v any, absent bool) any {
	if absent && !f.mandatory {
		return nil
	}
	return v
}

// binary encodes a mandatory nil as empty bytes, since the field cannot be null.
func (f *field) binary(b []byte) any {
	switch {
	case f.mandatory && b == nil:
		return []byte{}
	case f.mandatory:
		return b
	case b == nil, f.omitEmpty && len(b) == 0:
		return nil
	}
	return b
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// nonNil keeps a nil pointer from becoming a non-nil interface value.
func nonNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}

// decode reads field i into the member.
func (f *field) decode(r *fieldReader, i int) {
	switch p := f.ptr.(type) {
	case *string:
		*p = r.str(i, f.name)
	case *Symbol:
		*p = r.symbol(i, f.name)
	case *bool:
		*p = r.boolean(i, f.name)
	case *Role:
		*p = Role(r.boolean(i, f.name))
	case *uint8:
		if c := r.ubyte(i, f.name); c != nil {
			*p = *c
		}
	case *uint16:
		*p = r.ushort(i, f.name, uint16(f.def))
	case *uint32:
		*p = r.uint(i, f.name, f.def)
	case *uint64:
		*p = r.ulong(i, f.name)
	case *[]Symbol:
		*p = r.symbols(i, f.name)
	case *Map:
		*p = r.fieldsMap(i, f.name)
	case *[]byte:
		*p = r.binary(i, f.name)
		if f.limit > 0 && len(*p) > int(f.limit) {
			r.adopt(malformed("%s.%s of %d bytes exceeds %d", r.name, f.name, len(*p), f.limit))
		}
	case **uint8:
		*p = r.ubyte(i, f.name)
	case **uint16:
		if r.at(i) != nil {
			v := r.ushort(i, f.name, 0)
			*p = &v
		}
	case **uint32:
		*p = r.optUint(i, f.name)
	case **Source: // a terminus names its own errors ("source.address")
		*p = nested[Source](r, i, f.name, f.name)
	case **Target:
		*p = nested[Target](r, i, f.name, f.name)
	case **Error:
		*p = nested[Error](r, i, f.name, r.name+"."+f.name)
	case *DeliveryState:
		*p = r.state(i, f.name)
	case *any:
		*p = r.at(i)
	default:
		panic(fmt.Sprintf("amqpframe: field %s of unsupported type %T", f.name, f.ptr))
	}
}

// nested reads field i as a described list of type T, or nil when it is absent;
// name prefixes the errors in its own fields.
func nested[T any, P interface {
	*T
	composite
}](r *fieldReader, i int, field, name string) P {
	if r.at(i) == nil {
		return nil
	}
	p := P(new(T))
	code, fs := p.list()
	l := r.nested(i, field, code)
	if l == nil {
		return nil
	}
	r.adopt(decodeFields(fs, name, l))
	return p
}

// fieldReader reads the fields of a described list, recording the first type error
// with the name of the field.
type fieldReader struct {
	name string
	l    []any
	err  error
}

func (r *fieldReader) at(i int) any {
	if i < len(r.l) {
		return r.l[i]
	}
	return nil
}

func (r *fieldReader) fail(field string, want string, got any) {
	if r.err == nil {
		r.err = malformed("%s.%s: expected %s, got %s", r.name, field, want, typeName(got))
	}
}

func (r *fieldReader) require(i int, field string) {
	if r.at(i) == nil && r.err == nil {
		r.err = malformed("%s.%s is mandatory", r.name, field)
	}
}

func (r *fieldReader) uint(i int, field string, def uint32) uint32 {
	switch v := r.at(i).(type) {
	case nil:
		return def
	case uint32:
		return v
	default:
		r.fail(field, "uint", v)
		return def
	}
}

func (r *fieldReader) optUint(i int, field string) *uint32 {
	if r.at(i) == nil {
		return nil
	}
	v := r.uint(i, field, 0)
	return &v
}

func (r *fieldReader) ushort(i int, field string, def uint16) uint16 {
	switch v := r.at(i).(type) {
	case nil:
		return def
	case uint16:
		return v
	default:
		r.fail(field, "ushort", v)
		return def
	}
}

func (r *fieldReader) ubyte(i int, field string) *uint8 {
	switch v := r.at(i).(type) {
	case nil:
		return nil
	case uint8:
		return &v
	default:
		r.fail(field, "ubyte", v)
		return nil
	}
}

func (r *fieldReader) ulong(i int, field string) uint64 {
	switch v := r.at(i).(type) {
	case nil:
		return 0
	case uint64:
		return v
	default:
		r.fail(field, "ulong", v)
		return 0
	}
}

func (r *fieldReader) boolean(i int, field string) bool {
	switch v := r.at(i).(type) {
	case nil:
		return false
	case bool:
		return v
	default:
		r.fail(field, "boolean", v)
		return false
	}
}

func (r *fieldReader) str(i int, field string) string {
	switch v := r.at(i).(type) {
	case nil:
		return ""
	case string:
		return v
	case Symbol:
		return string(v)
	default:
		r.fail(field, "string", v)
		return ""
	}
}

func (r *fieldReader) symbol(i int, field string) Symbol {
	return Symbol(r.str(i, field))
}

func (r *fieldReader) binary(i int, field string) []byte {
	switch v := r.at(i).(type) {
	case nil:
		return nil
	case []byte:
		return v
	default:
		r.fail(field, "binary", v)
		return nil
	}
}

// symbols reads a "multiple" symbol field: a single symbol or an array of them.
func (r *fieldReader) symbols(i int, field string) []Symbol {
	switch v := r.at(i).(type) {
	case nil:
		return nil
	case Symbol:
		return []Symbol{v}
	case Array:
		out := make([]Symbol, 0, len(v.Values))
		for _, e := range v.Values {
			s, ok := e.(Symbol)
			if !ok {
				r.fail(field, "symbol array", e)
				return nil
			}
			out = append(out, s)
		}
		return out
	default:
		r.fail(field, "symbols", v)
		return nil
	}
}

func (r *fieldReader) fieldsMap(i int, field string) Map {
	switch v := r.at(i).(type) {
	case nil:
		return nil
	case Map:
		return v
	default:
		r.fail(field, "map", v)
		return nil
	}
}

func (r *fieldReader) nested(i int, field string, want uint64) []any {
	v := r.at(i)
	if v == nil {
		return nil
	}
	code, l, err := describedList(v)
	if err != nil || code != want {
		r.fail(field, fmt.Sprintf("described list %#x", want), v)
		return nil
	}
	return l
}

func (r *fieldReader) state(i int, field string) DeliveryState {
	v := r.at(i)
	if v == nil {
		return nil
	}
	s, err := DeliveryStateFrom(v)
	if err != nil {
		r.adopt(fmt.Errorf("%s.%s: %w", r.name, field, err))
	}
	return s
}

// adopt records err unless an earlier error is already recorded.
func (r *fieldReader) adopt(err error) {
	if err != nil && r.err == nil {
		r.err = err
	}
}
