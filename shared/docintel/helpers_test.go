package docintel

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// fastRetry keeps retry back-off in tests to a millisecond.
var fastRetry = policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}

// fakeCredential is an azcore.TokenCredential that hands out one token and records the scopes it
// was asked for.
type fakeCredential struct {
	token string
	mu    sync.Mutex
	asked [][]string
}

func (f *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, append([]string(nil), o.Scopes...))
	return azcore.AccessToken{Token: f.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func (f *fakeCredential) scopes() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.asked...)
}

// jsonEquivalent compares two JSON documents by value; strings that both read as RFC 3339 times
// compare as instants, because SDKs reformat expirationDateTime (Z, .000Z, .0000000Z) when they
// echo an authorization.
func jsonEquivalent(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Errorf("not JSON: %v: %.200s", err, a)
		return false
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Errorf("not JSON: %v: %.200s", err, b)
		return false
	}
	return equivalent(va, vb)
}

func equivalent(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equivalent(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equivalent(x[i], y[i]) {
				return false
			}
		}
		return true
	case string:
		y, ok := b.(string)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		tx, ex := time.Parse(time.RFC3339Nano, x)
		ty, ey := time.Parse(time.RFC3339Nano, y)
		return ex == nil && ey == nil && tx.Equal(ty)
	default:
		return reflect.DeepEqual(a, b)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func checkTime(t *testing.T, what string, got time.Time, want string) {
	t.Helper()
	if w := mustTime(t, want); !got.Equal(w) {
		t.Errorf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), want)
	}
}

func checkTags(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// wireOf decodes model details as the service serves them.
func wireOf(t *testing.T, raw json.RawMessage) wireModel {
	t.Helper()
	var m wireModel
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
