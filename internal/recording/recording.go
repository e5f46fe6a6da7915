// Package recording loads recorded HTTP traffic of the live Document Intelligence service (the Azure
// SDK test-proxy "Entries" format) so tests can replay it against the client and against didev.
package recording

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entry is one recorded request and the service's answer to it.
type Entry struct {
	Method          string
	URL             *url.URL
	RequestHeader   http.Header
	RequestBody     json.RawMessage // nil when the request had no body
	StatusCode      int
	ResponseHeader  http.Header
	ResponseBody    json.RawMessage // nil when the answer had no body
	ResponseIsEmpty bool            // the recorder saw no body at all (not even "")
}

// Recording is one file of entries, in the order they were sent.
type Recording struct {
	Name    string
	Entries []Entry
}

type rawFile struct {
	Entries []struct {
		RequestURI      string            `json:"RequestUri"`
		RequestMethod   string            `json:"RequestMethod"`
		RequestHeaders  map[string]string `json:"RequestHeaders"`
		RequestBody     json.RawMessage   `json:"RequestBody"`
		StatusCode      int               `json:"StatusCode"`
		ResponseHeaders map[string]string `json:"ResponseHeaders"`
		ResponseBody    json.RawMessage   `json:"ResponseBody"`
	} `json:"Entries"`
}

// Load reads one recording file.
func Load(path string) (*Recording, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw rawFile
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("recording %s: %w", filepath.Base(path), err)
	}
	rec := &Recording{Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))}
	for i, e := range raw.Entries {
		u, err := url.Parse(e.RequestURI)
		if err != nil {
			return nil, fmt.Errorf("recording %s entry %d: %w", rec.Name, i, err)
		}
		rec.Entries = append(rec.Entries, Entry{
			Method:          e.RequestMethod,
			URL:             u,
			RequestHeader:   toHeader(e.RequestHeaders),
			RequestBody:     nullToNil(e.RequestBody),
			StatusCode:      e.StatusCode,
			ResponseHeader:  toHeader(e.ResponseHeaders),
			ResponseBody:    nullToNil(e.ResponseBody),
			ResponseIsEmpty: len(nullToNil(e.ResponseBody)) == 0,
		})
	}
	return rec, nil
}

// LoadDir reads every *.json recording of dir, sorted by name.
func LoadDir(dir string) ([]*Recording, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*Recording
	for _, p := range paths {
		r, err := Load(p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no recordings in %s", dir)
	}
	return out, nil
}

// APIVersion is the api-version the entry was recorded with: the query parameter, or the path
// segment of v2.x ("v2.1", "v2.1-preview.1").
func (e Entry) APIVersion() string {
	if v := e.URL.Query().Get("api-version"); v != "" {
		return v
	}
	for _, seg := range strings.Split(e.URL.Path, "/") {
		if strings.HasPrefix(seg, "v2.") {
			return seg
		}
	}
	return ""
}

// ResponseString is the recorded body as the service sent it. The recorder stores JSON bodies as
// JSON values, which re-marshal to the same document; a string body stays a JSON string literal.
func (e Entry) ResponseString() string { return string(e.ResponseBody) }

// RequestBodyBytes is the request body to send when replaying (nil for none).
func (e Entry) RequestBodyBytes() []byte {
	if e.RequestBody == nil {
		return nil
	}
	return bytes.Clone(e.RequestBody)
}

func toHeader(m map[string]string) http.Header {
	h := make(http.Header, len(m))
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

func nullToNil(b json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 || string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	return b
}
