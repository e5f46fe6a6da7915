package devbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// A journal is the append-only log of one queue (with its dead-letter queue) under the
// data directory. Every change is appended as a record; a message is acknowledged to its
// sender only after the record is fsynced, so neither a clean stop nor a kill loses an
// accepted message. At start and at a clean stop the journal is rewritten to the live
// state (a snapshot), and it is also rewritten when it has grown mostly stale.
//
// Record: length (uint32, of kind+payload), CRC-32C (uint32, of kind+payload), kind,
// payload. A torn or corrupt tail — what a crash mid-write leaves — ends the replay and is
// cut off.

const journalExt = ".journal"

// compactMinBytes is the size below which a journal is never rewritten while running.
const compactMinBytes = 32 << 20

type recKind byte

const (
	recHeader     recKind = 1 // queue name, options, next sequence numbers
	recEnqueue    recKind = 2 // a message entering the queue or its dead-letter queue
	recRemove     recKind = 3 // completed, received-and-deleted or cancelled
	recCount      recKind = 4 // delivery count after a failed attempt
	recDefer      recKind = 5 // deferred by a receiver
	recReplace    recKind = 6 // application properties modified
	recDeadLetter recKind = 7 // moved from the queue to its dead-letter queue
	recDedup      recKind = 8 // a message id still inside the duplicate-detection window
)

type record struct {
	kind recKind
	data []byte
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type journal struct {
	path string

	mu      sync.Mutex // guards the fields below
	f       *os.File
	gen     uint64 // incremented by every rewrite
	written int64
	compact int64 // size after the last rewrite

	syncMu    sync.Mutex // one fsync at a time; later callers find their data synced
	synced    int64
	syncedGen uint64
}

// syncPoint names a position in a journal that must be durable before an acknowledgement.
type syncPoint struct {
	j   *journal
	gen uint64
	off int64
}

// after returns the later of two sync points of the same journal.
func (p syncPoint) after(o syncPoint) syncPoint {
	if p.j == nil || o.gen > p.gen || (o.gen == p.gen && o.off > p.off) {
		return o
	}
	return p
}

// Journals hold every message, copy authorizations included: only their owner may read
// them, and a data directory devbus creates is its owner's alone.
const (
	journalFileMode os.FileMode = 0o600
	dataDirMode     os.FileMode = 0o700
)

func journalPath(dir, name string) string {
	return filepath.Join(dir, strings.ToLower(name)+journalExt)
}

// openJournal opens (or creates) a journal and returns its valid records. A corrupt tail
// is truncated and reported through warn.
func openJournal(path string, warn func(msg string, args ...any)) (*journal, []record, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, journalFileMode)
	if err != nil {
		return nil, nil, err
	}
	// A journal an earlier devbus wrote may be readable by others; take that back.
	if err := f.Chmod(journalFileMode); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("restricting %s to its owner: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	recs, good := parseRecords(data)
	if good < len(data) {
		warn("devbus: journal has a torn or corrupt tail; cutting it off",
			"file", path, "kept_bytes", good, "dropped_bytes", len(data)-good)
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("truncating %s: %w", path, err)
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	j := &journal{path: path, f: f, written: int64(good), compact: int64(good), synced: int64(good)}
	return j, recs, nil
}

// parseRecords returns the records up to the first invalid one and the byte count they
// span.
func parseRecords(data []byte) ([]record, int) {
	var recs []record
	off := 0
	for len(data)-off >= 9 {
		n := int(binary.BigEndian.Uint32(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n < 1 || n > len(data)-off-8 {
			break
		}
		body := data[off+8 : off+8+n]
		if crc32.Checksum(body, crcTable) != sum {
			break
		}
		recs = append(recs, record{kind: recKind(body[0]), data: body[1:]})
		off += 8 + n
	}
	return recs, off
}

func appendRecord(b []byte, r record) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, byte(r.kind))
	b = append(b, r.data...)
	body := b[start+8:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(body, crcTable))
	return b
}

// append writes records with one write call; the data reaches the operating system (and
// so survives a process kill) before append returns, and the disk once syncTo is called.
func (j *journal) append(recs ...record) (syncPoint, error) {
	var buf []byte
	for _, r := range recs {
		buf = appendRecord(buf, r)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return syncPoint{}, errors.New("journal is closed")
	}
	n, err := j.f.Write(buf)
	j.written += int64(n)
	if err != nil {
		return syncPoint{}, fmt.Errorf("writing %s: %w", j.path, err)
	}
	return syncPoint{j: j, gen: j.gen, off: j.written}, nil
}

// needsCompaction reports whether the journal has grown mostly stale.
func (j *journal) needsCompaction() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.written > compactMinBytes && j.written > 4*j.compact
}

// syncTo makes the journal durable up to p. Concurrent callers share fsyncs.
func syncTo(p syncPoint) error {
	j := p.j
	if j == nil {
		return nil
	}
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if p.gen != j.gen || (j.syncedGen == j.gen && j.synced >= p.off) {
		// Synced already, or rewritten since: a rewrite is fsynced as a whole.
		j.mu.Unlock()
		return nil
	}
	f, gen, target := j.f, j.gen, j.written
	j.mu.Unlock()
	if f == nil {
		return errors.New("journal is closed")
	}
	if err := f.Sync(); err != nil {
		j.mu.Lock()
		rewritten := j.gen != gen
		j.mu.Unlock()
		if rewritten {
			return nil // the file was replaced (and closed) by a rewrite, which synced it all
		}
		return fmt.Errorf("syncing %s: %w", j.path, err)
	}
	j.mu.Lock()
	if j.gen == gen {
		j.synced, j.syncedGen = target, gen
	}
	j.mu.Unlock()
	return nil
}

// rewrite replaces the journal with recs, atomically: a new file is written and fsynced,
// then renamed over the old one.
func (j *journal) rewrite(recs []record) error {
	var buf []byte
	for _, r := range recs {
		buf = appendRecord(buf, r)
	}
	tmp := j.path + ".tmp"
	if err := writeFileSync(tmp, buf); err != nil {
		return err
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("replacing %s: %w", j.path, err)
	}
	syncDir(filepath.Dir(j.path))
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_APPEND, journalFileMode)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
	}
	j.f = f
	j.gen++
	j.written, j.compact = int64(len(buf)), int64(len(buf))
	j.synced, j.syncedGen = int64(len(buf)), j.gen
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, journalFileMode)
	if err != nil {
		return err
	}
	// A leftover file of that name keeps its old mode through O_CREATE.
	if err := f.Chmod(journalFileMode); err != nil {
		f.Close()
		return fmt.Errorf("restricting %s to its owner: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return f.Close()
}

// syncDir makes a rename durable; where directories cannot be synced it is a no-op.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// close syncs and closes the file.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	return err
}

// abandon closes the file without syncing: what a crash does to it.
func (j *journal) abandon() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// ---------------------------------------------------------------------------------------
// Record payloads

type enc struct{ b []byte }

func (e *enc) u(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) t(v time.Time)  { e.i(timeNanos(v)) }
func (e *enc) bytes(v []byte) { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)   { e.bytes([]byte(v)) }

func flag(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errors.New("truncated journal record")
	}
}

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) t() time.Time {
	if n := d.i(); n != 0 {
		return time.Unix(0, n).UTC()
	}
	return time.Time{}
}

func (d *dec) bytes() []byte {
	n := d.u()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string { return string(d.bytes()) }

func (d *dec) byte1() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func headerRecord(opts QueueOptions, mainNext, dlqNext int64) record {
	var e enc
	e.str(opts.Name)
	e.u(uint64(opts.MaxDeliveryCount))
	e.i(int64(opts.LockDuration))
	e.i(int64(opts.DuplicateDetectionWindow))
	e.i(mainNext)
	e.i(dlqNext)
	return record{kind: recHeader, data: e.b}
}

func enqueueRecord(dead bool, m *message) record {
	return record{kind: recEnqueue, data: encodeStored(dead, m)}
}

func encodeStored(dead bool, m *message) []byte {
	var e enc
	flags := flag(dead) | flag(m.state == stateDeferred)<<1
	e.b = append(e.b, flags)
	e.i(m.seq)
	e.t(m.enqueuedAt)
	e.t(m.scheduledAt)
	e.u(uint64(m.deliveryCount))
	e.i(m.origSeq)
	e.str(m.dlReason)
	e.bytes(m.encode())
	return e.b
}

type storedMessage struct {
	dead     bool
	deferred bool
	m        *message
}

func decodeStored(d *dec) (storedMessage, error) {
	var s storedMessage
	flags := d.byte1()
	s.dead, s.deferred = flags&1 != 0, flags&2 != 0
	seq := d.i()
	enqueuedAt := d.t()
	scheduledAt := d.t()
	count := d.u()
	origSeq := d.i()
	reason := d.str()
	raw := d.bytes()
	if d.err != nil {
		return s, d.err
	}
	m, err := parseMessage(raw)
	if err != nil {
		return s, fmt.Errorf("stored message %d: %w", seq, err)
	}
	m.seq, m.enqueuedAt, m.scheduledAt = seq, enqueuedAt, scheduledAt
	m.deliveryCount, m.origSeq, m.dlReason = uint32(count), origSeq, reason
	if s.deferred {
		m.state = stateDeferred
	}
	s.m = m
	return s, nil
}

func seqRecord(kind recKind, dead bool, seq int64) record {
	var e enc
	e.b = append(e.b, flag(dead))
	e.i(seq)
	return record{kind: kind, data: e.b}
}

func removeRecord(dead bool, seq int64) record { return seqRecord(recRemove, dead, seq) }
func deferRecord(dead bool, seq int64) record  { return seqRecord(recDefer, dead, seq) }

func countRecord(dead bool, seq int64, count uint32) record {
	r := seqRecord(recCount, dead, seq)
	r.data = binary.AppendUvarint(r.data, uint64(count))
	return r
}

func replaceRecord(dead bool, m *message) record {
	r := seqRecord(recReplace, dead, m.seq)
	r.data = binary.AppendUvarint(r.data, uint64(len(m.bare)))
	r.data = append(r.data, m.bare...)
	return r
}

func deadLetterRecord(mainSeq int64, dm *message) record {
	var e enc
	e.i(mainSeq)
	e.b = append(e.b, encodeStored(true, dm)...)
	return record{kind: recDeadLetter, data: e.b}
}

func dedupRecord(id string, at time.Time) record {
	var e enc
	e.str(id)
	e.t(at)
	return record{kind: recDedup, data: e.b}
}

// persist appends records to the queue's journal (a no-op without a data directory) and
// rewrites the journal once it is mostly stale. The caller holds q.mu.
func (q *queue) persist(recs ...record) (syncPoint, error) {
	if q.jr == nil || len(recs) == 0 {
		return syncPoint{}, nil
	}
	pt, err := q.jr.append(recs...)
	if err != nil {
		return pt, err
	}
	if q.jr.needsCompaction() {
		if err := q.jr.rewrite(q.snapshotLocked()); err != nil {
			q.log.Error("devbus: journal compaction failed", "queue", q.name, "err", err)
		}
	}
	return pt, nil
}

// snapshotLocked returns the records that recreate the queue's current state. Locks are
// not kept: after a restart every locked message is available again.
func (q *queue) snapshotLocked() []record {
	recs := []record{headerRecord(q.opts, q.main.nextSeq, q.dlq.nextSeq)}
	for id, at := range q.dedup.entries {
		recs = append(recs, dedupRecord(id, at))
	}
	for _, s := range []*subqueue{q.main, q.dlq} {
		seqs := make([]int64, 0, len(s.msgs))
		for seq := range s.msgs {
			seqs = append(seqs, seq)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for _, seq := range seqs {
			m := *s.msgs[seq]
			if m.state == stateLocked {
				m.state = stateActive
				if m.wasDeferred {
					m.state = stateDeferred
				}
			}
			recs = append(recs, enqueueRecord(s.dead, &m))
		}
	}
	return recs
}

// replayed is the state a journal describes.
type replayed struct {
	opts             QueueOptions
	hasHeader        bool
	mainNext, dlqNxt int64
	main, dlq        map[int64]*message
	dedup            map[string]time.Time
}

// replay applies records in order. Records that do not decode end the replay with an
// error: they passed their checksum, so they are not a torn write but a bug or tampering.
func replay(recs []record) (*replayed, error) {
	r := &replayed{mainNext: 1, dlqNxt: 1, main: map[int64]*message{}, dlq: map[int64]*message{},
		dedup: map[string]time.Time{}}
	sub := func(dead bool) map[int64]*message {
		if dead {
			return r.dlq
		}
		return r.main
	}
	add := func(s storedMessage) {
		sub(s.dead)[s.m.seq] = s.m
		if s.dead {
			r.dlqNxt = max(r.dlqNxt, s.m.seq+1)
		} else {
			r.mainNext = max(r.mainNext, s.m.seq+1)
			if s.m.msgID != "" {
				if at, ok := r.dedup[s.m.msgID]; !ok || s.m.enqueuedAt.After(at) {
					r.dedup[s.m.msgID] = s.m.enqueuedAt
				}
			}
		}
	}
	for i, rec := range recs {
		d := &dec{b: rec.data}
		switch rec.kind {
		case recHeader:
			r.hasHeader = true
			r.opts.Name = d.str()
			r.opts.MaxDeliveryCount = int(d.u())
			r.opts.LockDuration = time.Duration(d.i())
			r.opts.DuplicateDetectionWindow = time.Duration(d.i())
			r.mainNext = max(r.mainNext, d.i())
			r.dlqNxt = max(r.dlqNxt, d.i())
		case recEnqueue:
			s, err := decodeStored(d)
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			add(s)
		case recRemove, recDefer, recCount, recReplace:
			dead := d.byte1() == 1
			seq := d.i()
			m := sub(dead)[seq]
			switch rec.kind {
			case recRemove:
				delete(sub(dead), seq)
			case recDefer:
				if m != nil {
					m.state = stateDeferred
				}
			case recCount:
				if c := d.u(); m != nil {
					m.deliveryCount = uint32(c)
				}
			case recReplace:
				if bare := d.bytes(); m != nil && d.err == nil {
					m.bare = append([]byte(nil), bare...)
				}
			}
		case recDeadLetter:
			mainSeq := d.i()
			s, err := decodeStored(d)
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			delete(r.main, mainSeq)
			add(s)
		case recDedup:
			id, at := d.str(), d.t()
			if d.err == nil {
				if old, ok := r.dedup[id]; !ok || at.After(old) {
					r.dedup[id] = at
				}
			}
		default:
			return nil, fmt.Errorf("record %d: unknown kind %d", i, rec.kind)
		}
		if d.err != nil {
			return nil, fmt.Errorf("record %d: %w", i, d.err)
		}
	}
	return r, nil
}

// load fills an empty queue from replayed state.
func (q *queue) load(r *replayed) {
	now := q.now()
	q.main.nextSeq, q.dlq.nextSeq = r.mainNext, r.dlqNxt
	for _, pair := range []struct {
		s    *subqueue
		msgs map[int64]*message
	}{{q.main, r.main}, {q.dlq, r.dlq}} {
		seqs := make([]int64, 0, len(pair.msgs))
		for seq := range pair.msgs {
			seqs = append(seqs, seq)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for _, seq := range seqs {
			pair.s.insert(pair.msgs[seq], now)
		}
	}
	if q.dedup.enabled(q.opts) {
		ids := make([]dedupEntry, 0, len(r.dedup))
		for id, at := range r.dedup {
			if now.Sub(at) < q.opts.DuplicateDetectionWindow {
				ids = append(ids, dedupEntry{id: id, at: at})
			}
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i].at.Before(ids[j].at) })
		for _, e := range ids {
			q.dedup.add(e.id, e.at)
		}
	}
}
