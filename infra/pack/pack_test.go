package pack

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testHost = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"bin/app","arguments":["serve"]}}}`

const timerFn = `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"%S%"}]}`

// elfHeader is a minimal ELF64 little-endian executable header for machine m: enough for
// debug/elf to identify it, which is all the packer checks.
func elfHeader(m elf.Machine, typ elf.Type) []byte {
	b := make([]byte, 64)
	copy(b, []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	le := binary.LittleEndian
	le.PutUint16(b[16:], uint16(typ))
	le.PutUint16(b[18:], uint16(m))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint16(b[52:], 64) // e_ehsize
	le.PutUint16(b[54:], 56) // e_phentsize
	le.PutUint16(b[58:], 64) // e_shentsize
	return b
}

// app writes an app root with the given files (relative path → content) and returns it.
func app(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func validFiles() map[string]string {
	return map[string]string{
		"host.json":                    testHost,
		"functions/poll/function.json": timerFn,
		"functions/authorize/function.json": `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","methods":["post"]},` +
			`{"type":"http","direction":"out","name":"res"}]}`,
		"bin/app": string(elfHeader(elf.EM_X86_64, elf.ET_EXEC)),
	}
}

func TestWriteLayoutAndModes(t *testing.T) {
	root := app(t, validFiles())
	var buf bytes.Buffer
	if err := Write(&buf, Options{Root: root, Binary: filepath.Join(root, "bin/app"), Machine: elf.EM_X86_64}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		mode os.FileMode
		src  string
	}{
		{"host.json", 0o644, "host.json"},
		{"authorize/function.json", 0o644, "functions/authorize/function.json"},
		{"poll/function.json", 0o644, "functions/poll/function.json"},
		{"bin/app", 0o755, "bin/app"},
	}
	if len(zr.File) != len(want) {
		names := make([]string, len(zr.File))
		for i, f := range zr.File {
			names[i] = f.Name
		}
		t.Fatalf("zip holds %v, want %d files", names, len(want))
	}
	for i, w := range want {
		f := zr.File[i]
		if f.Name != w.name {
			t.Errorf("entry %d = %s, want %s", i, f.Name, w.name)
		}
		if f.Mode() != w.mode {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), w.mode)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		src, _ := os.ReadFile(filepath.Join(root, w.src))
		if !bytes.Equal(got, src) {
			t.Errorf("%s: content differs from %s", f.Name, w.src)
		}
	}
}

func TestPlanRejectsBadInput(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(files map[string]string)
		machine elf.Machine
		binary  string // relative to the root; default bin/app
		want    string
	}{
		{"missing host.json", func(f map[string]string) { delete(f, "host.json") }, 0, "", "host.json"},
		{"host.json not JSON", func(f map[string]string) { f["host.json"] = "{" }, 0, "", "not valid JSON"},
		{"wrong host version", func(f map[string]string) { f["host.json"] = `{"version":"1.0"}` }, 0, "", `want "2.0"`},
		{"no custom handler", func(f map[string]string) { f["host.json"] = `{"version":"2.0"}` }, 0, "", "no customHandler"},
		{"empty executable path", func(f map[string]string) {
			f["host.json"] = `{"version":"2.0","customHandler":{"description":{}}}`
		}, 0, "", "is empty"},
		{"absolute executable path", func(f map[string]string) {
			f["host.json"] = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"/usr/bin/app"}}}`
		}, 0, "", "relative to the app root"},
		{"escaping executable path", func(f map[string]string) {
			f["host.json"] = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"../app"}}}`
		}, 0, "", "relative to the app root"},
		{"unclean executable path", func(f map[string]string) {
			f["host.json"] = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"bin//app"}}}`
		}, 0, "", "clean path"},
		{"backslashes", func(f map[string]string) {
			f["host.json"] = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"bin\\app.exe"}}}`
		}, 0, "", "forward slashes"},
		{"no functions", func(f map[string]string) {
			delete(f, "functions/poll/function.json")
			delete(f, "functions/authorize/function.json")
		}, 0, "", "functions"},
		{"function.json not JSON", func(f map[string]string) { f["functions/poll/function.json"] = "[" }, 0, "", "poll/function.json"},
		{"two triggers", func(f map[string]string) {
			f["functions/poll/function.json"] = `{"bindings":[{"type":"timerTrigger","direction":"in","name":"a"},{"type":"timerTrigger","direction":"in","name":"b"}]}`
		}, 0, "", "2 triggers"},
		{"bad function name", func(f map[string]string) { f["functions/9lives/function.json"] = timerFn }, 0, "", `"9lives"`},
		{"function folder named like the binary folder", func(f map[string]string) { f["functions/bin/function.json"] = timerFn }, 0, "", "collides"},
		{"missing binary", func(f map[string]string) { delete(f, "bin/app") }, 0, "", "make package"},
		{"empty binary", func(f map[string]string) { f["bin/app"] = "" }, 0, "", "is empty"},
		{"binary is a directory", nil, 0, "functions", "not a regular file"},
		{"not ELF", func(f map[string]string) { f["bin/app"] = "#!/bin/sh\n" }, elf.EM_X86_64, "", "not an ELF"},
		{"wrong machine", func(f map[string]string) { f["bin/app"] = string(elfHeader(elf.EM_AARCH64, elf.ET_EXEC)) }, elf.EM_X86_64, "", "EM_AARCH64"},
		{"ELF object, not executable", func(f map[string]string) { f["bin/app"] = string(elfHeader(elf.EM_X86_64, elf.ET_REL)) }, elf.EM_X86_64, "", "not an executable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := validFiles()
			if tc.edit != nil {
				tc.edit(files)
			}
			root := app(t, files)
			bin := tc.binary
			if bin == "" {
				bin = "bin/app"
			}
			_, err := Plan(Options{Root: root, Binary: filepath.Join(root, bin), Machine: tc.machine})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Plan error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPlanNeedsRootAndBinary(t *testing.T) {
	if _, err := Plan(Options{Binary: "x"}); err == nil || !strings.Contains(err.Error(), "app root") {
		t.Errorf("no root: %v", err)
	}
	if _, err := Plan(Options{Root: "."}); err == nil || !strings.Contains(err.Error(), "no binary") {
		t.Errorf("no binary: %v", err)
	}
}

func TestPlanAcceptsAnyFileWithoutMachine(t *testing.T) {
	files := validFiles()
	files["bin/app"] = "#!/bin/sh\nexit 0\n"
	root := app(t, files)
	entries, err := Plan(Options{Root: root, Binary: filepath.Join(root, "bin/app")})
	if err != nil {
		t.Fatal(err)
	}
	if last := entries[len(entries)-1]; last.Name != "bin/app" || last.Mode != 0o755 {
		t.Errorf("last entry = %+v, want the binary at bin/app, mode 0755", last)
	}
}

func TestWriteFileIsAtomicAndReplaces(t *testing.T) {
	root := app(t, validFiles())
	out := filepath.Join(t.TempDir(), "dist", "app.zip")
	o := Options{Root: root, Binary: filepath.Join(root, "bin/app"), Machine: elf.EM_X86_64}
	if err := WriteFile(out, o); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// A failing run leaves the previous package untouched and no temporary file behind.
	bad := o
	bad.Binary = filepath.Join(root, "missing")
	if err := WriteFile(out, bad); err == nil {
		t.Fatal("WriteFile with a missing binary succeeded")
	}
	after, _ := os.ReadFile(out)
	if !bytes.Equal(first, after) {
		t.Error("a failed WriteFile changed the existing package")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".pack-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	st, _ := os.Stat(out)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("package mode %v, want 0644", st.Mode().Perm())
	}
}
