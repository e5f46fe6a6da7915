package didev

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// v2.1 handlers: {endpoint}/formrecognizer/v2.1/custom/models/... (no api-version query).

func (c *call) v2Base() string { return c.base + "/formrecognizer/" + c.v.v2Segment + "/custom/models" }

// v2 decorates a v2.1 answer: GA answers carry the retirement notice [rec].
func (c *call) v2(resp *response) *response {
	if c.v.deprecating && resp.backend {
		resp.set("azure-deprecating", v2DeprecatingValue)
	}
	if resp.contentType == "application/json; charset=utf-8" && !c.v.v2Preview {
		resp.lengthed = true // GA v2.1 answers carry Content-Length [rec]
	}
	return resp
}

func (c *call) v2Err(status int, code, msg string) *response {
	return c.v2(v2ErrResp(status, code, msg))
}

type v2TrainRequest struct {
	Source       *string `json:"source"`
	SourceFilter *struct {
		Prefix            string `json:"prefix"`
		IncludeSubFolders bool   `json:"includeSubFolders"`
	} `json:"sourceFilter"`
	UseLabelFile bool    `json:"useLabelFile"`
	ModelName    *string `json:"modelName"`
}

// handleV2Train starts a training: 201 with Location; the model is "creating" until it is ready [rec].
func handleV2Train(c *call) *response {
	var req v2TrainRequest
	if e := c.decodeBody(&req); e != nil {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, "Train request is invalid. The body must be a JSON object.")
	}
	if str(req.Source) == "" {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, "Train request is invalid. Field 'Source' is required.")
	}
	if len(str(req.ModelName)) > 1024 {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, "Train request is invalid. Field 'ModelName' is too long.")
	}
	if c.st.customCount() >= c.res.opts.MaxModels {
		return c.v2Err(http.StatusBadRequest, CodeDocumentModelLimit, errModelLimit(c.res.opts.MaxModels).err.Inner.Message)
	}
	id := uuid.NewString()
	m := newV2Model(id, c.now, c.now.Add(c.s.opts.BuildDuration), req.UseLabelFile, str(req.ModelName))
	c.s.putModel(c.res.key, m)
	return c.v2(emptyResp(http.StatusCreated).set("Location", c.v2Base()+"/"+id))
}

type v2AuthOut struct {
	ModelID                 string `json:"modelId"`
	AccessToken             string `json:"accessToken"`
	ExpirationDateTimeTicks int64  `json:"expirationDateTimeTicks"` // Unix seconds despite the name [rec]
}

// handleV2Authorize reserves a new model id on this (target) resource: 201, Location, and the
// authorization, valid 24 h [rec].
func handleV2Authorize(c *call) *response {
	if c.st.customCount() >= c.res.opts.MaxModels {
		return c.v2Err(http.StatusBadRequest, CodeDocumentModelLimit, errModelLimit(c.res.opts.MaxModels).err.Inner.Message)
	}
	id := uuid.NewString()
	token, a := c.issueAuth(KindModelV21, id, "", nil)
	resp := jsonResp(http.StatusCreated, v2AuthOut{ModelID: id, AccessToken: token, ExpirationDateTimeTicks: a.Expires.Unix()})
	resp.set("Location", c.v2Base()+"/"+id)
	return c.v2(resp)
}

func handleV2Get(c *call) *response {
	id := c.p[0]
	includeKeys := strings.EqualFold(c.r.URL.Query().Get("includeKeys"), "true")
	if m := c.st.Models[KindModelV21][id]; m != nil {
		return c.v2(jsonResp(http.StatusOK, renderV2Model(c.v, m, c.now, includeKeys)))
	}
	if a := c.st.reserved[KindModelV21][id]; a != nil {
		return c.v2(jsonResp(http.StatusOK, renderV2Reserved(a)))
	}
	return c.v2Err(http.StatusNotFound, CodeV21ModelNotFound, v2ModelNotFound(id))
}

func handleV2Delete(c *call) *response {
	id := c.p[0]
	if c.st.Models[KindModelV21][id] != nil {
		c.s.delModel(c.res.key, KindModelV21, id)
		return c.v2(emptyResp(http.StatusNoContent))
	}
	if a := c.st.reserved[KindModelV21][id]; a != nil {
		c.s.freeReservation(c.res.key, a)
		return c.v2(emptyResp(http.StatusNoContent))
	}
	return c.v2Err(http.StatusNotFound, CodeV21ModelNotFound, v2ModelNotFound(id))
}

type v2Summary struct {
	Count               int    `json:"count"`
	Limit               int    `json:"limit"`
	LastUpdatedDateTime string `json:"lastUpdatedDateTime"`
}

type v2ListOut struct {
	Summary   *v2Summary    `json:"summary,omitempty"`
	ModelList []v2ModelInfo `json:"modelList,omitempty"`
	NextLink  *string       `json:"nextLink,omitempty"`
}

// handleV2List serves ?op=summary and ?op=full (the default): ready and creating models, reserved
// ids included (assumption), by id, paged with an absolute nextLink ("" on the last page).
func handleV2List(c *call) *response {
	q := c.r.URL.Query()
	sum := &v2Summary{Count: c.st.visibleCount(c.now), Limit: c.res.opts.MaxModels, LastUpdatedDateTime: ts(c.now)}
	switch strings.ToLower(q.Get("op")) {
	case "summary":
		return c.v2(jsonResp(http.StatusOK, v2ListOut{Summary: sum}))
	case "", "full":
	default:
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, "Request is invalid. Parameter 'op' must be 'full' or 'summary'.")
	}
	cur, herr := c.cursor()
	if herr != nil {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, "Request is invalid. Parameter 'nextLink' is not a continuation token of this resource.")
	}
	ids := make([]string, 0, len(c.st.Models[KindModelV21])+len(c.st.reserved[KindModelV21]))
	for id := range c.st.Models[KindModelV21] {
		if id > cur {
			ids = append(ids, id)
		}
	}
	for id := range c.st.reserved[KindModelV21] {
		if id > cur && c.st.Models[KindModelV21][id] == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	size := c.s.opts.PageSize
	out := v2ListOut{Summary: sum, ModelList: []v2ModelInfo{}}
	for _, id := range ids[:min(len(ids), size)] {
		if m := c.st.Models[KindModelV21][id]; m != nil {
			out.ModelList = append(out.ModelList, renderV2Info(c.v, m, c.now))
		} else {
			out.ModelList = append(out.ModelList, renderV2Reserved(c.st.reserved[KindModelV21][id]).ModelInfo)
		}
	}
	next := ""
	if len(ids) > size {
		next = c.v2Base() + "?op=full&nextLink=" + encodeCursor(ids[size-1])
	}
	out.NextLink = &next
	return c.v2(jsonResp(http.StatusOK, out))
}

type v2CopyRequest struct {
	TargetResourceID     *string `json:"targetResourceId"`
	TargetResourceRegion *string `json:"targetResourceRegion"`
	CopyAuthorization    *struct {
		ModelID                 string          `json:"modelId"`
		AccessToken             string          `json:"accessToken"`
		ExpirationDateTimeTicks json.RawMessage `json:"expirationDateTimeTicks"`
	} `json:"copyAuthorization"`
}

// handleV2Copy starts a v2.1 copy from this (source) resource. Bad requests are 400 "1002"
// [rec]; authorization failures surface in the copy result as HTTP 200 + failed [rec].
func handleV2Copy(c *call) *response {
	src := c.p[0]
	var req v2CopyRequest
	if e := c.decodeBody(&req); e != nil {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, "Copy request is invalid. The body must be a JSON object.")
	}
	resID, region := str(req.TargetResourceID), str(req.TargetResourceRegion)
	// v2.1-preview.1 took any target id and failed later [rec]; GA checks the fields first [rec].
	if !c.v.v2Preview {
		if len(resID) > 1024 || !resourceIDRegex.MatchString(resID) {
			return c.v2Err(http.StatusBadRequest, CodeV21Invalid, v2MsgBadResource)
		}
		if !regionPattern.MatchString(region) {
			return c.v2Err(http.StatusBadRequest, CodeV21Invalid, v2MsgBadRegion)
		}
	}
	ca := req.CopyAuthorization
	if ca == nil || ca.ModelID == "" || ca.AccessToken == "" || len(ca.ExpirationDateTimeTicks) == 0 {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, v2MsgNoAuth)
	}
	ticks, err := strconv.ParseInt(strings.TrimSpace(string(ca.ExpirationDateTimeTicks)), 10, 64)
	if err != nil {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, "Copy request is invalid. Field 'CopyAuthorization.ExpirationDateTimeTicks' must be an integer.")
	}
	source := c.st.Models[KindModelV21][src]
	if source == nil {
		return c.v2Err(http.StatusNotFound, CodeV21ModelNotFound, v2ModelNotFound(src))
	}
	if !source.visible(c.now) {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, v2MsgSourceBusy)
	}
	target := c.s.byID[strings.ToLower(strings.TrimSpace(resID))]
	var a *auth
	if target != nil {
		a = c.s.stateOf(target).Auths[tokenHash(ca.AccessToken)]
	}
	exp := unixTicks(ticks)
	if a != nil {
		exp = a.Expires
	}
	if !c.now.Before(exp) {
		return c.v2Err(http.StatusBadRequest, CodeV21Invalid, v2MsgAuthExpired)
	}
	d := c.s.opts.CopyDuration
	op := &operation{
		ID: uuid.NewString(), Kind: opV2Copy, APIVersion: c.v.name,
		Created: c.now, Start: c.now.Add(d / 4), End: c.now.Add(d),
		V2Source: src, V2TargetID: ca.ModelID, V2Preview: c.v.v2Preview,
	}
	authErr := &v2Error{Code: CodeV21AuthMetadata, Message: v2MsgAuthMetadata}
	if c.v.v2Preview {
		authErr.Code = CodeV21AuthError // 2020: "AuthorizationError" [rec]
	}
	switch {
	case target == nil && c.v.v2Preview:
		op.V2Error = authErr
	case target == nil:
		op.V2Error = &v2Error{Code: CodeResourceResolverError, Message: opErrResolver(resID).Inner.Message}
	case a == nil || a.Kind != KindModelV21 || a.TargetID != ca.ModelID || a.State != AuthPending:
		op.V2Error = authErr // altered or already used
	case !equalFoldTrim(region, target.opts.Region):
		op.V2Error = authErr
		op.Start = op.End // a wrong region stays notStarted, then fails with 2024 [rec]
	case c.s.dice.chance(func(f Faults) float64 { return f.CopyFail }):
		op.V2Error = &v2Error{Code: CodeInternalServerError, Message: "An unexpected error occurred."}
	}
	if a != nil {
		a.Accepted++
		if a.State == AuthConsumed {
			a.AfterConsumed++
		}
	}
	if op.V2Error == nil {
		m := source.clone() // createdDateTime stays the source's [rec]
		m.ID = a.TargetID
		m.Ready = op.End
		a.State = AuthConsumed
		a.CopiedBy = op.ID
		c.s.putModel(target.key, m)
	}
	if a != nil {
		c.s.putAuth(target.key, a)
	}
	c.s.putOp(c.res.key, op)
	return c.v2(accepted("Operation-Location", c.v2Base()+"/"+src+"/copyresults/"+op.ID)) // lowercase copyresults [rec]
}

// unixTicks reads expirationDateTimeTicks: Unix seconds in v2.1, .NET ticks in v2.0 [rec].
func unixTicks(t int64) time.Time {
	const dotnetEpochTicks = 621355968000000000
	if t > 1e15 {
		return time.Unix(0, 0).Add(time.Duration(t-dotnetEpochTicks) * 100)
	}
	return time.Unix(t, 0)
}

func handleV2CopyResult(c *call) *response {
	src, rid := c.p[0], c.p[1]
	op := c.st.Ops[rid]
	if op == nil || op.Kind != opV2Copy || !strings.EqualFold(op.V2Source, src) || !c.now.Before(op.Created.Add(c.s.opts.OpTTL)) {
		return gatewayNotFound() // assumption: no recorded body for an unknown result id
	}
	status, updated := op.status(c.now)
	out := v2CopyOut{
		Status:              status,
		CreatedDateTime:     ts(op.Created),
		LastUpdatedDateTime: ts(updated),
		CopyResult:          v2CopyResult{ModelID: op.V2TargetID},
	}
	var resp *response
	switch status {
	case "failed":
		// A failure keeps HTTP 200, stamps both times with 7 fractional digits and names the
		// code in a header [rec].
		out.CreatedDateTime = op.End.UTC().Format(timeFormatV2)
		out.LastUpdatedDateTime = op.End.Add(300 * time.Nanosecond).UTC().Format(timeFormatV2)
		e := *op.V2Error
		if !op.V2Preview {
			e.InnerError = &v2InnerError{RequestID: c.reqID}
		}
		out.CopyResult.Errors = &[]v2Error{e}
		resp = jsonResp(http.StatusOK, out)
		if op.V2Preview {
			resp.set("x-ms-cs-error-code", e.Code)
		} else {
			resp.set("ms-azure-ai-errorcode", e.Code)
		}
	case "succeeded":
		out.CopyResult.Errors = &[]v2Error{}
		resp = jsonResp(http.StatusOK, out)
	default:
		resp = jsonResp(http.StatusOK, out)
	}
	return c.v2(resp)
}
