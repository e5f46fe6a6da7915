package didev

import (
	"net/http"
	"net/url"
	"strings"
)

// Request categories for rate limits and stats (service-limits.md: S0 management 5/s, get
// operations 50/s, list 10/s).
const (
	CategoryManagement   = "management"    // build, compose, authorize, copy, delete, train
	CategoryGetOperation = "get-operation" // GET operations/{id}, v2.1 copy results
	CategoryList         = "list"          // lists, /info, summaries, GET of one model (assumption)
	CategoryOther        = "other"         // requests that matched no route
)

var categories = []string{CategoryManagement, CategoryGetOperation, CategoryList, CategoryOther}

type handler func(c *call) *response

// route is what a request matched.
type route struct {
	v        *apiVersion
	h        handler
	category string
	opName   string   // the APIM operation name, for the 429 message
	params   []string // ids from the path, as sent (ids are case-sensitive)
}

// match routes r. Path segments match case-insensitively [rec: the service accepts both
// copyResults and copyresults]; a miss is nil, answered with the gateway 404.
func match(r *http.Request) *route {
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(segs) < 2 {
		return nil
	}
	first := strings.ToLower(segs[0])
	if first == "formrecognizer" && strings.HasPrefix(strings.ToLower(segs[1]), "v2.") {
		v := lookupV2Segment(segs[1])
		if v == nil {
			return nil
		}
		return matchV2(r.Method, segs[2:], v)
	}
	var fam family
	switch first {
	case "documentintelligence":
		fam = famDI
	case "formrecognizer":
		fam = famFR
	default:
		return nil
	}
	// An unknown, missing or misplaced api-version is answered like an unknown route
	// (assumption: the gateway routes by version; CONTRACT.md records no answer).
	v := lookupVersion(apiVersionParam(r.URL))
	if v == nil || v.family != fam {
		return nil
	}
	return matchV3(r.Method, segs[1:], v)
}

func apiVersionParam(u *url.URL) string {
	vs := u.Query()["api-version"]
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// splitAction splits "documentModels:build" into its collection and action.
func splitAction(seg string) (string, string) {
	name, action, _ := strings.Cut(seg, ":")
	return strings.ToLower(name), strings.ToLower(action)
}

func matchV3(method string, segs []string, v *apiVersion) *route {
	rt := func(h handler, cat, op string, params ...string) *route {
		return &route{v: v, h: h, category: cat, opName: op, params: params}
	}
	switch len(segs) {
	case 1:
		name, action := splitAction(segs[0])
		switch {
		case name == "info" && action == "" && method == http.MethodGet:
			return rt(handleInfo, CategoryList, "Get Resource Details")
		case name == "operations" && action == "" && method == http.MethodGet:
			return rt(handleListOps, CategoryList, "List Operations")
		case name == "documentmodels" && method == http.MethodGet && action == "":
			return rt(handleListModels, CategoryList, "List Document Models")
		case name == "documentmodels" && method == http.MethodPost && action == "build":
			return rt(handleBuildModel, CategoryManagement, "Build Document Model")
		case name == "documentmodels" && method == http.MethodPost && action == "compose":
			return rt(handleCompose, CategoryManagement, "Compose Document Model")
		case name == "documentmodels" && method == http.MethodPost && action == "authorizecopy":
			return rt(authorizeHandler(KindModel), CategoryManagement, "Authorize Copy Document Model")
		case name == "documentclassifiers" && v.classifiers && method == http.MethodGet && action == "":
			return rt(handleListClassifiers, CategoryList, "List Document Classifiers")
		case name == "documentclassifiers" && v.classifiers && method == http.MethodPost && action == "build":
			return rt(handleBuildClassifier, CategoryManagement, "Build Document Classifier")
		case name == "documentclassifiers" && v.classifierCopy && method == http.MethodPost && action == "authorizecopy":
			return rt(authorizeHandler(KindClassifier), CategoryManagement, "Authorize Copy Document Classifier")
		}
	case 2:
		name := strings.ToLower(segs[0])
		id, action, hasAction := strings.Cut(segs[1], ":")
		if id == "" {
			return nil // "/documentModels/:copyTo" is the gateway 404 [rec]
		}
		action = strings.ToLower(action)
		switch {
		case name == "operations" && !hasAction && method == http.MethodGet:
			return rt(handleGetOp, CategoryGetOperation, "Get Operation", id)
		case name == "documentmodels" && !hasAction && method == http.MethodGet:
			return rt(getHandler(KindModel), CategoryList, "Get Document Model", id)
		case name == "documentmodels" && !hasAction && method == http.MethodDelete:
			return rt(deleteHandler(KindModel), CategoryManagement, "Delete Document Model", id)
		case name == "documentmodels" && action == "copyto" && method == http.MethodPost:
			return rt(copyToHandler(KindModel), CategoryManagement, "Copy Document Model To", id)
		case name == "documentclassifiers" && v.classifiers && !hasAction && method == http.MethodGet:
			return rt(getHandler(KindClassifier), CategoryList, "Get Document Classifier", id)
		case name == "documentclassifiers" && v.classifiers && !hasAction && method == http.MethodDelete:
			return rt(deleteHandler(KindClassifier), CategoryManagement, "Delete Document Classifier", id)
		case name == "documentclassifiers" && v.classifierCopy && action == "copyto" && method == http.MethodPost:
			return rt(copyToHandler(KindClassifier), CategoryManagement, "Copy Document Classifier To", id)
		}
	}
	return nil
}

func matchV2(method string, segs []string, v *apiVersion) *route {
	if len(segs) < 2 || !strings.EqualFold(segs[0], "custom") || !strings.EqualFold(segs[1], "models") {
		return nil
	}
	rt := func(h handler, cat, op string, params ...string) *route {
		return &route{v: v, h: h, category: cat, opName: op, params: params}
	}
	segs = segs[2:]
	for _, s := range segs {
		if s == "" {
			return nil
		}
	}
	switch len(segs) {
	case 0:
		switch method {
		case http.MethodGet:
			return rt(handleV2List, CategoryList, "List Custom Models")
		case http.MethodPost:
			return rt(handleV2Train, CategoryManagement, "Train Custom Model")
		}
	case 1:
		switch {
		case strings.EqualFold(segs[0], "copyAuthorization") && method == http.MethodPost:
			return rt(handleV2Authorize, CategoryManagement, "Generate Copy Authorization")
		case method == http.MethodGet:
			return rt(handleV2Get, CategoryList, "Get Custom Model", segs[0])
		case method == http.MethodDelete:
			return rt(handleV2Delete, CategoryManagement, "Delete Custom Model", segs[0])
		}
	case 2:
		if strings.EqualFold(segs[1], "copy") && method == http.MethodPost {
			return rt(handleV2Copy, CategoryManagement, "Copy Custom Model", segs[0])
		}
	case 3:
		if strings.EqualFold(segs[1], "copyResults") && method == http.MethodGet {
			return rt(handleV2CopyResult, CategoryGetOperation, "Get Custom Model Copy Result", segs[0], segs[2])
		}
	}
	return nil
}
