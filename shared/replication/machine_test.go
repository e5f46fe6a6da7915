package replication_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// fire runs event ev on r through the replica's own method.
func fire(r *replication.Replica, ev replication.Event) error {
	src := replication.Model{ID: "invoice-v1", Created: t0.Add(-time.Hour), Expires: t0.Add(700 * 24 * time.Hour)}
	switch ev {
	case replication.EvStart:
		return r.Start(src, "invoice-v1", t0)
	case replication.EvAuthorized:
		return r.Authorize("", t0.Add(time.Hour), t0)
	case replication.EvCopying:
		return r.Copying("https://source.example/operations/1", t0)
	case replication.EvProgress:
		_, err := r.Progress(40)
		return err
	case replication.EvSucceeded:
		return r.Succeed(t0)
	case replication.EvRetry:
		return r.Retry("InternalServerError", "copy failed", t0.Add(time.Minute), true)
	case replication.EvWait:
		return r.Wait("429", "throttled", t0.Add(time.Second), t0, true)
	case replication.EvFailed:
		return r.Fail("Forbidden", "no access", t0)
	case replication.EvVanished:
		return r.Vanish(t0)
	}
	panic("unknown event " + ev)
}

// Every (state, event) pair: the events the table allows move the replica where it says, every
// other one is refused with a TransitionError and leaves the replica exactly as it was.
func TestEveryStateEventPair(t *testing.T) {
	states := append([]replication.Status{replication.StatusNew}, replication.Statuses...)
	for _, from := range states {
		for _, ev := range replication.Events {
			name := string(from)
			if name == "" {
				name = "new"
			}
			t.Run(name+"/"+string(ev), func(t *testing.T) {
				r := replication.Replica{Key: replication.Key{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2"},
					Status: from, Attempt: 2, FirstAttempt: 1, RequestedAt: t0.Add(-time.Minute)}
				before := r
				err := fire(&r, ev)
				want, allowed := replication.Transitions[from][ev]
				if !allowed {
					var te *replication.TransitionError
					if !errors.As(err, &te) || te.From != from || te.Event != ev {
						t.Fatalf("error %v, want the transition refused", err)
					}
					if r != before {
						t.Errorf("a refused event changed the replica: %+v", r)
					}
					return
				}
				if err != nil {
					t.Fatalf("allowed event refused: %v", err)
				}
				if r.Status != want {
					t.Errorf("status %q, want %q", r.Status, want)
				}
			})
		}
	}
}

func TestTransitionEffects(t *testing.T) {
	base := func(st replication.Status) replication.Replica {
		return replication.Replica{Key: replication.Key{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2"},
			Status: st, Attempt: 3, FirstAttempt: 2, ErrorCode: "Old", ErrorMessage: "old", OperationURL: "https://x/operations/9",
			TransientSince: t0.Add(-time.Hour), RequestedAt: t0.Add(-2 * time.Hour), StartedAt: t0.Add(-time.Minute), SourceExpires: t0.Add(24 * time.Hour)}
	}
	tests := []struct {
		name  string
		from  replication.Status
		event replication.Event
		check func(t *testing.T, r replication.Replica)
	}{
		{"start begins a run", replication.StatusFailed, replication.EvStart, func(t *testing.T, r replication.Replica) {
			if r.Attempt != 4 || r.FirstAttempt != 4 || r.ErrorCode != "" || r.OperationURL != "" || !r.RequestedAt.Equal(t0) || !r.TransientSince.IsZero() {
				t.Errorf("%+v", r)
			}
		}},
		{"retry spends an attempt", replication.StatusCopying, replication.EvRetry, func(t *testing.T, r replication.Replica) {
			if r.Attempt != 4 || r.FirstAttempt != 2 || r.AttemptsUsed() != 3 || r.ErrorCode != "InternalServerError" || r.OperationURL != "" {
				t.Errorf("%+v", r)
			}
		}},
		{"wait keeps the state and the first transient time", replication.StatusPending, replication.EvWait, func(t *testing.T, r replication.Replica) {
			if r.Attempt != 3 || !r.TransientSince.Equal(t0.Add(-time.Hour)) || r.TransientFor(t0) != time.Hour || !r.NextAttemptAt.Equal(t0.Add(time.Second)) {
				t.Errorf("%+v", r)
			}
		}},
		{"copying clears the transient streak", replication.StatusAuthorized, replication.EvCopying, func(t *testing.T, r replication.Replica) {
			if !r.TransientSince.IsZero() || r.ErrorCode != "" || r.OperationURL != "https://source.example/operations/1" {
				t.Errorf("%+v", r)
			}
		}},
		{"succeeded records the copy's expiry", replication.StatusCopying, replication.EvSucceeded, func(t *testing.T, r replication.Replica) {
			if r.Percent != 100 || !r.CompletedAt.Equal(t0) || !r.CopyExpires.Equal(r.SourceExpires) || r.UpToDate() {
				t.Errorf("%+v", r)
			}
		}},
		{"vanished has its own code", replication.StatusSucceeded, replication.EvVanished, func(t *testing.T, r replication.Replica) {
			if r.ErrorCode != replication.CodeTargetVanished {
				t.Errorf("%+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base(tt.from)
			if err := fire(&r, tt.event); err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

// A quota wait that needs a new authorization does not count against the run's attempts.
func TestRetryWithoutSpending(t *testing.T) {
	r := replication.Replica{Status: replication.StatusCopying, Attempt: 3, FirstAttempt: 1}
	if err := r.Retry("DocumentModelLimit", "full", t0, false); err != nil {
		t.Fatal(err)
	}
	if r.Attempt != 4 || r.AttemptsUsed() != 3 {
		t.Errorf("attempt %d, used %d; want 4 with 3 used", r.Attempt, r.AttemptsUsed())
	}
}

func TestErrorMessagesAreCutAtACharacter(t *testing.T) {
	r := replication.Replica{Status: replication.StatusPending}
	msg := strings.Repeat("é", 600) // 1200 bytes of two-byte characters
	if err := r.Fail("X", msg, t0); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(r.ErrorMessage, "…") || !utf8Valid(r.ErrorMessage) || len(r.ErrorMessage) > 1024+len("…") {
		t.Errorf("message of %d bytes, valid %v", len(r.ErrorMessage), utf8Valid(r.ErrorMessage))
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// docs/ARCHITECTURE.md shows the state machine as a table; it must be Transitions, exactly.
func TestArchitectureShowsTheStateTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), replication.StateTable()) {
		t.Errorf("docs/ARCHITECTURE.md does not show the state machine as it is; its table must read:\n\n%s", replication.StateTable())
	}
}

// A run's copy messages are told apart from an earlier run's with the same attempt number.
func TestMessageIDsDifferPerRun(t *testing.T) {
	first := replication.Replica{Key: replication.Key{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2"}}
	if err := first.Start(replication.Model{}, "invoice-v1", t0); err != nil {
		t.Fatal(err)
	}
	second := replication.Replica{Key: first.Key} // the row was deleted and requested again
	if err := second.Start(replication.Model{}, "invoice-v1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	m1 := replication.CopyMessage{Kind: first.Kind, SourceID: first.SourceID, Target: first.Target, Attempt: first.Attempt, Run: first.RunID()}
	m2 := replication.CopyMessage{Kind: second.Kind, SourceID: second.SourceID, Target: second.Target, Attempt: second.Attempt, Run: second.RunID()}
	if first.Attempt != second.Attempt || m1.MessageID() == m2.MessageID() {
		t.Errorf("MessageIds %q and %q for attempts %d and %d: two runs must not share one", m1.MessageID(), m2.MessageID(), first.Attempt, second.Attempt)
	}
}
