package unpackerbinary

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
)

func goarch(arch string) (string, error) {
	switch arch {
	case X86_64:
		return "amd64", nil
	case ARM64:
		return "arm64", nil
	}
	return "", fmt.Errorf("architecture %q is not one an unpacker runs on (%s or %s)", arch, X86_64, ARM64)
}

// elfMachines maps an architecture to the ELF machine of its executables.
var elfMachines = map[string]elf.Machine{X86_64: elf.EM_X86_64, ARM64: elf.EM_AARCH64}

func fromFile(path, arch string) (Binary, error) {
	want, ok := elfMachines[arch]
	if !ok {
		_, err := goarch(arch)
		return Binary{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Binary{}, fmt.Errorf("unpacker binary %s: %w", path, err)
	}
	defer f.Close()
	if err := checkELF(f, path, arch, want); err != nil {
		return Binary{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Binary{}, fmt.Errorf("unpacker binary %s: %w", path, err)
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return Binary{}, fmt.Errorf("unpacker binary %s: read: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return Binary{
		Architecture: arch,
		Version:      versionOf(path),
		SHA256:       sum,
		Size:         size,
		Source:       path,
		open: func() (io.ReadCloser, error) {
			return os.Open(path)
		},
	}, nil
}

// checkELF refuses what cannot run as the unpacker on an instance of arch:
// anything but a Linux ELF executable for that machine.
func checkELF(r io.ReaderAt, path, arch string, want elf.Machine) error {
	ef, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("unpacker binary %s is not a Linux executable (ELF): %w", path, err)
	}
	defer ef.Close()
	if ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		return fmt.Errorf("unpacker binary %s is an ELF %s, not an executable", path, ef.Type)
	}
	if ef.OSABI != elf.ELFOSABI_NONE && ef.OSABI != elf.ELFOSABI_LINUX {
		return fmt.Errorf("unpacker binary %s is built for %s, not Linux", path, ef.OSABI)
	}
	if ef.Machine != want {
		return fmt.Errorf("unpacker binary %s is built for %s, but the instance's architecture is %s (%s): "+
			"build it with GOOS=linux GOARCH=%s", path, ef.Machine, arch, want, mustGOARCH(arch))
	}
	return nil
}

func mustGOARCH(arch string) string {
	g, _ := goarch(arch)
	return g
}

// versionLDFlag finds the version a build was stamped with.
var versionLDFlag = regexp.MustCompile(`-X[= ]?'?main\.version=([^'\s]+)`)

// versionOf is the main.version a Go binary was linked with, or "".
func versionOf(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "-ldflags" {
			if m := versionLDFlag.FindStringSubmatch(s.Value); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

func readAll(b Binary) ([]byte, error) {
	rc, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if b.Size > 0 {
		buf.Grow(int(b.Size))
	}
	if _, err := io.Copy(&buf, rc); err != nil {
		return nil, fmt.Errorf("unpacker binary (%s): read: %w", b.Source, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if got := hex.EncodeToString(sum[:]); got != b.SHA256 {
		return nil, fmt.Errorf("unpacker binary (%s) changed while in use: SHA-256 %s, was %s", b.Source, got, b.SHA256)
	}
	return buf.Bytes(), nil
}
