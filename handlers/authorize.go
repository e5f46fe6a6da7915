package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dimirror/dimirror/shared/replication"
)

// MaxBodyBytes bounds the authorize request body.
const MaxBodyBytes = 64 << 10

// replicationRequest is the body of POST /api/replications.
type replicationRequest struct {
	// Source names the resource the item is in; required when several resources are sources.
	Source   string   `json:"source"`
	Kind     string   `json:"kind"`
	SourceID string   `json:"sourceId"`
	Targets  []string `json:"targets"`
	TargetID string   `json:"targetId"`
}

// ReplicationAnswer is the body of the authorize and status answers for one source.
type ReplicationAnswer struct {
	Kind     string        `json:"kind"`
	SourceID string        `json:"sourceId"`
	Replicas []ReplicaView `json:"replicas"`
}

// Authorize handles POST /api/replications: checks the source, then per target authorizes the
// copy, records the replica and queues the copy. Repeating a request while replicas are in flight
// or done answers their current state and starts nothing.
func (a *Functions) Authorize(w http.ResponseWriter, r *http.Request) {
	req, field, err := decodeReplicationRequest(r.Body)
	if err != nil {
		a.writeError(w, r, invalid(field, "%s", err.Error()))
		return
	}
	kind, err := replication.ParseKind(req.Kind)
	if err != nil {
		a.writeError(w, r, invalid("kind", "%s", err.Error()))
		return
	}
	dreq := replication.Request{Source: req.Source, Kind: kind, SourceID: req.SourceID, TargetID: req.TargetID, Targets: req.Targets}
	if err := a.Requests.Validate(&dreq); err != nil {
		// Validate judges the request alone: whatever it refuses is the caller's to fix.
		if e := errorOf(err); e.Kind != eInvalid {
			err = invalid("", "%s", err.Error())
		}
		a.writeError(w, r, err)
		return
	}
	reps, err := a.Requests.Request(r.Context(), dreq)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ans := ReplicationAnswer{Kind: string(kind), SourceID: dreq.SourceID}
	status := http.StatusOK
	for _, rep := range reps {
		ans.Replicas = append(ans.Replicas, View(rep))
		if rep.Status.InFlight() {
			status = http.StatusAccepted
		}
	}
	a.log().InfoContext(r.Context(), "replication requested", "source", dreq.Source, "kind", string(kind), "sourceId", dreq.SourceID,
		"targets", strings.Join(dreq.Targets, ","), "status", status)
	w.Header().Set("Location", StatusPath(kind, dreq.SourceID))
	writeJSON(w, status, ans)
}

// StatusPath is where a source's replicas can be read.
func StatusPath(kind replication.Kind, sourceID string) string {
	return "/" + routePrefix + "/" + routeReplications + "/" + string(kind) + "/" + url.PathEscape(sourceID)
}

// decodeReplicationRequest reads and strictly decodes the body; the returned field names what
// was wrong when it can.
func decodeReplicationRequest(body io.Reader) (replicationRequest, string, error) {
	var req replicationRequest
	if body == nil {
		return req, "", errors.New("the request has no body: send a JSON object with at least sourceId")
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	if err != nil {
		return req, "", fmt.Errorf("reading the body failed: %v", err)
	}
	if len(data) > MaxBodyBytes {
		return req, "", fmt.Errorf("the body is larger than %d KiB", MaxBodyBytes>>10)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return req, "", errors.New("the request has no body: send a JSON object with at least sourceId")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, jsonErrorField(err), fmt.Errorf("the body is not a valid replication request: %s", describeJSONError(err))
	}
	// dec.More would miss a stray closing '}' or ']': check that only whitespace follows.
	if len(bytes.TrimSpace(data[dec.InputOffset():])) != 0 {
		return req, "", errors.New("the body has data after the JSON object")
	}
	return req, "", nil
}

func jsonErrorField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return strings.Trim(f, `"`)
	}
	return ""
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return "expected a JSON object"
		}
		return fmt.Sprintf("field %q must be %s", te.Field, jsonTypeName(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON ends early"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f + " (known fields: source, kind, sourceId, targets, targetId)"
	}
	return "invalid JSON"
}

func jsonTypeName(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array of strings"
	}
	return "of another type"
}
