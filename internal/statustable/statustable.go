// Package statustable renders replicas, as the HTTP API shows them (handlers.ReplicaView), as
// an aligned text table for terminals and logs: `dimirror status` and the local demo print it.
package statustable

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/shared/replication"
)

// maxNote bounds the NOTE column so a long service message does not wrap every row.
const maxNote = 72

// Sort orders replicas by kind, source id and target, the table's order.
func Sort(rows []handlers.ReplicaView) {
	slices.SortStableFunc(rows, func(a, b handlers.ReplicaView) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.SourceID, b.SourceID), cmp.Compare(a.Target, b.Target))
	})
}

// Write renders rows (in their order) as a table; now dates the REQUESTED ages and the
// next-attempt notes.
func Write(w io.Writer, rows []handlers.ReplicaView, now time.Time) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	// FROM names the resource each copy is made from; rows written before replication rules
	// name none, and a table of only those keeps the columns it always had.
	from := slices.ContainsFunc(rows, func(r handlers.ReplicaView) bool { return r.Source != "" })
	if from {
		fmt.Fprintln(tw, "KIND\tFROM\tSOURCE\tTARGET\tSTATUS\tPROGRESS\tATTEMPT\tREQUESTED\tLAG\tNOTE")
	} else {
		fmt.Fprintln(tw, "KIND\tSOURCE\tTARGET\tSTATUS\tPROGRESS\tATTEMPT\tREQUESTED\tLAG\tNOTE")
	}
	for _, r := range rows {
		target := r.Target
		if r.TargetID != "" && r.TargetID != r.SourceID {
			target += " as " + r.TargetID
		}
		kind := r.Kind
		if from {
			kind += "\t" + cmp.Or(r.Source, "-")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", kind, r.SourceID, target, r.Status,
			progress(r), r.Attempt, ago(r.RequestedAt, now), lag(r.LagSeconds), note(r, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads the cells before an empty NOTE; rows end at their last character.
	var out strings.Builder
	for line := range strings.Lines(b.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// Summary is one line of counts by status, in pipeline order: "4 replicas: 3 succeeded, 1 copying".
func Summary(rows []handlers.ReplicaView) string {
	if len(rows) == 0 {
		return "no replicas"
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Status]++
	}
	var parts []string
	for _, s := range replication.Statuses {
		if n := counts[string(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
			delete(counts, string(s))
		}
	}
	for _, s := range slices.Sorted(maps.Keys(counts)) { // statuses this build does not know
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	noun := "replicas"
	if len(rows) == 1 {
		noun = "replica"
	}
	return fmt.Sprintf("%d %s: %s", len(rows), noun, strings.Join(parts, ", "))
}

func progress(r handlers.ReplicaView) string {
	switch r.Status {
	case string(replication.StatusCopying):
		return fmt.Sprintf("%d%%", r.Percent)
	case string(replication.StatusSucceeded):
		return "100%"
	}
	return "-"
}

func note(r handlers.ReplicaView, now time.Time) string {
	var n string
	switch {
	case r.Error != nil && r.Status == string(replication.StatusFailed):
		n = r.Error.Code + ": " + r.Error.Message
	case r.NextAttemptAt != nil && r.NextAttemptAt.After(now):
		n = "next attempt in " + Duration(r.NextAttemptAt.Sub(now))
		if r.Error != nil {
			n += " (" + r.Error.Code + ")"
		}
	case r.Error != nil:
		n = r.Error.Code + ": " + r.Error.Message
	}
	n = strings.Join(strings.Fields(n), " ") // one line
	if r := []rune(n); len(r) > maxNote {
		n = string(r[:maxNote-1]) + "…"
	}
	return n
}

func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	d := now.Sub(*t)
	if d < 0 {
		d = 0
	}
	return Duration(d) + " ago"
}

func lag(s *float64) string {
	if s == nil {
		return "-"
	}
	return Duration(time.Duration(*s * float64(time.Second)))
}

// Duration is a short, human duration: 0.4s, 12.3s, 4m05s, 3h10m, 2d4h.
func Duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	d = d.Round(time.Hour)
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
