package devbus

import (
	"encoding/binary"
	"sort"

	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
)

// session is one AMQP session of a connection: its transfer windows, links and the
// deliveries devbus sent that await the client's outcome.
type session struct {
	channel uint16 // the client's channel; devbus uses the same number for its side

	nextIncomingID uint32
	incomingWindow uint32 // what is left of the window devbus granted
	nextOutgoingID uint32
	remoteIncoming uint32 // what is left of the window the client granted
	nextDeliveryID uint32

	links     map[uint32]*link // by handle (devbus uses the client's handle numbers too)
	unsettled map[uint32]*outDelivery
}

// outDelivery is a message devbus sent unsettled and awaits the client's outcome for.
type outDelivery struct {
	l     *link
	token amqpframe.UUID
}

func (c *conn) handleBegin(channel uint16, p *amqpframe.Begin) error {
	if p.RemoteChannel != nil {
		return protocolError(amqpframe.ErrNotAllowed, "begin answering a session devbus never began")
	}
	if channel > channelMax {
		return protocolError(amqpframe.ErrNotAllowed, "channel %d above channel-max %d", channel, channelMax)
	}
	if c.sessions[channel] != nil {
		return protocolError(amqpframe.ErrNotAllowed, "channel %d already has a session", channel)
	}
	s := &session{
		channel:        channel,
		nextIncomingID: p.NextOutgoingID,
		incomingWindow: sessionWindow,
		remoteIncoming: p.IncomingWindow,
		links:          map[uint32]*link{},
		unsettled:      map[uint32]*outDelivery{},
	}
	c.sessions[channel] = s
	rc := channel
	c.send(channel, &amqpframe.Begin{
		RemoteChannel:  &rc,
		NextOutgoingID: 0,
		IncomingWindow: sessionWindow,
		OutgoingWindow: sessionWindow,
		HandleMax:      handleMax,
	}, nil)
	return nil
}

// endSession forgets a session; the locks of its deliveries stay until they expire.
func (c *conn) endSession(s *session) {
	for _, l := range s.links {
		c.forgetLink(l)
	}
}

func (c *conn) forgetLink(l *link) {
	delete(l.s.links, l.handle)
	c.stopLink(l)
}

// stopLink ends what a link does: a consumer stops receiving and dispositions for its
// deliveries are no longer taken (the locks stay until they expire or are settled through
// the management link, as in Service Bus).
func (c *conn) stopLink(l *link) {
	l.detached = true
	if l.kind == linkReply && c.replyLinks[l.address] == l {
		delete(c.replyLinks, l.address)
	}
	if l.kind == linkConsumer {
		l.q.forgetWaiter(c.wake)
		for id, d := range l.s.unsettled {
			if d.l == l {
				delete(l.s.unsettled, id)
			}
		}
	}
}

// sessionFlow fills in the session fields every flow carries.
func (c *conn) flow(s *session, f *amqpframe.Flow) {
	nid := s.nextIncomingID
	f.NextIncomingID = &nid
	f.IncomingWindow = s.incomingWindow
	f.NextOutgoingID = s.nextOutgoingID
	f.OutgoingWindow = sessionWindow
	c.send(s.channel, f, nil)
}

func (c *conn) linkFlow(l *link) {
	h := l.handle
	f := &amqpframe.Flow{Handle: &h}
	switch l.kind {
	case linkConsumer, linkReply:
		dc, credit := l.sndDC, l.sndCredit
		f.DeliveryCount, f.LinkCredit, f.Drain = &dc, &credit, l.drain
	default:
		dc, credit := l.rcvDC, l.credit
		f.DeliveryCount, f.LinkCredit = &dc, &credit
	}
	c.flow(l.s, f)
}

func (c *conn) handleFlow(s *session, p *amqpframe.Flow) error {
	next := uint32(0)
	if p.NextIncomingID != nil {
		next = *p.NextIncomingID
	}
	s.remoteIncoming = next + p.IncomingWindow - s.nextOutgoingID
	c.needPump = true
	if p.Handle == nil {
		if p.Echo {
			c.flow(s, &amqpframe.Flow{})
		}
		return nil
	}
	l := s.links[*p.Handle]
	if l == nil {
		return protocolError(amqpframe.ErrUnattachedHandle, "flow for handle %d, which is not attached", *p.Handle)
	}
	switch l.kind {
	case linkConsumer, linkReply:
		// The client is the receiver: its delivery-count plus its credit is the last
		// delivery it will take.
		dc := l.sndDC
		if p.DeliveryCount != nil {
			dc = *p.DeliveryCount
		}
		credit := uint32(0)
		if p.LinkCredit != nil {
			credit = *p.LinkCredit
		}
		l.sndCredit = dc + credit - l.sndDC
		if int32(l.sndCredit) < 0 {
			l.sndCredit = 0
		}
		l.drain = p.Drain
		c.pumpLink(l)
		if p.Echo && !l.drain {
			c.linkFlow(l)
		}
	default:
		if p.DeliveryCount != nil {
			l.rcvDC = *p.DeliveryCount
		}
		if p.Echo {
			c.linkFlow(l)
		}
	}
	return nil
}

// pump sends what the consumer and reply links have credit for.
func (c *conn) pump() {
	channels := make([]int, 0, len(c.sessions))
	for ch := range c.sessions {
		channels = append(channels, int(ch))
	}
	sort.Ints(channels)
	for _, ch := range channels {
		s := c.sessions[uint16(ch)]
		handles := make([]int, 0, len(s.links))
		for h, l := range s.links {
			if l.kind == linkConsumer || l.kind == linkReply {
				handles = append(handles, int(h))
			}
		}
		sort.Ints(handles)
		for _, h := range handles {
			if l := s.links[uint32(h)]; l != nil {
				c.pumpLink(l)
			}
		}
	}
}

func (c *conn) pumpLink(l *link) {
	s := l.s
	for l.sndCredit > 0 && s.remoteIncoming > 0 && !l.detached {
		if l.kind == linkReply {
			if len(l.replies) == 0 {
				break
			}
			payload := l.replies[0]
			l.replies = l.replies[1:]
			c.sendDelivery(l, payload, nil, nextTag(s))
			continue
		}
		d, ok := l.q.next(l.dead, !l.settled, c.wake)
		if !ok {
			break
		}
		if l.settled {
			c.sendDelivery(l, d.payload, nil, seqTag(d.seq))
		} else {
			c.sendDelivery(l, d.payload, &outDelivery{l: l, token: d.token}, dotNetTag(d.token))
		}
	}
	if l.drain && !l.detached {
		// Nothing more to send: use up what credit is left and answer the drain, even
		// when none is left (go-amqp drains by sending zero credit with drain set).
		l.sndDC += l.sndCredit
		l.sndCredit = 0
		c.linkFlow(l)
		l.drain = false
	}
}

func nextTag(s *session) []byte {
	return binary.BigEndian.AppendUint32(nil, s.nextDeliveryID)
}

func seqTag(seq int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(seq))
}

// sendDelivery sends a message on a link, split into as many transfer frames as the
// client's max-frame-size needs. A delivery that needs more frames than the client's
// session window has left may overrun it by the remainder; clients grant thousands.
func (c *conn) sendDelivery(l *link, payload []byte, unsettled *outDelivery, tag []byte) {
	s := l.s
	id := s.nextDeliveryID
	s.nextDeliveryID++
	format := uint32(0)
	chunk := int(c.peerMaxFrame) - 256 // room for the frame header and the transfer performative
	first := true
	for first || len(payload) > 0 {
		n := min(chunk, len(payload))
		t := &amqpframe.Transfer{Handle: l.handle, More: n < len(payload)}
		if first {
			t.DeliveryID, t.DeliveryTag, t.MessageFormat = &id, tag, &format
			t.Settled = unsettled == nil
		}
		c.send(s.channel, t, payload[:n])
		payload = payload[n:]
		first = false
		s.nextOutgoingID++
		if s.remoteIncoming > 0 {
			s.remoteIncoming--
		}
	}
	l.sndDC++
	l.sndCredit--
	if unsettled != nil {
		s.unsettled[id] = unsettled
	}
}

func (c *conn) handleDetach(s *session, p *amqpframe.Detach) error {
	l := s.links[p.Handle]
	if l == nil {
		return protocolError(amqpframe.ErrUnattachedHandle, "detach of handle %d, which is not attached", p.Handle)
	}
	wasDetached := l.detached
	c.forgetLink(l)
	if !wasDetached {
		c.send(s.channel, &amqpframe.Detach{Handle: l.handle, Closed: p.Closed}, nil)
	}
	return nil
}

// detachLink detaches a link from devbus's side; the client answers with its own detach,
// which handleDetach takes without answering again.
func (c *conn) detachLink(l *link, e *amqpframe.Error) {
	c.stopLink(l)
	c.send(l.s.channel, &amqpframe.Detach{Handle: l.handle, Closed: true, Error: e}, nil)
}
