package didev

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Persistence (-data DIR): a snapshot (state.json, replaced atomically) plus an append-only
// journal (journal.jsonl) of every change since. A request's changes are appended in one write
// before its answer is sent, so a killed process loses nothing it acknowledged; the snapshot is
// rewritten (temp file, fsync, rename) at start, at Close and when the journal grows large.
// Access tokens are never stored, only their SHA-256.

const (
	snapshotFile   = "state.json"
	journalFile    = "journal.jsonl"
	compactRecords = 20000
	snapshotFormat = 1
)

type snapshot struct {
	Format    int                  `json:"format"`
	Saved     time.Time            `json:"saved"`
	Resources map[string]*resState `json:"resources"`
}

// record is one journal line.
type record struct {
	Type  string     `json:"t"` // model, model-, auth, op
	Res   string     `json:"r"`
	Kind  Kind       `json:"k,omitempty"`
	ID    string     `json:"id,omitempty"`
	Model *model     `json:"m,omitempty"`
	Auth  *auth      `json:"a,omitempty"`
	Op    *operation `json:"o,omitempty"`
}

type store struct {
	dir     string
	journal *os.File
	batch   bytes.Buffer
	records int // journal lines since the last snapshot
	state   map[string]*resState
}

// openStore loads dir (snapshot, then journal) and compacts it into a fresh snapshot.
func openStore(dir string) (*store, map[string]*resState, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("didev: data dir: %w", err)
	}
	state := map[string]*resState{}
	b, err := os.ReadFile(filepath.Join(dir, snapshotFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, nil, fmt.Errorf("didev: data dir: %w", err)
	default:
		var snap snapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			return nil, nil, fmt.Errorf("didev: data dir: %s is corrupt: %w", snapshotFile, err)
		}
		if snap.Format != snapshotFormat {
			return nil, nil, fmt.Errorf("didev: data dir: %s has format %d, want %d", snapshotFile, snap.Format, snapshotFormat)
		}
		for k, rs := range snap.Resources {
			if rs != nil {
				rs.reindex() // makes every map the journal replay writes to
				state[k] = rs
			}
		}
	}
	if err := replayJournal(filepath.Join(dir, journalFile), state); err != nil {
		return nil, nil, err
	}
	for _, rs := range state {
		rs.reindex()
	}
	st := &store{dir: dir, state: state}
	if err := st.compact(state); err != nil {
		return nil, nil, err
	}
	return st, state, nil
}

func replayJournal(path string, state map[string]*resState) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("didev: data dir: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A last line without its newline was cut short by a kill mid-write; its request was
			// never answered, so dropping it loses nothing acknowledged.
			return nil
		}
		if err != nil {
			return fmt.Errorf("didev: data dir: %s: %w", journalFile, err)
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("didev: data dir: %s line %d is corrupt: %w", journalFile, line, err)
		}
		if err := apply(state, rec); err != nil {
			return fmt.Errorf("didev: data dir: %s line %d: %w", journalFile, line, err)
		}
	}
}

// apply replays one record onto state (indexes are rebuilt afterwards).
func apply(state map[string]*resState, rec record) error {
	rs := state[rec.Res]
	if rs == nil {
		rs = newResState()
		state[rec.Res] = rs
	}
	switch rec.Type {
	case "model":
		if rec.Model == nil || !rec.Model.Kind.valid() {
			return errors.New("model record without a valid model")
		}
		rs.Models[rec.Model.Kind][rec.Model.ID] = rec.Model
	case "model-":
		if rs.Models[rec.Kind] != nil {
			delete(rs.Models[rec.Kind], rec.ID)
		}
	case "auth":
		if rec.Auth == nil || rec.Auth.Hash == "" {
			return errors.New("auth record without an authorization")
		}
		rs.Auths[rec.Auth.Hash] = rec.Auth
	case "op":
		if rec.Op == nil || rec.Op.ID == "" {
			return errors.New("op record without an operation")
		}
		rs.Ops[rec.Op.ID] = rec.Op
	default:
		return fmt.Errorf("unknown record type %q", rec.Type)
	}
	return nil
}

// add queues a record of the current request.
func (st *store) add(rec record) {
	b, err := json.Marshal(rec)
	if err != nil {
		panic("didev: journal: " + err.Error()) // plain data only
	}
	st.batch.Write(b)
	st.batch.WriteByte('\n')
	st.records++
}

// flush appends the queued records in one write, compacting when the journal is long.
func (st *store) flush() error {
	if st.batch.Len() == 0 {
		return nil
	}
	_, err := st.journal.Write(st.batch.Bytes())
	st.batch.Reset()
	if err != nil {
		return fmt.Errorf("didev: journal: %w", err)
	}
	if st.records >= compactRecords {
		return st.compact(st.state)
	}
	return nil
}

// compact writes a snapshot of state atomically and starts an empty journal.
func (st *store) compact(state map[string]*resState) error {
	b, err := json.Marshal(snapshot{Format: snapshotFormat, Saved: time.Now().UTC(), Resources: state})
	if err != nil {
		return fmt.Errorf("didev: snapshot: %w", err)
	}
	tmp, err := os.CreateTemp(st.dir, snapshotFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("didev: snapshot: %w", err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("didev: snapshot: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("didev: snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(st.dir, snapshotFile)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("didev: snapshot: %w", err)
	}
	if d, err := os.Open(st.dir); err == nil {
		_ = d.Sync() // make the rename durable where the platform allows it
		d.Close()
	}
	if st.journal != nil {
		st.journal.Close()
	}
	j, err := os.OpenFile(filepath.Join(st.dir, journalFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("didev: journal: %w", err)
	}
	st.journal = j
	st.records = 0
	return nil
}

func (st *store) close() {
	if st.journal != nil {
		_ = st.journal.Sync()
		st.journal.Close()
		st.journal = nil
	}
}

// Mutations. Every change of stored state goes through these (with s.mu held) so the journal
// sees it.

func (s *Server) rs(key string) *resState {
	rs := s.state[key]
	if rs == nil {
		rs = newResState()
		s.state[key] = rs
	}
	return rs
}

func (s *Server) putModel(key string, m *model) {
	s.rs(key).Models[m.Kind][m.ID] = m
	if s.store != nil {
		s.store.add(record{Type: "model", Res: key, Model: m})
	}
}

func (s *Server) delModel(key string, kind Kind, id string) {
	delete(s.rs(key).Models[kind], id)
	if s.store != nil {
		s.store.add(record{Type: "model-", Res: key, Kind: kind, ID: id})
	}
}

func (s *Server) putAuth(key string, a *auth) {
	rs := s.rs(key)
	rs.Auths[a.Hash] = a
	if a.State == AuthPending {
		rs.reserved[a.Kind][a.TargetID] = a
	} else if rs.reserved[a.Kind][a.TargetID] == a {
		delete(rs.reserved[a.Kind], a.TargetID)
	}
	if s.store != nil {
		s.store.add(record{Type: "auth", Res: key, Auth: a})
	}
}

func (s *Server) freeReservation(key string, a *auth) {
	a.State = AuthFreed
	s.putAuth(key, a)
}

func (s *Server) putOp(key string, op *operation) {
	s.pruneOps(key, op.Created)
	rs := s.rs(key)
	rs.Ops[op.ID] = op
	rs.opOrder = append(rs.opOrder, op)
	if s.store != nil {
		s.store.add(record{Type: "op", Res: key, Op: op})
	}
}

// pruneOps forgets the resource's expired operations. Not journaled: expiry is a function of
// the clock, so a replay prunes the same ones.
func (s *Server) pruneOps(key string, now time.Time) {
	s.rs(key).pruneOps(now, s.opts.OpTTL)
}
