package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/devstack"
)

// host plays the Functions host in front of `dimirror serve`: it POSTs the payloads the host
// sends (the shapes in testdata/functions/payloads) and, for the Service Bus trigger, receives
// from the queue and completes or abandons by the handler's answer, as autoCompleteMessages does.
type host struct {
	t    *testing.T
	e    *env
	base string
	rcv  *azservicebus.Receiver
	seq  int
}

func (e *env) serve() *host {
	e.t.Helper()
	addr := make(chan string, 1)
	a := e.newApp(func(s string) { addr <- s })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, 0) }()
	e.t.Cleanup(func() { cancel(); <-done })
	h := &host{t: e.t, e: e}
	select {
	case s := <-addr:
		h.base = "http://" + s
	case err := <-done:
		e.t.Fatalf("serve stopped: %v", err)
	case <-time.After(30 * time.Second):
		e.t.Fatal("serve did not listen")
	}
	client, err := azservicebus.NewClientFromConnectionString(e.stack.Settings["ServiceBusConnection"], nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { client.Close(context.Background()) })
	if h.rcv, err = client.NewReceiverForQueue(e.stack.Settings["DIMIRROR_QUEUE"], nil); err != nil {
		e.t.Fatal(err)
	}
	return h
}

func (h *host) post(function string, payload any) (int, map[string]any) {
	h.t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		h.t.Fatal(err)
	}
	h.seq++
	req, _ := http.NewRequest("POST", h.base+"/"+function, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", fmt.Sprintf("00000000-0000-0000-0000-%012d", h.seq))
	req.Header.Set("X-Azure-Functions-HostVersion", "4.1036.1.23224")
	req.Header.Set("User-Agent", "Azure-Functions-Host/4.1036.1.23224")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		h.t.Fatalf("%s answered non-JSON %d: %s", function, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func sys(method string) map[string]any {
	return map[string]any{"MethodName": method, "UtcNow": time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"RandGuid": "5f1c6a2e-1111-4a1d-9a5b-0c6a6f6b7e8d"}
}

// dotnet encodes a value as the host does before placing it in Metadata.
func dotnet(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// httpTrigger invokes an HTTP function and returns the caller's status and body from the
// "res" output binding.
func (h *host) httpTrigger(function, method, path string, params map[string]string, body string) (int, []byte) {
	h.t.Helper()
	req := map[string]any{
		"Url": "http://localhost:7071" + path, "Method": method, "Query": map[string]any{},
		"Headers": map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"curl/8.5.0"}},
		"Params":  params, "Identities": []any{},
	}
	meta := map[string]any{"sys": sys(function), "Headers": map[string]string{"Content-Type": "application/json"}}
	if body != "" {
		req["Body"] = body
		req["Headers"].(map[string][]string)["Content-Length"] = []string{strconv.Itoa(len(body))}
		var top map[string]any
		if json.Unmarshal([]byte(body), &top) == nil { // the host copies a JSON body's fields into Metadata
			for k, v := range top {
				meta[k] = dotnet(v)
			}
		}
	}
	for k, v := range params {
		meta[k] = dotnet(v)
	}
	st, out := h.post(function, map[string]any{"Data": map[string]any{"req": req}, "Metadata": meta})
	if st != http.StatusOK {
		h.t.Fatalf("%s: invocation failed %d %v", function, st, out)
	}
	res, ok := out["Outputs"].(map[string]any)["res"].(map[string]any)
	if !ok {
		h.t.Fatalf("%s: no res output in %v", function, out)
	}
	code, _ := res["statusCode"].(float64)
	s, _ := res["body"].(string)
	return int(code), []byte(s)
}

func serviceBusPayload(m *azservicebus.ReceivedMessage) map[string]any {
	inner, _ := json.Marshal(string(m.Body)) // the body is a .NET string: serialised, then placed as a JSON string
	meta := map[string]any{
		"MessageReceiver": map[string]any{}, "MessageActions": map[string]any{}, "Client": map[string]any{"IsClosed": false},
		"DeliveryCount":   strconv.Itoa(int(m.DeliveryCount)),
		"LockToken":       dotnet(fmt.Sprintf("%x", m.LockToken)),
		"MessageId":       dotnet(m.MessageID),
		"SequenceNumber":  strconv.FormatInt(*m.SequenceNumber, 10),
		"EnqueuedTimeUtc": m.EnqueuedTime.UTC().Format("2006-01-02T15:04:05"),
		"EnqueuedTime":    m.EnqueuedTime.UTC().Format("2006-01-02T15:04:05+00:00"),
		"sys":             sys("startcopy"),
	}
	if m.ContentType != nil {
		meta["ContentType"] = dotnet(*m.ContentType)
	}
	if m.ApplicationProperties != nil {
		meta["ApplicationProperties"] = m.ApplicationProperties
		meta["UserProperties"] = m.ApplicationProperties
	}
	var top map[string]any
	if json.Unmarshal(m.Body, &top) == nil {
		for k, v := range top {
			meta[k] = dotnet(v)
		}
	}
	return map[string]any{"Data": map[string]any{"message": string(inner)}, "Metadata": meta}
}

// deliver receives up to n messages and runs each through the startcopy function, settling it by
// the answer. It returns the statuses the function answered.
func (h *host) deliver(n int, settle bool) []int {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	msgs, err := h.rcv.ReceiveMessages(ctx, n, nil)
	if err != nil && ctx.Err() == nil {
		h.t.Fatal(err)
	}
	var out []int
	for _, m := range msgs {
		st, _ := h.post("startcopy", serviceBusPayload(m))
		out = append(out, st)
		if !settle {
			continue
		}
		if st >= 200 && st < 300 {
			err = h.rcv.CompleteMessage(context.Background(), m, nil)
		} else {
			err = h.rcv.AbandonMessage(context.Background(), m, nil)
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
	return out
}

func (h *host) poll() {
	h.t.Helper()
	st, out := h.post("poll", map[string]any{
		"Data": map[string]any{"timer": map[string]any{"Schedule": map[string]any{"AdjustForDST": true},
			"ScheduleStatus": nil, "IsPastDue": false}},
		"Metadata": map[string]any{"sys": sys("poll")},
	})
	if st != http.StatusOK {
		h.t.Fatalf("poll failed: %d %v", st, out)
	}
}

func (h *host) status(kind, id string) handlers.ReplicationAnswer {
	h.t.Helper()
	st, b := h.httpTrigger("status", "GET", "/api/replications/"+kind+"/"+id, map[string]string{"kind": kind, "id": id}, "")
	if st != http.StatusOK {
		h.t.Fatalf("status %s %s: %d %s", kind, id, st, b)
	}
	return decode[handlers.ReplicationAnswer](h.t, b)
}

func (h *host) pollUntilSettled(kind, id string) handlers.ReplicationAnswer {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.poll()
		ans := h.status(kind, id)
		settled := true
		for _, r := range ans.Replicas {
			if r.Status != "succeeded" && r.Status != "failed" {
				settled = false
			}
		}
		if settled {
			return ans
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s %s did not settle: %+v", kind, id, ans)
		}
		h.deliver(10, true) // retries queue new messages
		time.Sleep(200 * time.Millisecond)
	}
}

// The same path through `dimirror serve`, with the host's payloads: HTTP trigger → Service Bus
// trigger → timer trigger, for a model and a classifier into both targets.
func TestServeReplicatesWithHostPayloads(t *testing.T) {
	t.Parallel() // waits on timers: overlap with the other waiting tests
	e := startStack(t, devstack.Options{})
	h := e.serve()
	// The host's readiness probe.
	resp, err := http.Get(h.base + "/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readiness probe: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, tc := range []struct{ kind, id string }{{"model", "invoice-v1"}, {"classifier", "router-v1"}} {
		st, b := h.httpTrigger("authorize", "POST", "/api/replications", nil, `{"kind":"`+tc.kind+`","sourceId":"`+tc.id+`"}`)
		if st != http.StatusAccepted {
			t.Fatalf("authorize %s: %d %s", tc.id, st, b)
		}
	}
	if got := h.deliver(10, true); len(got) != 4 {
		t.Fatalf("delivered %d copy messages, want 4 (%v)", len(got), got)
	}
	for _, tc := range []struct{ kind, id string }{{"model", "invoice-v1"}, {"classifier", "router-v1"}} {
		ans := h.pollUntilSettled(tc.kind, tc.id)
		for _, r := range ans.Replicas {
			if r.Status != "succeeded" {
				t.Errorf("%s → %s: %s %+v", tc.id, r.Target, r.Status, r.Error)
			}
			if _, ok := e.stack.DI.Resource(r.Target).Model(didev.Kind(tc.kind), tc.id); !ok {
				t.Errorf("%s does not hold %s", r.Target, tc.id)
			}
		}
	}
	// The list route through the status function (no route parameters).
	st, b := h.httpTrigger("status", "GET", "/api/replications", map[string]string{}, "")
	if list := decode[handlers.ListAnswer](t, b); st != http.StatusOK || len(list.Value) != 4 {
		t.Errorf("list: %d %s", st, b)
	}
	e.assertNoSecrets()
}

func TestServeInvocationErrors(t *testing.T) {
	e := startStack(t, devstack.Options{})
	h := e.serve()
	// A poison message fails every delivery so the queue dead-letters it; the answer says why.
	st, out := h.post("startcopy", map[string]any{
		"Data":     map[string]any{"message": `"\"not a copy message\""`},
		"Metadata": map[string]any{"DeliveryCount": "1", "SequenceNumber": "5", "MessageId": `"m1"`, "sys": sys("startcopy")},
	})
	if st < 400 || fmt.Sprint(out["Logs"]) == "[]" {
		t.Errorf("poison: %d %v", st, out)
	}
	// Not a host payload at all.
	for _, fn := range []string{"authorize", "startcopy", "poll", "status"} {
		req, _ := http.NewRequest("POST", h.base+"/"+fn, bytes.NewReader([]byte(`{"hello":`)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s with a broken payload: %d, want 400", fn, resp.StatusCode)
		}
	}
	// A caller's bad request is the caller's 400 inside a successful invocation.
	code, b := h.httpTrigger("authorize", "POST", "/api/replications", nil, `{"sourceId":"invoice-v1","targets":["mars"]}`)
	if code != http.StatusBadRequest || !bytes.Contains(b, []byte(`"target":"targets"`)) {
		t.Errorf("bad target: %d %s", code, b)
	}
}
