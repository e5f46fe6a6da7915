package devbus

import (
	"container/heap"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
)

// Dead-letter reason Service Bus uses when a message ran out of delivery attempts.
const reasonMaxDelivery = "MaxDeliveryCountExceeded"

var (
	errLockLost    = errors.New("the lock on the message has expired or the message was already settled")
	errNotFound    = errors.New("message not found")
	errQueueClosed = errors.New("devbus is shutting down")
)

// outcome is how a receiver settles a locked message.
type outcome struct {
	kind        outcomeKind
	reason      string         // dead-letter
	description string         // dead-letter
	props       map[string]any // application properties to modify (abandon, defer, dead-letter)
}

type outcomeKind uint8

const (
	outcomeComplete outcomeKind = iota
	outcomeAbandon              // delivery count + 1
	outcomeRelease              // back to the queue, not counted as an attempt
	outcomeDeadLetter
	outcomeDefer
)

// delivery is a message handed to a receiver.
type delivery struct {
	payload []byte
	token   amqpframe.UUID // zero for settled (receive-and-delete) deliveries
	seq     int64
}

// queue is a Service Bus queue with its dead-letter sub-queue. One mutex guards both: a
// dead-lettering moves a message between them atomically, and the journal records it as
// one entry.
type queue struct {
	name string
	opts QueueOptions
	now  func() time.Time
	log  *slog.Logger

	mu     sync.Mutex
	main   *subqueue
	dlq    *subqueue
	dedup  dedupIndex
	jr     *journal // nil when the broker keeps nothing on disk
	closed bool

	enqueued, duplicates, delivered, completed, abandoned, expired, deadLettered uint64
}

// subqueue holds the messages of the queue or of its dead-letter queue.
type subqueue struct {
	q       *queue
	dead    bool
	nextSeq int64
	msgs    map[int64]*message
	order   []int64 // sequence numbers in arrival order; may hold removed ones
	avail   seqHeap
	sched   timeHeap
	expiry  timeHeap
	locks   map[amqpframe.UUID]*message
	waiters map[chan<- struct{}]struct{}

	nLocked, nScheduled, nDeferred int
}

func newQueue(opts QueueOptions, now func() time.Time, log *slog.Logger) *queue {
	q := &queue{name: opts.Name, opts: opts, now: now, log: log}
	q.main = newSubqueue(q, false)
	q.dlq = newSubqueue(q, true)
	q.dedup.entries = map[string]time.Time{}
	return q
}

func newSubqueue(q *queue, dead bool) *subqueue {
	return &subqueue{
		q: q, dead: dead, nextSeq: 1,
		msgs:    map[int64]*message{},
		locks:   map[amqpframe.UUID]*message{},
		waiters: map[chan<- struct{}]struct{}{},
	}
}

func (q *queue) sub(dead bool) *subqueue {
	if dead {
		return q.dlq
	}
	return q.main
}

// enqueue accepts messages sent to the queue. Duplicates (by message-id, within the
// window) are dropped silently, as Service Bus does. The returned sync point must be made
// durable before the sender is told the messages are accepted.
func (q *queue) enqueue(msgs []*message) (syncPoint, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return syncPoint{}, errQueueClosed
	}
	now := q.now()
	var recs []record
	var accepted []*message
	for _, m := range msgs {
		if m.msgID != "" && q.dedup.enabled(q.opts) {
			if q.dedup.seen(m.msgID, now, q.opts.DuplicateDetectionWindow) {
				q.duplicates++
				continue
			}
			q.dedup.add(m.msgID, now)
		}
		m.seq = q.main.nextSeq
		q.main.nextSeq++
		m.enqueuedAt = now
		accepted = append(accepted, m)
		recs = append(recs, enqueueRecord(false, m))
	}
	pt, err := q.persist(recs...)
	if err != nil {
		// Nothing was made visible; forget the ids so a retry is not taken for a duplicate.
		for _, m := range accepted {
			q.dedup.forget(m.msgID)
		}
		return pt, err
	}
	for _, m := range accepted {
		q.enqueued++
		q.main.insert(m, now)
	}
	q.main.signal()
	return pt, nil
}

// schedule enqueues messages whose x-opt-scheduled-enqueue-time is set and returns their
// sequence numbers. Duplicate detection does not apply: every scheduled message needs a
// sequence number to be cancellable.
func (q *queue) schedule(msgs []*message) ([]int64, syncPoint, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, syncPoint{}, errQueueClosed
	}
	now := q.now()
	seqs := make([]int64, len(msgs))
	recs := make([]record, len(msgs))
	for i, m := range msgs {
		m.seq = q.main.nextSeq
		q.main.nextSeq++
		m.enqueuedAt = now
		seqs[i] = m.seq
		recs[i] = enqueueRecord(false, m)
	}
	pt, err := q.persist(recs...)
	if err != nil {
		return nil, pt, err
	}
	for _, m := range msgs {
		q.enqueued++
		q.main.insert(m, now)
	}
	q.main.signal()
	return seqs, pt, nil
}

// cancelScheduled removes scheduled messages; all must still be scheduled.
func (q *queue) cancelScheduled(seqs []int64) (syncPoint, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range seqs {
		if m := q.main.msgs[s]; m == nil || m.state != stateScheduled {
			return syncPoint{}, fmt.Errorf("%w: no scheduled message has sequence number %d", errNotFound, s)
		}
	}
	recs := make([]record, 0, len(seqs))
	for _, s := range seqs {
		if m := q.main.msgs[s]; m != nil { // a repeated number is cancelled once
			q.main.remove(m)
			recs = append(recs, removeRecord(false, s))
		}
	}
	return q.persist(recs...)
}

// insert adds a message in the state its fields describe (used by enqueue and replay).
func (s *subqueue) insert(m *message, now time.Time) {
	s.msgs[m.seq] = m
	s.order = append(s.order, m.seq)
	switch {
	case m.state == stateDeferred:
		s.nDeferred++
	case !m.scheduledAt.IsZero() && m.scheduledAt.After(now):
		m.state = stateScheduled
		s.nScheduled++
		heap.Push(&s.sched, timeEntry{at: m.scheduledAt, seq: m.seq})
	default:
		if !m.scheduledAt.IsZero() && m.scheduledAt.After(m.enqueuedAt) {
			m.enqueuedAt = m.scheduledAt
		}
		m.state = stateActive
		heap.Push(&s.avail, m.seq)
	}
}

func (s *subqueue) remove(m *message) {
	switch m.state {
	case stateLocked:
		delete(s.locks, m.lockToken)
		s.nLocked--
	case stateScheduled:
		s.nScheduled--
	case stateDeferred:
		s.nDeferred--
	}
	delete(s.msgs, m.seq)
	// Heaps are cleaned lazily; order is compacted once it is mostly holes.
	if len(s.order) > 1024 && len(s.order) > 4*len(s.msgs) {
		kept := s.order[:0]
		for _, seq := range s.order {
			if _, ok := s.msgs[seq]; ok {
				kept = append(kept, seq)
			}
		}
		s.order = kept
	}
}

// next hands the oldest available message to a receiver: locked for peek-lock receivers,
// removed for receive-and-delete ones. When there is none, wake is registered and
// signalled once a message becomes available.
func (q *queue) next(dead, peekLock bool, wake chan<- struct{}) (delivery, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sub(dead)
	if q.closed {
		return delivery{}, false
	}
	now := q.now()
	for s.avail.Len() > 0 {
		seq := heap.Pop(&s.avail).(int64)
		m := s.msgs[seq]
		if m == nil || m.state != stateActive {
			continue
		}
		q.delivered++
		if !peekLock {
			s.remove(m)
			q.completed++
			if _, err := q.persist(removeRecord(dead, seq)); err != nil {
				q.log.Error("devbus: journal write failed", "queue", q.name, "err", err)
			}
			return delivery{payload: m.deliveryBytes(false, false), seq: seq}, true
		}
		s.lock(m, now, q.opts.LockDuration)
		return delivery{payload: m.deliveryBytes(true, false), token: m.lockToken, seq: seq}, true
	}
	s.waiters[wake] = struct{}{}
	return delivery{}, false
}

func (s *subqueue) lock(m *message, now time.Time, d time.Duration) {
	m.state = stateLocked
	m.lockToken = newLockToken()
	m.lockGen++
	m.lockedUntil = now.Add(d)
	s.locks[m.lockToken] = m
	s.nLocked++
	heap.Push(&s.expiry, timeEntry{at: m.lockedUntil, seq: m.seq, gen: m.lockGen})
}

// settle applies a receiver's outcome to the message locked under token.
func (q *queue) settle(dead bool, token amqpframe.UUID, o outcome) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sub(dead)
	m := s.locks[token]
	if m == nil {
		return errLockLost
	}
	now := q.now()
	if !now.Before(m.lockedUntil) {
		q.releaseLock(s, m, true, outcome{})
		q.expired++
		return errLockLost
	}
	switch o.kind {
	case outcomeComplete:
		s.remove(m)
		q.completed++
		_, err := q.persist(removeRecord(dead, m.seq))
		q.logPersist(err)
	case outcomeAbandon:
		q.abandoned++
		q.releaseLock(s, m, true, o)
	case outcomeRelease:
		q.releaseLock(s, m, false, o)
	case outcomeDefer:
		if o.props != nil {
			q.modify(s, m, o.props)
		}
		delete(s.locks, m.lockToken)
		s.nLocked--
		m.state = stateDeferred
		s.nDeferred++
		_, err := q.persist(deferRecord(dead, m.seq))
		q.logPersist(err)
	case outcomeDeadLetter:
		if dead {
			// A dead-letter queue has nowhere further to send a message; it stays.
			q.releaseLock(s, m, false, o)
			return nil
		}
		q.deadLetter(m, o.reason, o.description, o.props)
	}
	return nil
}

// releaseLock makes a locked message available again. A counted release (abandon, lock
// expiry) is a failed delivery attempt; the attempt that reaches the queue's max delivery
// count dead-letters the message.
func (q *queue) releaseLock(s *subqueue, m *message, counted bool, o outcome) {
	delete(s.locks, m.lockToken)
	s.nLocked--
	if o.props != nil {
		q.modify(s, m, o.props)
	}
	if counted {
		m.deliveryCount++
		if !s.dead && int(m.deliveryCount) >= q.opts.MaxDeliveryCount {
			m.state = stateActive // unlocked and in no heap: deadLetter just removes it
			q.deadLetter(m, reasonMaxDelivery,
				fmt.Sprintf("Message could not be consumed after %d delivery attempts.", m.deliveryCount), nil)
			return
		}
		_, err := q.persist(countRecord(s.dead, m.seq, m.deliveryCount))
		q.logPersist(err)
	}
	if m.wasDeferred {
		m.state = stateDeferred
		s.nDeferred++
		return
	}
	m.state = stateActive
	heap.Push(&s.avail, m.seq)
	s.signal()
}

// modify updates application properties (abandon, defer and dead-letter may carry them).
func (q *queue) modify(s *subqueue, m *message, props map[string]any) {
	mod, err := m.withApplicationProperties(props)
	if err != nil {
		q.log.Warn("devbus: properties to modify ignored", "queue", q.name, "seq", m.seq, "err", err)
		return
	}
	m.bare = mod.bare
	_, err = q.persist(replaceRecord(s.dead, m))
	q.logPersist(err)
}

// deadLetter moves a message of the queue into the dead-letter queue with a reason.
func (q *queue) deadLetter(m *message, reason, description string, props map[string]any) {
	all := map[string]any{propDeadLetterReason: reason, propDeadLetterDescription: description}
	for k, v := range props {
		if k != propDeadLetterReason && k != propDeadLetterDescription {
			all[k] = v
		}
	}
	dm, err := m.withApplicationProperties(all)
	if err != nil {
		// The message was parsed when it arrived, so this cannot fail for its own
		// properties; drop the caller's extra properties rather than the message.
		q.log.Warn("devbus: dead-letter properties ignored", "queue", q.name, "seq", m.seq, "err", err)
		dm, _ = m.withApplicationProperties(map[string]any{
			propDeadLetterReason: reason, propDeadLetterDescription: description,
		})
	}
	q.main.remove(m)
	dm.origSeq = m.seq
	dm.seq = q.dlq.nextSeq
	q.dlq.nextSeq++
	dm.state = stateActive
	dm.wasDeferred = false
	dm.lockToken = amqpframe.UUID{}
	dm.dlReason = reason
	q.dlq.insert(dm, q.now())
	q.deadLettered++
	_, err = q.persist(deadLetterRecord(m.seq, dm))
	q.logPersist(err)
	q.dlq.signal()
}

// renew extends the locks named by tokens.
func (q *queue) renew(dead bool, tokens []amqpframe.UUID) ([]time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sub(dead)
	now := q.now()
	for _, t := range tokens {
		if m := s.locks[t]; m == nil || !now.Before(m.lockedUntil) {
			return nil, errLockLost
		}
	}
	out := make([]time.Time, len(tokens))
	for i, t := range tokens {
		m := s.locks[t]
		m.lockedUntil = now.Add(q.opts.LockDuration)
		heap.Push(&s.expiry, timeEntry{at: m.lockedUntil, seq: m.seq, gen: m.lockGen})
		out[i] = m.lockedUntil
	}
	return out, nil
}

// peek returns up to count messages from sequence number from on, in any state, without
// locking them.
func (q *queue) peek(dead bool, from int64, count int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sub(dead)
	i := sort.Search(len(s.order), func(i int) bool { return s.order[i] >= from })
	var out [][]byte
	for ; i < len(s.order) && len(out) < count; i++ {
		if m := s.msgs[s.order[i]]; m != nil {
			out = append(out, m.deliveryBytes(false, true))
		}
	}
	return out
}

// receiveDeferred locks (or, for receive-and-delete, removes) deferred messages by
// sequence number.
func (q *queue) receiveDeferred(dead bool, seqs []int64, peekLock bool) ([]delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sub(dead)
	for _, seq := range seqs {
		if m := s.msgs[seq]; m == nil || m.state != stateDeferred {
			return nil, fmt.Errorf("%w: no deferred message has sequence number %d", errNotFound, seq)
		}
	}
	now := q.now()
	out := make([]delivery, 0, len(seqs))
	for _, seq := range seqs {
		m := s.msgs[seq]
		if m == nil || m.state != stateDeferred { // repeated number
			continue
		}
		q.delivered++
		if !peekLock {
			s.remove(m)
			q.completed++
			_, err := q.persist(removeRecord(dead, seq))
			q.logPersist(err)
			out = append(out, delivery{payload: m.deliveryBytes(false, true), seq: seq})
			continue
		}
		s.nDeferred--
		m.wasDeferred = true
		s.lock(m, now, q.opts.LockDuration)
		out = append(out, delivery{payload: m.deliveryBytes(true, true), token: m.lockToken, seq: seq})
	}
	return out, nil
}

// tick does what time brings: locks expire, scheduled messages become available and old
// duplicate-detection entries are forgotten. It returns when it next needs to run.
func (q *queue) tick() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for _, s := range []*subqueue{q.main, q.dlq} {
		for s.expiry.Len() > 0 && !s.expiry[0].at.After(now) {
			e := heap.Pop(&s.expiry).(timeEntry)
			m := s.msgs[e.seq]
			if m == nil || m.state != stateLocked || m.lockGen != e.gen || m.lockedUntil.After(now) {
				continue
			}
			q.expired++
			q.releaseLock(s, m, true, outcome{})
		}
		for s.sched.Len() > 0 && !s.sched[0].at.After(now) {
			e := heap.Pop(&s.sched).(timeEntry)
			m := s.msgs[e.seq]
			if m == nil || m.state != stateScheduled {
				continue
			}
			s.nScheduled--
			m.state = stateActive
			if m.scheduledAt.After(m.enqueuedAt) {
				m.enqueuedAt = m.scheduledAt
			}
			heap.Push(&s.avail, m.seq)
			s.signal()
		}
	}
	q.dedup.prune(now, q.opts.DuplicateDetectionWindow)
	next := time.Time{}
	for _, s := range []*subqueue{q.main, q.dlq} {
		for _, h := range []timeHeap{s.expiry, s.sched} {
			if h.Len() > 0 && (next.IsZero() || h[0].at.Before(next)) {
				next = h[0].at
			}
		}
	}
	return next
}

// expireLocks ends every lock now, as if each had run out (a fault hook).
func (q *queue) expireLocks() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, s := range []*subqueue{q.main, q.dlq} {
		locked := make([]*message, 0, len(s.locks))
		for _, m := range s.locks {
			locked = append(locked, m)
		}
		sort.Slice(locked, func(i, j int) bool { return locked[i].seq < locked[j].seq })
		for _, m := range locked {
			q.expired++
			q.releaseLock(s, m, true, outcome{})
			n++
		}
	}
	return n
}

// signal wakes the receivers waiting for a message, if one is available.
func (s *subqueue) signal() {
	if s.avail.Len() == 0 || len(s.waiters) == 0 {
		return
	}
	for w := range s.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
		delete(s.waiters, w)
	}
}

// forgetWaiter drops a receiver's registration (its connection is gone).
func (q *queue) forgetWaiter(w chan<- struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.main.waiters, w)
	delete(q.dlq.waiters, w)
}

func (q *queue) logPersist(err error) {
	if err != nil {
		q.log.Error("devbus: journal write failed; state after a restart may be older", "queue", q.name, "err", err)
	}
}

// stats reports counts for tests and fault-injection suites.
func (q *queue) stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := QueueStats{
		Name:              q.name,
		Scheduled:         q.main.nScheduled,
		Locked:            q.main.nLocked,
		Deferred:          q.main.nDeferred,
		DeadLettered:      len(q.dlq.msgs),
		Enqueued:          q.enqueued,
		Duplicates:        q.duplicates,
		Delivered:         q.delivered,
		Completed:         q.completed,
		Abandoned:         q.abandoned,
		LocksExpired:      q.expired,
		TotalDeadLetters:  q.deadLettered,
		DeadLetterReasons: map[string]int{},
	}
	for _, m := range q.main.msgs {
		if m.state == stateActive {
			st.Active++
		}
	}
	for _, m := range q.dlq.msgs {
		st.DeadLetterReasons[m.dlReason]++
	}
	return st
}

func newLockToken() amqpframe.UUID {
	var u amqpframe.UUID
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// dotNetTag returns the lock token as a delivery tag in .NET Guid byte order (the first
// three groups little-endian), which is how the .NET and JavaScript SDKs read it.
func dotNetTag(u amqpframe.UUID) []byte {
	return []byte{u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6],
		u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]}
}

// dedupIndex remembers message ids for the duplicate-detection window.
type dedupIndex struct {
	entries map[string]time.Time
	fifo    []dedupEntry
}

type dedupEntry struct {
	id string
	at time.Time
}

func (d *dedupIndex) enabled(o QueueOptions) bool { return o.DuplicateDetectionWindow > 0 }

func (d *dedupIndex) seen(id string, now time.Time, window time.Duration) bool {
	at, ok := d.entries[id]
	return ok && now.Sub(at) < window
}

func (d *dedupIndex) add(id string, at time.Time) {
	d.entries[id] = at
	d.fifo = append(d.fifo, dedupEntry{id: id, at: at})
}

func (d *dedupIndex) forget(id string) { delete(d.entries, id) }

func (d *dedupIndex) prune(now time.Time, window time.Duration) {
	i := 0
	for ; i < len(d.fifo) && now.Sub(d.fifo[i].at) >= window; i++ {
		if at, ok := d.entries[d.fifo[i].id]; ok && !at.After(d.fifo[i].at) {
			delete(d.entries, d.fifo[i].id)
		}
	}
	if i > 0 {
		d.fifo = append(d.fifo[:0:0], d.fifo[i:]...)
	}
}

// seqHeap is a min-heap of sequence numbers.
type seqHeap []int64

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// timeHeap orders deadlines (lock expiries, scheduled enqueue times).
type timeEntry struct {
	at  time.Time
	seq int64
	gen uint64
}

type timeHeap []timeEntry

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(timeEntry)) }
func (h *timeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
