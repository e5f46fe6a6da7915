package didev

import (
	"strconv"
	"time"
)

// Wire shapes. Field order follows the recorded responses.

const (
	timeFormat   = "2006-01-02T15:04:05Z"
	timeFormatV2 = "2006-01-02T15:04:05.9999999Z" // failed v2.1 copy results carry 7 fractional digits [rec]
)

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

type modelOut struct {
	DocTypes           map[string]*docType `json:"docTypes,omitempty"`
	ModelID            string              `json:"modelId"`
	CreatedDateTime    string              `json:"createdDateTime"`
	ExpirationDateTime string              `json:"expirationDateTime,omitempty"`
	APIVersion         string              `json:"apiVersion"`
	Description        string              `json:"description,omitempty"`
	Tags               map[string]string   `json:"tags,omitempty"`
	ClassifierID       string              `json:"classifierId,omitempty"`
	Split              string              `json:"split,omitempty"`
}

// renderModel renders a document model as version v shows it; summary drops docTypes (list items).
func renderModel(v *apiVersion, m *model, summary bool) modelOut {
	out := modelOut{
		ModelID:         m.ID,
		CreatedDateTime: ts(m.Created),
		APIVersion:      m.APIVersion,
		Description:     m.Description,
		Tags:            m.Tags,
	}
	if v.modelExpiration {
		out.ExpirationDateTime = ts(m.Expires)
	}
	if v.newCompose {
		out.ClassifierID = m.ClassifierID
		out.Split = m.Split
	}
	if !summary {
		out.DocTypes = make(map[string]*docType, len(m.DocTypes))
		for name, dt := range m.DocTypes {
			if dt.ModelID != "" && !v.newCompose {
				c := *dt
				c.ModelID = ""
				dt = &c
			}
			out.DocTypes[name] = dt
		}
	}
	return out
}

type prebuiltOut struct {
	ModelID         string               `json:"modelId"`
	CreatedDateTime string               `json:"createdDateTime"`
	APIVersion      string               `json:"apiVersion"`
	Description     string               `json:"description"`
	DocTypes        map[string]*struct{} `json:"docTypes,omitempty"`
}

func renderPrebuilt(v *apiVersion, id, desc string, summary bool) prebuiltOut {
	out := prebuiltOut{ModelID: id, CreatedDateTime: v.prebuiltDate, APIVersion: v.name, Description: desc}
	if !summary {
		out.DocTypes = map[string]*struct{}{}
	}
	return out
}

type classDocOut struct {
	Kind     string          `json:"kind,omitempty"`
	Blob     *blobSource     `json:"azureBlobSource,omitempty"`
	FileList *fileListSource `json:"azureBlobFileListSource,omitempty"`
}

type classifierOut struct {
	ClassifierID       string                 `json:"classifierId"`
	CreatedDateTime    string                 `json:"createdDateTime"`
	ModifiedDateTime   string                 `json:"modifiedDateTime,omitempty"`
	ExpirationDateTime string                 `json:"expirationDateTime,omitempty"`
	APIVersion         string                 `json:"apiVersion"`
	BaseClassifierID   string                 `json:"baseClassifierId,omitempty"`
	DocTypes           map[string]classDocOut `json:"docTypes"`
	Description        string                 `json:"description,omitempty"`
}

func renderClassifier(v *apiVersion, m *model) classifierOut {
	out := classifierOut{
		ClassifierID:     m.ID,
		CreatedDateTime:  ts(m.Created),
		APIVersion:       m.APIVersion,
		BaseClassifierID: m.BaseClassifierID,
		Description:      m.Description,
		DocTypes:         make(map[string]classDocOut, len(m.Classes)),
	}
	if v.classifierModified && !m.Modified.IsZero() {
		out.ModifiedDateTime = ts(m.Modified)
	}
	if v.modelExpiration {
		out.ExpirationDateTime = ts(m.Expires)
	}
	for name, c := range m.Classes {
		d := classDocOut{Blob: c.Blob, FileList: c.FileList}
		if v.classifierDocKind {
			// The service sends "kind" where the spec says "sourceKind" [rec].
			d.Kind = "azureBlob"
			if c.FileList != nil {
				d.Kind = "azureBlobFileList"
			}
		}
		out.DocTypes[name] = d
	}
	return out
}

type opOut struct {
	OperationID         string            `json:"operationId"`
	Kind                string            `json:"kind"`
	Status              string            `json:"status"`
	CreatedDateTime     string            `json:"createdDateTime"`
	LastUpdatedDateTime string            `json:"lastUpdatedDateTime"`
	ResourceLocation    string            `json:"resourceLocation"`
	PercentCompleted    *int              `json:"percentCompleted,omitempty"`
	Result              any               `json:"result,omitempty"`
	Error               *apiError         `json:"error,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
	APIVersion          string            `json:"apiVersion,omitempty"`
}

var (
	percentZero    = 0
	percentHundred = 100
)

// renderOp renders a v3/v4 operation at now. Summaries (list items) carry no result or error.
func renderOp(v *apiVersion, op *operation, now time.Time, summary bool) opOut {
	status, updated := op.status(now)
	out := opOut{
		OperationID:         op.ID,
		Kind:                op.Kind,
		Status:              status,
		CreatedDateTime:     ts(op.Created),
		LastUpdatedDateTime: ts(updated),
		ResourceLocation:    op.ResourceLocation,
		Tags:                op.Tags,
	}
	switch status {
	case "succeeded", "failed":
		// percentCompleted is absent until the final state, then 100 [rec].
		out.PercentCompleted = &percentHundred
	case "running":
		if v.runningPercent {
			out.PercentCompleted = &percentZero // 2024-11-30 shows 0 while running [rec]
		}
	}
	if v.opAPIVersion {
		out.APIVersion = op.APIVersion
	}
	if summary {
		return out
	}
	switch status {
	case "failed":
		out.Error = op.Error
	case "succeeded":
		if op.Result != nil {
			if op.Result.Kind == KindClassifier {
				out.Result = renderClassifier(v, op.Result)
			} else {
				out.Result = renderModel(v, op.Result, false)
			}
		}
	}
	return out
}

// v2.1 shapes.

type v2Attributes struct {
	IsComposed bool `json:"isComposed"`
}

type v2ModelInfo struct {
	ModelID             string        `json:"modelId"`
	ModelName           string        `json:"modelName,omitempty"`
	Attributes          *v2Attributes `json:"attributes,omitempty"`
	Status              string        `json:"status"`
	CreatedDateTime     string        `json:"createdDateTime"`
	LastUpdatedDateTime string        `json:"lastUpdatedDateTime"`
}

type v2TrainDoc struct {
	DocumentName string `json:"documentName"`
	Pages        int    `json:"pages"`
	Errors       *[]any `json:"errors,omitempty"` // unlabeled trainings list per-document errors [rec]
	Status       string `json:"status"`
}

type v2Field struct {
	FieldName string  `json:"fieldName"`
	Accuracy  float64 `json:"accuracy"`
}

type v2TrainResult struct {
	ModelID              string       `json:"modelId,omitempty"`
	AverageModelAccuracy *float64     `json:"averageModelAccuracy,omitempty"`
	TrainingDocuments    []v2TrainDoc `json:"trainingDocuments"`
	Fields               []v2Field    `json:"fields,omitempty"`
	Errors               []any        `json:"errors"`
}

type v2Keys struct {
	Clusters map[string][]string `json:"clusters"`
}

type v2ModelOut struct {
	ModelInfo            v2ModelInfo     `json:"modelInfo"`
	Keys                 *v2Keys         `json:"keys,omitempty"`
	TrainResult          *v2TrainResult  `json:"trainResult,omitempty"`
	ComposedTrainResults []v2TrainResult `json:"composedTrainResults,omitempty"`
}

func renderV2Info(v *apiVersion, m *model, now time.Time) v2ModelInfo {
	info := v2ModelInfo{ModelID: m.ID, CreatedDateTime: ts(m.Created)}
	if m.V2 != nil {
		info.ModelName = m.V2.Name
	}
	if m.visible(now) {
		info.Status = "ready"
		info.LastUpdatedDateTime = ts(m.Ready)
		if !v.v2Preview {
			info.Attributes = &v2Attributes{IsComposed: m.V2 != nil && m.V2.Composed}
		}
	} else {
		info.Status = "creating"
		info.LastUpdatedDateTime = ts(m.Created)
	}
	return info
}

func v2TrainResultOf(m *model, withModelID bool) v2TrainResult {
	tr := v2TrainResult{Errors: []any{}}
	if withModelID {
		tr.ModelID = m.ID
	}
	labeled := m.V2 == nil || m.V2.Labeled
	for i := 1; i <= 5; i++ {
		d := v2TrainDoc{DocumentName: "Form_" + strconv.Itoa(i) + ".jpg", Pages: 1, Status: "succeeded"}
		if !labeled {
			d.Errors = &[]any{}
		}
		tr.TrainingDocuments = append(tr.TrainingDocuments, d)
	}
	if labeled {
		acc := 0.96
		tr.AverageModelAccuracy = &acc
		for _, f := range recordedV2Fields {
			tr.Fields = append(tr.Fields, v2Field{FieldName: f.Name, Accuracy: f.Accuracy})
		}
	}
	return tr
}

// renderV2Model renders GET /custom/models/{id}; a model still creating shows only modelInfo [rec].
func renderV2Model(v *apiVersion, m *model, now time.Time, includeKeys bool) v2ModelOut {
	out := v2ModelOut{ModelInfo: renderV2Info(v, m, now)}
	if !m.visible(now) {
		return out
	}
	if includeKeys && m.V2 != nil && !m.V2.Labeled {
		out.Keys = &v2Keys{Clusters: map[string][]string{"0": recordedV2Keys}}
	}
	tr := v2TrainResultOf(m, false)
	out.TrainResult = &tr
	if m.V2 != nil && m.V2.Composed {
		for _, c := range m.V2.Components {
			ct := v2TrainResultOf(&model{ID: c, V2: &v2Info{Labeled: true}}, true)
			out.ComposedTrainResults = append(out.ComposedTrainResults, ct)
		}
	}
	return out
}

// renderV2Reserved renders a v2.1 id reserved by copyAuthorization: "creating" until a copy lands.
func renderV2Reserved(a *auth) v2ModelOut {
	return v2ModelOut{ModelInfo: v2ModelInfo{
		ModelID: a.TargetID, Status: "creating", CreatedDateTime: ts(a.Issued), LastUpdatedDateTime: ts(a.Issued),
	}}
}

type v2CopyResult struct {
	ModelID string     `json:"modelId"`
	Errors  *[]v2Error `json:"errors,omitempty"`
}

type v2CopyOut struct {
	Status              string       `json:"status"`
	CreatedDateTime     string       `json:"createdDateTime"`
	LastUpdatedDateTime string       `json:"lastUpdatedDateTime"`
	CopyResult          v2CopyResult `json:"copyResult"`
}
