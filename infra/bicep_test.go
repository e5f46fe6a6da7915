package infra_test

// No Bicep compiler can be installed on the machines that run these tests, so the templates are
// checked here with a small lexer: delimiters balance, strings and comments end, and the
// declarations (params, outputs, modules, resources) are read well enough to check how the
// modules fit together and what they grant. It is not a Bicep parser: it knows only what these
// checks need, and the Bicep files keep to that (one object key per line).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tPunct
	tNewline
)

type token struct {
	kind  tokKind
	text  string // a string's raw content, without the quotes
	line  int
	depth int // nesting of (), [] and {} around the token; an opener or closer counts outside itself
}

// lexBicep splits src into tokens and checks that every string, comment, interpolation and
// bracket is closed.
func lexBicep(src string) ([]token, error) {
	l := &lexer{src: src, line: 1}
	if err := l.run(false); err != nil {
		return nil, err
	}
	if len(l.stack) > 0 {
		open := l.stack[len(l.stack)-1]
		return nil, fmt.Errorf("line %d: %q is never closed", open.line, open.text)
	}
	return l.toks, nil
}

type lexer struct {
	src   string
	pos   int
	line  int
	toks  []token
	stack []token
}

var closerOf = map[byte]byte{'(': ')', '[': ']', '{': '}'}

// twoCharOps are the operators lexed as one token, so a check can match `a == b` or `a || b` as
// written.
var twoCharOps = []string{"::", "==", "!=", "<=", ">=", "&&", "||", "??", "=~", "!~"}

// run lexes until the end of the source or, inside an interpolation, until its closing brace.
func (l *lexer) run(interp bool) error {
	base := len(l.stack)
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.emit(tNewline, "\n")
			l.pos++
			l.line++
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
		case strings.HasPrefix(l.src[l.pos:], "//"):
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case strings.HasPrefix(l.src[l.pos:], "/*"):
			end := strings.Index(l.src[l.pos+2:], "*/")
			if end < 0 {
				return fmt.Errorf("line %d: comment never closed", l.line)
			}
			l.line += strings.Count(l.src[l.pos:l.pos+2+end], "\n")
			l.pos += end + 4
		case strings.HasPrefix(l.src[l.pos:], "'''"):
			end := strings.Index(l.src[l.pos+3:], "'''")
			if end < 0 {
				return fmt.Errorf("line %d: multi-line string never closed", l.line)
			}
			text := l.src[l.pos+3 : l.pos+3+end]
			l.emit(tString, text)
			l.line += strings.Count(text, "\n")
			l.pos += end + 6
		case c == '\'':
			if err := l.str(); err != nil {
				return err
			}
		case isIdentStart(c):
			start := l.pos
			for l.pos < len(l.src) && (isIdentStart(l.src[l.pos]) || isDigit(l.src[l.pos])) {
				l.pos++
			}
			l.emit(tIdent, l.src[start:l.pos])
		case isDigit(c):
			start := l.pos
			for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
				l.pos++
			}
			l.emit(tNumber, l.src[start:l.pos])
		case c == '(' || c == '[' || c == '{':
			l.emit(tPunct, string(c))
			l.stack = append(l.stack, l.toks[len(l.toks)-1])
			l.pos++
		case c == ')' || c == ']' || c == '}':
			if interp && c == '}' && len(l.stack) == base {
				l.pos++
				return nil
			}
			if len(l.stack) == base {
				return fmt.Errorf("line %d: %q closes nothing", l.line, string(c))
			}
			open := l.stack[len(l.stack)-1]
			if closerOf[open.text[0]] != c {
				return fmt.Errorf("line %d: %q closes %q of line %d", l.line, string(c), open.text, open.line)
			}
			l.stack = l.stack[:len(l.stack)-1]
			l.emit(tPunct, string(c))
			l.pos++
		case l.pos+2 <= len(l.src) && slices.Contains(twoCharOps, l.src[l.pos:l.pos+2]):
			l.emit(tPunct, l.src[l.pos:l.pos+2])
			l.pos += 2
		case strings.ContainsRune(":=.,@?!<>&|+-*/%", rune(c)):
			l.emit(tPunct, string(c))
			l.pos++
		default:
			return fmt.Errorf("line %d: unexpected character %q", l.line, c)
		}
	}
	if interp {
		return fmt.Errorf("line %d: interpolation never closed", l.line)
	}
	return nil
}

// str lexes a single-quoted string, escapes and ${...} interpolations included.
func (l *lexer) str() error {
	startLine := l.line
	l.pos++ // opening quote
	start := l.pos
	for l.pos < len(l.src) {
		switch c := l.src[l.pos]; {
		case c == '\\':
			l.pos += 2
		case c == '\n':
			return fmt.Errorf("line %d: string never closed on its line", startLine)
		case c == '\'':
			text := l.src[start:l.pos]
			l.pos++
			l.emit(tString, text)
			return nil
		case strings.HasPrefix(l.src[l.pos:], "${"):
			l.pos += 2
			// Interpolated expressions are lexed (to find their end) but not kept as tokens.
			saved := l.toks
			l.toks = nil
			err := l.run(true)
			l.toks = saved
			if err != nil {
				return err
			}
		default:
			l.pos++
		}
	}
	return fmt.Errorf("line %d: string never closed", startLine)
}

// emit records a token at the current nesting; a closer is emitted after its opener is popped,
// so both sit at the depth outside them.
func (l *lexer) emit(kind tokKind, text string) {
	l.toks = append(l.toks, token{kind: kind, text: text, line: l.line, depth: len(l.stack)})
}

func isIdentStart(c byte) bool { return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }

// bicepFile is what the checks need to know of one Bicep file.
type bicepFile struct {
	path      string
	src       string
	toks      []token
	params    map[string]bool // name → required (no default, not nullable)
	outputs   map[string]bool
	modules   []moduleDecl
	resources []resourceDecl
	vars      map[string]int // name → index of its first value token
}

type moduleDecl struct {
	name, path string
	params     []string // keys of the params object
	line       int
}

type resourceDecl struct {
	name, typ  string
	start, end int // token range of the declaration
}

var declKeywords = []string{"param", "var", "output", "module", "resource", "type", "targetScope", "metadata", "import", "func"}

func loadBicep(t *testing.T, path string) *bicepFile {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseBicep(path, string(src))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

func parseBicep(path, src string) (*bicepFile, error) {
	toks, err := lexBicep(src)
	if err != nil {
		return nil, err
	}
	f := &bicepFile{path: path, src: src, toks: toks, params: map[string]bool{}, outputs: map[string]bool{}, vars: map[string]int{}}
	decls := f.declStarts()
	for n, i := range decls {
		end := len(toks)
		if n+1 < len(decls) {
			end = decls[n+1]
		}
		kw := toks[i].text
		if i+1 >= len(toks) || toks[i+1].kind != tIdent {
			if kw == "targetScope" || kw == "metadata" || kw == "import" {
				continue
			}
			return nil, fmt.Errorf("line %d: %s without a name", toks[i].line, kw)
		}
		name := toks[i+1].text
		switch kw {
		case "param":
			required := true
			for j := i + 2; j < end && toks[j].kind != tNewline; j++ {
				if toks[j].depth == 0 && toks[j].kind == tPunct && (toks[j].text == "=" || toks[j].text == "?") {
					required = false
				}
			}
			f.params[name] = required
		case "output":
			f.outputs[name] = true
		case "var":
			f.vars[name] = i + 3 // var NAME = <value>
		case "module":
			if i+2 >= end || toks[i+2].kind != tString {
				return nil, fmt.Errorf("line %d: module %s has no path", toks[i].line, name)
			}
			m := moduleDecl{name: name, path: toks[i+2].text, line: toks[i].line}
			if k := f.keyIndex(i, end, "params"); k >= 0 {
				m.params = f.objectKeys(k + 2)
			}
			f.modules = append(f.modules, m)
		case "resource":
			if i+2 >= end || toks[i+2].kind != tString {
				return nil, fmt.Errorf("line %d: resource %s has no type", toks[i].line, name)
			}
			f.resources = append(f.resources, resourceDecl{name: name, typ: toks[i+2].text, start: i, end: end})
		}
	}
	return f, nil
}

// declStarts lists the token indexes of top-level declarations (a keyword first on its line, or
// after decorators).
func (f *bicepFile) declStarts() []int {
	var out []int
	for i, tk := range f.toks {
		if tk.depth != 0 || tk.kind != tIdent || !slices.Contains(declKeywords, tk.text) {
			continue
		}
		if i == 0 || f.toks[i-1].kind == tNewline {
			out = append(out, i)
		}
	}
	return out
}

// keyIndex finds "key:" first on its line within [from, to).
func (f *bicepFile) keyIndex(from, to int, key string) int {
	for j := from; j+1 < to; j++ {
		if f.isKey(j) && f.toks[j].text == key {
			return j
		}
	}
	return -1
}

// isKey says whether toks[j] is an object key: an identifier or string first on its line (or
// right after the object's brace) followed by ':'.
func (f *bicepFile) isKey(j int) bool {
	tk := f.toks[j]
	if (tk.kind != tIdent && tk.kind != tString) || j+1 >= len(f.toks) || f.toks[j+1].text != ":" || f.toks[j+1].kind != tPunct {
		return false
	}
	return j > 0 && (f.toks[j-1].kind == tNewline || f.toks[j-1].text == "{")
}

// objectKeys lists the keys of the object whose '{' is at toks[open].
func (f *bicepFile) objectKeys(open int) []string {
	if open >= len(f.toks) || f.toks[open].text != "{" {
		return nil
	}
	depth := f.toks[open].depth + 1
	var keys []string
	for j := open + 1; j < len(f.toks); j++ {
		tk := f.toks[j]
		if tk.depth < depth {
			break
		}
		if tk.depth == depth && f.isKey(j) {
			keys = append(keys, tk.text)
		}
	}
	return keys
}

// literalProps maps every "key: <single literal>" line in [from, to) to the literal, at any depth.
func (f *bicepFile) literalProps(from, to int) map[string][]string {
	out := map[string][]string{}
	for j := from; j+3 < to; j++ {
		if !f.isKey(j) {
			continue
		}
		v, next := f.toks[j+2], f.toks[j+3]
		if next.kind != tNewline {
			continue
		}
		switch v.kind {
		case tString, tNumber:
			out[f.toks[j].text] = append(out[f.toks[j].text], v.text)
		case tIdent:
			if v.text == "true" || v.text == "false" {
				out[f.toks[j].text] = append(out[f.toks[j].text], v.text)
			}
		}
	}
	return out
}

// stringList returns the string literals of the array whose '[' is at toks[open], in order, with
// each ${name} interpolation replaced by vars[name]; an element that is not a string literal, or
// an interpolation vars does not name, is an error.
func (f *bicepFile) stringList(open int, vars map[string]string) ([]string, error) {
	if open >= len(f.toks) || f.toks[open].text != "[" {
		return nil, fmt.Errorf("no array at token %d", open)
	}
	depth := f.toks[open].depth + 1
	var out []string
	for j := open + 1; j < len(f.toks) && f.toks[j].depth >= depth; j++ {
		tk := f.toks[j]
		switch {
		case tk.kind == tNewline:
		case tk.kind == tString && tk.depth == depth:
			var missing string
			s := interpRE.ReplaceAllStringFunc(tk.text, func(m string) string {
				v, ok := vars[m[2:len(m)-1]]
				if !ok {
					missing = m
				}
				return v
			})
			if missing != "" {
				return nil, fmt.Errorf("line %d: %s is not a known value", tk.line, missing)
			}
			out = append(out, s)
		default:
			return nil, fmt.Errorf("line %d: %q is not a string literal", tk.line, tk.text)
		}
	}
	return out, nil
}

var interpRE = regexp.MustCompile(`\$\{([^}]*)\}`)

func (f *bicepFile) resource(name string) (resourceDecl, bool) {
	for _, r := range f.resources {
		if r.name == name {
			return r, true
		}
	}
	return resourceDecl{}, false
}

// bicepFiles loads every .bicep file under the infra directory, keyed by slash path relative to it.
func bicepFiles(t *testing.T) map[string]*bicepFile {
	t.Helper()
	out := map[string]*bicepFile{}
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".bicep") {
			out[filepath.ToSlash(p)] = loadBicep(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no .bicep files found")
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestLexBicep(t *testing.T) {
	tests := []struct {
		name string
		src  string
		err  string // empty: must lex
	}{
		{"balanced", "var a = {\n  b: [1, 2]\n  c: f(x)\n}\n", ""},
		{"brace inside a string", "var a = '}'\n", ""},
		{"escaped quote", `var a = 'it\'s'` + "\n", ""},
		{"interpolation with a nested string", "var a = '${concat('}', b)}x'\n", ""},
		{"interpolation with an object", "var a = '${union({ k: 1 }, b)}'\n", ""},
		{"quote inside a comment", "// it's fine\nvar a = 1\n", ""},
		{"block comment", "/* { ' */ var a = 1\n", ""},
		{"multi-line string with quotes", "var q = '''\n| where x == 'a' and y contains \"}\"\n'''\n", ""},
		{"unclosed brace", "var a = {\n  b: 1\n", "never closed"},
		{"wrong closer", "var a = [1, 2}\n", "closes"},
		{"stray closer", "var a = 1)\n", "closes nothing"},
		{"unclosed string", "var a = 'abc\n", "string never closed"},
		{"unclosed interpolation", "var a = '${b'\n", "never closed"},
		{"unclosed comment", "/* abc\n", "comment never closed"},
		{"unclosed multi-line string", "var a = '''abc\n", "multi-line string never closed"},
		{"unexpected character", "var a = #1\n", "unexpected character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lexBicep(tc.src)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("lexBicep: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("lexBicep error = %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestLexBicepOperators(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"a == 'b'", []string{"a", "==", "b"}},
		{"a != b", []string{"a", "!=", "b"}},
		{"a || b && !c", []string{"a", "||", "b", "&&", "!", "c"}},
		{"a.?b ?? c", []string{"a", ".", "?", "b", "??", "c"}},
		{"a <= b >= c < d", []string{"a", "<=", "b", ">=", "c", "<", "d"}},
		{"x = a ? b : c", []string{"x", "=", "a", "?", "b", ":", "c"}},
		{"az.resourceGroup()::x", []string{"az", ".", "resourceGroup", "(", ")", "::", "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			toks, err := lexBicep(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tk := range toks {
				got = append(got, tk.text)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("tokens %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseBicepDeclarations(t *testing.T) {
	src := `targetScope = 'resourceGroup'

@description('x: y')
param required string
param withDefault int = 3
param nullable string?
var obj = {
  a: cond ? 'b' : 'c'
  'quoted-key': 1
  nested: {
    inner: true
  }
}
var list = [
  '${p}a'
  'b'
]
var mixed = [
  'a'
  other
]
var unknown = [
  '${q}a'
]
module m 'modules/m.bicep' = [
  for x in xs: {
    name: 'm-${x}'
    params: {
      p1: x
      p2: f(x) ? 1 : 2
    }
  }
]
resource r 'Microsoft.Foo/bars@2024-01-01' = {
  name: 'r'
  properties: {
    flag: true
    count: 10
    text: 'PT1M'
  }
}
output o string = m[0].outputs.x
`
	f, err := parseBicep("t.bicep", src)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"required": true, "withDefault": false, "nullable": false}; !mapsEqual(f.params, want) {
		t.Errorf("params = %v, want %v", f.params, want)
	}
	if !f.outputs["o"] || len(f.outputs) != 1 {
		t.Errorf("outputs = %v", f.outputs)
	}
	if got := f.objectKeys(f.vars["obj"]); !slices.Equal(got, []string{"a", "quoted-key", "nested"}) {
		t.Errorf("obj keys = %v", got)
	}
	if len(f.modules) != 1 || f.modules[0].path != "modules/m.bicep" || !slices.Equal(f.modules[0].params, []string{"p1", "p2"}) {
		t.Errorf("modules = %+v", f.modules)
	}
	list, err := f.stringList(f.vars["list"], map[string]string{"p": "x/"})
	if err != nil || !slices.Equal(list, []string{"x/a", "b"}) {
		t.Errorf("list = %v, %v", list, err)
	}
	for name, want := range map[string]string{"mixed": "not a string literal", "unknown": "not a known value", "obj": "no array"} {
		if _, err := f.stringList(f.vars[name], map[string]string{"p": "x/"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("stringList(%s) error = %v, want one containing %q", name, err, want)
		}
	}
	r, ok := f.resource("r")
	if !ok || r.typ != "Microsoft.Foo/bars@2024-01-01" {
		t.Fatalf("resource r = %+v, %v", r, ok)
	}
	props := f.literalProps(r.start, r.end)
	for k, want := range map[string]string{"flag": "true", "count": "10", "text": "PT1M", "name": "r"} {
		if !slices.Equal(props[k], []string{want}) {
			t.Errorf("prop %s = %v, want %s", k, props[k], want)
		}
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var outputRefRE = regexp.MustCompile(`\b([A-Za-z_]\w*)(?:\[[^\]]*\])?\.outputs\.([A-Za-z_]\w*)`)

// TestBicepModulesFit stands in for the compiler's cross-file checks: every module file exists,
// gets only parameters it declares and every one it requires, and every output read from it
// exists; every resource type carries an api-version.
func TestBicepModulesFit(t *testing.T) {
	files := bicepFiles(t)
	if _, ok := files["main.bicep"]; !ok {
		t.Fatal("infra/main.bicep is missing")
	}
	for path, f := range files {
		mods := map[string]*bicepFile{}
		for _, m := range f.modules {
			target := filepath.ToSlash(filepath.Join(filepath.Dir(path), m.path))
			mf, ok := files[target]
			if !ok {
				t.Errorf("%s:%d: module %s: %s does not exist", path, m.line, m.name, m.path)
				continue
			}
			mods[m.name] = mf
			for _, p := range m.params {
				if _, ok := mf.params[p]; !ok {
					t.Errorf("%s:%d: module %s passes %s, which %s does not declare", path, m.line, m.name, p, m.path)
				}
			}
			for _, p := range sortedKeys(mf.params) {
				if mf.params[p] && !slices.Contains(m.params, p) {
					t.Errorf("%s:%d: module %s does not pass %s, which %s requires", path, m.line, m.name, p, m.path)
				}
			}
		}
		for _, ref := range outputRefRE.FindAllStringSubmatch(f.src, -1) {
			mf, ok := mods[ref[1]]
			if !ok {
				t.Errorf("%s: %s reads outputs of %s, which is not a module here", path, ref[0], ref[1])
				continue
			}
			if !mf.outputs[ref[2]] {
				t.Errorf("%s: %s: %s has no output %s", path, ref[0], mf.path, ref[2])
			}
		}
		for _, r := range f.resources {
			nested := !strings.Contains(r.typ, "/") // child declared inside its parent, e.g. 'containers'
			if !nested && !regexp.MustCompile(`^[A-Za-z.]+(/[A-Za-z]+)+@\d{4}-\d{2}-\d{2}(-preview)?$`).MatchString(r.typ) {
				t.Errorf("%s: resource %s has type %q, want Namespace/type@yyyy-mm-dd", path, r.name, r.typ)
			}
		}
	}
	main := files["main.bicep"]
	if !strings.Contains(main.src, "targetScope = 'resourceGroup'") {
		t.Error("main.bicep must deploy at resource-group scope (az deployment group create and azd)")
	}
}
