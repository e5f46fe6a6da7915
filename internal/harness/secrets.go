package harness

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Secrets are what must never appear in a log line: literal values (keys, connection-string
// parts) and copy access tokens, known only by their SHA-256 (didev keeps nothing else).
type Secrets struct {
	Literals    []string
	TokenHashes map[string]bool
}

// Finding is a log line that holds a secret. What names the kind of secret and at most its
// first characters, never the value.
type Finding struct {
	File string
	Line int
	What string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s", filepath.Base(f.File), f.Line, f.What)
}

// tokenShape matches didev's access tokens (32 random bytes, base64url without padding) and
// anything else of that shape; each candidate is hashed and looked up, so look-alikes such as
// operation ids are not findings.
var tokenShape = regexp.MustCompile(`[A-Za-z0-9_-]{43}`)

// Scan reads every file and reports each line that holds a literal secret, a known access
// token, or an "accessToken" field (an authorization body written whole).
func (s Secrets) Scan(files []string) ([]Finding, error) {
	var out []Finding
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return out, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		n := 0
		for sc.Scan() {
			n++
			out = append(out, s.scanLine(path, n, sc.Text())...)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return out, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	return out, nil
}

func (s Secrets) scanLine(path string, n int, line string) []Finding {
	var out []Finding
	for _, lit := range s.Literals {
		if lit != "" && strings.Contains(line, lit) {
			out = append(out, Finding{path, n, fmt.Sprintf("secret %q…", lit[:min(4, len(lit))])})
		}
	}
	if strings.Contains(line, "accessToken") {
		out = append(out, Finding{path, n, `an "accessToken" field`})
	}
	if len(s.TokenHashes) > 0 {
		for _, cand := range tokenShape.FindAllString(line, -1) {
			if s.TokenHashes[hashToken(cand)] {
				out = append(out, Finding{path, n, fmt.Sprintf("a copy access token %q…", cand[:4])})
			}
		}
	}
	return out
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

var hashField = regexp.MustCompile(`"hash"\s*:\s*"([0-9a-f]{64})"`)

// TokenHashes reads the SHA-256 of every access token didev issued from its data directory
// (state.json and journal.jsonl keep the hashes, never the tokens).
func TokenHashes(didevDataDir string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, name := range []string{"state.json", "journal.jsonl"} {
		b, err := os.ReadFile(filepath.Join(didevDataDir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, m := range hashField.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
	}
	return out, nil
}
