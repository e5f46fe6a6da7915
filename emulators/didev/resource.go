package didev

import (
	"fmt"
	"sort"
	"time"
)

// Resource is the Go handle of one emulated resource: seed, train and delete items and read
// its state without HTTP. Its methods are safe for concurrent use.
type Resource struct {
	s *Server
	r *resource
}

// Name, Endpoint, ResourceID, Region and Encrypted describe the resource.
func (r *Resource) Name() string       { return r.r.opts.Name }
func (r *Resource) Endpoint() string   { return r.r.endpoint }
func (r *Resource) ResourceID() string { return r.r.opts.ResourceID }
func (r *Resource) Region() string     { return r.r.opts.Region }
func (r *Resource) Encrypted() bool    { return r.r.opts.Encrypted }
func (r *Resource) MaxModels() int     { return r.r.opts.MaxModels }

// Model is a read-only view of a model, classifier or v2.1 model.
type Model struct {
	Kind        Kind
	ID          string
	Description string
	Tags        map[string]string
	APIVersion  string
	Created     time.Time
	Expires     time.Time
	Modified    time.Time // classifiers
	Ready       time.Time // when it became (or becomes) usable
	Status      string    // "ready", or "creating" while a build or copy runs
	DocTypes    []string  // document type (or class) names, sorted
}

// Reservation is a target id held by an authorization that no copy has consumed.
type Reservation struct {
	AuthorizationID string
	Kind            Kind
	ID              string
	Issued          time.Time
	Expires         time.Time
}

// Operation is a read-only view of an operation of the resource.
type Operation struct {
	ID               string
	Kind             string // documentModelCopyTo, ...; v2.1 copies are "v2.1CopyModel"
	Status           string // at the time of the call
	Created          time.Time
	End              time.Time
	ResourceLocation string
	ErrorCode        string // when failed: innermost code
}

func view(m *model, now time.Time) Model {
	v := Model{
		Kind: m.Kind, ID: m.ID, Description: m.Description, Tags: cloneTags(m.Tags), APIVersion: m.APIVersion,
		Created: m.Created, Expires: m.Expires, Modified: m.Modified, Ready: m.Ready, Status: "ready",
	}
	if !m.visible(now) {
		v.Status = "creating"
	}
	for n := range m.DocTypes {
		v.DocTypes = append(v.DocTypes, n)
	}
	for n := range m.Classes {
		v.DocTypes = append(v.DocTypes, n)
	}
	sort.Strings(v.DocTypes)
	return v
}

// Seed creates a ready item now, like -seed. ErrExists if the id is taken or reserved.
func (r *Resource) Seed(sd Seed) error {
	sd.Resource = r.r.opts.Name
	if err := sd.validate(); err != nil {
		return fmt.Errorf("didev: seed: %w", err)
	}
	return r.mutate(func(rs *resState, now time.Time) error {
		if rs.taken(sd.Kind, sd.ID) {
			return fmt.Errorf("%w: %s %s on %s", ErrExists, sd.Kind, sd.ID, r.r.opts.Name)
		}
		r.s.putModel(r.r.key, seedModel(sd, now))
		return nil
	})
}

// Train starts a build of a template model, classifier or v2.1 model that is ready after
// BuildDuration (until then GET answers 404, and copyTo ModelNotReady). It records no operation;
// use the HTTP API to follow one.
func (r *Resource) Train(kind Kind, id string) error {
	sd := Seed{Resource: r.r.opts.Name, Kind: kind, ID: id}
	if err := sd.validate(); err != nil {
		return fmt.Errorf("didev: train: %w", err)
	}
	return r.mutate(func(rs *resState, now time.Time) error {
		if rs.taken(kind, id) {
			return fmt.Errorf("%w: %s %s on %s", ErrExists, kind, id, r.r.opts.Name)
		}
		ready := now.Add(r.s.opts.BuildDuration)
		m := seedModel(sd, ready)
		if kind == KindModelV21 {
			m.Created = now // v2.1 models exist as "creating" from the start [rec]
		}
		r.s.putModel(r.r.key, m)
		return nil
	})
}

// Delete removes an item, or frees an id a pending authorization reserves. ErrNotFound otherwise.
func (r *Resource) Delete(kind Kind, id string) error {
	return r.mutate(func(rs *resState, now time.Time) error {
		if _, ok := rs.Models[kind][id]; ok {
			r.s.delModel(r.r.key, kind, id)
			return nil
		}
		if a := rs.reserved[kind][id]; a != nil {
			r.s.freeReservation(r.r.key, a)
			return nil
		}
		return fmt.Errorf("%w: %s %s on %s", ErrNotFound, kind, id, r.r.opts.Name)
	})
}

// Model returns an item, including one still being built or copied (Status "creating").
func (r *Resource) Model(kind Kind, id string) (Model, bool) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	m := r.s.stateOf(r.r).Models[kind][id]
	if m == nil {
		return Model{}, false
	}
	return view(m, r.s.now()), true
}

// Models lists the ready items of kind, by id.
func (r *Resource) Models(kind Kind) []Model {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	now := r.s.now()
	rs := r.s.stateOf(r.r)
	ids := rs.sortedIDs(kind, "", len(rs.Models[kind]), now)
	out := make([]Model, 0, len(ids))
	for _, id := range ids {
		out = append(out, view(rs.Models[kind][id], now))
	}
	return out
}

// Count is the number of ready items of kind.
func (r *Resource) Count(kind Kind) int {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	now := r.s.now()
	n := 0
	for _, m := range r.s.stateOf(r.r).Models[kind] {
		if m.visible(now) {
			n++
		}
	}
	return n
}

// Reservations lists the ids pending authorizations hold, by kind and id.
func (r *Resource) Reservations() []Reservation {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []Reservation
	for kind, byID := range r.s.stateOf(r.r).reserved {
		for id, a := range byID {
			out = append(out, Reservation{AuthorizationID: a.ID, Kind: kind, ID: id, Issued: a.Issued, Expires: a.Expires})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Operations lists the resource's unexpired operations, newest first.
func (r *Resource) Operations() []Operation {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	now := r.s.now()
	var out []Operation
	for _, op := range r.s.stateOf(r.r).Ops {
		if !now.Before(op.Created.Add(r.s.opts.OpTTL)) {
			continue
		}
		st, _ := op.status(now)
		o := Operation{ID: op.ID, Kind: op.Kind, Status: st, Created: op.Created, End: op.End, ResourceLocation: op.ResourceLocation}
		if st == "failed" {
			switch {
			case op.Error != nil && op.Error.Inner != nil:
				o.ErrorCode = op.Error.Inner.Code
			case op.Error != nil:
				o.ErrorCode = op.Error.Code
			case op.V2Error != nil:
				o.ErrorCode = op.V2Error.Code
			}
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// mutate runs f under the lock and makes its changes durable.
func (r *Resource) mutate(f func(rs *resState, now time.Time) error) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if err := f(r.s.stateOf(r.r), r.s.now()); err != nil {
		return err
	}
	if r.s.store != nil {
		return r.s.store.flush()
	}
	return nil
}
