package devbus

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
)

const (
	addrCBS        = "$cbs"
	suffixDLQ      = "$deadletterqueue"
	suffixMgmt     = "$management"
	condLockLost   = amqpframe.Symbol("com.microsoft:message-lock-lost")
	condDeadLetter = amqpframe.Symbol("com.microsoft:dead-letter")

	condMessageNotFound = amqpframe.Symbol("com.microsoft:message-not-found")
	condArgumentError   = amqpframe.Symbol("com.microsoft:argument-error")
)

// linkKind is what a link does, decided from its role and address at attach.
type linkKind uint8

const (
	linkProducer linkKind = iota // client sends messages to a queue
	linkConsumer                 // client receives from a queue or its dead-letter queue
	linkCBS                      // client sends put-token requests
	linkMgmt                     // client sends management requests
	linkReply                    // devbus sends replies to $cbs or management requests
)

// link is one attached link.
type link struct {
	s       *session
	name    string
	handle  uint32
	kind    linkKind
	attach  *amqpframe.Attach // the client's attach, echoed back
	q       *queue
	dead    bool
	address string // queue address, or the reply-to address of a reply link

	// Devbus receiving (producer, $cbs, management): the client's delivery count and
	// the credit devbus granted.
	credit  uint32
	rcvDC   uint32
	partial *partialTransfer

	// Devbus sending (consumer, reply).
	sndDC     uint32
	sndCredit uint32
	drain     bool
	settled   bool // deliveries go pre-settled (receive-and-delete, replies)
	replies   [][]byte
	detached  bool
}

type partialTransfer struct {
	deliveryID uint32
	format     uint32
	settled    bool
	buf        bytes.Buffer
}

// linkRejected marks the placeholder of an attach devbus refused; the client's closing
// detach is accepted on it.
const linkRejected linkKind = 255

var accepted = &amqpframe.Accepted{}

// entity is what a link address names.
type entity struct {
	queue string
	dead  bool // the queue's dead-letter queue
	mgmt  bool // the management node of the queue (or of its dead-letter queue)
}

// parseAddress resolves a link address. Addresses may be bare entity paths or URLs whose
// path is one ("amqp://host:port/queue").
func parseAddress(addr string) (entity, error) {
	path := addr
	if i := strings.Index(path, "://"); i >= 0 {
		path = path[i+3:]
		if j := strings.IndexByte(path, '/'); j >= 0 {
			path = path[j+1:]
		} else {
			path = ""
		}
	}
	path = strings.Trim(path, "/")
	parts := strings.Split(path, "/")
	var e entity
	if n := len(parts); n > 1 && strings.EqualFold(parts[n-1], suffixMgmt) {
		e.mgmt = true
		parts = parts[:n-1]
	}
	if n := len(parts); n > 1 && strings.EqualFold(parts[n-1], suffixDLQ) {
		e.dead = true
		parts = parts[:n-1]
	}
	switch {
	case path == "":
		return e, errors.New("the link has no address")
	case len(parts) >= 2 && strings.EqualFold(parts[1], "subscriptions"):
		return e, fmt.Errorf("%q is a topic subscription; devbus has queues only", addr)
	case len(parts) != 1:
		return e, fmt.Errorf("%q does not name a queue (devbus has no topics, subscriptions or transfer queues)", addr)
	}
	e.queue = parts[0]
	return e, nil
}

func (c *conn) handleAttach(s *session, p *amqpframe.Attach) error {
	if p.Handle > handleMax {
		return protocolError(amqpframe.ErrNotAllowed, "handle %d above handle-max %d", p.Handle, handleMax)
	}
	if s.links[p.Handle] != nil {
		return protocolError(amqpframe.ErrHandleInUse, "handle %d is already attached", p.Handle)
	}
	l := &link{s: s, name: p.Name, handle: p.Handle, attach: p}
	if err := c.resolveLink(l, p); err != nil {
		c.rejectAttach(s, p, err)
		return nil
	}
	s.links[p.Handle] = l

	resp := &amqpframe.Attach{
		Name: p.Name, Handle: p.Handle, Role: !p.Role,
		SndSettleMode: p.SndSettleMode, RcvSettleMode: p.RcvSettleMode,
		Source: p.Source, Target: p.Target,
	}
	if p.Role == amqpframe.RoleReceiver {
		idc := uint32(0)
		resp.InitialDeliveryCount = &idc
	} else {
		resp.MaxMessageSize = MaxMessageSize
	}
	c.send(s.channel, resp, nil)

	switch l.kind {
	case linkProducer, linkCBS, linkMgmt:
		if p.InitialDeliveryCount != nil {
			l.rcvDC = *p.InitialDeliveryCount
		}
		l.credit = producerCredit
		c.linkFlow(l)
	case linkReply:
		if old := c.replyLinks[l.address]; old != nil && !old.detached {
			c.log.Warn("devbus: two reply links share an address; the newer wins", "address", l.address)
		}
		c.replyLinks[l.address] = l
		if pending := c.pendingReplies[l.address]; len(pending) > 0 {
			l.replies = append(l.replies, pending...)
			delete(c.pendingReplies, l.address)
		}
	}
	return nil
}

// resolveLink decides what a link is from its role and address.
func (c *conn) resolveLink(l *link, p *amqpframe.Attach) error {
	if p.Role == amqpframe.RoleSender { // the client sends
		if p.Target == nil || p.Target.Address == "" {
			return notFound("a sending link needs a target address")
		}
		l.address = p.Target.Address
		if p.Target.Address == addrCBS {
			l.kind = linkCBS
			return nil
		}
		e, err := parseAddress(p.Target.Address)
		if err != nil {
			return notFound("%v", err)
		}
		if l.q, err = c.b.queue(e.queue); err != nil {
			return notFound("%v", err)
		}
		l.dead = e.dead
		switch {
		case e.mgmt:
			l.kind = linkMgmt
		case e.dead:
			return &amqpframe.Error{Condition: amqpframe.ErrNotAllowed,
				Description: fmt.Sprintf("devbus: messages cannot be sent to the dead-letter queue %q", p.Target.Address)}
		default:
			l.kind = linkProducer
		}
		return nil
	}
	// The client receives.
	if p.Source == nil || p.Source.Address == "" {
		return notFound("a receiving link needs a source address")
	}
	if p.Source.Address == addrCBS {
		return c.resolveReply(l, p)
	}
	e, err := parseAddress(p.Source.Address)
	if err != nil {
		return notFound("%v", err)
	}
	if l.q, err = c.b.queue(e.queue); err != nil {
		return notFound("%v", err)
	}
	l.dead = e.dead
	if e.mgmt {
		return c.resolveReply(l, p)
	}
	for _, f := range p.Source.Filter {
		if k, _ := f.Key.(amqpframe.Symbol); strings.Contains(string(k), "session-filter") {
			return &amqpframe.Error{Condition: amqpframe.ErrNotAllowed,
				Description: "devbus does not support sessions (session receivers)"}
		}
	}
	l.kind = linkConsumer
	l.address = p.Source.Address
	l.settled = p.SndSettleMode != nil && *p.SndSettleMode == amqpframe.SenderSettleSettled
	return nil
}

// resolveReply makes l a link that receives replies from $cbs or a management node.
// Service Bus routes a reply to the link whose target address is the request's reply-to
// or, when the link has no target address, whose name is: the .NET and Go clients set
// the target, the JavaScript SDK (rhea) attaches its $cbs receiver with an empty target
// named after the reply-to of its token requests.
func (c *conn) resolveReply(l *link, p *amqpframe.Attach) error {
	l.kind = linkReply
	switch {
	case p.Target != nil && p.Target.Address != "":
		l.address = p.Target.Address
	case p.Name != "":
		l.address = p.Name
	default:
		return notFound("a link from %s needs a target address or a name to receive replies at", p.Source.Address)
	}
	l.settled = p.SndSettleMode == nil || *p.SndSettleMode != amqpframe.SenderSettleUnsettled
	return nil
}

func notFound(format string, args ...any) error {
	return &amqpframe.Error{Condition: amqpframe.ErrNotFound, Description: "devbus: " + fmt.Sprintf(format, args...)}
}

// rejectAttach refuses a link the way the specification asks: an attach with no terminus
// for the refused side, then a closing detach carrying the error.
func (c *conn) rejectAttach(s *session, p *amqpframe.Attach, err error) {
	resp := &amqpframe.Attach{Name: p.Name, Handle: p.Handle, Role: !p.Role,
		SndSettleMode: p.SndSettleMode, RcvSettleMode: p.RcvSettleMode}
	if p.Role == amqpframe.RoleReceiver {
		resp.Target = p.Target
		idc := uint32(0)
		resp.InitialDeliveryCount = &idc
	} else {
		resp.Source = p.Source
	}
	c.send(s.channel, resp, nil)
	c.send(s.channel, &amqpframe.Detach{Handle: p.Handle, Closed: true, Error: amqpErrorFor(err)}, nil)
	s.links[p.Handle] = &link{s: s, name: p.Name, handle: p.Handle, kind: linkRejected, detached: true}
	c.log.Info("devbus: link refused", "address", linkAddress(p), "err", err)
}

func linkAddress(p *amqpframe.Attach) string {
	if p.Role == amqpframe.RoleSender && p.Target != nil {
		return p.Target.Address
	}
	if p.Source != nil {
		return p.Source.Address
	}
	return ""
}

func (c *conn) handleTransfer(s *session, p *amqpframe.Transfer, payload []byte) error {
	if s.incomingWindow == 0 {
		return protocolError(amqpframe.ErrWindowViolation, "transfer beyond the session window devbus granted")
	}
	s.nextIncomingID++
	s.incomingWindow--
	if s.incomingWindow <= sessionWindow/2 {
		s.incomingWindow = sessionWindow
		c.flow(s, &amqpframe.Flow{})
	}
	l := s.links[p.Handle]
	if l == nil {
		return protocolError(amqpframe.ErrUnattachedHandle, "transfer on handle %d, which is not attached", p.Handle)
	}
	if l.detached {
		return nil // in flight when devbus detached the link
	}
	if l.kind != linkProducer && l.kind != linkCBS && l.kind != linkMgmt {
		return protocolError(amqpframe.ErrNotAllowed, "transfer on link %q, where devbus is the sender", l.name)
	}
	if l.partial == nil {
		if p.DeliveryID == nil {
			return protocolError(amqpframe.ErrNotAllowed, "first transfer of a delivery without a delivery-id")
		}
		if l.credit == 0 {
			c.detachLink(l, &amqpframe.Error{Condition: amqpframe.ErrTransferLimitExceeded,
				Description: "transfer without link credit"})
			return nil
		}
		if !p.More && !p.Aborted {
			// The common case: a message in one frame needs no reassembly.
			return c.delivered(l, *p.DeliveryID, formatOf(p), p.Settled, payload)
		}
		l.partial = &partialTransfer{deliveryID: *p.DeliveryID, format: formatOf(p)}
	}
	pt := l.partial
	pt.settled = pt.settled || p.Settled
	if p.Aborted {
		l.partial = nil
		return nil
	}
	if pt.buf.Len()+len(payload) > MaxMessageSize+64<<10 {
		l.partial = nil
		c.detachLink(l, &amqpframe.Error{Condition: amqpframe.ErrMessageSizeExceeded,
			Description: fmt.Sprintf("message larger than the %d bytes devbus accepts", MaxMessageSize)})
		return nil
	}
	pt.buf.Write(payload)
	if p.More {
		return nil
	}
	l.partial = nil
	return c.delivered(l, pt.deliveryID, pt.format, pt.settled, pt.buf.Bytes())
}

func formatOf(p *amqpframe.Transfer) uint32 {
	if p.MessageFormat != nil {
		return *p.MessageFormat
	}
	return 0
}

// delivered handles a complete message from the client.
func (c *conn) delivered(l *link, id, format uint32, settled bool, data []byte) error {
	l.credit--
	l.rcvDC++
	if l.credit <= producerCredit/2 {
		l.credit = producerCredit
		c.linkFlow(l)
	}
	switch l.kind {
	case linkCBS, linkMgmt:
		c.handleRequest(l, id, settled, data)
		return nil
	}
	msgs, err := parseIncoming(format, data)
	if err != nil {
		c.settleIncoming(l, id, settled, &amqpframe.Rejected{Error: &amqpframe.Error{
			Condition: amqpframe.ErrDecode, Description: "devbus: " + err.Error()}})
		return nil
	}
	pt, err := l.q.enqueue(msgs)
	if err != nil {
		c.settleIncoming(l, id, settled, &amqpframe.Rejected{Error: amqpErrorFor(err)})
		return nil
	}
	if settled {
		return nil // the client does not wait for an outcome
	}
	c.afterSync = append(c.afterSync, afterSync{pt: pt, fn: func(err error) {
		if err != nil {
			c.log.Error("devbus: journal sync failed", "queue", l.q.name, "err", err)
			c.settleIncoming(l, id, false, &amqpframe.Rejected{Error: &amqpframe.Error{
				Condition: amqpframe.ErrInternal, Description: "devbus could not store the message"}})
			return
		}
		c.settleIncoming(l, id, false, accepted)
	}})
	return nil
}

// parseIncoming parses a transfer's message, or the messages of a batch.
func parseIncoming(format uint32, data []byte) ([]*message, error) {
	raws := [][]byte{data}
	if format == batchMessageFormat {
		var err error
		if raws, err = splitBatch(data); err != nil {
			return nil, fmt.Errorf("batch: %w", err)
		}
	}
	msgs := make([]*message, len(raws))
	for i, raw := range raws {
		m, err := parseMessage(raw)
		if err != nil {
			if len(raws) > 1 {
				return nil, fmt.Errorf("message %d of the batch: %w", i+1, err)
			}
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

// settleIncoming tells the client the outcome of one of its deliveries.
func (c *conn) settleIncoming(l *link, id uint32, clientSettled bool, state amqpframe.DeliveryState) {
	if clientSettled || c.sessions[l.s.channel] != l.s {
		return
	}
	// In receiver-settle-mode second the client settles after seeing the outcome.
	second := l.attach.RcvSettleMode != nil && *l.attach.RcvSettleMode == amqpframe.ReceiverSettleSecond
	c.send(l.s.channel, &amqpframe.Disposition{Role: amqpframe.RoleReceiver, First: id,
		Settled: !second, State: state}, nil)
}

func (c *conn) handleDisposition(s *session, p *amqpframe.Disposition) error {
	if p.Role == amqpframe.RoleSender {
		return nil // the client settling its own deliveries after devbus's outcome
	}
	last := p.First
	if p.Last != nil {
		last = *p.Last
	}
	if last < p.First {
		return protocolError(amqpframe.ErrInvalidField, "disposition range %d..%d is reversed", p.First, last)
	}
	var ids []uint32
	if uint64(last-p.First) < uint64(len(s.unsettled)) {
		for id := p.First; ; id++ {
			if s.unsettled[id] != nil {
				ids = append(ids, id)
			}
			if id == last {
				break
			}
		}
	} else {
		for id := range s.unsettled {
			if id >= p.First && id <= last {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
	}
	for _, id := range ids {
		d := s.unsettled[id]
		o, ok := outcomeOf(p.State)
		if !ok {
			continue // a non-terminal state: the delivery stays unsettled
		}
		delete(s.unsettled, id)
		reply := p.State
		if reply == nil {
			reply = &amqpframe.Released{}
		}
		if o.kind == outcomeDeadLetter {
			// A bare rejected: echoing the error makes go-amqp report it as a failure.
			reply = &amqpframe.Rejected{}
		}
		if err := d.l.q.settle(d.l.dead, d.token, o); err != nil {
			cond := amqpframe.ErrInternal
			if errors.Is(err, errLockLost) {
				cond = condLockLost
			}
			reply = &amqpframe.Rejected{Error: &amqpframe.Error{Condition: cond, Description: "devbus: " + err.Error()}}
		}
		if !p.Settled {
			c.send(s.channel, &amqpframe.Disposition{Role: amqpframe.RoleSender, First: id,
				Settled: true, State: reply}, nil)
		}
	}
	return nil
}

// outcomeOf maps a delivery state from a receiver to what it means for the message:
// accepted completes, rejected dead-letters, released returns it, modified abandons it
// (or defers it when undeliverable-here is set, as the Service Bus SDKs do).
func outcomeOf(st amqpframe.DeliveryState) (outcome, bool) {
	switch st := st.(type) {
	case nil, *amqpframe.Released:
		return outcome{kind: outcomeRelease}, true
	case *amqpframe.Accepted:
		return outcome{kind: outcomeComplete}, true
	case *amqpframe.Rejected:
		o := outcome{kind: outcomeDeadLetter}
		if st.Error != nil {
			o.reason, o.description = string(st.Error.Condition), st.Error.Description
			for _, e := range st.Error.Info {
				k := keyString(e.Key)
				switch k {
				case propDeadLetterReason:
					o.reason, _ = e.Value.(string)
				case propDeadLetterDescription:
					o.description, _ = e.Value.(string)
				case "":
				default:
					if o.props == nil {
						o.props = map[string]any{}
					}
					o.props[k] = e.Value
				}
			}
			if st.Error.Condition == condDeadLetter && o.reason == string(condDeadLetter) {
				o.reason = ""
			}
		}
		return o, true
	case *amqpframe.Modified:
		o := outcome{kind: outcomeAbandon}
		if st.UndeliverableHere {
			o.kind = outcomeDefer
		}
		for _, e := range st.MessageAnnotations {
			if k := keyString(e.Key); k != "" {
				if o.props == nil {
					o.props = map[string]any{}
				}
				o.props[k] = e.Value
			}
		}
		return o, true
	}
	return outcome{}, false
}

func keyString(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case amqpframe.Symbol:
		return string(k)
	}
	return ""
}
