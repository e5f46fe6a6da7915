package infra_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Built-in role definition IDs, as the Functions contract's deployment facts list them (Key Vault
// Secrets User, for the optional vault, is from Azure's built-in roles reference).
const (
	roleServiceBusDataSender        = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
	roleServiceBusDataReceiver      = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
	roleServiceBusDataOwner         = "090c5cfd-751d-490a-894a-3ce6f1109419"
	roleStorageBlobDataOwner        = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
	roleStorageTableDataContributor = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
	roleStorageQueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
	roleCognitiveServicesUser       = "a97b65f3-24c7-4388-baec-2e87135dc908"
	roleMonitoringMetricsPublisher  = "3913510d-42f4-4e42-8a64-420c390055eb"
	roleKeyVaultSecretsUser         = "4633458b-17de-408a-b874-0445c86b69e6"
)

var guidRE = regexp.MustCompile(`'([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})'`)

// TestRoleDefinitionIDs checks that each module grants exactly the documented roles it should,
// by their documented IDs, and nothing broader.
func TestRoleDefinitionIDs(t *testing.T) {
	want := map[string][]string{
		"modules/servicebus.bicep":      {roleServiceBusDataSender, roleServiceBusDataReceiver},
		"modules/storage.bicep":         {roleStorageBlobDataOwner, roleStorageTableDataContributor},
		"modules/docintel-access.bicep": {roleCognitiveServicesUser},
		"modules/monitoring.bicep":      {roleMonitoringMetricsPublisher},
		"modules/keyvault.bicep":        {roleKeyVaultSecretsUser},
	}
	// Least privilege: Data Owner could manage Service Bus entities; no storage queue is used.
	forbidden := map[string]string{
		roleServiceBusDataOwner:         "Azure Service Bus Data Owner",
		roleStorageQueueDataContributor: "Storage Queue Data Contributor",
	}
	for path, f := range bicepFiles(t) {
		var got []string
		for _, m := range guidRE.FindAllStringSubmatch(f.src, -1) {
			got = append(got, strings.ToLower(m[1]))
		}
		slices.Sort(got)
		exp := slices.Clone(want[path])
		slices.Sort(exp)
		if !slices.Equal(got, exp) {
			t.Errorf("%s: role IDs %v, want %v", path, got, exp)
		}
		for id, name := range forbidden {
			if strings.Contains(strings.ToLower(f.src), id) {
				t.Errorf("%s grants %s", path, name)
			}
		}
		if len(exp) > 0 && !strings.Contains(f.src, "subscriptionResourceId('Microsoft.Authorization/roleDefinitions'") {
			t.Errorf("%s: role IDs are not used as role definitions", path)
		}
	}
}

// TestRoleAssignments checks every role assignment: principal type ServicePrincipal (a managed
// identity; it also spares the assignment the wait for directory replication), a deterministic
// name, and a scope narrower than the resource group.
func TestRoleAssignments(t *testing.T) {
	n := 0
	for path, f := range bicepFiles(t) {
		for _, r := range f.resources {
			if !strings.HasPrefix(r.typ, "Microsoft.Authorization/roleAssignments@") {
				continue
			}
			n++
			props := f.literalProps(r.start, r.end)
			if !slices.Equal(props["principalType"], []string{"ServicePrincipal"}) {
				t.Errorf("%s: %s has principalType %v, want ServicePrincipal", path, r.name, props["principalType"])
			}
			body := tokenText(f.toks[r.start:r.end])
			if !strings.Contains(body, "name : guid (") {
				t.Errorf("%s: %s is not named with guid(scope, principal, role)", path, r.name)
			}
			if !strings.Contains(body, "scope :") {
				t.Errorf("%s: %s has no scope: it would apply to the whole resource group", path, r.name)
			}
		}
	}
	// One declaration each in storage and Service Bus (looping over their roles), Application
	// Insights, Key Vault and Document Intelligence.
	if n < 5 {
		t.Errorf("found %d role assignment declarations, want at least 5", n)
	}
}

// formRecognizer prefixes every data action of the custom roles (Azure permissions for AI +
// machine learning, Microsoft.CognitiveServices).
const formRecognizer = "Microsoft.CognitiveServices/accounts/FormRecognizer/"

// TestDocIntelCustomRoles lists, action by action, what each custom role on a Document
// Intelligence resource grants, and pins the shape of the role: data actions only (no control-
// plane action, so no listKeys), no wildcard, assignable in the resource's group only, with the
// built-in role kept as the fallback.
func TestDocIntelCustomRoles(t *testing.T) {
	reads := []string{
		"info/read",
		"management/get/info/read",
		"documentmodels/read",
		"management/get/model/read",
		"management/get/classifier/read",
		"custom/models/read",
	}
	deletes := []string{
		"documentmodels/delete",
		"management/model/delete",
		"management/classifier/delete",
		"custom/models/delete",
	}
	tests := []struct {
		role        string
		bothSides   bool
		isSource    bool
		allowDelete bool
		want        []string
	}{
		{"source", false, true, true, append(slices.Clone(reads),
			"documentmodels:copyto/action",
			"documentclassifiers:copyto/action",
			"operations/read",
			"operation/get/operation/read",
			"operation/list/operations/read",
			"custom/models/copy/action",
			"custom/models/copyresults/read",
		)},
		{"target", false, false, true, append(append(slices.Clone(reads),
			"documentmodels:authorizecopy/action",
			"documentclassifiers:authorizecopy/action",
			"custom/models/copyauthorization/action",
		), deletes...)},
		{"target without delete", false, false, false, append(slices.Clone(reads),
			"documentmodels:authorizecopy/action",
			"documentclassifiers:authorizecopy/action",
			"custom/models/copyauthorization/action",
		)},
		// Rules form: a resource of two-way rules is a source and a target alike.
		{"source and target", true, false, true, append(append(slices.Clone(reads),
			"documentmodels:copyto/action",
			"documentclassifiers:copyto/action",
			"operations/read",
			"operation/get/operation/read",
			"operation/list/operations/read",
			"custom/models/copy/action",
			"custom/models/copyresults/read",
			"documentmodels:authorizecopy/action",
			"documentclassifiers:authorizecopy/action",
			"custom/models/copyauthorization/action",
		), deletes...)},
		{"source and target without delete", true, false, false, append(slices.Clone(reads),
			"documentmodels:copyto/action",
			"documentclassifiers:copyto/action",
			"operations/read",
			"operation/get/operation/read",
			"operation/list/operations/read",
			"custom/models/copy/action",
			"custom/models/copyresults/read",
			"documentmodels:authorizecopy/action",
			"documentclassifiers:authorizecopy/action",
			"custom/models/copyauthorization/action",
		)},
	}

	f := loadBicep(t, "modules/docintel-access.bicep")
	prefix := lastString(t, f, "var", "prefix")
	if prefix != formRecognizer {
		t.Fatalf("var prefix = %q, want %q", prefix, formRecognizer)
	}
	lists := map[string][]string{}
	for _, name := range []string{"readActions", "sourceActions", "targetActions", "deleteActions"} {
		i, ok := f.vars[name]
		if !ok {
			t.Fatalf("var %s is missing", name)
		}
		l, err := f.stringList(i, map[string]string{"prefix": prefix})
		if err != nil {
			t.Fatalf("var %s: %v", name, err)
		}
		lists[name] = l
	}
	// The role's data actions are composed from the lists by this one expression; the test
	// evaluates the same composition.
	const composition = "var dataActions = bothSides ? concat ( readActions , sourceActions , targetActions , allowDelete ? deleteActions : [ ] ) : ( isSource ? concat ( readActions , sourceActions ) : concat ( readActions , targetActions , allowDelete ? deleteActions : [ ] ) )"
	if got := declText(f, "var", "dataActions"); got != composition {
		t.Fatalf("dataActions is\n  %s\nwant\n  %s", got, composition)
	}
	compose := func(bothSides, isSource, allowDelete bool) []string {
		if bothSides {
			out := slices.Concat(lists["readActions"], lists["sourceActions"], lists["targetActions"])
			if allowDelete {
				out = append(out, lists["deleteActions"]...)
			}
			return out
		}
		if isSource {
			return slices.Concat(lists["readActions"], lists["sourceActions"])
		}
		out := slices.Concat(lists["readActions"], lists["targetActions"])
		if allowDelete {
			out = append(out, lists["deleteActions"]...)
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.role, func(t *testing.T) {
			var want []string
			for _, a := range tc.want {
				want = append(want, formRecognizer+a)
			}
			got := compose(tc.bothSides, tc.isSource, tc.allowDelete)
			if !slices.Equal(got, want) {
				t.Errorf("data actions:\n  got  %q\n  want %q", got, want)
			}
			seen := map[string]bool{}
			for _, a := range got {
				if seen[a] {
					t.Errorf("%s listed twice", a)
				}
				seen[a] = true
				if strings.Contains(a, "*") || !strings.HasPrefix(a, formRecognizer) {
					t.Errorf("%s: want one Document Intelligence data action, no wildcard", a)
				}
				if strings.Contains(a, "analyze") || strings.Contains(a, "build") || strings.Contains(a, "compose") {
					t.Errorf("%s: dimirror never analyzes, builds or composes", a)
				}
			}
		})
	}

	r, ok := f.resource("customRole")
	if !ok || !strings.HasPrefix(r.typ, "Microsoft.Authorization/roleDefinitions@") {
		t.Fatalf("docintel-access.bicep: role definition customRole missing (%+v)", r)
	}
	body := tokenText(f.toks[r.start:r.end])
	for _, want := range []string{
		"if ( roleMode == 'custom' )",
		"name : customRoleId",
		"type : 'customRole'",
		"actions : [ ] notActions : [ ] dataActions : dataActions notDataActions : [ ]",
		"assignableScopes : [ resourceGroup ( ) . id ]",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("customRole lacks %q", want)
		}
	}
	access, _ := f.resource("access")
	body = tokenText(f.toks[access.start:access.end])
	for _, want := range []string{
		"roleDefinitionId : subscriptionResourceId ( 'Microsoft.Authorization/roleDefinitions' , roleId )",
		"dependsOn : [ customRole ]",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("access lacks %q", want)
		}
	}
	if got, want := declText(f, "var", "roleId"), "var roleId = roleMode == 'custom' ? customRoleId : cognitiveServicesUser"; got != want {
		t.Errorf("%s, want %s", got, want)
	}

	// Both files offer the same two modes, custom by default, and main passes its choice (and
	// delete whenever REPLACE or PRUNE needs it) to every module.
	main := loadBicep(t, "main.bicep")
	for _, bf := range []*bicepFile{f, main} {
		if got, want := declText(bf, "param", "roleMode"), "param roleMode string = 'custom'"; got != want {
			t.Errorf("%s: %s, want %s", bf.path, got, want)
		}
		if !strings.Contains(bf.src, "@allowed([\n  'custom'\n  'builtin'\n])\nparam roleMode") {
			t.Errorf("%s: roleMode does not allow exactly custom and builtin", bf.path)
		}
	}
	for _, m := range main.modules {
		if m.path == "modules/docintel-access.bicep" && !slices.Contains(m.params, "roleMode") {
			t.Errorf("main.bicep: module %s does not pass roleMode", m.name)
		}
	}
	if !strings.Contains(tokenText(main.toks), "allowDelete : grantTargetDelete || replaceExisting || pruneDeleted") {
		t.Error("main.bicep: targets must get delete whenever REPLACE or PRUNE is on")
	}
}

// declText is the text of the declaration `kind name` up to the end of its line, tokens joined
// by spaces.
func declText(f *bicepFile, kind, name string) string {
	for i := 0; i+1 < len(f.toks); i++ {
		if f.toks[i].text != kind || f.toks[i+1].text != name || f.toks[i].depth != 0 {
			continue
		}
		j := i
		for j < len(f.toks) && f.toks[j].kind != tNewline {
			j++
		}
		return strings.TrimSpace(tokenText(f.toks[i:j]))
	}
	return ""
}

func tokenText(toks []token) string {
	var b strings.Builder
	for _, tk := range toks {
		if tk.kind == tNewline {
			continue
		}
		if tk.kind == tString {
			b.WriteString("'" + tk.text + "' ")
			continue
		}
		b.WriteString(tk.text + " ")
	}
	return b.String()
}

// TestSecureDefaults pins the properties that keep keys out and the queue behaving as the code
// expects.
func TestSecureDefaults(t *testing.T) {
	tests := []struct {
		file, resource string
		want           map[string]string
	}{
		{"modules/servicebus.bicep", "namespace", map[string]string{
			"disableLocalAuth": "true", "minimumTlsVersion": "1.2", "name": "Standard",
		}},
		{"modules/servicebus.bicep", "queue", map[string]string{
			"lockDuration":                        "PT1M",
			"maxDeliveryCount":                    "10",
			"requiresDuplicateDetection":          "true",
			"duplicateDetectionHistoryTimeWindow": "PT10M",
			"deadLetteringOnMessageExpiration":    "true",
			"requiresSession":                     "false",
		}},
		{"modules/storage.bicep", "account", map[string]string{
			"allowSharedKeyAccess":         "false",
			"allowBlobPublicAccess":        "false",
			"defaultToOAuthAuthentication": "true",
			"minimumTlsVersion":            "TLS1_2",
			"supportsHttpsTrafficOnly":     "true",
			"publicAccess":                 "None",
		}},
		{"modules/monitoring.bicep", "appInsights", map[string]string{"DisableLocalAuth": "true"}},
		{"modules/keyvault.bicep", "vault", map[string]string{"enableRbacAuthorization": "true", "enablePurgeProtection": "true"}},
		{"modules/functionapp.bicep", "plan", map[string]string{"tier": "FlexConsumption", "name": "FC1", "reserved": "true"}},
		{"modules/functionapp.bicep", "site", map[string]string{
			"kind": "functionapp,linux", "type": "UserAssigned", "httpsOnly": "true", "minTlsVersion": "1.2",
			"ftpsState": "Disabled",
		}},
		{"modules/functionapp.bicep", "scmBasicAuth", map[string]string{"name": "scm", "allow": "false"}},
		{"modules/functionapp.bicep", "ftpBasicAuth", map[string]string{"name": "ftp", "allow": "false"}},
	}
	files := bicepFiles(t)
	for _, tc := range tests {
		f := files[tc.file]
		if f == nil {
			t.Errorf("%s is missing", tc.file)
			continue
		}
		r, ok := f.resource(tc.resource)
		if !ok {
			t.Errorf("%s: resource %s not found", tc.file, tc.resource)
			continue
		}
		props := f.literalProps(r.start, r.end)
		for k, v := range tc.want {
			if !slices.Contains(props[k], v) {
				t.Errorf("%s: %s.%s = %v, want %s", tc.file, tc.resource, k, props[k], v)
			}
		}
	}
	// The Flex runtime is the custom handler, and the package is read with the identity.
	site, _ := files["modules/functionapp.bicep"].resource("site")
	body := tokenText(files["modules/functionapp.bicep"].toks[site.start:site.end])
	for _, want := range []string{
		"runtime : { name : 'custom' version : '1.0' }",
		"authentication : { type : 'UserAssignedIdentity' userAssignedIdentityResourceId : identityId }",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("functionapp.bicep site lacks %q", want)
		}
	}
}

// TestNoSecretsInOutputsOrParameters: keys enter only as secure parameters, and no output,
// parameter file or app setting carries one.
func TestNoSecretsInOutputsOrParameters(t *testing.T) {
	secureParams := map[string]bool{}
	for path, f := range bicepFiles(t) {
		for i, tk := range f.toks {
			if tk.kind == tIdent && tk.text == "secure" && i > 0 && f.toks[i-1].text == "@" {
				// @secure() is followed by `param name`.
				for j := i; j+1 < len(f.toks); j++ {
					if f.toks[j].text == "param" && f.toks[j].depth == 0 {
						secureParams[path+":"+f.toks[j+1].text] = true
						break
					}
				}
			}
		}
		for _, bad := range []string{"listKeys(", "listConnectionStrings(", "listkeys(", "AccountKey=", "SharedAccessKey="} {
			if strings.Contains(f.src, bad) {
				t.Errorf("%s uses %s: connections must use the identity", path, bad)
			}
		}
	}
	want := []string{
		"main.bicep:sourceKey", "main.bicep:targetKeys", "main.bicep:resourceKeys",
		"modules/keyvault.bicep:sourceKey", "modules/keyvault.bicep:targetKeys", "modules/keyvault.bicep:resourceKeys",
	}
	for _, w := range want {
		if !secureParams[w] {
			t.Errorf("%s is not @secure()", w)
		}
	}
	main := loadBicep(t, "main.bicep")
	for i, tk := range main.toks {
		if tk.text != "output" || tk.depth != 0 {
			continue
		}
		for j := i; j < len(main.toks) && main.toks[j].kind != tNewline; j++ {
			if main.toks[j].kind == tIdent && (main.toks[j].text == "sourceKey" || main.toks[j].text == "targetKeys") {
				t.Errorf("main.bicep line %d: an output uses a key parameter", tk.line)
			}
		}
	}
	for _, p := range []string{"main.parameters.json", filepath.Join("examples", "parameters.example.json")} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?i)"(sourceKey|targetKeys)"\s*:\s*\{\s*"value"\s*:\s*"[^"$]`).Match(data) {
			t.Errorf("%s holds a literal key: keys come from the environment or a prompt", p)
		}
	}
}
