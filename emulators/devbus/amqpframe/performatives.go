package amqpframe

import (
	"fmt"
	"math"
)

// Role of a link endpoint, as carried by attach and disposition.
type Role bool

// Link roles.
const (
	RoleSender   Role = false
	RoleReceiver Role = true
)

// Settlement modes.
const (
	SenderSettleUnsettled uint8 = 0
	SenderSettleSettled   uint8 = 1
	SenderSettleMixed     uint8 = 2

	ReceiverSettleFirst  uint8 = 0
	ReceiverSettleSecond uint8 = 1
)

// SASL outcome codes.
const (
	SASLCodeOK   uint8 = 0
	SASLCodeAuth uint8 = 1
	SASLCodeSys  uint8 = 2
)

// Open is the first performative of a connection (§2.7.1).
type Open struct {
	ContainerID         string
	Hostname            string
	MaxFrameSize        uint32 // default 4294967295
	ChannelMax          uint16 // default 65535
	IdleTimeout         uint32 // milliseconds, 0 = none
	OutgoingLocales     []Symbol
	IncomingLocales     []Symbol
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Map
}

func (*Open) performative() {}

func (o *Open) described() Described {
	var mfs, cm, idle any
	if o.MaxFrameSize != math.MaxUint32 {
		mfs = o.MaxFrameSize
	}
	if o.ChannelMax != math.MaxUint16 {
		cm = o.ChannelMax
	}
	if o.IdleTimeout != 0 {
		idle = o.IdleTimeout
	}
	return fields(descOpen, o.ContainerID, optString(o.Hostname), mfs, cm, idle,
		optSymbols(o.OutgoingLocales), optSymbols(o.IncomingLocales),
		optSymbols(o.OfferedCapabilities), optSymbols(o.DesiredCapabilities), optMap(o.Properties))
}

func (o *Open) decode(r *fieldReader) {
	r.require(0, "container-id")
	o.ContainerID = r.str(0, "container-id")
	o.Hostname = r.str(1, "hostname")
	o.MaxFrameSize = r.uint(2, "max-frame-size", math.MaxUint32)
	o.ChannelMax = r.ushort(3, "channel-max", math.MaxUint16)
	o.IdleTimeout = r.uint(4, "idle-time-out", 0)
	o.OutgoingLocales = r.symbols(5, "outgoing-locales")
	o.IncomingLocales = r.symbols(6, "incoming-locales")
	o.OfferedCapabilities = r.symbols(7, "offered-capabilities")
	o.DesiredCapabilities = r.symbols(8, "desired-capabilities")
	o.Properties = r.fieldsMap(9, "properties")
}

// Begin starts a session (§2.7.2).
type Begin struct {
	RemoteChannel       *uint16
	NextOutgoingID      uint32
	IncomingWindow      uint32
	OutgoingWindow      uint32
	HandleMax           uint32 // default 4294967295
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Map
}

func (*Begin) performative() {}

func (b *Begin) described() Described {
	var rc, hm any
	if b.RemoteChannel != nil {
		rc = *b.RemoteChannel
	}
	if b.HandleMax != math.MaxUint32 {
		hm = b.HandleMax
	}
	return fields(descBegin, rc, b.NextOutgoingID, b.IncomingWindow, b.OutgoingWindow, hm,
		optSymbols(b.OfferedCapabilities), optSymbols(b.DesiredCapabilities), optMap(b.Properties))
}

func (b *Begin) decode(r *fieldReader) {
	if r.at(0) != nil {
		rc := r.ushort(0, "remote-channel", 0)
		b.RemoteChannel = &rc
	}
	r.require(1, "next-outgoing-id")
	r.require(2, "incoming-window")
	r.require(3, "outgoing-window")
	b.NextOutgoingID = r.uint(1, "next-outgoing-id", 0)
	b.IncomingWindow = r.uint(2, "incoming-window", 0)
	b.OutgoingWindow = r.uint(3, "outgoing-window", 0)
	b.HandleMax = r.uint(4, "handle-max", math.MaxUint32)
	b.OfferedCapabilities = r.symbols(5, "offered-capabilities")
	b.DesiredCapabilities = r.symbols(6, "desired-capabilities")
	b.Properties = r.fieldsMap(7, "properties")
}

// Attach attaches a link to a session (§2.7.3).
type Attach struct {
	Name                 string
	Handle               uint32
	Role                 Role
	SndSettleMode        *uint8 // nil = default (mixed)
	RcvSettleMode        *uint8 // nil = default (first)
	Source               *Source
	Target               *Target
	Unsettled            Map
	IncompleteUnsettled  bool
	InitialDeliveryCount *uint32
	MaxMessageSize       uint64 // 0 = no limit
	OfferedCapabilities  []Symbol
	DesiredCapabilities  []Symbol
	Properties           Map
}

func (*Attach) performative() {}

func (a *Attach) described() Described {
	var mms any
	if a.MaxMessageSize != 0 {
		mms = a.MaxMessageSize
	}
	return fields(descAttach, a.Name, a.Handle, bool(a.Role), optU8(a.SndSettleMode),
		optU8(a.RcvSettleMode), optComposite(a.Source), optComposite(a.Target),
		optMap(a.Unsettled), optBool(a.IncompleteUnsettled), optU32(a.InitialDeliveryCount), mms,
		optSymbols(a.OfferedCapabilities), optSymbols(a.DesiredCapabilities), optMap(a.Properties))
}

func (a *Attach) decode(r *fieldReader) {
	r.require(0, "name")
	r.require(1, "handle")
	r.require(2, "role")
	a.Name = r.str(0, "name")
	a.Handle = r.uint(1, "handle", 0)
	a.Role = Role(r.boolean(2, "role"))
	a.SndSettleMode = r.ubyte(3, "snd-settle-mode")
	a.RcvSettleMode = r.ubyte(4, "rcv-settle-mode")
	if l := r.nested(5, "source", descSource); l != nil {
		a.Source = new(Source)
		sub := fieldReader{name: "source", l: l}
		a.Source.decode(&sub)
		r.adopt(sub.err)
	}
	if l := r.nested(6, "target", descTarget); l != nil {
		a.Target = new(Target)
		sub := fieldReader{name: "target", l: l}
		a.Target.decode(&sub)
		r.adopt(sub.err)
	}
	a.Unsettled = r.fieldsMap(7, "unsettled")
	a.IncompleteUnsettled = r.boolean(8, "incomplete-unsettled")
	a.InitialDeliveryCount = r.optUint(9, "initial-delivery-count")
	a.MaxMessageSize = r.ulong(10, "max-message-size")
	a.OfferedCapabilities = r.symbols(11, "offered-capabilities")
	a.DesiredCapabilities = r.symbols(12, "desired-capabilities")
	a.Properties = r.fieldsMap(13, "properties")
}

func (r *fieldReader) adopt(err error) {
	if err != nil && r.err == nil {
		r.err = err
	}
}

// Source is the source terminus of a link (§3.5.3).
type Source struct {
	Address               string
	Durable               uint32
	ExpiryPolicy          Symbol
	Timeout               uint32
	Dynamic               bool
	DynamicNodeProperties Map
	DistributionMode      Symbol
	Filter                Map
	DefaultOutcome        any
	Outcomes              []Symbol
	Capabilities          []Symbol
}

func (s *Source) described() Described {
	var durable, timeout any
	if s.Durable != 0 {
		durable = s.Durable
	}
	if s.Timeout != 0 {
		timeout = s.Timeout
	}
	return fields(descSource, optString(s.Address), durable, optSymbol(s.ExpiryPolicy), timeout,
		optBool(s.Dynamic), optMap(s.DynamicNodeProperties), optSymbol(s.DistributionMode),
		optMap(s.Filter), s.DefaultOutcome, optSymbols(s.Outcomes), optSymbols(s.Capabilities))
}

func (s *Source) decode(r *fieldReader) {
	s.Address = r.str(0, "address")
	s.Durable = r.uint(1, "durable", 0)
	s.ExpiryPolicy = r.symbol(2, "expiry-policy")
	s.Timeout = r.uint(3, "timeout", 0)
	s.Dynamic = r.boolean(4, "dynamic")
	s.DynamicNodeProperties = r.fieldsMap(5, "dynamic-node-properties")
	s.DistributionMode = r.symbol(6, "distribution-mode")
	s.Filter = r.fieldsMap(7, "filter")
	s.DefaultOutcome = r.at(8)
	s.Outcomes = r.symbols(9, "outcomes")
	s.Capabilities = r.symbols(10, "capabilities")
}

// Target is the target terminus of a link (§3.5.4).
type Target struct {
	Address               string
	Durable               uint32
	ExpiryPolicy          Symbol
	Timeout               uint32
	Dynamic               bool
	DynamicNodeProperties Map
	Capabilities          []Symbol
}

func (t *Target) described() Described {
	var durable, timeout any
	if t.Durable != 0 {
		durable = t.Durable
	}
	if t.Timeout != 0 {
		timeout = t.Timeout
	}
	return fields(descTarget, optString(t.Address), durable, optSymbol(t.ExpiryPolicy), timeout,
		optBool(t.Dynamic), optMap(t.DynamicNodeProperties), optSymbols(t.Capabilities))
}

func (t *Target) decode(r *fieldReader) {
	t.Address = r.str(0, "address")
	t.Durable = r.uint(1, "durable", 0)
	t.ExpiryPolicy = r.symbol(2, "expiry-policy")
	t.Timeout = r.uint(3, "timeout", 0)
	t.Dynamic = r.boolean(4, "dynamic")
	t.DynamicNodeProperties = r.fieldsMap(5, "dynamic-node-properties")
	t.Capabilities = r.symbols(6, "capabilities")
}

// Flow updates session windows and, with a handle, link credit (§2.7.4).
type Flow struct {
	NextIncomingID *uint32
	IncomingWindow uint32
	NextOutgoingID uint32
	OutgoingWindow uint32
	Handle         *uint32
	DeliveryCount  *uint32
	LinkCredit     *uint32
	Available      *uint32
	Drain          bool
	Echo           bool
	Properties     Map
}

func (*Flow) performative() {}

func (f *Flow) described() Described {
	return fields(descFlow, optU32(f.NextIncomingID), f.IncomingWindow, f.NextOutgoingID,
		f.OutgoingWindow, optU32(f.Handle), optU32(f.DeliveryCount), optU32(f.LinkCredit),
		optU32(f.Available), optBool(f.Drain), optBool(f.Echo), optMap(f.Properties))
}

func (f *Flow) decode(r *fieldReader) {
	r.require(1, "incoming-window")
	r.require(2, "next-outgoing-id")
	r.require(3, "outgoing-window")
	f.NextIncomingID = r.optUint(0, "next-incoming-id")
	f.IncomingWindow = r.uint(1, "incoming-window", 0)
	f.NextOutgoingID = r.uint(2, "next-outgoing-id", 0)
	f.OutgoingWindow = r.uint(3, "outgoing-window", 0)
	f.Handle = r.optUint(4, "handle")
	f.DeliveryCount = r.optUint(5, "delivery-count")
	f.LinkCredit = r.optUint(6, "link-credit")
	f.Available = r.optUint(7, "available")
	f.Drain = r.boolean(8, "drain")
	f.Echo = r.boolean(9, "echo")
	f.Properties = r.fieldsMap(10, "properties")
}

// Transfer carries (part of) a message; the message bytes are Frame.Payload (§2.7.5).
type Transfer struct {
	Handle        uint32
	DeliveryID    *uint32
	DeliveryTag   []byte
	MessageFormat *uint32
	Settled       bool
	More          bool
	RcvSettleMode *uint8
	State         DeliveryState
	Resume        bool
	Aborted       bool
	Batchable     bool
}

func (*Transfer) performative() {}

func (t *Transfer) described() Described {
	var tag, state any
	if t.DeliveryTag != nil {
		tag = t.DeliveryTag
	}
	if t.State != nil {
		state = t.State
	}
	return fields(descTransfer, t.Handle, optU32(t.DeliveryID), tag, optU32(t.MessageFormat),
		optBool(t.Settled), optBool(t.More), optU8(t.RcvSettleMode), state,
		optBool(t.Resume), optBool(t.Aborted), optBool(t.Batchable))
}

func (t *Transfer) decode(r *fieldReader) {
	r.require(0, "handle")
	t.Handle = r.uint(0, "handle", 0)
	t.DeliveryID = r.optUint(1, "delivery-id")
	t.DeliveryTag = r.binary(2, "delivery-tag")
	if len(t.DeliveryTag) > 32 {
		r.adopt(malformed("transfer.delivery-tag of %d bytes exceeds 32", len(t.DeliveryTag)))
	}
	t.MessageFormat = r.optUint(3, "message-format")
	t.Settled = r.boolean(4, "settled")
	t.More = r.boolean(5, "more")
	t.RcvSettleMode = r.ubyte(6, "rcv-settle-mode")
	t.State = r.state(7, "state")
	t.Resume = r.boolean(8, "resume")
	t.Aborted = r.boolean(9, "aborted")
	t.Batchable = r.boolean(10, "batchable")
}

// Disposition settles or updates the state of a range of deliveries (§2.7.6).
type Disposition struct {
	Role      Role
	First     uint32
	Last      *uint32
	Settled   bool
	State     DeliveryState
	Batchable bool
}

func (*Disposition) performative() {}

func (d *Disposition) described() Described {
	var state any
	if d.State != nil {
		state = d.State
	}
	return fields(descDisposition, bool(d.Role), d.First, optU32(d.Last), optBool(d.Settled),
		state, optBool(d.Batchable))
}

func (d *Disposition) decode(r *fieldReader) {
	r.require(0, "role")
	r.require(1, "first")
	d.Role = Role(r.boolean(0, "role"))
	d.First = r.uint(1, "first", 0)
	d.Last = r.optUint(2, "last")
	d.Settled = r.boolean(3, "settled")
	d.State = r.state(4, "state")
	d.Batchable = r.boolean(5, "batchable")
}

// Detach detaches a link, closing it when Closed is set (§2.7.7).
type Detach struct {
	Handle uint32
	Closed bool
	Error  *Error
}

func (*Detach) performative() {}

func (d *Detach) described() Described {
	return fields(descDetach, d.Handle, optBool(d.Closed), optComposite(d.Error))
}

func (d *Detach) decode(r *fieldReader) {
	r.require(0, "handle")
	d.Handle = r.uint(0, "handle", 0)
	d.Closed = r.boolean(1, "closed")
	d.Error = r.errorField(2, "error")
}

// End ends a session (§2.7.8).
type End struct{ Error *Error }

func (*End) performative() {}

func (e *End) described() Described { return fields(descEnd, optComposite(e.Error)) }

func (e *End) decode(r *fieldReader) { e.Error = r.errorField(0, "error") }

// Close closes the connection (§2.7.9).
type Close struct{ Error *Error }

func (*Close) performative() {}

func (c *Close) described() Described { return fields(descClose, optComposite(c.Error)) }

func (c *Close) decode(r *fieldReader) { c.Error = r.errorField(0, "error") }

// Error is an AMQP error: a condition symbol, a description and optional info (§2.8.14).
type Error struct {
	Condition   Symbol
	Description string
	Info        Map
}

func (e *Error) described() Described {
	return fields(descError, e.Condition, optString(e.Description), optMap(e.Info))
}

func (e *Error) decode(r *fieldReader) {
	r.require(0, "condition")
	e.Condition = r.symbol(0, "condition")
	e.Description = r.str(1, "description")
	e.Info = r.fieldsMap(2, "info")
}

// Error implements error.
func (e *Error) Error() string {
	if e.Description == "" {
		return string(e.Condition)
	}
	return fmt.Sprintf("%s: %s", e.Condition, e.Description)
}

// Error conditions used by the broker (§2.8.15-§2.8.18 and Service Bus's own).
const (
	ErrInternal              Symbol = "amqp:internal-error"
	ErrNotFound              Symbol = "amqp:not-found"
	ErrDecode                Symbol = "amqp:decode-error"
	ErrNotAllowed            Symbol = "amqp:not-allowed"
	ErrNotImplemented        Symbol = "amqp:not-implemented"
	ErrInvalidField          Symbol = "amqp:invalid-field"
	ErrResourceLimitExceeded Symbol = "amqp:resource-limit-exceeded"
	ErrConnectionForced      Symbol = "amqp:connection:forced"
	ErrFramingError          Symbol = "amqp:connection:framing-error"
	ErrUnattachedHandle      Symbol = "amqp:session:unattached-handle"
	ErrHandleInUse           Symbol = "amqp:session:handle-in-use"
	ErrWindowViolation       Symbol = "amqp:session:window-violation"
	ErrDetachForced          Symbol = "amqp:link:detach-forced"
	ErrTransferLimitExceeded Symbol = "amqp:link:transfer-limit-exceeded"
	ErrMessageSizeExceeded   Symbol = "amqp:link:message-size-exceeded"
)

// DeliveryState is one of Received, Accepted, Rejected, Released and Modified.
type DeliveryState interface {
	composite
	deliveryState()
}

// Received is the non-terminal "received" state (§3.4.1).
type Received struct {
	SectionNumber uint32
	SectionOffset uint64
}

// Accepted is the "accepted" outcome (§3.4.2).
type Accepted struct{}

// Rejected is the "rejected" outcome (§3.4.3).
type Rejected struct{ Error *Error }

// Released is the "released" outcome (§3.4.4).
type Released struct{}

// Modified is the "modified" outcome (§3.4.5).
type Modified struct {
	DeliveryFailed     bool
	UndeliverableHere  bool
	MessageAnnotations Map
}

func (*Received) deliveryState() {}
func (*Accepted) deliveryState() {}
func (*Rejected) deliveryState() {}
func (*Released) deliveryState() {}
func (*Modified) deliveryState() {}

func (s *Received) described() Described {
	return fields(descReceived, s.SectionNumber, s.SectionOffset)
}
func (*Accepted) described() Described   { return fields(descAccepted) }
func (s *Rejected) described() Described { return fields(descRejected, optComposite(s.Error)) }
func (*Released) described() Described   { return fields(descReleased) }
func (s *Modified) described() Described {
	return fields(descModified, optBool(s.DeliveryFailed), optBool(s.UndeliverableHere),
		optMap(s.MessageAnnotations))
}

// DeliveryStateFrom converts a decoded described value into a delivery state.
func DeliveryStateFrom(v any) (DeliveryState, error) {
	code, l, err := describedList(v)
	if err != nil {
		return nil, err
	}
	var r fieldReader
	var s DeliveryState
	switch code {
	case descReceived:
		r = fieldReader{name: "received", l: l}
		r.require(0, "section-number")
		r.require(1, "section-offset")
		s = &Received{SectionNumber: r.uint(0, "section-number", 0), SectionOffset: r.ulong(1, "section-offset")}
	case descAccepted:
		s = &Accepted{}
	case descRejected:
		r = fieldReader{name: "rejected", l: l}
		s = &Rejected{Error: r.errorField(0, "error")}
	case descReleased:
		s = &Released{}
	case descModified:
		r = fieldReader{name: "modified", l: l}
		s = &Modified{
			DeliveryFailed:     r.boolean(0, "delivery-failed"),
			UndeliverableHere:  r.boolean(1, "undeliverable-here"),
			MessageAnnotations: r.fieldsMap(2, "message-annotations"),
		}
	default:
		return nil, malformed("descriptor %#x is not a delivery state", code)
	}
	return s, r.err
}

// SASL frames (§5.3.3).

// SASLMechanisms advertises the server's mechanisms.
type SASLMechanisms struct{ Mechanisms []Symbol }

// SASLInit selects a mechanism.
type SASLInit struct {
	Mechanism       Symbol
	InitialResponse []byte
	Hostname        string
}

// SASLChallenge carries a server challenge.
type SASLChallenge struct{ Challenge []byte }

// SASLResponse answers a challenge.
type SASLResponse struct{ Response []byte }

// SASLOutcome ends the SASL exchange.
type SASLOutcome struct {
	Code           uint8
	AdditionalData []byte
}

func (*SASLMechanisms) performative() {}
func (*SASLInit) performative()       {}
func (*SASLChallenge) performative()  {}
func (*SASLResponse) performative()   {}
func (*SASLOutcome) performative()    {}
func (*SASLMechanisms) sasl()         {}
func (*SASLInit) sasl()               {}
func (*SASLChallenge) sasl()          {}
func (*SASLResponse) sasl()           {}
func (*SASLOutcome) sasl()            {}

func (s *SASLMechanisms) described() Described {
	return fields(descSASLMechanisms, s.Mechanisms)
}

func (s *SASLMechanisms) decode(r *fieldReader) {
	r.require(0, "sasl-server-mechanisms")
	s.Mechanisms = r.symbols(0, "sasl-server-mechanisms")
}

func (s *SASLInit) described() Described {
	var resp any
	if s.InitialResponse != nil {
		resp = s.InitialResponse
	}
	return fields(descSASLInit, s.Mechanism, resp, optString(s.Hostname))
}

func (s *SASLInit) decode(r *fieldReader) {
	r.require(0, "mechanism")
	s.Mechanism = r.symbol(0, "mechanism")
	s.InitialResponse = r.binary(1, "initial-response")
	s.Hostname = r.str(2, "hostname")
}

func (s *SASLChallenge) described() Described {
	return fields(descSASLChallenge, nonNilBytes(s.Challenge))
}

func (s *SASLChallenge) decode(r *fieldReader) {
	r.require(0, "challenge")
	s.Challenge = r.binary(0, "challenge")
}

func (s *SASLResponse) described() Described {
	return fields(descSASLResponse, nonNilBytes(s.Response))
}

func (s *SASLResponse) decode(r *fieldReader) {
	r.require(0, "response")
	s.Response = r.binary(0, "response")
}

func (s *SASLOutcome) described() Described {
	var data any
	if len(s.AdditionalData) > 0 {
		data = s.AdditionalData
	}
	return fields(descSASLOutcome, s.Code, data)
}

func (s *SASLOutcome) decode(r *fieldReader) {
	r.require(0, "code")
	if c := r.ubyte(0, "code"); c != nil {
		s.Code = *c
	}
	s.AdditionalData = r.binary(1, "additional-data")
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
