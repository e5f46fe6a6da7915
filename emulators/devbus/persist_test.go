package devbus_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/emulators/devbus"
)

// restartCase fills a broker, stops it one way or another and checks what the next one
// finds.
func TestRestartKeepsAcceptedMessages(t *testing.T) {
	cases := []struct {
		name string
		stop func(t *testing.T, b *devbus.Broker, dir string)
	}{
		{"clean close", func(t *testing.T, b *devbus.Broker, _ string) {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"kill", func(_ *testing.T, b *devbus.Broker, _ string) { b.Abort() }},
		{"kill with a torn write", func(t *testing.T, b *devbus.Broker, dir string) {
			b.Abort()
			f, err := os.OpenFile(filepath.Join(dir, "durable.journal"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Half a record: a length promising more than follows, as a crash mid-write leaves.
			if _, err := f.Write([]byte{0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, 2, 1, 2, 3}); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newFakeClock()
			opts := devbus.Options{DataDir: dir, Now: clock.Now, Queues: []devbus.QueueOptions{{Name: "durable", MaxDeliveryCount: 5}}}
			b1, err := devbus.Start(testContext(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			c1 := newClient(t, b1)
			s := newSender(t, c1, "durable")
			for i := range 6 {
				send(t, s, &azservicebus.Message{MessageID: to.Ptr(fmt.Sprintf("m%d", i)), Body: []byte(fmt.Sprintf("m%d", i))})
			}
			if _, err := s.ScheduleMessages(testContext(t), []*azservicebus.Message{textMessage("scheduled")}, clock.Now().Add(time.Hour), nil); err != nil {
				t.Fatal(err)
			}
			send(t, newSender(t, c1, "autocreated"), textMessage("elsewhere"))
			r := newReceiver(t, c1, "durable", nil)
			got := receiveN(t, r, 4)
			complete(t, r, got[0])                                                // m0 gone
			if err := r.AbandonMessage(testContext(t), got[1], nil); err != nil { // m1 delivery count 1
				t.Fatal(err)
			}
			if err := r.DeadLetterMessage(testContext(t), got[2], &azservicebus.DeadLetterOptions{Reason: to.Ptr("Bad")}); err != nil {
				t.Fatal(err)
			}
			if err := r.DeferMessage(testContext(t), got[3], nil); err != nil { // m3 deferred
				t.Fatal(err)
			}
			// m1 is available again, m4 and m5 are still locked by r.
			tc.stop(t, b1, dir)

			b2 := startBroker(t, opts)
			st := stats(t, b2, "durable")
			// m1 (locked before the stop, available after), m4, m5 active; m3 deferred.
			if st.Active != 3 || st.Deferred != 1 || st.Scheduled != 1 || st.DeadLetterReasons["Bad"] != 1 || st.Locked != 0 {
				t.Fatalf("after restart: %+v", st)
			}
			if st := stats(t, b2, "autocreated"); st.Active != 1 {
				t.Errorf("queue created on first use after restart: %+v", st)
			}
			c2 := newClient(t, b2)
			r2 := newReceiver(t, c2, "durable", nil)
			var bodies []string
			for _, m := range receiveN(t, r2, 3) {
				bodies = append(bodies, fmt.Sprintf("%s/%d", m.Body, m.DeliveryCount))
			}
			if got := strings.Join(bodies, ","); got != "m1/2,m4/1,m5/1" {
				t.Errorf("after restart received %s, want m1/2,m4/1,m5/1", got)
			}
			// Duplicate detection remembers ids across the restart.
			send(t, newSender(t, c2, "durable"), &azservicebus.Message{MessageID: to.Ptr("m0"), Body: []byte("dup")})
			if st := stats(t, b2, "durable"); st.Duplicates != 1 {
				t.Errorf("resend of m0 after restart: %+v, want a duplicate", st)
			}
			// Sequence numbers continue.
			send(t, newSender(t, c2, "durable"), textMessage("new"))
			clock.Advance(2 * time.Hour)
			peeked, err := r2.PeekMessages(testContext(t), 20, &azservicebus.PeekMessagesOptions{FromSequenceNumber: to.Ptr(int64(1))})
			if err != nil {
				t.Fatal(err)
			}
			last := *peeked[len(peeked)-1].SequenceNumber
			if string(peeked[len(peeked)-1].Body) != "new" || last != 8 {
				t.Errorf("newest message %q has sequence number %d, want \"new\" at 8", peeked[len(peeked)-1].Body, last)
			}
		})
	}
}

func TestRestartRefusesCorruptJournal(t *testing.T) {
	dir := t.TempDir()
	// A record with a valid checksum but an unknown kind is not a torn write: refuse it.
	body := []byte{99, 1, 2, 3}
	rec := append([]byte{0, 0, 0, byte(len(body))}, crc32c(body)...)
	rec = append(rec, body...)
	if err := os.WriteFile(filepath.Join(dir, "broken.journal"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := devbus.Start(testContext(t), devbus.Options{DataDir: dir})
	if err == nil {
		b.Close()
		t.Fatal("Start accepted a journal with an unknown record")
	}
	if !strings.Contains(err.Error(), "broken.journal") {
		t.Errorf("error %q does not name the file", err)
	}
}

func crc32c(b []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// TestJournalsAreTheOwnersAlone: journals hold every message (copy authorizations among
// them), so they are written 0600 in a directory devbus creates 0700, whatever the
// umask; a journal an earlier devbus left readable by others is restricted at start.
func TestJournalsAreTheOwnersAlone(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string) // before the broker starts
	}{
		{"new data directory", func(*testing.T, string) {}},
		{"journal left readable by an earlier devbus", func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "secret.journal"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, "secret.journal"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state", "devbus")
			tc.prepare(t, dir)
			b, err := devbus.Start(testContext(t), devbus.Options{DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(t, newClient(t, b), "secret")
			send(t, s, textMessage("authorization"))
			check := func(when string) {
				t.Helper()
				for _, p := range []string{dir, filepath.Dir(dir)} {
					if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
						t.Errorf("%s: directory %s has mode %v (%v), want 0700", when, p, modeOf(fi), err)
					}
				}
				entries, err := os.ReadDir(dir)
				if err != nil || len(entries) == 0 {
					t.Fatalf("%s: reading %s: %d entries, %v", when, dir, len(entries), err)
				}
				for _, e := range entries {
					fi, err := e.Info()
					if err != nil || fi.Mode().Perm() != 0o600 {
						t.Errorf("%s: %s has mode %v (%v), want 0600", when, e.Name(), modeOf(fi), err)
					}
				}
			}
			check("while running")
			if err := b.Close(); err != nil { // compacts: the journal is rewritten
				t.Fatal(err)
			}
			check("after compaction")
		})
	}
}

func modeOf(fi os.FileInfo) os.FileMode {
	if fi == nil {
		return 0
	}
	return fi.Mode().Perm()
}
