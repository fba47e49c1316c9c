package unpackerbinary

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

// buildTiny builds a small Go program for linux/goarch, stamped with
// version, and returns its path.
func buildTiny(t *testing.T, goarch, version string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nvar version = \"\"\n\nfunc main() { println(version) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tiny")
	args := []string{"build", "-o", out}
	if version != "" {
		args = append(args, "-ldflags", "-s -w -X main.version="+version)
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestFromFile(t *testing.T) {
	amd64 := buildTiny(t, "amd64", "1.2.3")
	b, err := FromFile(amd64, X86_64)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(amd64)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if b.SHA256 != hex.EncodeToString(sum[:]) || b.Size != int64(len(data)) || b.Version != "1.2.3" || b.Source != amd64 {
		t.Fatalf("FromFile = %+v; want the file's digest, size, version 1.2.3 and its path", b)
	}
	got, err := b.ReadAll()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}

	// The wrong architecture names both and how to build the right one.
	_, err = FromFile(amd64, ARM64)
	for _, want := range []string{amd64, "EM_X86_64", "arm64", "GOARCH=arm64"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("amd64 binary for arm64: %v; want it to mention %q", err, want)
		}
	}
	arm := buildTiny(t, "arm64", "")
	if b, err := FromFile(arm, ARM64); err != nil || b.Version != "" {
		t.Fatalf("arm64 build without a version: %+v, %v; want it accepted with an unknown version", b, err)
	}

	// Not an executable at all, or missing.
	script := filepath.Join(t.TempDir(), "unpacker")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := FromFile(script, X86_64); err == nil || !strings.Contains(err.Error(), "not a Linux executable") {
		t.Errorf("shell script: %v; want 'not a Linux executable'", err)
	}
	if _, err := FromFile(filepath.Join(t.TempDir(), "none"), X86_64); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v; want ErrNotExist", err)
	}
	if _, err := FromFile(amd64, "sparc"); err == nil || !strings.Contains(err.Error(), `"sparc"`) {
		t.Errorf("unknown architecture: %v", err)
	}

	// A file that changes after it was checked is noticed.
	changed := filepath.Join(t.TempDir(), "unpacker")
	if err := os.WriteFile(changed, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cb, err := FromFile(changed, X86_64)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changed, append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.ReadAll(); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("ReadAll of a changed file: %v; want 'changed'", err)
	}
}

// generatedFS is a generated/ directory as `go generate` writes it.
func generatedFS(t *testing.T, version string, bins map[string][]byte) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	m := manifest{Version: version, Binaries: map[string]manifestEntry{}}
	for arch, data := range bins {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(data)
		zw.Close()
		name := "unpacker-linux-" + mustGOARCH(arch) + ".gz"
		fsys["generated/"+name] = &fstest.MapFile{Data: gz.Bytes()}
		sum := sha256.Sum256(data)
		m.Binaries[arch] = manifestEntry{File: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	}
	doc, _ := json.Marshal(m)
	fsys["generated/manifest.json"] = &fstest.MapFile{Data: doc}
	return fsys
}

func TestEmbeddedFrom(t *testing.T) {
	amd, arm := []byte("amd64 unpacker"), []byte("arm64 unpacker")
	fsys := generatedFS(t, "1.4.0", map[string][]byte{X86_64: amd, ARM64: arm})
	for arch, want := range map[string][]byte{X86_64: amd, ARM64: arm} {
		b, err := embeddedFrom(fsys, arch, "1.4.0")
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.ReadAll()
		if err != nil || !bytes.Equal(got, want) || b.Version != "1.4.0" || b.Architecture != arch {
			t.Fatalf("%s: %+v %q %v", arch, b, got, err)
		}
	}
	// Provider and unpacker versions always match.
	if _, err := embeddedFrom(fsys, X86_64, "1.5.0"); err == nil || !strings.Contains(err.Error(), "1.4.0") ||
		!strings.Contains(err.Error(), "1.5.0") || !strings.Contains(err.Error(), "make build") {
		t.Errorf("version mismatch: %v", err)
	}
	only := generatedFS(t, "1.4.0", map[string][]byte{X86_64: amd})
	if _, err := embeddedFrom(only, ARM64, "1.4.0"); !errors.Is(err, ErrNotEmbedded) {
		t.Errorf("missing architecture: %v; want ErrNotEmbedded", err)
	}
	bad := generatedFS(t, "1.4.0", map[string][]byte{X86_64: amd})
	bad["generated/unpacker-linux-amd64.gz"] = &fstest.MapFile{Data: []byte("not gzip")}
	if b, err := embeddedFrom(bad, X86_64, "1.4.0"); err == nil {
		if _, err := b.ReadAll(); err == nil {
			t.Error("a corrupt embedded binary was read without error")
		}
	}
}

// Without the build tag (this test binary), the provider says that it
// carries no unpacker and what to do.
func TestEmbeddedWithoutTag(t *testing.T) {
	if embeddedFS != nil {
		t.Skip("built with the " + EmbedTag + " tag")
	}
	_, err := Embedded(X86_64, "dev")
	if !errors.Is(err, ErrNotEmbedded) || !strings.Contains(err.Error(), "unpacker_binary") || !strings.Contains(err.Error(), EmbedTag) {
		t.Fatalf("Embedded without the tag: %v", err)
	}
}

// The generator builds a main package for both architectures, stamped with
// the version, as the Makefile's build does with cmd/unpacker (a small
// stand-in here: cross-compiling the unpacker twice takes minutes); what it
// writes loads through the embedded path.
func TestGenerate(t *testing.T) {
	out := filepath.Join(t.TempDir(), generatedDir)
	cmd := exec.Command("go", "run", "./gen", "-version=9.8.7-test", "-out="+out, "-main=./internal/unpackerbinary/testdata/tiny")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, b)
	}
	for _, arch := range Architectures {
		b, err := embeddedFrom(os.DirFS(filepath.Dir(out)), arch, "9.8.7-test")
		if err != nil {
			t.Fatal(err)
		}
		data, err := b.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "unpacker")
		if err := os.WriteFile(file, data, 0o755); err != nil {
			t.Fatal(err)
		}
		fb, err := FromFile(file, arch)
		if err != nil {
			t.Fatalf("%s: the generated binary: %v", arch, err)
		}
		if fb.SHA256 != b.SHA256 {
			t.Fatalf("%s: generated binary has digest %s; manifest says %s", arch, fb.SHA256, b.SHA256)
		}
		// -trimpath keeps the ldflags out of the build information, so
		// the stamp is checked by running the build this host can run.
		if arch == X86_64 && runtime.GOARCH == "amd64" {
			printed, err := exec.Command(file).CombinedOutput()
			if err != nil || strings.TrimSpace(string(printed)) != "9.8.7-test" {
				t.Fatalf("the generated x86_64 binary prints %q (%v); want its stamped version 9.8.7-test", printed, err)
			}
		}
	}
	cmd = exec.Command("go", "run", "./gen", "-out="+out)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "AUTOAMI_VERSION") {
		t.Fatalf("gen without a version: %v\n%s", err, b)
	}
}

// Built with the tag (after `make build` generated the binaries), the
// provider carries an unpacker for each architecture, of one version, each
// a Linux executable for its machine. `go test -tags autoami_embed_unpacker`.
func TestEmbeddedWithTag(t *testing.T) {
	if embeddedFS == nil {
		t.Skip("built without the " + EmbedTag + " tag")
	}
	doc, err := fs.ReadFile(embeddedFS, generatedDir+"/"+manifestName)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	for _, arch := range Architectures {
		b, err := Embedded(arch, m.Version)
		if err != nil {
			t.Fatal(err)
		}
		data, err := b.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if err := checkELF(bytes.NewReader(data), "embedded", arch, elfMachines[arch]); err != nil {
			t.Errorf("%s: %v", arch, err)
		}
	}
	if _, err := Embedded(X86_64, m.Version+"-other"); err == nil {
		t.Error("an embedded unpacker of another version than the provider's was accepted")
	}
}
