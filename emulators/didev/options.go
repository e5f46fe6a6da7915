package didev

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind is what a seed or a stored item is.
type Kind string

// Kinds of custom items a resource holds.
const (
	KindModel      Kind = "model"      // v3/v4 document model
	KindClassifier Kind = "classifier" // v3.1+/v4 document classifier
	KindModelV21   Kind = "model-v2.1" // v2.1 custom model (UUID id, separate namespace)
)

func (k Kind) valid() bool { return k == KindModel || k == KindClassifier || k == KindModelV21 }

// Defaults, from the contract where it has a figure.
const (
	DefaultCopyDuration  = 2 * time.Second // recorded copies finish within 1–6 s
	DefaultBuildDuration = 4 * time.Second // recorded template builds take 3–5 s
	DefaultAuthTTL       = time.Hour       // v3/v4 authorizations [rec]
	DefaultAuthTTLV21    = 24 * time.Hour  // v2.1 authorizations [rec]
	DefaultOpTTL         = 24 * time.Hour  // operations "only persist for 24 hours" (docs)
	DefaultPageSize      = 100             // assumption: the service's page size is not recorded
	DefaultMaxModels     = 5000            // S0 template model limit
	defaultRegion        = "eastus"        // region of a resource whose name is no region
	subscriptionID       = "00000000-0000-0000-0000-000000000000"
	resourceGroup        = "didev"
	maxDuration          = 24 * time.Hour * 365
	modelLifetime        = 730 * 24 * time.Hour // models expire 2 years after creation [rec]
)

// Options configure a didev server; every field mirrors a flag of cmd/didev.
type Options struct {
	Resources     []ResourceOptions
	Key           string        // the accepted Ocp-Apim-Subscription-Key (required unless AcceptBearer)
	AcceptBearer  bool          // also accept any "Authorization: Bearer" token
	Seeds         []Seed        // ready models/classifiers present at start (existing ones are kept)
	CopyDuration  time.Duration // notStarted → running → succeeded; 0 = DefaultCopyDuration
	BuildDuration time.Duration // builds, composes, v2.1 trainings; 0 = DefaultBuildDuration
	AuthTTL       time.Duration // 0 = 1 h for v3/v4 and 24 h for v2.1; set, it applies to both
	OpTTL         time.Duration // operations are forgotten after this; 0 = DefaultOpTTL
	PageSize      int           // items per list page; 0 = DefaultPageSize
	Rate          RateOptions
	Faults        Faults
	DataDir       string           // keep state here across restarts; "" = in memory
	Clock         func() time.Time // nil = time.Now; drives every timestamp, state change and rate budget
	Logger        *slog.Logger     // nil = discard
}

// ResourceOptions describe one emulated Document Intelligence resource (one endpoint).
type ResourceOptions struct {
	Name       string // unique; also the ARM account name
	Addr       string // host:port to listen on; port 0 picks one
	Region     string // ARM location (lowercase); "" = Name when it is a known region, else eastus
	Encrypted  bool   // customer-managed-key resource: copies to unencrypted targets need the degrade header
	MaxModels  int    // custom model limit (DocumentModelLimit); 0 = DefaultMaxModels
	ResourceID string // ARM id; "" = /subscriptions/0…0/resourceGroups/didev/providers/Microsoft.CognitiveServices/accounts/<Name>
}

// Seed is a ready model or classifier created at start (or through Resource.Seed).
type Seed struct {
	Resource    string
	Kind        Kind
	ID          string
	Description string
	Tags        map[string]string
	APIVersion  string // the version it was built with; "" = 2024-11-30 (2.1 for v2.1 models)
}

// RateOptions are per-resource request limits per second by category; zero fields take the S0
// figures (management 5, get-operation 50, list 10).
type RateOptions struct {
	Off          bool
	Management   float64
	GetOperation float64
	List         float64
}

var (
	modelIDPattern  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._~-]{1,63}$`)
	namePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)
	regionPattern   = regexp.MustCompile(`^[a-z0-9]{1,24}$`)
	resourceIDRegex = regexp.MustCompile(`^/subscriptions/[^/]*/resourceGroups/[^/]*/providers/Microsoft\.CognitiveServices/accounts/[^/]*$`)
	uuidPattern     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// ParseResource parses NAME=HOST:PORT[,region=REGION][,encrypted][,max-models=N].
func ParseResource(s string) (ResourceOptions, error) {
	const form = "want NAME=HOST:PORT[,region=REGION][,encrypted][,max-models=N]"
	name, rest, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || name == "" || rest == "" {
		return ResourceOptions{}, fmt.Errorf("%q: %s", s, form)
	}
	parts := strings.Split(rest, ",")
	ro := ResourceOptions{Name: name, Addr: parts[0]}
	for _, p := range parts[1:] {
		k, v, hasV := strings.Cut(p, "=")
		switch {
		case k == "region" && hasV:
			ro.Region = v
		case k == "encrypted" && !hasV:
			ro.Encrypted = true
		case k == "max-models" && hasV:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return ResourceOptions{}, fmt.Errorf("%q: max-models must be a positive integer, got %q; %s", s, v, form)
			}
			ro.MaxModels = n
		default:
			return ResourceOptions{}, fmt.Errorf("%q: unknown attribute %q; %s", s, p, form)
		}
	}
	if err := ro.validate(); err != nil {
		return ResourceOptions{}, fmt.Errorf("%q: %w; %s", s, err, form)
	}
	return ro, nil
}

// ParseSeed parses RESOURCE:KIND:ID (KIND is model, classifier or model-v2.1).
func ParseSeed(s string) (Seed, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return Seed{}, fmt.Errorf("%q: want RESOURCE:KIND:ID with KIND model, classifier or model-v2.1", s)
	}
	sd := Seed{Resource: parts[0], Kind: Kind(parts[1]), ID: parts[2]}
	if err := sd.validate(); err != nil {
		return Seed{}, fmt.Errorf("%q: %w", s, err)
	}
	return sd, nil
}

// ParseRate parses "off" or a comma list of management=N, get-operation=N, list=N (per second).
func ParseRate(s string) (RateOptions, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return RateOptions{Off: true}, nil
	}
	var ro RateOptions
	if s == "" {
		return ro, nil
	}
	for _, p := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return RateOptions{}, fmt.Errorf("%q: want off or management=N,get-operation=N,list=N", p)
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 {
			return RateOptions{}, fmt.Errorf("%q: the rate must be a positive number per second", p)
		}
		switch k {
		case "management":
			ro.Management = n
		case "get-operation":
			ro.GetOperation = n
		case "list":
			ro.List = n
		default:
			return RateOptions{}, fmt.Errorf("%q: unknown category %q (management, get-operation, list)", p, k)
		}
	}
	return ro, nil
}

func (ro ResourceOptions) validate() error {
	if !namePattern.MatchString(ro.Name) {
		return fmt.Errorf("resource name %q must be letters, digits and dashes (at most 64)", ro.Name)
	}
	host, port, err := net.SplitHostPort(ro.Addr)
	if err != nil {
		return fmt.Errorf("address %q is not HOST:PORT", ro.Addr)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", ro.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("address %q has no valid port", ro.Addr)
	}
	if ro.Region != "" && !regionPattern.MatchString(ro.Region) {
		return fmt.Errorf("region %q must be a lowercase ARM location such as westus2", ro.Region)
	}
	if ro.MaxModels < 0 {
		return errors.New("max-models must not be negative")
	}
	if ro.ResourceID != "" && !resourceIDRegex.MatchString(ro.ResourceID) {
		return fmt.Errorf("resource id %q is not a Microsoft.CognitiveServices account id", ro.ResourceID)
	}
	return nil
}

func (sd Seed) validate() error {
	switch sd.Kind {
	case KindModel, KindClassifier:
		if !modelIDPattern.MatchString(sd.ID) {
			return fmt.Errorf("id %q must match %s", sd.ID, modelIDPattern)
		}
		if strings.HasPrefix(strings.ToLower(sd.ID), "prebuilt-") {
			return fmt.Errorf("id %q is reserved for prebuilt models", sd.ID)
		}
	case KindModelV21:
		if !uuidPattern.MatchString(sd.ID) {
			return fmt.Errorf("a v2.1 model id must be a UUID, got %q", sd.ID)
		}
	default:
		return fmt.Errorf("kind %q is not model, classifier or model-v2.1", sd.Kind)
	}
	if len(sd.Description) > 4096 {
		return errors.New("description is longer than 4096 characters")
	}
	if sd.APIVersion != "" && sd.Kind != KindModelV21 {
		v := lookupVersion(sd.APIVersion)
		if v == nil || v.family == famV2 || (sd.Kind == KindClassifier && !v.classifiers) {
			return fmt.Errorf("api-version %q cannot build a %s", sd.APIVersion, sd.Kind)
		}
	}
	return nil
}

// normalized validates o and fills in defaults.
func (o Options) normalized() (Options, error) {
	if len(o.Resources) == 0 {
		return o, errors.New("didev: at least one resource is required")
	}
	if o.Key == "" && !o.AcceptBearer {
		return o, errors.New("didev: set Key or AcceptBearer, or no request could authenticate")
	}
	seen := map[string]bool{}
	ids := map[string]bool{}
	res := make([]ResourceOptions, len(o.Resources))
	for i, ro := range o.Resources {
		if err := ro.validate(); err != nil {
			return o, fmt.Errorf("didev: resource %d: %w", i, err)
		}
		if seen[strings.ToLower(ro.Name)] {
			return o, fmt.Errorf("didev: resource name %q is used twice", ro.Name)
		}
		seen[strings.ToLower(ro.Name)] = true
		if ro.Region == "" {
			ro.Region = defaultRegion
			if _, ok := regionNames[strings.ToLower(ro.Name)]; ok {
				ro.Region = strings.ToLower(ro.Name)
			}
		}
		if ro.MaxModels == 0 {
			ro.MaxModels = DefaultMaxModels
		}
		if ro.ResourceID == "" {
			ro.ResourceID = fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.CognitiveServices/accounts/%s",
				subscriptionID, resourceGroup, ro.Name)
		}
		if ids[strings.ToLower(ro.ResourceID)] {
			return o, fmt.Errorf("didev: resource id %q is used twice", ro.ResourceID)
		}
		ids[strings.ToLower(ro.ResourceID)] = true
		res[i] = ro
	}
	o.Resources = res
	for _, sd := range o.Seeds {
		if err := sd.validate(); err != nil {
			return o, fmt.Errorf("didev: seed %s:%s:%s: %w", sd.Resource, sd.Kind, sd.ID, err)
		}
		if !seen[strings.ToLower(sd.Resource)] {
			return o, fmt.Errorf("didev: seed %s:%s:%s names an unknown resource", sd.Resource, sd.Kind, sd.ID)
		}
	}
	for name, d := range map[string]*time.Duration{
		"CopyDuration": &o.CopyDuration, "BuildDuration": &o.BuildDuration,
		"AuthTTL": &o.AuthTTL, "OpTTL": &o.OpTTL,
	} {
		if *d < 0 || *d > maxDuration {
			return o, fmt.Errorf("didev: %s %s is out of range (0 to 1 year)", name, *d)
		}
	}
	if o.CopyDuration == 0 {
		o.CopyDuration = DefaultCopyDuration
	}
	if o.BuildDuration == 0 {
		o.BuildDuration = DefaultBuildDuration
	}
	if o.OpTTL == 0 {
		o.OpTTL = DefaultOpTTL
	}
	if o.PageSize < 0 || o.PageSize > 10000 {
		return o, fmt.Errorf("didev: PageSize %d is out of range (1 to 10000)", o.PageSize)
	}
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Rate.Management < 0 || o.Rate.GetOperation < 0 || o.Rate.List < 0 {
		return o, errors.New("didev: rates must not be negative")
	}
	if o.Rate.Management == 0 {
		o.Rate.Management = 5
	}
	if o.Rate.GetOperation == 0 {
		o.Rate.GetOperation = 50
	}
	if o.Rate.List == 0 {
		o.Rate.List = 10
	}
	if err := o.Faults.validate(); err != nil {
		return o, fmt.Errorf("didev: %w", err)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// authTTL is how long an authorization issued by a version stays valid.
func (o Options) authTTL(v *apiVersion) time.Duration {
	if o.AuthTTL != 0 {
		return o.AuthTTL
	}
	if v.family == famV2 {
		return DefaultAuthTTLV21
	}
	return DefaultAuthTTL
}

// regionNames maps ARM locations to the display names the service sends in x-ms-region.
var regionNames = map[string]string{
	"eastus": "East US", "eastus2": "East US 2", "westus": "West US", "westus2": "West US 2",
	"westus3": "West US 3", "centralus": "Central US", "northcentralus": "North Central US",
	"southcentralus": "South Central US", "westcentralus": "West Central US",
	"canadacentral": "Canada Central", "canadaeast": "Canada East", "brazilsouth": "Brazil South",
	"northeurope": "North Europe", "westeurope": "West Europe", "uksouth": "UK South", "ukwest": "UK West",
	"francecentral": "France Central", "germanywestcentral": "Germany West Central",
	"switzerlandnorth": "Switzerland North", "norwayeast": "Norway East", "swedencentral": "Sweden Central",
	"italynorth": "Italy North", "polandcentral": "Poland Central", "eastasia": "East Asia",
	"southeastasia": "Southeast Asia", "japaneast": "Japan East", "japanwest": "Japan West",
	"koreacentral": "Korea Central", "australiaeast": "Australia East", "centralindia": "Central India",
	"southindia": "South India", "uaenorth": "UAE North", "southafricanorth": "South Africa North",
	"qatarcentral": "Qatar Central", "centraluseuap": "Central US EUAP", "eastus2euap": "East US 2 EUAP",
}

// RegionDisplayName is the x-ms-region value of an ARM location (the location itself when unknown).
func RegionDisplayName(region string) string {
	if n, ok := regionNames[strings.ToLower(region)]; ok {
		return n
	}
	return region
}
