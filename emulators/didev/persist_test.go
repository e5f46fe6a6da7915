package didev

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
)

// mutateForPersistence builds a state worth keeping: a copied model, a consumed and a pending
// authorization, a v2.1 model and operations. It returns the consumed authorization body and
// the copy's operation URL path.
func mutateForPersistence(t *testing.T, srv *Server, clock *fakeclock.Clock) (map[string]any, string) {
	t.Helper()
	const v = "2024-11-30"
	src, tgt := srv.Endpoint("source"), srv.Endpoint("target")
	auth := authorizeModel(t, tgt, v, "copied", map[string]any{"tags": map[string]string{"k": "v"}})
	authorizeModel(t, tgt, v, "pending", nil)
	cp := do(t, "POST", vurl(src, v, "/documentModels/seeded:copyTo"), auth)
	mustStatus(t, cp, http.StatusAccepted)
	mustStatus(t, do(t, "POST", src+"/formrecognizer/v2.1/custom/models", `{"source":"https://x/y","useLabelFile":true}`), http.StatusCreated)
	clock.Advance(10 * time.Second)
	loc := cp.header.Get("Operation-Location")
	return auth, loc[strings.Index(loc, "/documentintelligence"):]
}

func checkPersisted(t *testing.T, srv *Server, auth map[string]any, opPath string) {
	t.Helper()
	const v = "2024-11-30"
	src, tgt := srv.Endpoint("source"), srv.Endpoint("target")
	m := do(t, "GET", vurl(tgt, v, "/documentModels/copied"), nil)
	mustStatus(t, m, http.StatusOK)
	if str2(m.json(t), "tags", "k") != "v" {
		t.Errorf("copied model %s", m.body)
	}
	mustStatus(t, do(t, "GET", vurl(tgt, v, "/documentModels:authorizeCopy"), nil), http.StatusNotFound)
	mustStatus(t, do(t, "POST", vurl(tgt, v, "/documentModels:authorizeCopy"), `{"modelId":"pending"}`), http.StatusConflict)
	op := do(t, "GET", src+opPath, nil)
	mustStatus(t, op, http.StatusOK)
	if op.json(t)["status"] != "succeeded" {
		t.Errorf("operation %s", op.body)
	}
	// The spent authorization is still known as spent.
	reuse := do(t, "POST", vurl(src, v, "/documentModels/seeded:copyTo"), auth)
	mustStatus(t, reuse, http.StatusAccepted)
	if got := srv.Resource("source").Count(KindModelV21); got != 1 {
		t.Errorf("%d v2.1 models", got)
	}
	if got := srv.Resource("source").Count(KindModel); got != 1 {
		t.Errorf("%d source models (the seed was restored, not duplicated)", got)
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	o := testOptions(clock)
	o.DataDir = dir
	o.Seeds = []Seed{{Resource: "source", Kind: KindModel, ID: "seeded"}}
	srv, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	auth, opPath := mutateForPersistence(t, srv, clock)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	again := startServer(t, o) // same dir, new ports
	checkPersisted(t, again, auth, opPath)
}

// TestPersistenceAfterKill restarts from a copy of the data dir taken while the first server
// still runs, as a kill would leave it: nothing acknowledged may be missing.
func TestPersistenceAfterKill(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	o := testOptions(clock)
	o.DataDir = dir
	o.Seeds = []Seed{{Resource: "source", Kind: KindModel, ID: "seeded"}}
	srv := startServer(t, o)
	auth, opPath := mutateForPersistence(t, srv, clock)
	crashed := t.TempDir()
	for _, f := range []string{snapshotFile, journalFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == journalFile {
			b = append(b, []byte(`{"t":"model","r":"source","m":{"kind":"mod`)...) // a torn last write
		}
		if err := os.WriteFile(filepath.Join(crashed, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o.DataDir = crashed
	checkPersisted(t, startServer(t, o), auth, opPath)
}

func TestPersistenceRejectsCorruption(t *testing.T) {
	for _, tt := range []struct{ file, content, want string }{
		{snapshotFile, "{nope", "corrupt"},
		{snapshotFile, `{"format":9}`, "format 9"},
		{journalFile, "{bad}\n{}\n", "line 1 is corrupt"},
		{journalFile, `{"t":"weird","r":"x"}` + "\n", "unknown record type"},
	} {
		t.Run(tt.file+" "+tt.want, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			o := testOptions(nil)
			o.DataDir = dir
			_, err := Start(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestSecretsStayOut checks that keys and access tokens appear in no log line, stats, error
// answer or data file.
func TestSecretsStayOut(t *testing.T) {
	var logs bytes.Buffer
	dir := t.TempDir()
	o := testOptions(nil)
	o.DataDir = dir
	o.CopyDuration = 10 * time.Millisecond
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := startServer(t, o)
	if err := srv.Resource("source").Seed(Seed{Kind: KindModel, ID: "seeded"}); err != nil {
		t.Fatal(err)
	}
	auth := authorizeModel(t, srv.Endpoint("target"), "2024-11-30", "t1", nil)
	token := auth["accessToken"].(string)
	mustStatus(t, do(t, "POST", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels/seeded:copyTo"), auth), http.StatusAccepted)
	auth["accessToken"] = token + "x"
	mustStatus(t, do(t, "POST", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels/seeded:copyTo"), auth), http.StatusAccepted)
	v2 := do(t, "POST", srv.Endpoint("target")+"/formrecognizer/v2.1/custom/models/copyAuthorization", nil).json(t)
	bad := do(t, "GET", vurl(srv.Endpoint("source"), "2024-11-30", "/info"), nil, "Ocp-Apim-Subscription-Key", "wrong-secret-key")
	mustStatus(t, bad, http.StatusUnauthorized)
	stats := do(t, "GET", srv.Endpoint("source")+"/_didev/stats", nil)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	var files []byte
	for _, f := range []string{snapshotFile, journalFile} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		files = append(files, b...)
	}
	for _, secret := range []string{testKey, token, v2["accessToken"].(string), "wrong-secret-key"} {
		for where, text := range map[string]string{"logs": logs.String(), "stats": string(stats.body), "401": string(bad.body), "data": string(files)} {
			if strings.Contains(text, secret) {
				t.Errorf("a secret appears in %s", where)
			}
		}
	}
	if !strings.Contains(logs.String(), "didev: request") {
		t.Error("no request was logged at debug level")
	}
}

// TestLoweredLimitAtCopy restarts with a smaller max-models: a copy into an id reserved before
// then fails with DocumentModelLimit instead of exceeding the limit.
func TestLoweredLimitAtCopy(t *testing.T) {
	clock := newFakeClock()
	o := testOptions(clock)
	o.DataDir = t.TempDir()
	o.Seeds = []Seed{{Resource: "source", Kind: KindModel, ID: "seeded"}, {Resource: "target", Kind: KindModel, ID: "present"}}
	srv, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	auth := authorizeModel(t, srv.Endpoint("target"), "2024-11-30", "later", nil)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	o.Resources[1].MaxModels = 1
	srv = startServer(t, o)
	cp := do(t, "POST", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels/seeded:copyTo"), auth)
	mustStatus(t, cp, http.StatusAccepted)
	clock.Advance(o.CopyDuration)
	op := do(t, "GET", cp.header.Get("Operation-Location"), nil).json(t)
	if op["status"] != "failed" || str2(op, "error", "innererror", "code") != CodeDocumentModelLimit {
		t.Errorf("copy past a lowered limit: %v", op)
	}
}
