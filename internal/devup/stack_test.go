package devup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/internal/syncbuf"
	"github.com/dimirror/dimirror/shared/config"
)

// inProcessDimirror runs `dimirror run` inside the test binary (the binary's own start-up is
// cmd/dimirror's concern), with the settings the launcher gives the child.
func inProcessDimirror(ctx context.Context, settings map[string]string, log io.Writer) error {
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := settings[k]; return v, ok })
	if err != nil {
		return err
	}
	if err := cfg.ValidateStandalone(); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: cfg.LogLevel}))
	a, err := app.New(ctx, cfg, logger, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close(context.Background())
	return a.Run(ctx)
}

func demoOptions(dir string) Options {
	return Options{
		Root:        "../..",
		DataDir:     dir,
		Ports:       Ports{}, // all free ports: the defaults may be taken on a shared machine
		RunDimirror: inProcessDimirror,
		Settings: map[string]string{
			"DIMIRROR_POLL_SCHEDULE":  "*/1 * * * * *",
			"DIMIRROR_WATCH_SCHEDULE": "*/1 * * * * *",
			"DIMIRROR_RETRY_BASE":     "1s",
			"DIMIRROR_RETRY_MAX":      "4s",
		},
		DI: func(o *didev.Options) {
			o.CopyDuration, o.BuildDuration = 300*time.Millisecond, 300*time.Millisecond
			o.Rate = didev.RateOptions{Off: true}
		},
	}
}

// The demo's whole path on a real stack (Azurite as a child process, devbus, didev, dimirror):
// both requested replications converge, the model trained during the demo reaches every target
// through the automatic path — or, in a build without a timer that discovers new models, the
// demo fails saying so. Then a restart on the same data keeps everything and seeds nothing twice.
func TestStackDemoAndRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress syncbuf.Buffer
	o := demoOptions(dir)
	o.Progress = &progress
	o.TwoWay = true
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop()
		}
	}()
	for _, want := range []string{"starting devbus", "starting didev", "starting Azurite", "starting dimirror run"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
	var banner bytes.Buffer
	s.WriteBanner(&banner, "bin/dimirror")
	for _, want := range []string{s.CurlRequest("model", "invoice-v1"), "x-functions-key: " + APIKey, s.API,
		"models invoice-v1, purchase-order-v1, receipt-v2; classifiers router-v1", "--settings " + filepath.Join(dir, "local.settings.json"),
		s.API + "/api/dashboard?code=" + APIKey} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}

	var out syncbuf.Buffer
	timeout := 30 * time.Second
	if !HasWatchTimer() {
		timeout = 4 * time.Second // the automatic copy cannot come: do not wait for it long
	}
	err = s.Demo(ctx, DemoOptions{Out: &out, Timeout: timeout})
	t.Logf("demo output:\n%s", out.String())
	for _, want := range []string{"[1/5]", `{"source":"source","kind":"model","sourceId":"invoice-v1"} → 202 Accepted`, "[2/5]", "invoice-v2 is ready on the source",
		"invoice-v1: 2/2 succeeded · router-v1: 2/2 succeeded", "[5/5]", "KIND", "FROM", "Figures", "copyTo accepted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if HasWatchTimer() {
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
		if !strings.Contains(out.String(), "invoice-v2: 2/2 succeeded") || !strings.Contains(out.String(), "the trained model was in both targets") {
			t.Error("the trained model did not reach both targets")
		}
		// The two-way path: trained in westus2, back in the source and, through it, in eastus.
		if !strings.Contains(out.String(), "[4/5] the two-way path") || !strings.Contains(out.String(), "receipt-westus2: 2/2 succeeded") {
			t.Error("the model trained in westus2 did not reach the source and eastus")
		}
		for _, n := range []string{"source", "eastus"} {
			m, ok := s.DI.Resource(n).Model(didev.KindModel, "receipt-westus2")
			if !ok || !strings.HasSuffix(m.Tags["dimirror-source"], "/model/receipt-westus2") || strings.HasPrefix(m.Tags["dimirror-source"], strings.TrimPrefix(s.DI.Endpoint(n), "http://")) {
				t.Errorf("%s: receipt-westus2 held %v, origin tag %q", n, ok, m.Tags["dimirror-source"])
			}
		}
	} else if !errors.Is(err, ErrAutomaticCopyMissing) || !strings.Contains(err.Error(), "the timer functions of this build are: poll") {
		t.Fatalf("demo without a watch timer: %v", err)
	}
	for _, target := range Targets {
		for _, it := range []struct {
			kind didev.Kind
			id   string
		}{{didev.KindModel, "invoice-v1"}, {didev.KindClassifier, "router-v1"}} {
			if _, ok := s.DI.Resource(target).Model(it.kind, it.id); !ok {
				t.Errorf("%s lacks %s %s", target, it.kind, it.id)
			}
		}
	}
	if tail := strings.Join(s.LogTail(50), "\n"); strings.Contains(tail, Key+"\"") || strings.Contains(tail, "accessToken") {
		t.Errorf("dimirror's log shows a secret:\n%s", tail)
	}
	azurite := s.azurite.Pid()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if alive(azurite) {
		t.Error("Azurite survived Stop")
	}
	for _, spec := range PortSpecs {
		if err := portFree(*spec.Port(&s.Ports)); err != nil {
			t.Errorf("%s's port is still taken after Stop: %v", spec.What, err)
		}
	}

	// Restart on the same data: the seeds exist already, the replicas are still known.
	o.Progress = nil
	s2, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer s2.Stop()
	// Three seeds and invoice-v2, and (with the watch timer) receipt-westus2 copied back from westus2.
	want := 4
	if HasWatchTimer() {
		want = 5
	}
	if got := s2.DI.Resource("source").Count(didev.KindModel); got != want {
		t.Errorf("the source holds %d models after the restart, want %d", got, want)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s2.API+"/api/replications/model/invoice-v1", nil)
	req.Header.Set("x-functions-key", APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Count(string(body), `"status":"succeeded"`) != 2 {
		t.Errorf("after the restart: %d %s", resp.StatusCode, body)
	}
}

func TestStartRefusals(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no root", Options{DataDir: dir}, "Root and DataDir are required"},
		{"no azurite", Options{Root: dir, DataDir: dir}, "Azurite is not installed"},
		{"no dimirror binary", Options{Root: "../..", DataDir: dir, Dimirror: filepath.Join(dir, "nope")}, "the dimirror binary is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("port in use", func(t *testing.T) {
		busy := demoOptions(dir)
		s, err := Start(context.Background(), busy)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		again := demoOptions(t.TempDir())
		again.Ports = s.Ports
		again.Ports.Tables = 0
		_, err = Start(context.Background(), again)
		var inUse *PortsInUseError
		if !errors.As(err, &inUse) || len(inUse.Busy) != 5 {
			t.Fatalf("err %v", err)
		}
		for _, env := range []string{"DEV_BUS_PORT", "DEV_SOURCE_PORT", "DEV_WESTUS2_PORT", "DEV_EASTUS_PORT", "DEV_API_PORT"} {
			if !strings.Contains(err.Error(), env) {
				t.Errorf("the message does not name %s:\n%v", env, err)
			}
		}
	})
}
