// Package devbus is a local broker that speaks enough of Azure Service Bus's AMQP 1.0
// dialect for the real azservicebus client to send to and receive from queues: SASL,
// claims-based security on $cbs, the <queue>/$management request/reply links, peek-lock
// and receive-and-delete receivers, settlement, lock renewal and expiry, dead-lettering,
// duplicate detection, scheduled and deferred messages, and message batches.
//
// It exists for local development and tests, where Microsoft's Service Bus emulator (a
// container image) cannot run. It has no topics, subscriptions, sessions, transactions,
// TLS or authentication: any SAS key is accepted. Production uses Azure Service Bus.
//
//	b, err := devbus.Start(ctx, devbus.Options{Queues: []devbus.QueueOptions{{Name: "jobs"}}})
//	...
//	client, err := azservicebus.NewClientFromConnectionString(b.ConnectionString(), nil)
package devbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Service Bus queues, used for queues created on first use.
const (
	DefaultMaxDeliveryCount         = 10
	DefaultLockDuration             = 60 * time.Second
	DefaultDuplicateDetectionWindow = 10 * time.Minute
)

// NoDuplicateDetection as DuplicateDetectionWindow turns duplicate detection off.
const NoDuplicateDetection time.Duration = -1

// MaxMessageSize is the largest message (or batch) a sender may send, announced on the
// sender's link; the SDK sizes its batches by it.
const MaxMessageSize = 1 << 20

// QueueOptions configures a queue. Zero fields take the Service Bus defaults.
type QueueOptions struct {
	// Name of the queue: letters, digits, '.', '-' and '_', up to 260 characters.
	// Names are case-insensitive, as in Service Bus.
	Name string
	// MaxDeliveryCount is how many delivery attempts a message gets before it is
	// dead-lettered with reason MaxDeliveryCountExceeded (default 10).
	MaxDeliveryCount int
	// LockDuration is how long a peek-lock lasts (default 60s).
	LockDuration time.Duration
	// DuplicateDetectionWindow is how long a message id is remembered (default 10m);
	// NoDuplicateDetection disables the check.
	DuplicateDetectionWindow time.Duration
}

var queueNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$`)

// withDefaults validates o and fills in the defaults.
func (o QueueOptions) withDefaults() (QueueOptions, error) {
	if !queueNameRE.MatchString(o.Name) {
		return o, fmt.Errorf("queue name %q: use 1-260 letters, digits, '.', '-' or '_', starting with a letter or digit", o.Name)
	}
	switch {
	case o.MaxDeliveryCount < 0:
		return o, fmt.Errorf("queue %s: max-delivery must be at least 1, not %d", o.Name, o.MaxDeliveryCount)
	case o.MaxDeliveryCount == 0:
		o.MaxDeliveryCount = DefaultMaxDeliveryCount
	}
	switch {
	case o.LockDuration < 0:
		return o, fmt.Errorf("queue %s: lock must be positive, not %s", o.Name, o.LockDuration)
	case o.LockDuration == 0:
		o.LockDuration = DefaultLockDuration
	}
	switch {
	case o.DuplicateDetectionWindow < 0:
		o.DuplicateDetectionWindow = NoDuplicateDetection
	case o.DuplicateDetectionWindow == 0:
		o.DuplicateDetectionWindow = DefaultDuplicateDetectionWindow
	}
	return o, nil
}

// ParseQueueSpec parses the command-line form of a queue:
//
//	name[,max-delivery=N][,lock=DURATION][,dup-window=DURATION|off]
//
// dup-window=0 and dup-window=off disable duplicate detection.
func ParseQueueSpec(spec string) (QueueOptions, error) {
	parts := strings.Split(spec, ",")
	o := QueueOptions{Name: strings.TrimSpace(parts[0])}
	if o.Name == "" {
		return o, fmt.Errorf("queue spec %q: the queue name comes first", spec)
	}
	for _, p := range parts[1:] {
		key, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || val == "" {
			return o, fmt.Errorf("queue spec %q: %q is not key=value", spec, p)
		}
		switch key {
		case "max-delivery":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return o, fmt.Errorf("queue spec %q: max-delivery=%s is not a positive integer", spec, val)
			}
			o.MaxDeliveryCount = n
		case "lock":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("queue spec %q: lock=%s is not a positive duration such as 60s", spec, val)
			}
			o.LockDuration = d
		case "dup-window":
			if val == "off" || val == "0" {
				o.DuplicateDetectionWindow = NoDuplicateDetection
				continue
			}
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("queue spec %q: dup-window=%s is not a duration such as 10m (or off)", spec, val)
			}
			o.DuplicateDetectionWindow = d
		default:
			return o, fmt.Errorf("queue spec %q: unknown setting %q (known: max-delivery, lock, dup-window)", spec, key)
		}
	}
	return o.withDefaults()
}

// Options configures a broker.
type Options struct {
	// Listen is the TCP address to listen on; empty means 127.0.0.1 on a free port.
	Listen string
	// Queues are declared at start. Other queues are created with the defaults the
	// first time a client uses them, unless NoAutoCreate is set.
	Queues []QueueOptions
	// NoAutoCreate makes links to undeclared queues fail with amqp:not-found.
	NoAutoCreate bool
	// DataDir, when set, keeps every queue in an append-only journal there, so messages
	// survive a restart (clean or not). Without it everything is in memory.
	DataDir string
	// Logger receives connection and error events; nil discards them. Message contents
	// and tokens are never logged.
	Logger *slog.Logger
	// Now is the clock for enqueue times, locks, schedules and duplicate detection; nil
	// means time.Now. Tests can advance a fake clock; expiries are checked at least every
	// 100ms.
	Now func() time.Time
}

// QueueStats is a snapshot of a queue for tests and fault-injection suites. Active and
// Locked together are what Service Bus calls the active message count.
type QueueStats struct {
	Name         string
	Active       int // waiting for a receiver
	Locked       int // delivered under a peek-lock, not settled yet
	Scheduled    int // waiting for their scheduled enqueue time
	Deferred     int // deferred by a receiver
	DeadLettered int // in the dead-letter queue now

	// DeadLetterReasons counts the messages in the dead-letter queue by reason; "" counts
	// messages dead-lettered without one.
	DeadLetterReasons map[string]int

	Enqueued         uint64 // messages accepted (scheduled ones included, duplicates not)
	Duplicates       uint64 // sends dropped by duplicate detection
	Delivered        uint64 // deliveries to receivers, redeliveries included
	Completed        uint64 // completed, or received in receive-and-delete mode
	Abandoned        uint64 // abandoned by a receiver
	LocksExpired     uint64 // locks that ran out before settlement
	TotalDeadLetters uint64 // messages ever moved to the dead-letter queue
}

// Broker is a running devbus.
type Broker struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	ln   net.Listener

	mu     sync.Mutex
	queues map[string]*queue // by lower-case name
	conns  map[*conn]struct{}
	closed bool

	nextConnID atomic.Uint64
	stop       chan struct{}
	wg         sync.WaitGroup // accept loop, sweeper
	connWG     sync.WaitGroup
}

// Start loads the data directory (if any), declares the queues and starts listening. ctx
// bounds the start only; the broker runs until Close or Abort.
func Start(ctx context.Context, opts Options) (*Broker, error) {
	b := &Broker{
		opts:   opts,
		log:    opts.Logger,
		now:    opts.Now,
		queues: map[string]*queue{},
		conns:  map[*conn]struct{}{},
		stop:   make(chan struct{}),
	}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b.now == nil {
		b.now = time.Now
	}
	declared := map[string]QueueOptions{}
	for _, qo := range opts.Queues {
		qo, err := qo.withDefaults()
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(qo.Name)
		if _, dup := declared[key]; dup {
			return nil, fmt.Errorf("queue %s declared twice", qo.Name)
		}
		declared[key] = qo
	}
	if err := b.loadQueues(ctx, declared); err != nil {
		b.closeQueues(false)
		return nil, err
	}
	addr := opts.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		b.closeQueues(false)
		return nil, fmt.Errorf("devbus: listen on %s: %w", addr, err)
	}
	b.ln = ln
	// Counted before the loops start: a connection may create a queue at once (under b.mu).
	queues := len(b.queues)
	b.wg.Add(2)
	go b.acceptLoop()
	go b.sweeper()
	b.log.Info("devbus: listening", "addr", b.Addr(), "queues", queues)
	return b, nil
}

// loadQueues replays the journals of the data directory and creates the declared queues.
func (b *Broker) loadQueues(ctx context.Context, declared map[string]QueueOptions) error {
	if b.opts.DataDir != "" {
		if err := os.MkdirAll(b.opts.DataDir, dataDirMode); err != nil {
			return fmt.Errorf("devbus: data directory: %w", err)
		}
		// A directory that existed before is the user's: its mode is left alone, but
		// one that others may list is worth a warning (the journals in it are 0600).
		if fi, err := os.Stat(b.opts.DataDir); err == nil && fi.Mode().Perm()&0o077 != 0 {
			b.log.Warn("devbus: the data directory is open to other users; its journals are not",
				"dir", b.opts.DataDir, "mode", fi.Mode().Perm().String())
		}
		paths, err := filepath.Glob(filepath.Join(b.opts.DataDir, "*"+journalExt))
		if err != nil {
			return err
		}
		slices.Sort(paths)
		for _, p := range paths {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := b.loadJournal(p, declared); err != nil {
				return err
			}
		}
	}
	for key, qo := range declared {
		if _, ok := b.queues[key]; ok {
			continue
		}
		if _, err := b.createQueue(qo); err != nil {
			return err
		}
	}
	return nil
}

func (b *Broker) loadJournal(path string, declared map[string]QueueOptions) error {
	j, recs, err := openJournal(path, b.log.Warn)
	if err != nil {
		return fmt.Errorf("devbus: %w", err)
	}
	st, err := replay(recs)
	if err != nil {
		j.abandon()
		return fmt.Errorf("devbus: journal %s: %w", path, err)
	}
	opts := st.opts
	if !st.hasHeader {
		// An empty file (a crash right after creation): name it after the file.
		opts = QueueOptions{Name: strings.TrimSuffix(filepath.Base(path), journalExt)}
	}
	if d, ok := declared[strings.ToLower(opts.Name)]; ok {
		opts = d // flags and options win over what the journal remembers
	}
	if opts, err = opts.withDefaults(); err != nil {
		j.abandon()
		return fmt.Errorf("devbus: journal %s: %w", path, err)
	}
	if journalPath(b.opts.DataDir, opts.Name) != path {
		j.abandon()
		return fmt.Errorf("devbus: journal %s holds queue %q; rename or remove it", path, opts.Name)
	}
	q := newQueue(opts, b.now, b.log)
	q.load(st)
	q.jr = j
	// Start from a compact journal: the snapshot replaces the history.
	if err := j.rewrite(q.snapshotLocked()); err != nil {
		j.abandon()
		return fmt.Errorf("devbus: rewriting %s: %w", path, err)
	}
	b.queues[strings.ToLower(opts.Name)] = q
	b.log.Info("devbus: queue loaded", "queue", opts.Name, "messages", len(q.main.msgs),
		"dead_lettered", len(q.dlq.msgs))
	return nil
}

// createQueue makes a new queue (and its journal). The caller holds b.mu or is Start.
func (b *Broker) createQueue(qo QueueOptions) (*queue, error) {
	q := newQueue(qo, b.now, b.log)
	if b.opts.DataDir != "" {
		j, recs, err := openJournal(journalPath(b.opts.DataDir, qo.Name), b.log.Warn)
		if err != nil {
			return nil, fmt.Errorf("devbus: %w", err)
		}
		if len(recs) > 0 {
			j.abandon()
			return nil, fmt.Errorf("devbus: journal for new queue %s is not empty", qo.Name)
		}
		if err := j.rewrite(q.snapshotLocked()); err != nil {
			j.abandon()
			return nil, fmt.Errorf("devbus: %w", err)
		}
		q.jr = j
	}
	b.queues[strings.ToLower(qo.Name)] = q
	return q, nil
}

// queue returns the named queue, creating it on first use unless auto-creation is off.
func (b *Broker) queue(name string) (*queue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errQueueClosed
	}
	if q, ok := b.queues[strings.ToLower(name)]; ok {
		return q, nil
	}
	if b.opts.NoAutoCreate {
		return nil, fmt.Errorf("queue %q does not exist (devbus runs without auto-creation)", name)
	}
	qo, err := QueueOptions{Name: name}.withDefaults()
	if err != nil {
		return nil, err
	}
	q, err := b.createQueue(qo)
	if err != nil {
		return nil, err
	}
	b.log.Info("devbus: queue created on first use", "queue", name)
	return q, nil
}

func (b *Broker) lookup(name string) (*queue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.queues[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("devbus: no queue named %q", name)
	}
	return q, nil
}

// Addr returns the address the broker listens on, as HOST:PORT.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// ConnectionString returns a connection string in the form Microsoft's Service Bus
// emulator uses; the key is not checked.
func (b *Broker) ConnectionString() string {
	host, port, _ := net.SplitHostPort(b.Addr())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "Endpoint=sb://" + net.JoinHostPort(host, port) +
		";SharedAccessKeyName=dev;SharedAccessKey=dev;UseDevelopmentEmulator=true"
}

// QueueStats returns a snapshot of the named queue.
func (b *Broker) QueueStats(name string) (QueueStats, error) {
	q, err := b.lookup(name)
	if err != nil {
		return QueueStats{}, err
	}
	return q.stats(), nil
}

// Queues returns the names of the queues, sorted.
func (b *Broker) Queues() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.queues))
	for _, q := range b.queues {
		names = append(names, q.name)
	}
	slices.Sort(names)
	return names
}

// ExpireLocks ends every peek-lock on the queue now, as if each had run out: the
// messages count a failed attempt and become available again (or are dead-lettered). It
// returns how many locks it ended.
func (b *Broker) ExpireLocks(name string) (int, error) {
	q, err := b.lookup(name)
	if err != nil {
		return 0, err
	}
	return q.expireLocks(), nil
}

// DropConnections closes every client connection with amqp:connection:forced, as a
// broker failover would. Clients reconnect on their own. It returns how many it closed.
func (b *Broker) DropConnections() int {
	b.mu.Lock()
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.shutdown("devbus dropped the connection (fault injection)", false)
	}
	return len(conns)
}

// DetachReceivers forcibly detaches every receiver link on the queue (and its
// dead-letter queue) with amqp:link:detach-forced. Their locks stay, so messages can
// still be settled through the management link. It returns how many links it detached.
func (b *Broker) DetachReceivers(name string) int {
	b.mu.Lock()
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	n := 0
	for _, c := range conns {
		n += c.detachReceivers(strings.ToLower(name))
	}
	return n
}

// Close stops the broker: connections are closed with amqp:connection:forced, and each
// journal is rewritten to its live state and closed.
func (b *Broker) Close() error {
	if !b.shutdown(false) {
		return nil
	}
	return b.closeQueues(true)
}

// Abort stops the broker the way a crash would, for restart tests: sockets are cut
// without a close frame and journals are closed without a sync or a snapshot.
func (b *Broker) Abort() {
	if b.shutdown(true) {
		b.closeQueues(false)
	}
}

func (b *Broker) shutdown(abort bool) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.closed = true
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	close(b.stop)
	b.ln.Close()
	for _, c := range conns {
		c.shutdown("devbus is shutting down", abort)
	}
	b.wg.Wait()
	// Connections close themselves once they have said goodbye; one that does not (a
	// peer still in its handshake, a full socket) is cut after a grace period.
	done := make(chan struct{})
	go func() { b.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		b.mu.Lock()
		for c := range b.conns {
			c.nc.Close()
		}
		b.mu.Unlock()
		<-done
	}
	return true
}

func (b *Broker) closeQueues(clean bool) error {
	b.mu.Lock()
	queues := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		queues = append(queues, q)
	}
	b.mu.Unlock()
	var errs []error
	for _, q := range queues {
		q.mu.Lock()
		q.closed = true
		if q.jr != nil {
			if clean {
				if err := q.jr.rewrite(q.snapshotLocked()); err != nil {
					errs = append(errs, fmt.Errorf("queue %s: %w", q.name, err))
				}
				if err := q.jr.close(); err != nil {
					errs = append(errs, fmt.Errorf("queue %s: %w", q.name, err))
				}
			} else {
				q.jr.abandon()
			}
		}
		q.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (b *Broker) acceptLoop() {
	defer b.wg.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			select {
			case <-b.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			b.log.Error("devbus: accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		c := newConn(b, nc)
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			nc.Close()
			continue
		}
		b.conns[c] = struct{}{}
		b.connWG.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.connWG.Done()
			c.serve()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// sweeper runs the queues' timers: lock expiry, scheduled messages, duplicate-detection
// windows. It sleeps until the next deadline but never more than 100ms, so a fake clock
// set forward takes effect promptly.
func (b *Broker) sweeper() {
	defer b.wg.Done()
	const maxSleep = 100 * time.Millisecond
	t := time.NewTimer(maxSleep)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		b.mu.Lock()
		queues := make([]*queue, 0, len(b.queues))
		for _, q := range b.queues {
			queues = append(queues, q)
		}
		b.mu.Unlock()
		wait := maxSleep
		for _, q := range queues {
			if next := q.tick(); !next.IsZero() {
				wait = min(wait, max(next.Sub(b.now()), time.Millisecond))
			}
		}
		t.Reset(wait)
	}
}
