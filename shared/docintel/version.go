package docintel

import (
	"fmt"
	"strings"
)

// APIVersion is a Document Intelligence REST api-version the client speaks.
type APIVersion string

// Supported api-versions. Preview versions are not accepted: each one is routed like the GA version
// it preceded, so pick that one.
const (
	V2024_11_30 APIVersion = "2024-11-30" // default; {endpoint}/documentintelligence
	V2023_07_31 APIVersion = "2023-07-31" // {endpoint}/formrecognizer
	V2022_08_31 APIVersion = "2022-08-31" // {endpoint}/formrecognizer
	V2_1        APIVersion = "2.1"        // {endpoint}/formrecognizer/v2.1, no api-version query
)

var supportedVersions = []APIVersion{V2024_11_30, V2023_07_31, V2022_08_31, V2_1}

// ParseAPIVersion parses a configured api-version. It accepts the constants' values and "v2.1";
// the empty string means the default, V2024_11_30.
func ParseAPIVersion(s string) (APIVersion, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return V2024_11_30, nil
	}
	if strings.EqualFold(s, "v2.1") {
		return V2_1, nil
	}
	for _, v := range supportedVersions {
		if s == string(v) {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: api-version %q is not supported (use one of %s)", ErrInvalidArgument, s, versionList())
}

func versionList() string {
	parts := make([]string, len(supportedVersions))
	for i, v := range supportedVersions {
		parts[i] = string(v)
	}
	return strings.Join(parts, ", ")
}

func (v APIVersion) String() string { return string(v) }

func (v APIVersion) valid() bool {
	for _, s := range supportedVersions {
		if v == s {
			return true
		}
	}
	return false
}

// pathPrefix is what the version's routes hang off, below the endpoint.
func (v APIVersion) pathPrefix(raw string) string {
	switch v {
	case V2024_11_30:
		return "/documentintelligence"
	case V2_1:
		return "/formrecognizer/v" + raw
	default:
		return "/formrecognizer"
	}
}

// Kind says whether a call is about custom models or custom classifiers.
type Kind string

// Kinds of copyable resources.
const (
	KindModel      Kind = "model"
	KindClassifier Kind = "classifier"
)

func (k Kind) String() string { return string(k) }

// checkKind reports whether version v offers the classifier routes that op needs: classifier
// get/list/delete exist from 2023-07-31, classifier copy only in 2024-11-30, v2.1 has none.
func checkKind(v APIVersion, k Kind, copying bool) error {
	switch k {
	case KindModel:
		return nil
	case KindClassifier:
	default:
		return fmt.Errorf("%w: unknown kind %q (want %q or %q)", ErrInvalidArgument, string(k), KindModel, KindClassifier)
	}
	switch {
	case v == V2_1:
		return fmt.Errorf("%w: api-version 2.1 has no classifiers", ErrUnsupported)
	case v == V2022_08_31:
		return fmt.Errorf("%w: api-version %s has no classifiers (they exist from 2023-07-31)", ErrUnsupported, v)
	case copying && v != V2024_11_30:
		return fmt.Errorf("%w: classifier copy needs api-version 2024-11-30 (have %s)", ErrUnsupported, v)
	}
	return nil
}

// collection is the route segment for a kind in v3/v4.
func (k Kind) collection() string {
	if k == KindClassifier {
		return "documentClassifiers"
	}
	return "documentModels"
}

// Operation kinds as the service reports them (Operation.Kind).
const (
	OperationKindModelBuild       = "documentModelBuild"
	OperationKindModelCompose     = "documentModelCompose"
	OperationKindModelCopyTo      = "documentModelCopyTo"
	OperationKindClassifierBuild  = "documentClassifierBuild"
	OperationKindClassifierCopyTo = "documentClassifierCopyTo"
)
