package main

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

// stampedVersion stands for the version make and goreleaser stamp.
const stampedVersion = "ldflags-check-1.2.3"

// stamp is one way a binary is built for release: its main package and
// the -ldflags it is linked with, the version filled in.
type stamp struct {
	source  string // where it is written, for messages
	main    string // "." (the provider) or "./cmd/unpacker"
	ldflags string
}

// TestReleaseLdflagsStampExistingVariables: every -X the Makefile and
// .goreleaser.yml link a binary with names a string variable of its main
// package (the linker silently ignores a name that does not exist, which is
// how the unpacker once reported no version), both binaries are stamped by
// both, and the unpacker built with each prints the stamped version with
// -version (the one its /v1/health reports).
func TestReleaseLdflagsStampExistingVariables(t *testing.T) {
	stamps := append(makefileStamps(t), goreleaserStamps(t)...)
	for _, source := range []string{"GNUmakefile", ".goreleaser.yml"} {
		for _, main := range []string{".", "./cmd/unpacker"} {
			found := false
			for _, s := range stamps {
				found = found || strings.HasPrefix(s.source, source) && s.main == main
			}
			if !found {
				t.Errorf("%s builds %s without -ldflags stamping the version", source, main)
			}
		}
	}
	built := map[string]bool{}
	for _, s := range stamps {
		vars := stampedVariables(t, s)
		declared := stringVariables(t, s.main)
		for _, v := range vars {
			if !declared[v] {
				t.Errorf("%s: -X main.%s: %s declares no string variable %s (declared: %v)", s.source, v, s.main, v, declared)
			}
		}
		if s.main != "./cmd/unpacker" || built[s.ldflags] {
			continue
		}
		built[s.ldflags] = true
		bin := filepath.Join(t.TempDir(), "unpacker")
		if out, err := exec.Command("go", "build", "-ldflags", s.ldflags, "-o", bin, "./cmd/unpacker").CombinedOutput(); err != nil {
			t.Fatalf("%s: go build -ldflags %q ./cmd/unpacker: %v\n%s", s.source, s.ldflags, err, out)
		}
		out, err := exec.Command(bin, "-version").Output()
		if err != nil {
			t.Fatalf("%s: unpacker -version: %v", s.source, err)
		}
		if got, want := string(out), "unpacker "+stampedVersion+"\n"; got != want {
			t.Errorf("%s: unpacker built with -ldflags %q prints %q for -version, want %q", s.source, s.ldflags, got, want)
		}
	}
}

// makefileStamps reads LDFLAGS and the go build/install lines using it from
// the GNUmakefile.
func makefileStamps(t *testing.T) []stamp {
	t.Helper()
	b, err := os.ReadFile("GNUmakefile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	def := regexp.MustCompile(`(?m)^LDFLAGS\s*:?=\s*(.*)$`).FindStringSubmatch(text)
	if def == nil {
		t.Fatal("GNUmakefile: no LDFLAGS definition")
	}
	ldflags := strings.ReplaceAll(def[1], "$(VERSION)", stampedVersion)
	var stamps []stamp
	for _, m := range regexp.MustCompile(`(?m)^\tgo (?:build|install) .*-ldflags "\$\(LDFLAGS\)".* (\S+)\s*$`).FindAllStringSubmatch(text, -1) {
		stamps = append(stamps, stamp{source: "GNUmakefile: " + strings.TrimSpace(m[0]), main: m[1], ldflags: ldflags})
	}
	return stamps
}

// goreleaserStamps reads the builds of .goreleaser.yml.
func goreleaserStamps(t *testing.T) []stamp {
	t.Helper()
	b, err := os.ReadFile(".goreleaser.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Builds []struct {
			ID      string   `yaml:"id"`
			Main    string   `yaml:"main"`
			Ldflags []string `yaml:"ldflags"`
		} `yaml:"builds"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf(".goreleaser.yml: %v", err)
	}
	version := regexp.MustCompile(`\{\{\s*\.Version\s*\}\}`)
	var stamps []stamp
	for _, bld := range cfg.Builds {
		main := bld.Main
		if main != "." && !strings.HasPrefix(main, "./") {
			main = "./" + main
		}
		stamps = append(stamps, stamp{source: ".goreleaser.yml: build " + bld.ID, main: main,
			ldflags: version.ReplaceAllString(strings.Join(bld.Ldflags, " "), stampedVersion)})
	}
	return stamps
}

// stampedVariables are the names of the main package's variables s sets to
// the version with -X.
func stampedVariables(t *testing.T, s stamp) []string {
	t.Helper()
	fields := strings.Fields(s.ldflags)
	var names []string
	for i, f := range fields {
		var def string
		switch {
		case f == "-X" && i+1 < len(fields):
			def = fields[i+1]
		case strings.HasPrefix(f, "-X="):
			def = strings.TrimPrefix(f, "-X=")
		default:
			continue
		}
		name, value, ok := strings.Cut(def, "=")
		if !ok || value != stampedVersion {
			continue
		}
		v, ok := strings.CutPrefix(name, "main.")
		if !ok {
			t.Errorf("%s: -X %s: the version is stamped outside the main package", s.source, def)
			continue
		}
		names = append(names, v)
	}
	if len(names) == 0 {
		t.Errorf("%s: -ldflags %q set no variable of package main to the version", s.source, s.ldflags)
	}
	return names
}

// stringVariables are the package-level string variables of the package in
// dir, as built for this system (test files excluded).
func stringVariables(t *testing.T, dir string) map[string]bool {
	t.Helper()
	pkg, err := build.ImportDir(dir, 0)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	fset := token.NewFileSet()
	vars := map[string]bool{}
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.VAR {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					typed := false
					if ident, ok := vs.Type.(*ast.Ident); ok && ident.Name == "string" {
						typed = true
					}
					if vs.Type == nil && i < len(vs.Values) {
						lit, ok := vs.Values[i].(*ast.BasicLit)
						typed = ok && lit.Kind == token.STRING
					}
					if typed {
						vars[id.Name] = true
					}
				}
			}
		}
	}
	return vars
}
