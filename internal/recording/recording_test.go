package recording

import (
	"net/http"
	"testing"
)

func TestLoadDirReadsEveryRecording(t *testing.T) {
	recs, err := LoadDir("../../testdata/docintel/recordings")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 15 {
		t.Fatalf("got %d recordings, want 15", len(recs))
	}
	for _, r := range recs {
		if len(r.Entries) == 0 {
			t.Errorf("%s: no entries", r.Name)
		}
		for i, e := range r.Entries {
			if e.Method == "" || e.URL == nil || e.URL.Host == "" || e.StatusCode < 100 {
				t.Errorf("%s[%d]: incomplete entry %+v", r.Name, i, e)
			}
			if e.ResponseHeader.Get("apim-request-id") == "" && e.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s[%d]: no apim-request-id", r.Name, i)
			}
		}
	}
}

func TestEntryAPIVersion(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"../../testdata/docintel/recordings/py_di_2024-11-30_copy_classifier_successful.json", "2024-11-30"},
		{"../../testdata/docintel/recordings/net_fr_v2.1_CopyModelError.json", "v2.1"},
		{"../../testdata/docintel/recordings/py_fr_v2.1-preview.1_test_copy_model_fail.json", "v2.1-preview.1"},
		{"../../testdata/docintel/recordings/js_fr_2023-07-31_copy_model_template.json", "2023-07-31"},
	}
	for _, tt := range tests {
		r, err := Load(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Entries[0].APIVersion(); got != tt.want {
			t.Errorf("%s: APIVersion = %q, want %q", r.Name, got, tt.want)
		}
	}
}

func TestHeadersAreCaseInsensitive(t *testing.T) {
	r, err := Load("../../testdata/docintel/recordings/net_di_2024-07-31-preview_CopyModelTo.json")
	if err != nil {
		t.Fatal(err)
	}
	if r.Entries[0].ResponseHeader.Get("Operation-Location") == "" {
		t.Fatal("lower-case operation-location not reachable through http.Header.Get")
	}
}
