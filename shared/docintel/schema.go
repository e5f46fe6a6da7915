package docintel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// selfDocType stands for a document type named after the model itself: a template or neural
// build names its one document type after the model id, and some api-versions rename it to the
// target id on copy, so the name alone must not tell a copy from its source.
const selfDocType = "$self"

// SchemaFingerprint is a digest of what a model extracts or a classifier tells apart, read from
// its details (Model.Raw, as GetModel returns them): each document type's name and field schema
// (for a classifier, the document type names; for v2.1, the trained fields and key clusters).
// Two resources holding the same model give the same fingerprint whatever their api-versions
// render around it (descriptions, dates, tags, warnings); a different schema gives another.
func SchemaFingerprint(m *Model) (string, error) {
	if m == nil || len(m.Raw) == 0 {
		return "", fmt.Errorf("docintel: fingerprint: the model's details were not read (list items carry no document types)")
	}
	var canon any
	var err error
	switch {
	case m.APIVersion == string(V2_1) || strings.HasPrefix(m.APIVersion, "2.") || jsonHas(m.Raw, "modelInfo"):
		canon, err = v21Schema(m.Raw)
	default:
		canon, err = docTypesSchema(m.Raw, m.ID, m.Kind == KindClassifier)
	}
	if err != nil {
		return "", fmt.Errorf("docintel: fingerprint of %s %s: %w", m.Kind, m.ID, err)
	}
	// encoding/json writes map keys sorted: the same schema encodes to the same bytes.
	b, err := json.Marshal(canon)
	if err != nil {
		return "", fmt.Errorf("docintel: fingerprint of %s %s: %w", m.Kind, m.ID, err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:16]), nil
}

func jsonHas(raw json.RawMessage, key string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return false
	}
	_, ok := top[key]
	return ok
}

// docTypesSchema is {docType name: fieldSchema} of a v3/v4 model, or the sorted document type
// names of a classifier (whose document types carry their training data's location, not a schema).
func docTypesSchema(raw json.RawMessage, id string, classifier bool) (any, error) {
	var w struct {
		DocTypes map[string]struct {
			FieldSchema any `json:"fieldSchema"`
		} `json:"docTypes"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("details are not a model: %w", err)
	}
	if classifier {
		names := make([]string, 0, len(w.DocTypes))
		for n := range w.DocTypes {
			names = append(names, n)
		}
		sort.Strings(names)
		return names, nil
	}
	out := make(map[string]any, len(w.DocTypes))
	for name, dt := range w.DocTypes {
		if name == id {
			name = selfDocType
		}
		out[name] = dt.FieldSchema
	}
	return out, nil
}

// v21Schema is the trained field names (sorted) and the key clusters of a v2.1 model, its
// composed parts' fields included.
func v21Schema(raw json.RawMessage) (any, error) {
	type fields struct {
		Fields []struct {
			FieldName string `json:"fieldName"`
		} `json:"fields"`
	}
	var w struct {
		Keys                 any      `json:"keys"`
		TrainResult          *fields  `json:"trainResult"`
		ComposedTrainResults []fields `json:"composedTrainResults"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("details are not a v2.1 model: %w", err)
	}
	var names []string
	add := func(f *fields) {
		for _, x := range f.Fields {
			names = append(names, x.FieldName)
		}
	}
	if w.TrainResult != nil {
		add(w.TrainResult)
	}
	for i := range w.ComposedTrainResults {
		add(&w.ComposedTrainResults[i])
	}
	sort.Strings(names)
	return map[string]any{"fields": names, "keys": w.Keys}, nil
}
