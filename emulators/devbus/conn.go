package devbus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
)

// Connection limits and timings.
const (
	maxFrameSize     = 65536            // what devbus accepts, and the most it sends
	channelMax       = 1023             // sessions per connection
	handleMax        = 255              // links per session
	sessionWindow    = 5000             // transfers in flight per session, each way
	producerCredit   = 1000             // link credit granted to senders
	idleTimeout      = 60 * time.Second // advertised; a silent peer is dropped after twice this
	handshakeTimeout = 30 * time.Second
	writeTimeout     = 30 * time.Second
	pendingReplyMax  = 64 // reply addresses (and replies per address) kept until their link attaches
)

var (
	protoSASL = []byte{'A', 'M', 'Q', 'P', 3, 1, 0, 0}
	protoAMQP = []byte{'A', 'M', 'Q', 'P', 0, 1, 0, 0}
)

// connError is a protocol error that closes the connection with an AMQP error.
type connError struct{ amqp *amqpframe.Error }

func (e *connError) Error() string { return e.amqp.Error() }

func protocolError(cond amqpframe.Symbol, format string, args ...any) error {
	return &connError{&amqpframe.Error{Condition: cond, Description: fmt.Sprintf(format, args...)}}
}

type frameResult struct {
	f   amqpframe.Frame
	err error
}

// conn is one client connection. A single goroutine (serve) owns all its state; a reader
// goroutine decodes frames, and queues wake it through the wake channel.
type conn struct {
	b   *Broker
	nc  net.Conn
	id  uint64
	log *slog.Logger

	br *bufio.Reader
	bw *bufio.Writer

	peerMaxFrame uint32
	peerIdle     time.Duration
	lastWrite    time.Time

	sessions map[uint16]*session
	frames   chan frameResult
	wake     chan struct{}
	cmds     chan func()
	done     chan struct{}

	closeMsg chan string // a close the broker asks for, with its description

	replyLinks     map[string]*link    // reply-to address -> broker-to-client link
	pendingReplies map[string][][]byte // replies for reply links not attached yet
	afterSync      []afterSync
	needPump       bool
	fatal          error       // set when devbus cannot go on with the connection
	scratch        []byte      // frame encoding buffer
	running        atomic.Bool // past the handshake: commands are served
}

type afterSync struct {
	pt syncPoint
	fn func(err error)
}

func newConn(b *Broker, nc net.Conn) *conn {
	id := b.nextConnID.Add(1)
	return &conn{
		b: b, nc: nc, id: id,
		log:            b.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		br:             bufio.NewReaderSize(nc, 64<<10),
		bw:             bufio.NewWriterSize(deadlineWriter{nc}, 64<<10),
		peerMaxFrame:   amqpframe.MinMaxFrameSize,
		sessions:       map[uint16]*session{},
		frames:         make(chan frameResult, 64),
		wake:           make(chan struct{}, 1),
		cmds:           make(chan func()),
		done:           make(chan struct{}),
		closeMsg:       make(chan string, 1),
		replyLinks:     map[string]*link{},
		pendingReplies: map[string][][]byte{},
	}
}

// shutdown asks the connection to close (with amqp:connection:forced) or, for abort, cuts
// the socket as a crash would.
func (c *conn) shutdown(description string, abort bool) {
	if abort {
		c.nc.Close()
		return
	}
	select {
	case c.closeMsg <- description:
	default:
	}
}

// do runs fn on the connection's goroutine and waits for it; false if the connection is
// gone or still in its handshake (and so has no links).
func (c *conn) do(fn func()) bool {
	if !c.running.Load() {
		return false
	}
	ran := make(chan struct{})
	select {
	case c.cmds <- func() { fn(); close(ran) }:
	case <-c.done:
		return false
	}
	select {
	case <-ran:
		return true
	case <-c.done:
		return false
	}
}

func (c *conn) detachReceivers(queueKey string) int {
	n := 0
	c.do(func() {
		for _, s := range c.sessions {
			for _, l := range s.links {
				if l.kind == linkConsumer && strings.ToLower(l.q.name) == queueKey && !l.detached {
					c.detachLink(l, &amqpframe.Error{Condition: amqpframe.ErrDetachForced,
						Description: "devbus detached the receiver (fault injection)"})
					n++
				}
			}
		}
		c.flush()
	})
	return n
}

func (c *conn) serve() {
	defer close(c.done)
	defer c.nc.Close()
	c.log.Debug("devbus: connection opened")
	if err := c.handshake(); err != nil {
		c.logEnd(err)
		return
	}
	go c.reader()
	c.running.Store(true)
	err := c.run()
	c.logEnd(err)
	for _, s := range c.sessions {
		c.endSession(s)
	}
}

func (c *conn) logEnd(err error) {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("devbus: connection closed")
	default:
		c.log.Warn("devbus: connection closed", "err", err)
	}
}

// handshake runs the protocol header exchange, SASL (ANONYMOUS or PLAIN, both accepted
// unchecked) and open.
func (c *conn) handshake() error {
	_ = c.nc.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.nc.SetDeadline(time.Time{})

	hdr, err := c.readProtoHeader()
	if err != nil {
		return err
	}
	if bytes.Equal(hdr, protoSASL) {
		if err := c.sasl(); err != nil {
			return err
		}
		if hdr, err = c.readProtoHeader(); err != nil {
			return err
		}
	}
	if !bytes.Equal(hdr, protoAMQP) {
		// Answer with what devbus speaks and hang up (§2.2).
		_, _ = c.nc.Write(protoSASL)
		return fmt.Errorf("unsupported protocol header %q", hdr)
	}
	if _, err := c.nc.Write(protoAMQP); err != nil {
		return err
	}
	// Until open has negotiated a larger size, no frame may exceed the protocol's minimum
	// max-frame-size (AMQP 1.0 §2.4.1); holding clients to it also bounds what an
	// unauthenticated peer can make devbus buffer.
	f, err := amqpframe.ReadFrame(c.br, amqpframe.MinMaxFrameSize)
	if err != nil {
		return c.failHandshake(err)
	}
	open, ok := f.Body.(*amqpframe.Open)
	if !ok || f.Type != amqpframe.TypeAMQP {
		return c.failHandshake(protocolError(amqpframe.ErrNotAllowed, "expected open, got %s", describe(f)))
	}
	c.peerMaxFrame = min(max(open.MaxFrameSize, amqpframe.MinMaxFrameSize), maxFrameSize)
	c.peerIdle = time.Duration(open.IdleTimeout) * time.Millisecond
	c.send(0, &amqpframe.Open{
		ContainerID:  "devbus",
		Hostname:     open.Hostname,
		MaxFrameSize: maxFrameSize,
		ChannelMax:   channelMax,
		IdleTimeout:  uint32(idleTimeout / time.Millisecond),
		Properties:   amqpframe.Map{{Key: amqpframe.Symbol("product"), Value: "devbus"}},
	}, nil)
	return c.flush()
}

// failHandshake answers a bad open with open+close, as the specification asks.
func (c *conn) failHandshake(err error) error {
	var ce *connError
	if !errors.As(err, &ce) {
		ce = &connError{amqpErrorFor(err)}
	}
	c.send(0, &amqpframe.Open{ContainerID: "devbus", MaxFrameSize: maxFrameSize}, nil)
	c.send(0, &amqpframe.Close{Error: ce.amqp}, nil)
	_ = c.flush()
	return err
}

func (c *conn) readProtoHeader() ([]byte, error) {
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c.br, hdr); err != nil {
		return nil, err
	}
	return hdr, nil
}

func (c *conn) sasl() error {
	if _, err := c.nc.Write(protoSASL); err != nil {
		return err
	}
	c.sendSASL(&amqpframe.SASLMechanisms{Mechanisms: []amqpframe.Symbol{"ANONYMOUS", "PLAIN", "MSSBCBS"}})
	if err := c.flush(); err != nil {
		return err
	}
	// SASL frames are held to the minimum max-frame-size too: no size is negotiated
	// before open, so the specification allows them no more.
	f, err := amqpframe.ReadFrame(c.br, amqpframe.MinMaxFrameSize)
	if err != nil {
		c.sendSASL(&amqpframe.SASLOutcome{Code: amqpframe.SASLCodeSys})
		_ = c.flush()
		return fmt.Errorf("reading sasl-init: %w", err)
	}
	if _, ok := f.Body.(*amqpframe.SASLInit); !ok {
		c.sendSASL(&amqpframe.SASLOutcome{Code: amqpframe.SASLCodeSys})
		_ = c.flush()
		return fmt.Errorf("expected sasl-init, got %s", describe(f))
	}
	// Credentials (a PLAIN password, a SAS key) are accepted unread: devbus has no users.
	c.sendSASL(&amqpframe.SASLOutcome{Code: amqpframe.SASLCodeOK})
	return c.flush()
}

func (c *conn) sendSASL(p amqpframe.Performative) {
	buf, err := amqpframe.AppendFrame(nil, amqpframe.Frame{Type: amqpframe.TypeSASL, Body: p})
	if err == nil {
		_, _ = c.bw.Write(buf)
	}
}

func describe(f amqpframe.Frame) string {
	if f.Body == nil {
		return "an empty frame"
	}
	return amqpframe.Name(f.Body)
}

// reader decodes frames until the connection fails; a silent peer times out after twice
// the idle timeout devbus advertised.
func (c *conn) reader() {
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(2 * idleTimeout))
		f, err := amqpframe.ReadFrame(c.br, maxFrameSize)
		select {
		case c.frames <- frameResult{f, err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// run is the connection's event loop.
func (c *conn) run() error {
	var heartbeat <-chan time.Time
	if c.peerIdle > 0 {
		t := time.NewTicker(max(c.peerIdle/2, 50*time.Millisecond))
		defer t.Stop()
		heartbeat = t.C
	}
	for {
		var err error
		select {
		case r := <-c.frames:
			err = c.handleResult(r)
			// Take whatever else has arrived, so one fsync and one flush cover it all.
			for i := 0; err == nil && i < 256; i++ {
				select {
				case r := <-c.frames:
					err = c.handleResult(r)
					continue
				default:
				}
				break
			}
		case <-c.wake:
			c.needPump = true
		case fn := <-c.cmds:
			fn()
		case <-heartbeat:
			if time.Since(c.lastWrite) >= c.peerIdle/2 {
				_, _ = c.bw.Write([]byte{0, 0, 0, 8, 2, 0, 0, 0})
			}
		case desc := <-c.closeMsg:
			c.finishCycle()
			return c.closeWith(&amqpframe.Error{Condition: amqpframe.ErrConnectionForced, Description: desc}, nil)
		}
		if err != nil {
			var ce *connError
			if errors.Is(err, errPeerClosed) {
				c.finishCycle()
				c.send(0, &amqpframe.Close{}, nil)
				_ = c.flush()
				return nil
			}
			if errors.As(err, &ce) {
				c.finishCycle()
				return c.closeWith(ce.amqp, err)
			}
			return err // the socket failed; nobody to tell
		}
		if ferr := c.finishCycle(); ferr != nil {
			return ferr
		}
		if c.fatal != nil {
			var ce *connError
			errors.As(c.fatal, &ce)
			return c.closeWith(ce.amqp, c.fatal)
		}
	}
}

var errPeerClosed = errors.New("peer closed the connection")

// closeWith sends close with an error and ends the connection.
func (c *conn) closeWith(e *amqpframe.Error, cause error) error {
	c.send(0, &amqpframe.Close{Error: e}, nil)
	_ = c.flush()
	if cause == nil {
		return nil
	}
	return cause
}

// finishCycle makes this cycle's journal writes durable, then acknowledges, then delivers
// and flushes.
func (c *conn) finishCycle() error {
	if len(c.afterSync) > 0 {
		points := map[*journal]syncPoint{}
		for _, a := range c.afterSync {
			if a.pt.j != nil {
				points[a.pt.j] = points[a.pt.j].after(a.pt)
			}
		}
		errs := map[*journal]error{}
		for j, pt := range points {
			errs[j] = syncTo(pt)
		}
		pending := c.afterSync
		c.afterSync = nil
		for _, a := range pending {
			a.fn(errs[a.pt.j])
		}
	}
	if c.needPump {
		c.needPump = false
		c.pump()
	}
	return c.flush()
}

func (c *conn) flush() error {
	if c.bw.Buffered() == 0 {
		return nil
	}
	c.lastWrite = time.Now()
	return c.bw.Flush()
}

// deadlineWriter gives every socket write its own deadline, including the writes bufio
// makes on its own when its buffer fills, so a client that stops reading cannot hold a
// connection's goroutine forever.
type deadlineWriter struct{ nc net.Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.nc.Write(p)
}

// send writes one frame into the output buffer. Performatives echo values decoded from
// the client, which always encode again; should one not, the connection is closed.
func (c *conn) send(channel uint16, p amqpframe.Performative, payload []byte) {
	buf, err := amqpframe.AppendFrame(c.scratch[:0], amqpframe.Frame{Type: amqpframe.TypeAMQP, Channel: channel, Body: p, Payload: payload})
	if err != nil {
		if c.fatal == nil {
			c.fatal = protocolError(amqpframe.ErrInternal, "devbus cannot encode its %s: %v", amqpframe.Name(p), err)
		}
		return
	}
	_, _ = c.bw.Write(buf)
	if cap(buf) <= 64<<10 {
		c.scratch = buf
	}
}

func (c *conn) handleResult(r frameResult) error {
	if r.err != nil {
		switch {
		case errors.Is(r.err, amqpframe.ErrFrameTooLarge):
			return protocolError(amqpframe.ErrFramingError, "%v", r.err)
		case errors.Is(r.err, amqpframe.ErrMalformed):
			return protocolError(amqpframe.ErrDecode, "%v", r.err)
		case errors.Is(r.err, io.EOF):
			return io.EOF
		}
		var ne net.Error
		if errors.As(r.err, &ne) && ne.Timeout() {
			return protocolError(amqpframe.ErrResourceLimitExceeded, "no frame received for %s", 2*idleTimeout)
		}
		return r.err
	}
	return c.handleFrame(r.f)
}

func (c *conn) handleFrame(f amqpframe.Frame) error {
	if f.Body == nil {
		return nil // heartbeat
	}
	if f.Type != amqpframe.TypeAMQP {
		return protocolError(amqpframe.ErrNotAllowed, "%s frame after the connection was opened", describe(f))
	}
	switch p := f.Body.(type) {
	case *amqpframe.Close:
		return errPeerClosed
	case *amqpframe.Begin:
		return c.handleBegin(f.Channel, p)
	}
	s := c.sessions[f.Channel]
	if s == nil {
		return protocolError(amqpframe.ErrNotAllowed, "%s on channel %d, which has no session", describe(f), f.Channel)
	}
	switch p := f.Body.(type) {
	case *amqpframe.Attach:
		return c.handleAttach(s, p)
	case *amqpframe.Flow:
		return c.handleFlow(s, p)
	case *amqpframe.Transfer:
		return c.handleTransfer(s, p, f.Payload)
	case *amqpframe.Disposition:
		return c.handleDisposition(s, p)
	case *amqpframe.Detach:
		return c.handleDetach(s, p)
	case *amqpframe.End:
		c.endSession(s)
		delete(c.sessions, s.channel)
		c.send(s.channel, &amqpframe.End{}, nil)
		return nil
	}
	return protocolError(amqpframe.ErrNotAllowed, "unexpected %s performative", describe(f))
}

// amqpErrorFor maps internal errors to AMQP errors for clients.
func amqpErrorFor(err error) *amqpframe.Error {
	var ae *amqpframe.Error
	var ce *connError
	switch {
	case errors.As(err, &ce):
		return ce.amqp
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, amqpframe.ErrMalformed):
		return &amqpframe.Error{Condition: amqpframe.ErrDecode, Description: err.Error()}
	case errors.Is(err, amqpframe.ErrFrameTooLarge):
		return &amqpframe.Error{Condition: amqpframe.ErrFramingError, Description: err.Error()}
	case errors.Is(err, errQueueClosed):
		return &amqpframe.Error{Condition: amqpframe.ErrConnectionForced, Description: err.Error()}
	}
	return &amqpframe.Error{Condition: amqpframe.ErrInternal, Description: err.Error()}
}
