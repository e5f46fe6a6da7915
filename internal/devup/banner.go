package devup

import (
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/dimirror/dimirror/emulators/didev"
)

// CurlRequest is the ready-to-paste command that asks dimirror to replicate a model.
func (s *Stack) CurlRequest(kind, id string) string {
	return fmt.Sprintf(`curl -sS -H 'x-functions-key: %s' -H 'Content-Type: application/json' -d '{"kind":"%s","sourceId":"%s"}' %s/api/replications`,
		s.Settings["DIMIRROR_API_KEY"], kind, id, s.API)
}

// CurlStatus is the command that shows a replication's replicas.
func (s *Stack) CurlStatus(kind, id string) string {
	return fmt.Sprintf(`curl -sS -H 'x-functions-key: %s' %s/api/replications/%s/%s`, s.Settings["DIMIRROR_API_KEY"], s.API, kind, id)
}

func (s *Stack) items(kind didev.Kind) string {
	var ids []string
	for _, m := range s.DI.Resource("source").Models(kind) {
		ids = append(ids, m.ID)
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// WriteBanner tells what runs where, the API key, and the commands to try.
func (s *Stack) WriteBanner(w io.Writer, dimirrorBin string) {
	log := func(name string) string { return "log " + filepath.Join(s.LogDir, name) }
	fmt.Fprintf(w, "\ndimirror runs locally; its state is kept in %s across restarts.\n\n", s.DataDir)
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  dimirror run\t%s\t%s\n", s.API, log("dimirror.log"))
	fmt.Fprintf(tw, "  Azurite (Table Storage)\thttp://%s/devstoreaccount1\t%s\n", loopback(s.Ports.Tables), log("azurite.log"))
	fmt.Fprintf(tw, "  devbus (Service Bus)\tamqp://%s, queue %s\t%s\n", s.Bus.Addr(), Queue, log("devbus.log"))
	fmt.Fprintf(tw, "  didev (Document Intelligence)\t\t%s\n", log("didev.log"))
	fmt.Fprintf(tw, "    source\t%s\tmodels %s; classifiers %s\n", s.DI.Endpoint("source"), s.items(didev.KindModel), s.items(didev.KindClassifier))
	for _, t := range Targets {
		fmt.Fprintf(tw, "    %s\t%s\n", t, s.DI.Endpoint(t))
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	fmt.Fprintf(w, `
API key: %s (header x-functions-key). Document Intelligence key: %s.

Replicate a model into both targets:

  %s

Then see its replicas (both "succeeded" within seconds):

  %s
  %s status --watch --settings %s

The status page (models × targets, lag, RPO; refreshes itself), in a browser:

  %s

Ctrl-C stops everything. dimirror's log follows.

`,
		s.Settings["DIMIRROR_API_KEY"], Key,
		s.CurlRequest("model", "invoice-v1"),
		s.CurlStatus("model", "invoice-v1"),
		dimirrorBin, s.SettingsFile,
		s.DashboardURL(),
	)
}

// DashboardURL is the status page's address. The page takes the key from it once and removes
// it from the address bar; a local stack's key is no secret.
func (s *Stack) DashboardURL() string {
	return s.API + "/api/dashboard?code=" + url.QueryEscape(s.Settings["DIMIRROR_API_KEY"])
}
