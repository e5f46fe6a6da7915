package amqpframe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Frame types (byte 5 of the frame header).
const (
	TypeAMQP uint8 = 0x00
	TypeSASL uint8 = 0x01
)

// HeaderSize is the size of the fixed frame header.
const HeaderSize = 8

// MinMaxFrameSize is the largest frame every peer must accept (AMQP 1.0 §2.7.1); it is
// the limit before open has negotiated another one.
const MinMaxFrameSize = 512

// ErrFrameTooLarge is returned for frames larger than the negotiated maximum; it maps to
// amqp:connection:framing-error.
var ErrFrameTooLarge = errors.New("amqp: frame larger than max-frame-size")

// Frame is one AMQP or SASL frame. A frame with a nil Body is an empty (heartbeat) frame.
// Payload is the message data that follows a transfer performative.
type Frame struct {
	Type    uint8
	Channel uint16
	Body    Performative
	Payload []byte
}

// Performative is the body of a frame: the AMQP performatives and the SASL frames.
type Performative interface {
	composite
	performative()
}

// ReadFrame reads one frame from r. Frames larger than maxSize are refused with
// ErrFrameTooLarge before their body is read.
func ReadFrame(r io.Reader, maxSize uint32) (Frame, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	size, err := checkHeader(hdr[:], maxSize)
	if err != nil {
		return Frame{}, err
	}
	buf := make([]byte, size)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[HeaderSize:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return parseFrame(buf, -1)
}

// ParseFrame parses the frame at the start of b and returns it with its size.
func ParseFrame(b []byte, maxSize uint32) (Frame, int, error) {
	if len(b) < HeaderSize {
		return Frame{}, 0, malformed("frame header needs %d bytes, have %d", HeaderSize, len(b))
	}
	size, err := checkHeader(b, maxSize)
	if err != nil {
		return Frame{}, 0, err
	}
	if len(b) < size {
		return Frame{}, 0, malformed("frame of %d bytes, have %d", size, len(b))
	}
	f, err := parseFrame(b[:size], -1)
	return f, size, err
}

func checkHeader(hdr []byte, maxSize uint32) (int, error) {
	size := binary.BigEndian.Uint32(hdr[0:4])
	doff := uint32(hdr[4])
	switch {
	case size < HeaderSize:
		return 0, malformed("frame size %d below the %d-byte header", size, HeaderSize)
	case size > maxSize:
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, maxSize)
	case doff < 2:
		return 0, malformed("frame data offset %d below 2", doff)
	case doff*4 > size:
		return 0, malformed("frame data offset %d beyond frame size %d", doff*4, size)
	case hdr[5] != TypeAMQP && hdr[5] != TypeSASL:
		return 0, malformed("unknown frame type %#02x", hdr[5])
	}
	return int(size), nil
}

// parseFrame parses a complete frame whose header checkHeader accepted. zeroWidth is the
// allowance of zero-width array elements (see decoder.zeroLeft); -1 means the size of the
// frame's body.
func parseFrame(b []byte, zeroWidth int) (Frame, error) {
	f := Frame{Type: b[5], Channel: binary.BigEndian.Uint16(b[6:8])}
	body := b[int(b[4])*4:]
	if len(body) == 0 {
		return f, nil
	}
	if zeroWidth < 0 {
		zeroWidth = len(body)
	}
	v, n, err := decodeValue(body, zeroWidth)
	if err != nil {
		return f, err
	}
	p, err := performativeFrom(v, f.Type)
	if err != nil {
		return f, err
	}
	f.Body = p
	if rest := body[n:]; len(rest) > 0 {
		if _, ok := p.(*Transfer); !ok {
			return f, malformed("%d bytes after a %s performative", len(rest), Name(p))
		}
		f.Payload = rest
	}
	return f, nil
}

// AppendFrame appends the encoding of f to b.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 2, f.Type)
	b = binary.BigEndian.AppendUint16(b, f.Channel)
	if f.Body != nil {
		var err error
		if b, err = AppendValue(b, f.Body); err != nil {
			return b[:start], err
		}
		b = append(b, f.Payload...)
	}
	size := len(b) - start
	if uint64(size) > math.MaxUint32 {
		return b[:start], errors.New("amqp: frame larger than 4 GiB")
	}
	binary.BigEndian.PutUint32(b[start:], uint32(size))
	return b, nil
}

// Name is the specification name of a performative, for logs and errors.
func Name(p Performative) string {
	switch p.(type) {
	case *Open:
		return "open"
	case *Begin:
		return "begin"
	case *Attach:
		return "attach"
	case *Flow:
		return "flow"
	case *Transfer:
		return "transfer"
	case *Disposition:
		return "disposition"
	case *Detach:
		return "detach"
	case *End:
		return "end"
	case *Close:
		return "close"
	case *SASLMechanisms:
		return "sasl-mechanisms"
	case *SASLInit:
		return "sasl-init"
	case *SASLChallenge:
		return "sasl-challenge"
	case *SASLResponse:
		return "sasl-response"
	case *SASLOutcome:
		return "sasl-outcome"
	}
	return fmt.Sprintf("%T", p)
}

// Descriptor codes (the low word of the spec's 0x00000000:0x000000NN descriptors).
const (
	descOpen           = 0x10
	descBegin          = 0x11
	descAttach         = 0x12
	descFlow           = 0x13
	descTransfer       = 0x14
	descDisposition    = 0x15
	descDetach         = 0x16
	descEnd            = 0x17
	descClose          = 0x18
	descError          = 0x1d
	descReceived       = 0x23
	descAccepted       = 0x24
	descRejected       = 0x25
	descReleased       = 0x26
	descModified       = 0x27
	descSource         = 0x28
	descTarget         = 0x29
	descSASLMechanisms = 0x40
	descSASLInit       = 0x41
	descSASLChallenge  = 0x42
	descSASLResponse   = 0x43
	descSASLOutcome    = 0x44
)

// symbolicDescriptors maps the symbolic form of descriptors to their codes.
var symbolicDescriptors = map[Symbol]uint64{
	"amqp:open:list": descOpen, "amqp:begin:list": descBegin, "amqp:attach:list": descAttach,
	"amqp:flow:list": descFlow, "amqp:transfer:list": descTransfer,
	"amqp:disposition:list": descDisposition, "amqp:detach:list": descDetach,
	"amqp:end:list": descEnd, "amqp:close:list": descClose, "amqp:error:list": descError,
	"amqp:received:list": descReceived, "amqp:accepted:list": descAccepted,
	"amqp:rejected:list": descRejected, "amqp:released:list": descReleased,
	"amqp:modified:list": descModified, "amqp:source:list": descSource,
	"amqp:target:list": descTarget, "amqp:sasl-mechanisms:list": descSASLMechanisms,
	"amqp:sasl-init:list": descSASLInit, "amqp:sasl-challenge:list": descSASLChallenge,
	"amqp:sasl-response:list": descSASLResponse, "amqp:sasl-outcome:list": descSASLOutcome,
}

// DescriptorCode returns the numeric code of a descriptor given as a ulong or as one of
// the symbolic names of the specification.
func DescriptorCode(desc any) (uint64, bool) {
	switch d := desc.(type) {
	case uint64:
		return d, true
	case Symbol:
		c, ok := symbolicDescriptors[d]
		return c, ok
	}
	return 0, false
}

// describedList checks that v is a described list and returns its code and fields.
func describedList(v any) (uint64, []any, error) {
	d, ok := v.(Described)
	if !ok {
		return 0, nil, malformed("expected a described list, got %s", typeName(v))
	}
	code, ok := DescriptorCode(d.Descriptor)
	if !ok {
		return 0, nil, malformed("unknown descriptor %v", d.Descriptor)
	}
	l, ok := d.Value.([]any)
	if !ok {
		return 0, nil, malformed("descriptor %#x describes a %s, not a list", code, typeName(d.Value))
	}
	return code, l, nil
}

func performativeFrom(v any, frameType uint8) (Performative, error) {
	code, l, err := describedList(v)
	if err != nil {
		return nil, err
	}
	var p Performative
	switch code {
	case descOpen:
		p = new(Open)
	case descBegin:
		p = new(Begin)
	case descAttach:
		p = new(Attach)
	case descFlow:
		p = new(Flow)
	case descTransfer:
		p = new(Transfer)
	case descDisposition:
		p = new(Disposition)
	case descDetach:
		p = new(Detach)
	case descEnd:
		p = new(End)
	case descClose:
		p = new(Close)
	case descSASLMechanisms:
		p = new(SASLMechanisms)
	case descSASLInit:
		p = new(SASLInit)
	case descSASLChallenge:
		p = new(SASLChallenge)
	case descSASLResponse:
		p = new(SASLResponse)
	case descSASLOutcome:
		p = new(SASLOutcome)
	default:
		return nil, malformed("descriptor %#x is not a performative", code)
	}
	_, isSASL := p.(interface{ sasl() })
	if isSASL != (frameType == TypeSASL) {
		return nil, malformed("%s performative in a frame of type %d", Name(p), frameType)
	}
	_, fs := p.list()
	if err := decodeFields(fs, Name(p), l); err != nil {
		return nil, err
	}
	return p, nil
}

func typeName(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
