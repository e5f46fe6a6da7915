package docintel

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/dimirror/dimirror/internal/recording"
)

const fuzzSecret = "FUZZSECRET"

// FuzzParseError feeds arbitrary bodies to the error parser. Seeds: every error body of the
// recordings (testdata/fuzz/FuzzParseError, checked by TestFuzzCorpusHasRecordedErrors) plus a few
// malformed shapes below.
func FuzzParseError(f *testing.F) {
	f.Add(400, []byte(`{"error":{"code":"InvalidRequest","innererror":{"innererror":{"innererror":{"code":"Deep"}}}}}`))
	f.Add(500, []byte(`{"error":{"details":[{"details":[{"code":1}]}],"code":null}}`))
	f.Add(429, []byte(`{"statusCode":429,"message":"Rate limit is exceeded."}`))
	f.Add(502, []byte("\xff\xfe<html>\x00"))
	f.Add(401, []byte(`{"error":{"code":"401","message":"key `+fuzzSecret+` rejected"}}`))
	f.Add(200, []byte(`{"error":"`+fuzzSecret+`"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, echo := range []bool{true, false} {
			e := parseError(status, nil, body, echo, []string{fuzzSecret})
			if e == nil || e.StatusCode != status {
				t.Fatalf("parseError = %#v", e)
			}
			s := e.Error()
			if !utf8.ValidString(s) {
				t.Fatalf("Error() is not UTF-8: %q", s)
			}
			if strings.ContainsFunc(s, unicode.IsControl) {
				t.Fatalf("Error() has control characters: %q", s)
			}
			if strings.Contains(s, fuzzSecret) {
				t.Fatalf("Error() shows the secret: %q", s)
			}
			if len(e.Message) > maxMessageLen+len("…") || len(e.InnerMessage) > maxMessageLen+len("…") {
				t.Fatalf("message of %d bytes", len(e.Message))
			}
			if !echo && !json.Valid(body) && len(bytes.TrimSpace(body)) > 0 && !strings.HasPrefix(e.Message, "unparsable error body") {
				t.Fatalf("non-JSON body echoed with echo=false: %q", e.Message)
			}
		}
	})
}

// TestFuzzCorpusHasRecordedErrors keeps the seed corpus in step with the recordings: every
// non-2xx answer and every failed v2.1 copy result must be a seed.
func TestFuzzCorpusHasRecordedErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzParseError/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	type seed struct {
		status int
		body   string
	}
	seeds := map[seed]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 3 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a corpus file", f)
		}
		status, err1 := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(lines[1], "int("), ")"))
		body, err2 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "[]byte("), ")"))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", f, err1, err2)
		}
		seeds[seed{status, body}] = true
	}
	recs, err := recording.LoadDir(recordingsDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		for i, e := range r.Entries {
			failedCopy := e.StatusCode == 200 && bytes.Contains(e.ResponseBody, []byte(`"status": "failed"`))
			if e.StatusCode < 300 && !failedCopy {
				continue
			}
			n++
			if !seeds[seed{e.StatusCode, string(e.ResponseBody)}] {
				t.Errorf("%s[%d]: HTTP %d body is not in the seed corpus", r.Name, i, e.StatusCode)
			}
		}
	}
	if n < 8 {
		t.Errorf("only %d recorded errors found", n)
	}
}
