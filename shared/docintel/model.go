package docintel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Model is a model or a classifier.
type Model struct {
	Kind                        Kind
	ID, Description, APIVersion string
	Created, Expires, Modified  time.Time
	Tags                        map[string]string
	Status                      string   // v2.1 modelInfo.status (creating|ready|invalid); "ready" for v3/v4
	ComponentModelIDs           []string // composed: docTypes[*].modelId (2024-11-30) / v2.1 composedTrainResults
	ClassifierID                string   // composed model's classifier (2024-11-30)
	Raw                         json.RawMessage
}

// StatusReady is Model.Status of every v3/v4 model (only finished models exist there).
const StatusReady = "ready"

type wireModel struct {
	ModelID            string                     `json:"modelId"`
	ClassifierID       string                     `json:"classifierId"`
	Description        string                     `json:"description"`
	CreatedDateTime    wireTime                   `json:"createdDateTime"`
	ExpirationDateTime wireTime                   `json:"expirationDateTime"`
	ModifiedDateTime   wireTime                   `json:"modifiedDateTime"`
	APIVersion         string                     `json:"apiVersion"`
	Tags               map[string]string          `json:"tags"`
	DocTypes           map[string]json.RawMessage `json:"docTypes"`
}

func modelFromWire(kind Kind, w wireModel) Model {
	m := Model{
		Kind:        kind,
		ID:          w.ModelID,
		Description: w.Description,
		APIVersion:  w.APIVersion,
		Created:     time.Time(w.CreatedDateTime),
		Expires:     time.Time(w.ExpirationDateTime),
		Modified:    time.Time(w.ModifiedDateTime),
		Tags:        w.Tags,
		Status:      StatusReady,
	}
	if kind == KindClassifier {
		m.ID = w.ClassifierID
		return m
	}
	m.ClassifierID = w.ClassifierID
	for _, raw := range w.DocTypes {
		var dt struct {
			ModelID string `json:"modelId"`
		}
		if json.Unmarshal(raw, &dt) == nil && dt.ModelID != "" && !slices.Contains(m.ComponentModelIDs, dt.ModelID) {
			m.ComponentModelIDs = append(m.ComponentModelIDs, dt.ModelID)
		}
	}
	slices.Sort(m.ComponentModelIDs) // docTypes is a map: give callers a stable order
	return m
}

type wireV21ModelInfo struct {
	ModelID             string   `json:"modelId"`
	ModelName           string   `json:"modelName"`
	Status              string   `json:"status"`
	CreatedDateTime     wireTime `json:"createdDateTime"`
	LastUpdatedDateTime wireTime `json:"lastUpdatedDateTime"`
}

// v21Model maps modelInfo; v2.1 has no description, so the friendly modelName goes there.
func v21Model(w wireV21ModelInfo) Model {
	return Model{
		Kind:        KindModel,
		ID:          w.ModelID,
		Description: w.ModelName,
		APIVersion:  string(V2_1),
		Created:     time.Time(w.CreatedDateTime),
		Modified:    time.Time(w.LastUpdatedDateTime),
		Status:      w.Status,
	}
}

func (c *Client) modelPath(kind Kind, id string) string {
	if c.version == V2_1 {
		return "/custom/models/" + url.PathEscape(id)
	}
	return "/" + kind.collection() + "/" + url.PathEscape(id)
}

// notFoundAsModel gives a 404 on a model route the ModelNotFound code when the service sent no inner
// code (v2.1 answers with numeric codes); the gateway's route-level 404 (code "404") stays as is.
func notFoundAsModel(err error) error {
	if e, ok := asError(err); ok && e.StatusCode == http.StatusNotFound && e.InnerCode == "" && e.Code != "404" && !e.hasCode(CodeModelNotFound) {
		e.InnerCode = CodeModelNotFound
	}
	return err
}

// GetModel reads one model's or classifier's details; Raw holds them as served.
func (c *Client) GetModel(ctx context.Context, kind Kind, id string) (*Model, error) {
	if err := checkKind(c.version, kind, false); err != nil {
		return nil, err
	}
	if err := c.checkID(kind, id); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, call{op: "get" + kindTitle(kind), method: http.MethodGet, url: c.url(c.modelPath(kind, id), nil)})
	if err != nil {
		return nil, notFoundAsModel(err)
	}
	raw := json.RawMessage(bytes.Clone(bytes.TrimSpace(resp.body)))
	if c.version == V2_1 {
		var w struct {
			ModelInfo            wireV21ModelInfo `json:"modelInfo"`
			ComposedTrainResults []struct {
				ModelID string `json:"modelId"`
			} `json:"composedTrainResults"`
		}
		if err := json.Unmarshal(raw, &w); err != nil || w.ModelInfo.ModelID == "" {
			return nil, fmt.Errorf("docintel: getModel: answer is not a v2.1 model")
		}
		m := v21Model(w.ModelInfo)
		for _, r := range w.ComposedTrainResults {
			if r.ModelID != "" {
				m.ComponentModelIDs = append(m.ComponentModelIDs, r.ModelID)
			}
		}
		m.Raw = raw
		return &m, nil
	}
	var w wireModel
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("docintel: get%s: answer is not a %s: %w", kindTitle(kind), kind, err)
	}
	m := modelFromWire(kind, w)
	if m.ID == "" {
		return nil, fmt.Errorf("docintel: get%s: answer has no id", kindTitle(kind))
	}
	m.Raw = raw
	return &m, nil
}

func kindTitle(k Kind) string {
	if k == KindClassifier {
		return "Classifier"
	}
	return "Model"
}

// Models lists custom models or classifiers, following nextLink; prebuilt-* models are skipped.
// Items are the list's summaries: no Raw, and v3/v4 list items carry no docTypes.
func (c *Client) Models(ctx context.Context, kind Kind) iter.Seq2[Model, error] {
	if err := checkKind(c.version, kind, false); err != nil {
		return failSeq[Model](err)
	}
	if c.version == V2_1 {
		first := c.url("/custom/models", url.Values{"op": {"full"}})
		return pages(c, ctx, "listModels", first, func(body []byte) ([]Model, string, error) {
			var page struct {
				ModelList []wireV21ModelInfo `json:"modelList"`
				NextLink  string             `json:"nextLink"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				return nil, "", fmt.Errorf("docintel: listModels: answer is not a v2.1 model list: %w", err)
			}
			out := make([]Model, 0, len(page.ModelList))
			for _, w := range page.ModelList {
				out = append(out, v21Model(w))
			}
			return out, page.NextLink, nil
		})
	}
	op := "list" + kindTitle(kind) + "s"
	return pages(c, ctx, op, c.url("/"+kind.collection(), nil), func(body []byte) ([]Model, string, error) {
		var page struct {
			Value    []wireModel `json:"value"`
			NextLink string      `json:"nextLink"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, "", fmt.Errorf("docintel: %s: answer is not a list: %w", op, err)
		}
		out := make([]Model, 0, len(page.Value))
		for _, w := range page.Value {
			m := modelFromWire(kind, w)
			if strings.HasPrefix(m.ID, "prebuilt-") {
				continue
			}
			out = append(out, m)
		}
		return out, page.NextLink, nil
	})
}

// DeleteModel deletes a model or classifier. On a copy target it also frees an id reserved by an
// authorization no copy consumed.
func (c *Client) DeleteModel(ctx context.Context, kind Kind, id string) error {
	if err := checkKind(c.version, kind, false); err != nil {
		return err
	}
	if err := c.checkID(kind, id); err != nil {
		return err
	}
	_, err := c.do(ctx, call{op: "delete" + kindTitle(kind), method: http.MethodDelete, url: c.url(c.modelPath(kind, id), nil)})
	return notFoundAsModel(err)
}

// ResourceInfo is the resource's custom model count and limit.
type ResourceInfo struct{ CustomModelCount, CustomModelLimit int }

// Info reads the model count and limit: /info, or v2.1's ?op=summary.
func (c *Client) Info(ctx context.Context) (*ResourceInfo, error) {
	type counts struct {
		Count int `json:"count"`
		Limit int `json:"limit"`
	}
	if c.version == V2_1 {
		resp, err := c.do(ctx, call{op: "getSummary", method: http.MethodGet, url: c.url("/custom/models", url.Values{"op": {"summary"}})})
		if err != nil {
			return nil, err
		}
		var w struct {
			Summary *counts `json:"summary"`
		}
		if err := json.Unmarshal(resp.body, &w); err != nil || w.Summary == nil {
			return nil, fmt.Errorf("docintel: getSummary: answer has no summary")
		}
		return &ResourceInfo{CustomModelCount: w.Summary.Count, CustomModelLimit: w.Summary.Limit}, nil
	}
	resp, err := c.do(ctx, call{op: "getInfo", method: http.MethodGet, url: c.url("/info", nil)})
	if err != nil {
		return nil, err
	}
	var w struct {
		CustomDocumentModels *counts `json:"customDocumentModels"`
	}
	if err := json.Unmarshal(resp.body, &w); err != nil || w.CustomDocumentModels == nil {
		return nil, fmt.Errorf("docintel: getInfo: answer has no customDocumentModels")
	}
	return &ResourceInfo{CustomModelCount: w.CustomDocumentModels.Count, CustomModelLimit: w.CustomDocumentModels.Limit}, nil
}

// ResourceLocation is the URL of a model or classifier on THIS resource as the service writes it
// in a copy operation's resourceLocation (v3/v4, with ?api-version=) or in v2.1's Location.
func (c *Client) ResourceLocation(kind Kind, id string) string {
	return c.url(c.modelPath(kind, id), nil)
}
