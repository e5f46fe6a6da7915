package didev

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// v3/v4 handlers: /documentintelligence and /formrecognizer with ?api-version=.

// itemURL is the URL of an item of the resource at base, in this call's api-version.
func (c *call) itemURL(base, collection, id string) string {
	return base + c.v.family.prefix() + "/" + collection + "/" + id + "?api-version=" + c.v.name
}

// location is the URL of an item of this resource, as the client addressed it.
func (c *call) location(collection, id string) string {
	return c.itemURL(c.base, collection, id)
}

func (c *call) operationLocation(opID string) string {
	return c.location("operations", opID)
}

func accepted(locationHeader, location string) *response {
	return emptyResp(http.StatusAccepted).set(locationHeader, location)
}

func collectionOf(kind Kind) string {
	if kind == KindClassifier {
		return "documentClassifiers"
	}
	return "documentModels"
}

type infoOut struct {
	CustomDocumentModels struct {
		Count int `json:"count"`
		Limit int `json:"limit"`
	} `json:"customDocumentModels"`
	CustomNeuralDocumentModelBuilds *neuralOut `json:"customNeuralDocumentModelBuilds,omitempty"`
}

type neuralOut struct {
	Used               int    `json:"used"`
	Quota              int    `json:"quota"`
	QuotaResetDateTime string `json:"quotaResetDateTime"`
}

func handleInfo(c *call) *response {
	var out infoOut
	out.CustomDocumentModels.Count = c.st.visibleCount(c.now)
	out.CustomDocumentModels.Limit = c.res.opts.MaxModels
	if c.v.neuralQuota {
		y, m, _ := c.now.Date()
		reset := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		out.CustomNeuralDocumentModelBuilds = &neuralOut{Used: 0, Quota: 20, QuotaResetDateTime: ts(reset)}
	}
	return jsonResp(http.StatusOK, out)
}

type pageOut struct {
	Value    []any  `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// cursor reads the opaque nextLink token of a list request ("" for the first page).
func (c *call) cursor() (string, *httpError) {
	tok := c.r.URL.Query().Get("nextLink")
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 {
		return "", errCursor()
	}
	return string(b), nil
}

// errCursor answers a nextLink token this resource did not issue.
func errCursor() *httpError {
	return errParamInvalid("nextLink", "the continuation token is not one this resource issued.")
}

// nextLink is the absolute URL of the page after cursor.
func (c *call) nextLink(path, cursor string) string {
	return c.base + path + "?api-version=" + c.v.name + "&nextLink=" + encodeCursor(cursor)
}

func handleListModels(c *call) *response {
	cur, herr := c.cursor()
	if herr != nil {
		return errResp(herr)
	}
	size := c.s.opts.PageSize
	out := pageOut{Value: []any{}}
	pre := prebuiltModels(c.v)
	// Prebuilt models come first [rec], then custom ones by id ("p:N" / "c:ID" cursors).
	customAfter := ""
	start := 0
	switch {
	case strings.HasPrefix(cur, "p:"):
		n, err := strconv.Atoi(cur[2:])
		if err != nil || n < 0 || n >= len(pre) {
			return errResp(errCursor())
		}
		start = n + 1
	case strings.HasPrefix(cur, "c:"):
		start = len(pre)
		customAfter = cur[2:]
	case cur != "":
		return errResp(errCursor())
	}
	last := ""
	next := start
	for ; next < len(pre) && len(out.Value) < size; next++ {
		out.Value = append(out.Value, renderPrebuilt(c.v, pre[next][0], pre[next][1], true))
		last = "p:" + strconv.Itoa(next)
	}
	room := size - len(out.Value)
	ids := c.st.sortedIDs(KindModel, customAfter, room, c.now) // at most room+1
	for _, id := range ids[:min(len(ids), room)] {
		out.Value = append(out.Value, renderModel(c.v, c.st.Models[KindModel][id], true))
		last = "c:" + id
	}
	more := len(ids) > room || next < len(pre)
	if more {
		out.NextLink = c.nextLink(c.v.family.prefix()+"/documentModels", last)
	}
	return jsonResp(http.StatusOK, out)
}

func handleListClassifiers(c *call) *response {
	return c.listPage("documentClassifiers", func(cur string, size int) []string {
		return c.st.sortedIDs(KindClassifier, cur, size, c.now)
	}, func(id string) any {
		return renderClassifier(c.v, c.st.Models[KindClassifier][id])
	})
}

func getHandler(kind Kind) handler {
	return func(c *call) *response {
		id := c.p[0]
		if kind == KindModel {
			if desc, ok := isPrebuilt(c.v, id); ok {
				return jsonResp(http.StatusOK, renderPrebuilt(c.v, id, desc, false))
			}
		}
		m := c.st.get(kind, id, c.now)
		if m == nil {
			return errResp(errModelNotFound())
		}
		if kind == KindClassifier {
			return jsonResp(http.StatusOK, renderClassifier(c.v, m))
		}
		return jsonResp(http.StatusOK, renderModel(c.v, m, false))
	}
}

// deleteHandler deletes a model or classifier, or frees an id an unconsumed authorization
// reserves (assumption: 204, CONTRACT decided semantics).
func deleteHandler(kind Kind) handler {
	return func(c *call) *response {
		id := c.p[0]
		if m := c.st.get(kind, id, c.now); m != nil {
			c.s.delModel(c.res.key, kind, id)
			return emptyResp(http.StatusNoContent)
		}
		if a := c.st.reserved[kind][id]; a != nil {
			c.s.freeReservation(c.res.key, a)
			return emptyResp(http.StatusNoContent)
		}
		return errResp(errModelNotFound())
	}
}

func validateID(param, id string) *httpError {
	if id == "" {
		return errParamMissing(param)
	}
	if !modelIDPattern.MatchString(id) {
		return errParamInvalid(param, "the identifier must match ^[a-zA-Z0-9][a-zA-Z0-9._~-]{1,63}$.")
	}
	if strings.HasPrefix(strings.ToLower(id), "prebuilt-") {
		return errParamInvalid(param, "the prefix prebuilt- is reserved.")
	}
	return nil
}

func validateDescription(d *string) *httpError {
	if d != nil && len(*d) > 4096 {
		return errParamLength("description", 4096)
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// newOperation creates an operation of this resource that takes d: notStarted for the first
// quarter, then running [rec: both are seen before succeeded].
func (c *call) newOperation(kind string, d time.Duration) *operation {
	return &operation{
		ID:         operationID(c.now, c.reqID),
		Kind:       kind,
		APIVersion: c.v.name,
		Created:    c.now,
		Start:      c.now.Add(d / 4),
		End:        c.now.Add(d),
	}
}

// newModel names the model a build or compose request creates.
type newModel struct {
	ModelID     *string `json:"modelId"`
	Description *string `json:"description"`
}

func (r *newModel) newItem(Kind) (string, string, *string) {
	return "modelId", str(r.ModelID), r.Description
}

type buildRequest struct {
	newModel
	BuildMode        *string           `json:"buildMode"`
	AzureBlobSource  *blobSource       `json:"azureBlobSource"`
	AzureBlobFiles   *fileListSource   `json:"azureBlobFileListSource"`
	Tags             map[string]string `json:"tags"`
	AllowOverwrite   bool              `json:"allowOverwrite"`
	MaxTrainingHours *float64          `json:"maxTrainingHours"`
}

// quotaErr reports DocumentModelLimit when one more custom model would exceed the limit.
func (c *call) quotaErr() *httpError {
	if c.st.customCount() >= c.res.opts.MaxModels {
		return errModelLimit(c.res.opts.MaxModels)
	}
	return nil
}

func handleBuildModel(c *call) *response {
	var req buildRequest
	id, e := c.decodeNewItem(&req, KindModel)
	if e != nil {
		return errResp(e)
	}
	mode := str(req.BuildMode)
	switch mode {
	case "":
		return errResp(errParamMissing("buildMode"))
	case "template", "neural":
	default:
		return errResp(errParamInvalid("buildMode", "the value must be template or neural."))
	}
	switch {
	case req.AzureBlobSource == nil && req.AzureBlobFiles == nil:
		return errResp(errParamMissing("azureBlobSource"))
	case req.AzureBlobSource != nil && req.AzureBlobSource.ContainerURL == "":
		return errResp(errParamMissing("azureBlobSource.containerUrl"))
	case req.AzureBlobFiles != nil && (req.AzureBlobFiles.ContainerURL == "" || req.AzureBlobFiles.FileList == ""):
		return errResp(errParamMissing("azureBlobFileListSource.fileList"))
	}
	if req.MaxTrainingHours != nil && (*req.MaxTrainingHours < 0 || *req.MaxTrainingHours > 10000) {
		return errResp(errParamInvalid("maxTrainingHours", "the value is out of range."))
	}
	if e := c.admit(KindModel, id, req.AllowOverwrite); e != nil {
		return errResp(e)
	}
	op := c.newOperation(opModelBuild, c.s.opts.BuildDuration)
	m := newTemplateModel(id, c.v.name, op.End)
	m.BuildMode = mode
	m.DocTypes[id] = &docType{BuildMode: mode, FieldSchema: recordedFieldSchema, FieldConfidence: recordedFieldConfidence}
	m.Description = str(req.Description)
	m.Tags = cloneTags(req.Tags)
	op.Tags = cloneTags(req.Tags) // operations carry the build's tags [rec]
	return c.startBuild(op, m)
}

type composeRequest struct {
	newModel
	ComponentModels []struct {
		ModelID string `json:"modelId"`
	} `json:"componentModels"`
	ClassifierID *string `json:"classifierId"`
	Split        *string `json:"split"`
	DocTypes     map[string]*struct {
		ModelID     string `json:"modelId"`
		Description string `json:"description"`
	} `json:"docTypes"`
	Tags map[string]string `json:"tags"`
}

func handleCompose(c *call) *response {
	var req composeRequest
	id, e := c.decodeNewItem(&req, KindModel)
	if e != nil {
		return errResp(e)
	}
	docTypes := map[string]*docType{}
	if c.v.newCompose {
		cid := str(req.ClassifierID)
		if cid == "" {
			return errResp(errParamMissing("classifierId"))
		}
		if c.st.get(KindClassifier, cid, c.now) == nil {
			return errResp(errParamInvalid("classifierId", "the classifier "+cid+" was not found."))
		}
		if len(req.DocTypes) == 0 {
			return errResp(errParamMissing("docTypes"))
		}
		if s := str(req.Split); s != "" && s != "auto" && s != "none" && s != "perPage" {
			return errResp(errParamInvalid("split", "the value must be auto, none or perPage."))
		}
		for name, dt := range req.DocTypes {
			if dt == nil || dt.ModelID == "" {
				return errResp(errParamMissing("docTypes." + name + ".modelId"))
			}
			comp := c.st.get(KindModel, dt.ModelID, c.now)
			if comp == nil {
				return errResp(errParamInvalid("docTypes."+name+".modelId", "the model "+dt.ModelID+" was not found."))
			}
			d := firstDocType(comp)
			d.ModelID = dt.ModelID
			d.Description = dt.Description
			docTypes[name] = d
		}
	} else {
		if len(req.ComponentModels) == 0 {
			return errResp(errParamMissing("componentModels"))
		}
		for _, cm := range req.ComponentModels {
			comp := c.st.get(KindModel, cm.ModelID, c.now)
			if comp == nil {
				return errResp(errParamInvalid("componentModels", "the model "+cm.ModelID+" was not found."))
			}
			for name, dt := range comp.DocTypes {
				docTypes[name] = dt
			}
		}
	}
	if e := c.admit(KindModel, id, false); e != nil {
		return errResp(e)
	}
	op := c.newOperation(opModelCompose, c.s.opts.BuildDuration)
	m := newTemplateModel(id, c.v.name, op.End)
	m.DocTypes = docTypes
	m.Description = str(req.Description)
	m.Tags = cloneTags(req.Tags)
	if c.v.newCompose {
		m.ClassifierID = str(req.ClassifierID)
		m.Split = str(req.Split)
		if m.Split == "" {
			m.Split = "none"
		}
	}
	op.Tags = cloneTags(req.Tags)
	return c.startBuild(op, m)
}

// firstDocType copies the component's docType with the smallest name.
func firstDocType(m *model) *docType {
	names := make([]string, 0, len(m.DocTypes))
	for n := range m.DocTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return &docType{BuildMode: "template", FieldSchema: recordedFieldSchema}
	}
	d := *m.DocTypes[names[0]]
	return &d
}

type classifierBuildRequest struct {
	ClassifierID     *string              `json:"classifierId"`
	Description      *string              `json:"description"`
	BaseClassifierID *string              `json:"baseClassifierId"`
	DocTypes         map[string]*classDoc `json:"docTypes"`
	AllowOverwrite   bool                 `json:"allowOverwrite"`
}

func (r *classifierBuildRequest) newItem(Kind) (string, string, *string) {
	return "classifierId", str(r.ClassifierID), r.Description
}

func handleBuildClassifier(c *call) *response {
	var req classifierBuildRequest
	id, e := c.decodeNewItem(&req, KindClassifier)
	if e != nil {
		return errResp(e)
	}
	if len(req.DocTypes) == 0 {
		return errResp(errParamMissing("docTypes"))
	}
	classes := make(map[string]*classDoc, len(req.DocTypes))
	for name, d := range req.DocTypes {
		if name == "" || d == nil || (d.Blob == nil) == (d.FileList == nil) {
			return errResp(errParamInvalid("docTypes."+name, "each document type needs exactly one of azureBlobSource or azureBlobFileListSource."))
		}
		if (d.Blob != nil && d.Blob.ContainerURL == "") || (d.FileList != nil && (d.FileList.ContainerURL == "" || d.FileList.FileList == "")) {
			return errResp(errParamMissing("docTypes." + name + ".containerUrl"))
		}
		classes[name] = d
	}
	if b := str(req.BaseClassifierID); b != "" && c.st.get(KindClassifier, b, c.now) == nil {
		return errResp(errParamInvalid("baseClassifierId", "the classifier "+b+" was not found."))
	}
	if e := c.admit(KindClassifier, id, req.AllowOverwrite); e != nil {
		return errResp(e)
	}
	op := c.newOperation(opClassifierBuild, c.s.opts.BuildDuration)
	m := newSeedClassifier(id, c.v.name, op.End)
	m.Classes = classes
	m.Description = str(req.Description)
	m.BaseClassifierID = str(req.BaseClassifierID)
	return c.startBuild(op, m)
}

func handleGetOp(c *call) *response {
	op := c.st.Ops[c.p[0]]
	if op == nil || !c.v.hasKind(op.Kind) || !c.now.Before(op.Created.Add(c.s.opts.OpTTL)) {
		return errResp(errOperationNotFound())
	}
	resp := jsonResp(http.StatusOK, renderOp(c.v, op, c.now, false))
	if c.v.opContentLength {
		resp.contentType = "application/json"
		resp.lengthed = true
	}
	return resp
}

// handleListOps lists this resource's operations newest first: ascending ids, since the id
// prefix counts down [rec].
func handleListOps(c *call) *response {
	return c.listPage("operations", c.opIDsAfter, func(id string) any {
		return renderOp(c.v, c.st.Ops[id], c.now, true)
	})
}

// opIDsAfter drops expired operations, then lists the ids after cur of the kinds this
// api-version knows, in order.
func (c *call) opIDsAfter(cur string, _ int) []string {
	c.s.pruneOps(c.res.key, c.now)
	ids := make([]string, 0, len(c.st.Ops))
	for id, op := range c.st.Ops {
		if id > cur && c.v.hasKind(op.Kind) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

type authorizeRequest struct {
	ModelID      *string           `json:"modelId"`
	ClassifierID *string           `json:"classifierId"`
	Description  *string           `json:"description"`
	Tags         map[string]string `json:"tags"`
}

// newItem names the model or classifier id, by the kind authorized.
func (r *authorizeRequest) newItem(kind Kind) (string, string, *string) {
	if kind == KindClassifier {
		return "classifierId", str(r.ClassifierID), r.Description
	}
	return "modelId", str(r.ModelID), r.Description
}

// newToken is an opaque access token; only its hash is stored.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// issueAuth reserves id on this (target) resource and records the authorization.
func (c *call) issueAuth(kind Kind, id, description string, tags map[string]string) (string, *auth) {
	token := newToken()
	// Whole seconds: the expiry enforced is the one the wire shows (v2.1 ticks are seconds).
	expires := c.now.Add(c.s.opts.authTTL(c.v)).Truncate(time.Second)
	if c.s.dice.chance(func(f Faults) float64 { return f.ExpireAuth }) {
		expires = c.now.Add(-time.Second) // fault: issued already expired
	}
	a := &auth{
		ID:          uuid.NewString(),
		Hash:        tokenHash(token),
		Kind:        kind,
		TargetID:    id,
		Description: description,
		Tags:        cloneTags(tags),
		APIVersion:  c.v.name,
		Issued:      c.now,
		Expires:     expires,
		State:       AuthPending,
	}
	c.s.putAuth(c.res.key, a)
	return token, a
}

type modelAuthOut struct {
	TargetResourceID     string `json:"targetResourceId"`
	TargetResourceRegion string `json:"targetResourceRegion"`
	TargetModelID        string `json:"targetModelId"`
	TargetModelLocation  string `json:"targetModelLocation"`
	AccessToken          string `json:"accessToken"`
	ExpirationDateTime   string `json:"expirationDateTime"`
}

type classifierAuthOut struct {
	TargetResourceID         string `json:"targetResourceId"`
	TargetResourceRegion     string `json:"targetResourceRegion"`
	TargetClassifierID       string `json:"targetClassifierId"`
	TargetClassifierLocation string `json:"targetClassifierLocation"`
	AccessToken              string `json:"accessToken"`
	ExpirationDateTime       string `json:"expirationDateTime"`
}

func authorizeHandler(kind Kind) handler {
	return func(c *call) *response {
		var req authorizeRequest
		id, e := c.decodeNewItem(&req, kind)
		if e != nil {
			return errResp(e)
		}
		// An existing or reserved id is 409 ModelExists [rec].
		if e := c.admit(kind, id, false); e != nil {
			return errResp(e)
		}
		token, a := c.issueAuth(kind, id, str(req.Description), req.Tags)
		loc := c.location(collectionOf(kind), id)
		exp := ts(a.Expires)
		if kind == KindClassifier {
			return jsonResp(http.StatusOK, classifierAuthOut{c.res.opts.ResourceID, c.res.opts.Region, id, loc, token, exp})
		}
		return jsonResp(http.StatusOK, modelAuthOut{c.res.opts.ResourceID, c.res.opts.Region, id, loc, token, exp})
	}
}

type copyRequest struct {
	TargetResourceID         *string `json:"targetResourceId"`
	TargetResourceRegion     *string `json:"targetResourceRegion"`
	TargetModelID            *string `json:"targetModelId"`
	TargetModelLocation      *string `json:"targetModelLocation"`
	TargetClassifierID       *string `json:"targetClassifierId"`
	TargetClassifierLocation *string `json:"targetClassifierLocation"`
	AccessToken              *string `json:"accessToken"`
	ExpirationDateTime       *string `json:"expirationDateTime"`
}

// copyToHandler starts a copy on this (source) resource. Synchronous errors: a missing or
// not-ready source (400 ModelNotReady [rec]) and an expired authorization (decided semantics).
// Everything else surfaces in the operation, decided here so that the outcome is fixed when
// the 202 is sent.
func copyToHandler(kind Kind) handler {
	return func(c *call) *response {
		var req copyRequest
		if e := c.decodeBody(&req); e != nil {
			return errResp(e)
		}
		targetID, targetLoc := req.TargetModelID, req.TargetModelLocation
		idParam, locParam := "targetModelId", "targetModelLocation"
		if kind == KindClassifier {
			targetID, targetLoc = req.TargetClassifierID, req.TargetClassifierLocation
			idParam, locParam = "targetClassifierId", "targetClassifierLocation"
		}
		for _, f := range []struct {
			name string
			v    *string
		}{
			{"targetResourceId", req.TargetResourceID}, {"targetResourceRegion", req.TargetResourceRegion},
			{idParam, targetID}, {locParam, targetLoc}, {"accessToken", req.AccessToken},
			{"expirationDateTime", req.ExpirationDateTime},
		} {
			if str(f.v) == "" {
				return errResp(errParamMissing(f.name))
			}
		}
		if !modelIDPattern.MatchString(*targetID) {
			return errResp(errParamInvalid(idParam, "the identifier must match ^[a-zA-Z0-9][a-zA-Z0-9._~-]{1,63}$."))
		}
		exp, err := time.Parse(time.RFC3339Nano, *req.ExpirationDateTime)
		if err != nil {
			return errResp(errParamInvalid("expirationDateTime", "the value must be an RFC 3339 date-time."))
		}
		source := c.st.get(kind, c.p[0], c.now)
		if source == nil {
			return errResp(errModelNotReady())
		}
		target := c.s.byID[strings.ToLower(strings.TrimSpace(*req.TargetResourceID))]
		var tst *resState
		var a *auth
		if target != nil {
			tst = c.s.stateOf(target)
			a = tst.Auths[tokenHash(*req.AccessToken)]
		}
		if a != nil {
			exp = a.Expires // the target's record is authoritative
		}
		if !c.now.Before(exp) {
			return errResp(errAuthExpired())
		}
		op := c.newOperation(opModelCopy, c.s.opts.CopyDuration)
		if kind == KindClassifier {
			op.Kind = opClassifierCopy
		}
		op.ResourceLocation = *targetLoc
		if target != nil {
			// resourceLocation points at the target resource [rec].
			op.ResourceLocation = c.itemURL(target.endpoint, collectionOf(kind), *targetID)
		}
		degrade := strings.EqualFold(strings.TrimSpace(c.r.Header.Get("x-ms-forms-copy-degrade")), "true")
		switch {
		case target == nil:
			op.Error = opErrResolver(*req.TargetResourceID)
		case a == nil || a.Kind != kind || a.TargetID != *targetID:
			op.Error = opErrAuthFailed() // altered: no such token, or it names another id
		case a.State != AuthPending:
			op.Error = opErrAuthUsed() // each authorization allows one successful copy
		case !equalFoldTrim(*req.TargetResourceRegion, target.opts.Region):
			op.Error = opErrAuthUsed() // assumption: like v2.1's wrong-region failure (2024)
		case c.res.opts.Encrypted && !target.opts.Encrypted && !degrade:
			op.Error = opErrDowngrade()
		case tst.taken(kind, a.TargetID) && tst.reserved[kind][a.TargetID] != a:
			op.Error = opErrTargetExists()
		case kind == KindModel && tst.customCount()-1 >= target.opts.MaxModels:
			// The reservation holds a slot, so only a lowered limit (a restart with a smaller
			// max-models) gets here.
			op.Error = opErrModelLimit(target.opts.MaxModels)
		case c.s.dice.chance(func(f Faults) float64 { return f.CopyFail }):
			op.Error = opErrInternal()
		}
		if a != nil {
			a.Accepted++
			if a.State == AuthConsumed {
				a.AfterConsumed++
			}
		}
		if op.Error == nil {
			m := c.copiedItem(kind, source, a, op)
			a.State = AuthConsumed
			a.CopiedBy = op.ID
			c.s.putModel(target.key, m)
			op.Result = m
		}
		if a != nil {
			c.s.putAuth(target.key, a)
		}
		c.s.putOp(c.res.key, op)
		return accepted("Operation-Location", c.operationLocation(op.ID)) // copies spell it capitalised [rec]
	}
}

// copiedItem is the target's copy of source as the copy's api-version makes it [rec]:
// description and tags from the authorization; docType renamed to the target id (kept in
// 2023-02-28-preview); createdDateTime the source's through 2023-07-31 and the copy time after;
// expirationDateTime the source's. Classifiers keep the source's description, modifiedDateTime
// and expirationDateTime and get no tags.
func (c *call) copiedItem(kind Kind, source *model, a *auth, op *operation) *model {
	m := source.clone()
	m.ID = a.TargetID
	m.Ready = op.End
	m.APIVersion = c.v.name
	m.Expires = source.Expires
	if kind == KindClassifier {
		m.Created = op.End
		if m.Modified.IsZero() {
			m.Modified = source.Created
		}
		m.Tags = nil
		if a.Description != "" {
			m.Description = a.Description // assumption: an authorization's description wins
		}
		return m
	}
	m.Description = a.Description
	m.Tags = cloneTags(a.Tags)
	if c.v.copyKeepsCreated {
		m.Created = source.Created
	} else {
		m.Created = op.End
	}
	if !c.v.keepDocTypeName {
		if dt, ok := m.DocTypes[source.ID]; ok {
			delete(m.DocTypes, source.ID)
			m.DocTypes[a.TargetID] = dt
		}
	}
	return m
}
