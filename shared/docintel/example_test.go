package docintel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/dimirror/dimirror/shared/docintel"
)

// fakeResource is a tiny in-process Document Intelligence resource (2024-11-30 routes only):
// authorizeCopy, copyTo, and an operation that runs for one poll and then succeeds.
type fakeResource struct {
	*httptest.Server
	mu     sync.Mutex
	polls  int
	copied string
}

func newFakeResource() *fakeResource {
	f := &fakeResource{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeResource) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	const prefix = "/documentintelligence/"
	switch route := strings.TrimPrefix(r.URL.Path, prefix); {
	case r.Method == http.MethodPost && route == "documentModels:authorizeCopy":
		var req struct{ ModelID string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"targetResourceId":     "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/target",
			"targetResourceRegion": "westeurope",
			"targetModelId":        req.ModelID,
			"targetModelLocation":  f.URL + prefix + "documentModels/" + req.ModelID + "?api-version=2024-11-30",
			"accessToken":          "token-for-" + req.ModelID,
			"expirationDateTime":   "2030-01-01T01:00:00Z",
		})
	case r.Method == http.MethodPost && strings.HasSuffix(route, ":copyTo"):
		var auth struct{ TargetModelID, AccessToken string }
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &auth)
		if auth.TargetModelID == "" || auth.AccessToken == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"code":"InvalidRequest","message":"Invalid request."}}`)
			return
		}
		f.copied = auth.TargetModelID
		w.Header().Set("Operation-Location", f.URL+prefix+"operations/31000000000_op?api-version=2024-11-30")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && route == "operations/31000000000_op":
		f.polls++
		status, result := "running", ""
		if f.polls > 1 {
			status, result = "succeeded", `,"percentCompleted":100,"result":{"modelId":"`+f.copied+`","createdDateTime":"2030-01-01T00:00:05Z","apiVersion":"2024-11-30"}`
		}
		fmt.Fprintf(w, `{"operationId":"31000000000_op","kind":"documentModelCopyTo","status":%q,"createdDateTime":"2030-01-01T00:00:00Z","lastUpdatedDateTime":"2030-01-01T00:00:05Z","resourceLocation":"%sdocumentModels/%s?api-version=2024-11-30"%s}`,
			status, f.URL+prefix, f.copied, result)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"404","message":"Resource not found"}}`)
	}
}

// Example copies a model from one resource to another: the target authorizes, the source copies,
// and the caller polls the source until the operation ends.
func Example() {
	targetRes, sourceRes := newFakeResource(), newFakeResource()
	defer targetRes.Close()
	defer sourceRes.Close()
	ctx := context.Background()

	target, err := docintel.New(targetRes.URL, docintel.Options{Key: "target-key"})
	if err != nil {
		log.Fatal(err)
	}
	source, err := docintel.New(sourceRes.URL, docintel.Options{Key: "source-key"})
	if err != nil {
		log.Fatal(err)
	}

	auth, err := target.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{
		TargetID: "invoices-eu", Description: "Invoices, copied from West US", Tags: map[string]string{"origin": "westus"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Printing an Authorization never shows its access token.
	fmt.Println("authorized", auth.TargetID, "in", auth.TargetRegion, "until", auth.ExpiresAt.Format(time.RFC3339))
	fmt.Println("token shown when printed:", strings.Contains(fmt.Sprintf("%+v", auth), "token-for-"))

	opURL, err := source.CopyTo(ctx, docintel.KindModel, "invoices", auth)
	if err != nil {
		log.Fatal(err)
	}
	for {
		op, err := source.GetOperation(ctx, opURL)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("status:", op.Status)
		if op.Status.Terminal() {
			if op.Status.Succeeded() {
				fmt.Println("copied to", op.TargetID)
			} else {
				fmt.Println("copy failed:", op.Error, "retry with a new authorization:", docintel.IsAuthorizationInvalid(op.Error))
			}
			break
		}
		time.Sleep(10 * time.Millisecond) // the service wants 1-5 s between polls
	}
	// Output:
	// authorized invoices-eu in westeurope until 2030-01-01T01:00:00Z
	// token shown when printed: false
	// status: running
	// status: succeeded
	// copied to invoices-eu
}
