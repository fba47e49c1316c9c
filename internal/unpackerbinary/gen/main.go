// Command gen builds the unpacker (cmd/unpacker) for every architecture an
// unpacker instance runs on, stamped with the provider's version, and writes
// the gzip'd binaries and a manifest into a directory that the
// autoami_embed_unpacker build of the provider embeds. Run by `go generate`
// in internal/unpackerbinary (the Makefile's build and install, goreleaser).
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// targets are the architectures in EC2's and Go's words.
var targets = []struct{ arch, goarch string }{{"x86_64", "amd64"}, {"arm64", "arm64"}}

type entry struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

func main() {
	version := flag.String("version", "", "the provider's version, stamped into the unpacker (-X main.version)")
	out := flag.String("out", "generated", "directory to write the binaries and manifest.json into")
	pkg := flag.String("main", "./cmd/unpacker", "the main package to build, relative to the module root")
	flag.Parse()
	if err := run(*version, *out, *pkg); err != nil {
		fmt.Fprintln(os.Stderr, "unpackerbinary/gen:", err)
		os.Exit(1)
	}
}

func run(version, out, pkg string) error {
	if version == "" {
		return fmt.Errorf("no version: set AUTOAMI_VERSION (the Makefile sets it to the provider's version)")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "autoami-unpacker-gen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	m := struct {
		Version  string           `json:"version"`
		Binaries map[string]entry `json:"binaries"`
	}{Version: version, Binaries: map[string]entry{}}
	for _, t := range targets {
		bin := filepath.Join(tmp, "unpacker-"+t.goarch)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+t.goarch)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s for linux/%s: %w", pkg, t.goarch, err)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(data); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		name := "unpacker-linux-" + t.goarch + ".gz"
		if err := writeAtomic(filepath.Join(out, name), gz.Bytes()); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		m.Binaries[t.arch] = entry{File: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	}
	doc, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	// The manifest last: a build never embeds a manifest naming binaries
	// of another run.
	return writeAtomic(filepath.Join(out, "manifest.json"), append(doc, '\n'))
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(mod), nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
