// Package pack builds the zip that Azure Functions runs dimirror from: host.json and every
// function folder at the app root, and the custom handler binary at the path host.json's
// customHandler.description.defaultExecutablePath names, marked executable.
//
// It validates the app definition on the way (the same function.json reader the standalone host
// uses), so a package that would not start on the Functions host is never written.
package pack

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/dimirror/dimirror/shared/funcdef"
)

// FunctionsDir is the folder under Root that holds one folder per function.
const FunctionsDir = "functions"

// File modes in the zip: the host executes the binary straight from the package.
const (
	modeFile = 0o644
	modeExec = 0o755
)

// functionNameRE is what the Functions host accepts as a function (folder) name.
var functionNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,127}$`)

// Options say what to package.
type Options struct {
	// Root holds host.json and functions/<name>/function.json.
	Root string
	// Binary is the custom handler executable.
	Binary string
	// Machine, when set, is the ELF machine the binary must be built for (Azure Functions on
	// Linux runs elf.EM_X86_64); zero accepts any file.
	Machine elf.Machine
}

// Entry is one file of the package.
type Entry struct {
	// Name is the slash-separated path inside the zip.
	Name string
	// Source is the file on disk.
	Source string
	Mode   fs.FileMode
}

// hostFile is the part of host.json the package depends on.
type hostFile struct {
	Version       string `json:"version"`
	CustomHandler *struct {
		Description struct {
			DefaultExecutablePath string `json:"defaultExecutablePath"`
		} `json:"description"`
	} `json:"customHandler"`
}

// ExecutablePath reads host.json's customHandler.description.defaultExecutablePath and checks
// that it is a clean relative path inside the app, which is where the binary must go.
func ExecutablePath(hostJSON []byte) (string, error) {
	var h hostFile
	if err := json.Unmarshal(hostJSON, &h); err != nil {
		return "", fmt.Errorf("host.json is not valid JSON: %w", err)
	}
	if h.Version != "2.0" {
		return "", fmt.Errorf("host.json: version is %q, want \"2.0\"", h.Version)
	}
	if h.CustomHandler == nil {
		return "", errors.New("host.json has no customHandler section: dimirror runs as a custom handler")
	}
	p := h.CustomHandler.Description.DefaultExecutablePath
	switch {
	case p == "":
		return "", errors.New("host.json: customHandler.description.defaultExecutablePath is empty")
	case strings.Contains(p, `\`):
		return "", fmt.Errorf("host.json: defaultExecutablePath %q must use forward slashes (the app runs on Linux)", p)
	case path.IsAbs(p) || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../"):
		return "", fmt.Errorf("host.json: defaultExecutablePath %q must be a clean path relative to the app root, e.g. bin/dimirror", p)
	}
	return p, nil
}

// Plan validates the app definition and the binary and lists the package's files: host.json,
// <function>/function.json for every function, then the binary.
func Plan(o Options) ([]Entry, error) {
	if o.Root == "" {
		return nil, errors.New("pack: no app root given")
	}
	if o.Binary == "" {
		return nil, errors.New("pack: no binary given")
	}
	hostPath := filepath.Join(o.Root, "host.json")
	host, err := os.ReadFile(hostPath)
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	exe, err := ExecutablePath(host)
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	fns, err := funcdef.Load(os.DirFS(o.Root), FunctionsDir)
	if err != nil {
		return nil, fmt.Errorf("pack: function definitions: %w", err)
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("pack: %s has no function folders", filepath.Join(o.Root, FunctionsDir))
	}
	exeTop, _, _ := strings.Cut(exe, "/")
	entries := []Entry{{Name: "host.json", Source: hostPath, Mode: modeFile}}
	for _, f := range fns {
		switch {
		case !functionNameRE.MatchString(f.Name):
			return nil, fmt.Errorf("pack: function folder %q: use a letter then letters, digits, '_' or '-'", f.Name)
		case f.Name == exeTop:
			return nil, fmt.Errorf("pack: function folder %q collides with the executable path %s", f.Name, exe)
		}
		entries = append(entries, Entry{
			Name:   f.Name + "/function.json",
			Source: filepath.Join(o.Root, FunctionsDir, f.Name, "function.json"),
			Mode:   modeFile,
		})
	}
	if err := checkBinary(o.Binary, o.Machine); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	return append(entries, Entry{Name: exe, Source: o.Binary, Mode: modeExec}), nil
}

func checkBinary(name string, machine elf.Machine) error {
	st, err := os.Stat(name)
	switch {
	case err != nil:
		return fmt.Errorf("binary: %w (build it first: make package)", err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("binary %s is not a regular file", name)
	case st.Size() == 0:
		return fmt.Errorf("binary %s is empty", name)
	case machine == 0:
		return nil
	}
	f, err := elf.Open(name)
	if err != nil {
		return fmt.Errorf("binary %s is not an ELF executable (build it with GOOS=linux): %w", name, err)
	}
	defer f.Close()
	if f.Machine != machine {
		return fmt.Errorf("binary %s is built for %s, want %s (build it with GOOS=linux GOARCH=amd64)", name, f.Machine, machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("binary %s is an ELF %s, not an executable", name, f.Type)
	}
	return nil
}

// Write validates o and writes the package to w.
func Write(w io.Writer, o Options) error {
	entries, err := Plan(o)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, e := range entries {
		if err := add(zw, e); err != nil {
			return fmt.Errorf("pack: %s: %w", e.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	return nil
}

func add(zw *zip.Writer, e Entry) error {
	f, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: st.ModTime()}
	// SetMode records Unix permissions in the external attributes (creator Unix), which is
	// what keeps the binary executable after the host unpacks or mounts the package.
	hdr.SetMode(e.Mode)
	dst, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, f)
	return err
}

// WriteFile writes the package to name, replacing it only once it is complete, and creates
// name's directory if needed.
func WriteFile(name string, o Options) error {
	var buf bytes.Buffer
	if err := Write(&buf, o); err != nil {
		return err
	}
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".pack-*.zip")
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("pack: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	return nil
}
