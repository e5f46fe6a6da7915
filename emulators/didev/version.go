package didev

import "strings"

// family is the URL layout an api-version lives under.
type family int

const (
	famV2 family = iota // {endpoint}/formrecognizer/v2.1/...
	famFR               // {endpoint}/formrecognizer/...?api-version=
	famDI               // {endpoint}/documentintelligence/...?api-version=
)

func (f family) prefix() string {
	switch f {
	case famDI:
		return "/documentintelligence"
	default:
		return "/formrecognizer"
	}
}

// apiVersion holds what differs between api-versions on the wire. Each flag is either recorded
// behaviour or the spec; docs/didev.md lists the ones that are assumptions.
type apiVersion struct {
	name   string
	family family
	// prebuiltDate is the createdDateTime the service gives prebuilt models in this version.
	prebuiltDate string
	// modelExpiration: model details carry expirationDateTime (2023-02-28-preview on).
	modelExpiration bool
	// opAPIVersion: operation bodies carry apiVersion (2024-02-29-preview on) [rec].
	opAPIVersion bool
	// classifiers: documentClassifiers build/get/list/delete routes exist.
	classifiers bool
	// classifierCopy: documentClassifiers:authorizeCopy and :copyTo exist.
	classifierCopy bool
	// copyKeepsCreated: a copied model keeps the source's createdDateTime (through 2023-07-31) [rec];
	// later versions stamp the copy time.
	copyKeepsCreated bool
	// keepDocTypeName: 2023-02-28-preview kept the source docType name on copy [rec]; every other
	// version renames a docType named after the source model to the target id.
	keepDocTypeName bool
	// runningPercent: running operations show percentCompleted 0 (2024-11-30) [rec].
	runningPercent bool
	// opContentLength: operation GETs answer application/json with a Content-Length (2024-11-30) [rec].
	opContentLength bool
	// newCompose: compose takes classifierId + docTypes{name:{modelId}} (2024-07-31-preview on).
	newCompose bool
	// classifierDocKind: classifier docTypes entries carry kind:"azureBlob" (2024-07-31-preview on).
	classifierDocKind bool
	// classifierModified: classifier details carry modifiedDateTime (2024-07-31-preview on) [rec].
	classifierModified bool
	// neuralQuota: /info also reports customNeuralDocumentModelBuilds.
	neuralQuota bool
	// kinds is the OperationKind enum of the version.
	kinds []string
	// v2.1 only
	v2Segment   string // path segment: "v2.1" or "v2.1-preview.1"
	v2Preview   bool   // 2020 behaviour: AuthorizationError + x-ms-cs-error-code, no attributes
	deprecating bool   // azure-deprecating header (v2.1 GA, since 2024) [rec]
}

const (
	opModelBuild       = "documentModelBuild"
	opModelCompose     = "documentModelCompose"
	opModelCopy        = "documentModelCopyTo"
	opClassifierBuild  = "documentClassifierBuild"
	opClassifierCopy   = "documentClassifierCopyTo"
	opV2Copy           = "v2.1CopyModel" // never listed; served at .../copyresults/{id}
	v2DeprecatingValue = "API version 2.1 will retire on 2027-09-30. (https://aka.ms/Azure-Docuement-Intelligence-V2-retirement)"
)

var (
	kinds2022 = []string{opModelBuild, opModelCompose, opModelCopy}
	kinds2023 = []string{opModelBuild, opModelCompose, opModelCopy, opClassifierBuild}
	kinds2024 = []string{opModelBuild, opModelCompose, opModelCopy, opClassifierCopy, opClassifierBuild}
)

var apiVersions = map[string]*apiVersion{
	"2024-11-30": {
		name: "2024-11-30", family: famDI, prebuiltDate: "2024-11-30T00:00:00Z",
		modelExpiration: true, opAPIVersion: true, classifiers: true, classifierCopy: true,
		runningPercent: true, opContentLength: true, newCompose: true, classifierDocKind: true,
		classifierModified: true, kinds: kinds2024,
	},
	"2024-07-31-preview": {
		name: "2024-07-31-preview", family: famDI, prebuiltDate: "2024-07-31T00:00:00Z",
		modelExpiration: true, opAPIVersion: true, classifiers: true, classifierCopy: true,
		newCompose: true, classifierDocKind: true, classifierModified: true, kinds: kinds2024,
	},
	"2024-02-29-preview": {
		name: "2024-02-29-preview", family: famDI, prebuiltDate: "2024-02-29T00:00:00Z",
		modelExpiration: true, opAPIVersion: true, classifiers: true, neuralQuota: true, kinds: kinds2023,
	},
	"2023-07-31": {
		name: "2023-07-31", family: famFR, prebuiltDate: "2023-07-31T00:00:00Z",
		modelExpiration: true, classifiers: true, copyKeepsCreated: true, neuralQuota: true, kinds: kinds2023,
	},
	"2023-02-28-preview": {
		name: "2023-02-28-preview", family: famFR, prebuiltDate: "2023-02-28T00:00:00Z",
		modelExpiration: true, copyKeepsCreated: true, keepDocTypeName: true, kinds: kinds2022,
	},
	"2022-08-31": {
		name: "2022-08-31", family: famFR, prebuiltDate: "2022-08-31T00:00:00Z",
		copyKeepsCreated: true, kinds: kinds2022,
	},
	"v2.1": {
		name: "v2.1", family: famV2, v2Segment: "v2.1", deprecating: true,
	},
	"v2.1-preview.1": {
		name: "v2.1-preview.1", family: famV2, v2Segment: "v2.1-preview.1", v2Preview: true,
	},
}

// lookupVersion finds an api-version by its exact spelling (the service is case-sensitive about
// api-version values: assumption, documented).
func lookupVersion(name string) *apiVersion { return apiVersions[name] }

// lookupV2Segment finds a v2.x version by its path segment, case-insensitively like the routes.
func lookupV2Segment(seg string) *apiVersion {
	for _, v := range apiVersions {
		if v.family == famV2 && strings.EqualFold(v.v2Segment, seg) {
			return v
		}
	}
	return nil
}

func (v *apiVersion) hasKind(kind string) bool {
	for _, k := range v.kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// SupportedAPIVersions lists the api-versions didev serves, v2.x ones by their path segment.
func SupportedAPIVersions() []string {
	return []string{
		"2024-11-30", "2024-07-31-preview", "2024-02-29-preview", "2023-07-31",
		"2023-02-28-preview", "2022-08-31", "v2.1", "v2.1-preview.1",
	}
}

// prebuiltModels lists the prebuilt models a version reports first in GET /documentModels. The
// 2024-07-31-preview list is the recorded one; the others are assumptions of the same shape.
func prebuiltModels(v *apiVersion) [][2]string {
	if v.family == famDI {
		return prebuiltDI
	}
	return prebuiltFR
}

var prebuiltDI = [][2]string{
	{"prebuilt-bankStatement.us", "Extract key information from US bank statement."},
	{"prebuilt-check.us", "Extract key information from United States check."},
	{"prebuilt-creditCard", "Extract key information from credit card."},
	{"prebuilt-healthInsuranceCard.us", "Extract key information from US health insurance cards."},
	{"prebuilt-idDocument", "Extract key information from passports and ID cards."},
	{"prebuilt-layout", "Extract text and layout information from documents."},
	{"prebuilt-marriageCertificate.us", "Extract key information from US marriage certificate."},
	{"prebuilt-mortgage.us.1003", "Extract key information from US Uniform Residential Loan Application (Form 1003)."},
	{"prebuilt-mortgage.us.1004", "Extract key information from US Uniform Residential Appraisal Report (Form 1004)."},
	{"prebuilt-mortgage.us.1005", "Extract key information from US Verification of Employment (Form 1005)."},
	{"prebuilt-mortgage.us.1008", "Extract key information from US Uniform Underwriting and Transmittal Summary (Form 1008)."},
	{"prebuilt-mortgage.us.closingDisclosure", "Extract key information from US Mortgage Closing Disclosure."},
	{"prebuilt-payStub.us", "Extract key information from US pay stub."},
	{"prebuilt-read", "Extract text from documents."},
	{"prebuilt-receipt", "Extract key information from receipts."},
}

var prebuiltFR = [][2]string{
	{"prebuilt-businessCard", "Extract key information from business cards."},
	{"prebuilt-document", "Extract text, layout, entities, and general key-value pairs from documents."},
	{"prebuilt-healthInsuranceCard.us", "Extract key information from US health insurance cards."},
	{"prebuilt-idDocument", "Extract key information from passports and ID cards."},
	{"prebuilt-invoice", "Extract key information from invoices."},
	{"prebuilt-layout", "Extract text and layout information from documents."},
	{"prebuilt-read", "Extract text from documents."},
	{"prebuilt-receipt", "Extract key information from receipts."},
	{"prebuilt-tax.us.w2", "Extract key information from IRS US W2 tax forms (year 2018-2021)."},
}

func isPrebuilt(v *apiVersion, id string) (string, bool) {
	for _, p := range prebuiltModels(v) {
		if p[0] == id {
			return p[1], true
		}
	}
	return "", false
}
