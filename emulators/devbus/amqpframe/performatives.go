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

func (o *Open) list() (uint64, []field) {
	return descOpen, []field{
		mandatory("container-id", &o.ContainerID),
		optional("hostname", &o.Hostname),
		withDefault("max-frame-size", &o.MaxFrameSize, math.MaxUint32),
		withDefault("channel-max", &o.ChannelMax, math.MaxUint16),
		optional("idle-time-out", &o.IdleTimeout),
		optional("outgoing-locales", &o.OutgoingLocales),
		optional("incoming-locales", &o.IncomingLocales),
		optional("offered-capabilities", &o.OfferedCapabilities),
		optional("desired-capabilities", &o.DesiredCapabilities),
		optional("properties", &o.Properties),
	}
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

func (b *Begin) list() (uint64, []field) {
	return descBegin, []field{
		optional("remote-channel", &b.RemoteChannel),
		mandatory("next-outgoing-id", &b.NextOutgoingID),
		mandatory("incoming-window", &b.IncomingWindow),
		mandatory("outgoing-window", &b.OutgoingWindow),
		withDefault("handle-max", &b.HandleMax, math.MaxUint32),
		optional("offered-capabilities", &b.OfferedCapabilities),
		optional("desired-capabilities", &b.DesiredCapabilities),
		optional("properties", &b.Properties),
	}
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

func (a *Attach) list() (uint64, []field) {
	return descAttach, []field{
		mandatory("name", &a.Name),
		mandatory("handle", &a.Handle),
		mandatory("role", &a.Role),
		optional("snd-settle-mode", &a.SndSettleMode),
		optional("rcv-settle-mode", &a.RcvSettleMode),
		optional("source", &a.Source),
		optional("target", &a.Target),
		optional("unsettled", &a.Unsettled),
		optional("incomplete-unsettled", &a.IncompleteUnsettled),
		optional("initial-delivery-count", &a.InitialDeliveryCount),
		optional("max-message-size", &a.MaxMessageSize),
		optional("offered-capabilities", &a.OfferedCapabilities),
		optional("desired-capabilities", &a.DesiredCapabilities),
		optional("properties", &a.Properties),
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

func (s *Source) list() (uint64, []field) {
	head := terminus(&s.Address, &s.Durable, &s.ExpiryPolicy, &s.Timeout, &s.Dynamic,
		&s.DynamicNodeProperties)
	return descSource, append(head,
		optional("distribution-mode", &s.DistributionMode),
		optional("filter", &s.Filter),
		optional("default-outcome", &s.DefaultOutcome),
		optional("outcomes", &s.Outcomes),
		optional("capabilities", &s.Capabilities))
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

func (t *Target) list() (uint64, []field) {
	head := terminus(&t.Address, &t.Durable, &t.ExpiryPolicy, &t.Timeout, &t.Dynamic,
		&t.DynamicNodeProperties)
	return descTarget, append(head, optional("capabilities", &t.Capabilities))
}

// terminus lists the fields a source and a target both begin with.
func terminus(address *string, durable *uint32, expiry *Symbol, timeout *uint32, dynamic *bool,
	props *Map) []field {
	return []field{
		optional("address", address),
		optional("durable", durable),
		optional("expiry-policy", expiry),
		optional("timeout", timeout),
		optional("dynamic", dynamic),
		optional("dynamic-node-properties", props),
	}
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

func (f *Flow) list() (uint64, []field) {
	return descFlow, []field{
		optional("next-incoming-id", &f.NextIncomingID),
		mandatory("incoming-window", &f.IncomingWindow),
		mandatory("next-outgoing-id", &f.NextOutgoingID),
		mandatory("outgoing-window", &f.OutgoingWindow),
		optional("handle", &f.Handle),
		optional("delivery-count", &f.DeliveryCount),
		optional("link-credit", &f.LinkCredit),
		optional("available", &f.Available),
		optional("drain", &f.Drain),
		optional("echo", &f.Echo),
		optional("properties", &f.Properties),
	}
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

func (t *Transfer) list() (uint64, []field) {
	return descTransfer, []field{
		mandatory("handle", &t.Handle),
		optional("delivery-id", &t.DeliveryID),
		{name: "delivery-tag", ptr: &t.DeliveryTag, limit: 32},
		optional("message-format", &t.MessageFormat),
		optional("settled", &t.Settled),
		optional("more", &t.More),
		optional("rcv-settle-mode", &t.RcvSettleMode),
		optional("state", &t.State),
		optional("resume", &t.Resume),
		optional("aborted", &t.Aborted),
		optional("batchable", &t.Batchable),
	}
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

func (d *Disposition) list() (uint64, []field) {
	return descDisposition, []field{
		mandatory("role", &d.Role),
		mandatory("first", &d.First),
		optional("last", &d.Last),
		optional("settled", &d.Settled),
		optional("state", &d.State),
		optional("batchable", &d.Batchable),
	}
}

// Detach detaches a link, closing it when Closed is set (§2.7.7).
type Detach struct {
	Handle uint32
	Closed bool
	Error  *Error
}

func (*Detach) performative() {}

func (d *Detach) list() (uint64, []field) {
	return descDetach, []field{
		mandatory("handle", &d.Handle),
		optional("closed", &d.Closed),
		optional("error", &d.Error),
	}
}

// End ends a session (§2.7.8).
type End struct{ Error *Error }

func (*End) performative() {}

func (e *End) list() (uint64, []field) {
	return descEnd, []field{optional("error", &e.Error)}
}

// Close closes the connection (§2.7.9).
type Close struct{ Error *Error }

func (*Close) performative() {}

func (c *Close) list() (uint64, []field) {
	return descClose, []field{optional("error", &c.Error)}
}

// Error is an AMQP error: a condition symbol, a description and optional info (§2.8.14).
type Error struct {
	Condition   Symbol
	Description string
	Info        Map
}

func (e *Error) list() (uint64, []field) {
	return descError, []field{
		mandatory("condition", &e.Condition),
		optional("description", &e.Description),
		optional("info", &e.Info),
	}
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

func (s *Received) list() (uint64, []field) {
	return descReceived, []field{
		mandatory("section-number", &s.SectionNumber),
		mandatory("section-offset", &s.SectionOffset),
	}
}

func (*Accepted) list() (uint64, []field) { return descAccepted, nil }

func (s *Rejected) list() (uint64, []field) {
	return descRejected, []field{optional("error", &s.Error)}
}

func (*Released) list() (uint64, []field) { return descReleased, nil }

func (s *Modified) list() (uint64, []field) {
	return descModified, []field{
		optional("delivery-failed", &s.DeliveryFailed),
		optional("undeliverable-here", &s.UndeliverableHere),
		optional("message-annotations", &s.MessageAnnotations),
	}
}

// DeliveryStateFrom converts a decoded described value into a delivery state.
func DeliveryStateFrom(v any) (DeliveryState, error) {
	code, l, err := describedList(v)
	if err != nil {
		return nil, err
	}
	var s DeliveryState
	var name string
	switch code {
	case descReceived:
		s, name = new(Received), "received"
	case descAccepted:
		s, name = new(Accepted), "accepted"
	case descRejected:
		s, name = new(Rejected), "rejected"
	case descReleased:
		s, name = new(Released), "released"
	case descModified:
		s, name = new(Modified), "modified"
	default:
		return nil, malformed("descriptor %#x is not a delivery state", code)
	}
	_, fs := s.list()
	return s, decodeFields(fs, name, l)
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

func (s *SASLMechanisms) list() (uint64, []field) {
	return descSASLMechanisms, []field{mandatory("sasl-server-mechanisms", &s.Mechanisms)}
}

func (s *SASLInit) list() (uint64, []field) {
	return descSASLInit, []field{
		mandatory("mechanism", &s.Mechanism),
		optional("initial-response", &s.InitialResponse),
		optional("hostname", &s.Hostname),
	}
}

func (s *SASLChallenge) list() (uint64, []field) {
	return descSASLChallenge, []field{mandatory("challenge", &s.Challenge)}
}

func (s *SASLResponse) list() (uint64, []field) {
	return descSASLResponse, []field{mandatory("response", &s.Response)}
}

func (s *SASLOutcome) list() (uint64, []field) {
	return descSASLOutcome, []field{
		mandatory("code", &s.Code),
		{name: "additional-data", ptr: &s.AdditionalData, omitEmpty: true},
	}
}
