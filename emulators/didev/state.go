package didev

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Everything below is guarded by Server.mu. Nothing changes by itself: a model becomes visible
// when the clock passes its Ready time and an operation's status is read off its Start and End,
// so state is a pure function of the stored records and the clock.

// model is a stored document model, classifier or v2.1 model.
type model struct {
	Kind        Kind              `json:"kind"`
	ID          string            `json:"id"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	APIVersion  string            `json:"apiVersion"`
	Created     time.Time         `json:"created"`
	Expires     time.Time         `json:"expires"`
	Modified    time.Time         `json:"modified,omitzero"`
	Ready       time.Time         `json:"ready"` // hidden (v3) or "creating" (v2.1) until then
	// document models
	BuildMode    string              `json:"buildMode,omitempty"`
	DocTypes     map[string]*docType `json:"docTypes,omitempty"`
	ClassifierID string              `json:"classifierId,omitempty"`
	Split        string              `json:"split,omitempty"`
	// classifiers
	Classes          map[string]*classDoc `json:"classes,omitempty"`
	BaseClassifierID string               `json:"baseClassifierId,omitempty"`
	// v2.1 models
	V2 *v2Info `json:"v2,omitempty"`
}

type docType struct {
	Description     string             `json:"description,omitempty"`
	BuildMode       string             `json:"buildMode,omitempty"`
	FieldSchema     json.RawMessage    `json:"fieldSchema"`
	FieldConfidence map[string]float64 `json:"fieldConfidence,omitempty"`
	ModelID         string             `json:"modelId,omitempty"` // composed models: the component
}

type blobSource struct {
	ContainerURL string `json:"containerUrl"`
	Prefix       string `json:"prefix,omitempty"`
}

type fileListSource struct {
	ContainerURL string `json:"containerUrl"`
	FileList     string `json:"fileList"`
}

type classDoc struct {
	Blob     *blobSource     `json:"azureBlobSource,omitempty"`
	FileList *fileListSource `json:"azureBlobFileListSource,omitempty"`
}

type v2Info struct {
	Name       string   `json:"name,omitempty"`
	Labeled    bool     `json:"labeled"`
	Composed   bool     `json:"composed,omitempty"`
	Components []string `json:"components,omitempty"`
}

func (m *model) visible(now time.Time) bool { return !now.Before(m.Ready) }

// auth is an authorization a target resource issued (authorizeCopy / copyAuthorization). Only
// the SHA-256 of the access token is kept.
type auth struct {
	ID          string            `json:"id"` // non-secret name used in stats
	Hash        string            `json:"hash"`
	Kind        Kind              `json:"kind"`
	TargetID    string            `json:"targetId"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	APIVersion  string            `json:"apiVersion"`
	Issued      time.Time         `json:"issued"`
	Expires     time.Time         `json:"expires"`
	State       string            `json:"state"`
	Accepted    int               `json:"accepted"` // copyTo requests answered 202 with this authorization
	// AfterConsumed counts copyTo requests answered 202 with this authorization after a copy had
	// consumed it (their operation fails): the one misuse of an authorization. A copyTo sent
	// again after an earlier copy with it failed is not one — the service allows one successful
	// copy per authorization, and a failed copy leaves it pending.
	AfterConsumed int    `json:"afterConsumed,omitempty"`
	CopiedBy      string `json:"copiedBy,omitempty"`
}

// Authorization states.
const (
	AuthPending  = "pending"  // the target id is reserved, no copy consumed it yet
	AuthConsumed = "consumed" // a copy with it succeeded (or will: its operation is running)
	AuthFreed    = "freed"    // DELETE of the reserved id released it
)

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// operation is a long-running operation. Its status is a function of the clock.
type operation struct {
	ID               string            `json:"id"`
	Kind             string            `json:"kind"`
	APIVersion       string            `json:"apiVersion"`
	Created          time.Time         `json:"created"`
	Start            time.Time         `json:"start"` // notStarted before, running after
	End              time.Time         `json:"end"`   // terminal from here on
	ResourceLocation string            `json:"resourceLocation"`
	Tags             map[string]string `json:"tags,omitempty"`
	Error            *apiError         `json:"error,omitempty"` // the failure, decided when accepted
	Result           *model            `json:"result,omitempty"`
	// v2.1 copies
	V2Source   string    `json:"v2Source,omitempty"`
	V2TargetID string    `json:"v2TargetId,omitempty"`
	V2Error    *v2Error  `json:"v2Error,omitempty"`
	V2Preview  bool      `json:"v2Preview,omitempty"`
	V2FailedAt time.Time `json:"v2FailedAt,omitzero"`
}

// status of op at now, and when it last changed.
func (op *operation) status(now time.Time) (string, time.Time) {
	switch {
	case now.Before(op.Start):
		return "notStarted", op.Created
	case now.Before(op.End):
		return "running", op.Start
	case op.Error != nil || op.V2Error != nil:
		return "failed", op.End
	default:
		return "succeeded", op.End
	}
}

// resState is one resource's stored state.
type resState struct {
	Models   map[Kind]map[string]*model `json:"models"`
	Auths    map[string]*auth           `json:"auths"` // by token hash
	Ops      map[string]*operation      `json:"ops"`
	reserved map[Kind]map[string]*auth  // pending authorizations by target id
	opOrder  []*operation               // creation order, for expiry
}

func newResState() *resState {
	rs := &resState{Models: map[Kind]map[string]*model{}, Auths: map[string]*auth{}, Ops: map[string]*operation{}}
	rs.reindex()
	return rs
}

// reindex rebuilds the derived indexes after loading.
func (rs *resState) reindex() {
	if rs.Models == nil {
		rs.Models = map[Kind]map[string]*model{}
	}
	if rs.Auths == nil {
		rs.Auths = map[string]*auth{}
	}
	if rs.Ops == nil {
		rs.Ops = map[string]*operation{}
	}
	for _, k := range []Kind{KindModel, KindClassifier, KindModelV21} {
		if rs.Models[k] == nil {
			rs.Models[k] = map[string]*model{}
		}
	}
	rs.reserved = map[Kind]map[string]*auth{KindModel: {}, KindClassifier: {}, KindModelV21: {}}
	for _, a := range rs.Auths {
		if a.State == AuthPending && rs.reserved[a.Kind] != nil {
			rs.reserved[a.Kind][a.TargetID] = a
		}
	}
	rs.opOrder = rs.opOrder[:0]
	for _, op := range rs.Ops {
		rs.opOrder = append(rs.opOrder, op)
	}
	sort.Slice(rs.opOrder, func(i, j int) bool {
		if !rs.opOrder[i].Created.Equal(rs.opOrder[j].Created) {
			return rs.opOrder[i].Created.Before(rs.opOrder[j].Created)
		}
		return rs.opOrder[i].ID > rs.opOrder[j].ID
	})
}

// taken reports whether id cannot be used for a new kind item: it exists (even while still being
// built or copied) or an authorization reserves it.
func (rs *resState) taken(kind Kind, id string) bool {
	if _, ok := rs.Models[kind][id]; ok {
		return true
	}
	_, ok := rs.reserved[kind][id]
	return ok
}

// customCount is what counts against the model limit: v3 and v2.1 models (ready or not) and ids
// reserved for them (assumption: reservations hold a slot, so a copy never exceeds the limit).
func (rs *resState) customCount() int {
	return len(rs.Models[KindModel]) + len(rs.Models[KindModelV21]) +
		len(rs.reserved[KindModel]) + len(rs.reserved[KindModelV21])
}

// visibleCount is what /info and ?op=summary report: existing custom models.
func (rs *resState) visibleCount(now time.Time) int {
	n := 0
	for _, k := range []Kind{KindModel, KindModelV21} {
		for _, m := range rs.Models[k] {
			if k == KindModelV21 || m.visible(now) {
				n++
			}
		}
	}
	return n
}

// get returns a visible item.
func (rs *resState) get(kind Kind, id string, now time.Time) *model {
	m := rs.Models[kind][id]
	if m == nil || (kind != KindModelV21 && !m.visible(now)) {
		return nil
	}
	return m
}

// sortedIDs lists the ids of visible items of kind after cursor (exclusive), in order, at most
// limit+1 of them so callers can tell whether a next page exists.
func (rs *resState) sortedIDs(kind Kind, after string, limit int, now time.Time) []string {
	ids := make([]string, 0, min(len(rs.Models[kind]), 1024))
	for id, m := range rs.Models[kind] {
		if id > after && m.visible(now) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit+1 {
		ids = ids[:limit+1]
	}
	return ids
}

// pruneOps forgets operations older than ttl.
func (rs *resState) pruneOps(now time.Time, ttl time.Duration) {
	n := 0
	for n < len(rs.opOrder) && !now.Before(rs.opOrder[n].Created.Add(ttl)) {
		op := rs.opOrder[n]
		if rs.Ops[op.ID] == op {
			delete(rs.Ops, op.ID)
		}
		n++
	}
	if n > 0 {
		rs.opOrder = append(rs.opOrder[:0:0], rs.opOrder[n:]...)
	}
}

// operationID is the service's format: {33166367999 − unixSeconds(created)}_{apim-request-id}
// [rec], so ascending ids list the newest first.
func operationID(created time.Time, requestID string) string {
	return strconv.FormatInt(33166367999-created.Unix(), 10) + "_" + requestID
}

// clone returns a shallow copy whose maps can be replaced without touching m.
func (m *model) clone() *model {
	c := *m
	if m.Tags != nil {
		c.Tags = cloneTags(m.Tags)
	}
	if m.DocTypes != nil {
		c.DocTypes = make(map[string]*docType, len(m.DocTypes))
		for k, v := range m.DocTypes {
			c.DocTypes[k] = v
		}
	}
	if m.V2 != nil {
		v2 := *m.V2
		c.V2 = &v2
	}
	return &c
}

func cloneTags(t map[string]string) map[string]string {
	if t == nil {
		return nil
	}
	c := make(map[string]string, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

func equalFoldTrim(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}
