package amqpframe

// Descriptor codes of the message sections (§3.2).
const (
	SectionHeader                uint64 = 0x70
	SectionDeliveryAnnotations   uint64 = 0x71
	SectionMessageAnnotations    uint64 = 0x72
	SectionProperties            uint64 = 0x73
	SectionApplicationProperties uint64 = 0x74
	SectionData                  uint64 = 0x75
	SectionSequence              uint64 = 0x76
	SectionValue                 uint64 = 0x77
	SectionFooter                uint64 = 0x78
)

var sectionSymbols = map[Symbol]uint64{
	"amqp:header:list": SectionHeader, "amqp:delivery-annotations:map": SectionDeliveryAnnotations,
	"amqp:message-annotations:map": SectionMessageAnnotations, "amqp:properties:list": SectionProperties,
	"amqp:application-properties:map": SectionApplicationProperties, "amqp:data:binary": SectionData,
	"amqp:amqp-sequence:list": SectionSequence, "amqp:amqp-value:*": SectionValue,
	"amqp:footer:map": SectionFooter,
}

// Section is one section of an encoded message. Raw is the whole section, descriptor
// included, so that a broker can pass it on byte for byte. Value is the decoded content of
// the header, annotations, properties and application-properties sections; body and footer
// sections are only delimited, not decoded.
type Section struct {
	Code   uint64
	Offset int // of Raw within the message
	Raw    []byte
	Value  any
}

// SplitMessage splits an encoded message into its sections and checks their order
// (header, delivery-annotations, message-annotations, properties, application-properties,
// body, footer). Raw slices alias b.
func SplitMessage(b []byte) ([]Section, error) {
	var out []Section
	last := uint64(0)
	for off := 0; off < len(b); {
		rest := b[off:]
		if rest[0] != codeDescribed {
			return nil, malformed("message section at byte %d is not a described value", off)
		}
		desc, n, err := DecodeValue(rest[1:])
		if err != nil {
			return nil, err
		}
		code, ok := sectionCode(desc)
		if !ok {
			return nil, malformed("unknown message section descriptor %v", desc)
		}
		head := 1 + n
		var val any
		var size int
		switch code {
		case SectionData, SectionSequence, SectionValue, SectionFooter:
			size, err = SkipValue(rest[head:])
		default:
			val, size, err = DecodeValue(rest[head:])
		}
		if err != nil {
			return nil, err
		}
		if last != 0 {
			switch r, lr := sectionRank(code), sectionRank(last); {
			case r < lr:
				return nil, malformed("message section %#x after section %#x", code, last)
			case r == lr && (code != last || code == SectionValue || r != SectionData):
				return nil, malformed("message section %#x follows section %#x", code, last)
			}
		}
		if err := checkSectionType(code, val); err != nil {
			return nil, err
		}
		out = append(out, Section{Code: code, Offset: off, Raw: rest[:head+size], Value: val})
		last = code
		off += head + size
	}
	return out, nil
}

// sectionRank orders sections; the three body kinds share one rank.
func sectionRank(code uint64) uint64 {
	if code == SectionSequence || code == SectionValue {
		return SectionData
	}
	return code
}

func sectionCode(desc any) (uint64, bool) {
	switch d := desc.(type) {
	case uint64:
		return d, d >= SectionHeader && d <= SectionFooter
	case Symbol:
		c, ok := sectionSymbols[d]
		return c, ok
	}
	return 0, false
}

func checkSectionType(code uint64, v any) error {
	switch code {
	case SectionHeader, SectionProperties:
		if _, ok := v.([]any); !ok {
			return malformed("message section %#x is a %s, not a list", code, typeName(v))
		}
	case SectionDeliveryAnnotations, SectionMessageAnnotations, SectionApplicationProperties:
		if _, ok := v.(Map); !ok && v != nil {
			return malformed("message section %#x is a %s, not a map", code, typeName(v))
		}
	}
	return nil
}

// AppendSection appends a section with the given descriptor and value.
func AppendSection(b []byte, code uint64, v any) ([]byte, error) {
	return AppendValue(b, Described{Descriptor: code, Value: v})
}
