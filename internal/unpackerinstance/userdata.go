package unpackerinstance

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/autoami/terraform-provider-autoami/deploy"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
)

// Paths on the instance (deploy/README.md, "Files on the instance").
const (
	binaryPath   = "/usr/local/bin/unpacker"
	clientCAPath = "/etc/autoami-unpacker/client-ca.pem"
	unitPath     = "/etc/systemd/system/" + deploy.UnitName
	defaultsPath = "/etc/default/autoami-unpacker"
)

// cloudConfigHeader starts every cloud-config document.
const cloudConfigHeader = "#cloud-config\n"

// userDataLimit is EC2's limit on user-data before base64 (16 KiB).
const userDataLimit = 16 << 10

// packagesX86_64 is deploy/README.md's table ("Debian packages the
// instance needs"); a test keeps the two equal.
var packagesX86_64 = []string{"curl", "ca-certificates", "util-linux", "e2fsprogs", "gdisk", "fdisk", "dosfstools",
	"mtools", "grub-common", "grub-pc-bin", "grub-efi-amd64-bin", "xfsprogs"}

// packagesARM64 differs in the GRUB modules: Debian builds grub-pc-bin and
// grub-efi-amd64-bin for amd64 and i386 only, and an apt install naming a
// package the architecture lacks installs nothing at all.
var packagesARM64 = []string{"curl", "ca-certificates", "util-linux", "e2fsprogs", "gdisk", "fdisk", "dosfstools",
	"mtools", "grub-common", "grub-efi-arm64-bin", "xfsprogs"}

func packagesFor(arch string) ([]string, error) {
	switch arch {
	case unpackerbinary.X86_64:
		return append([]string(nil), packagesX86_64...), nil
	case unpackerbinary.ARM64:
		return append([]string(nil), packagesARM64...), nil
	}
	return nil, fmt.Errorf("architecture %q is not one an unpacker runs on (%s or %s)", arch, unpackerbinary.X86_64, unpackerbinary.ARM64)
}

// cloudConfig is the contract's document; the field order is the order of
// its keys.
type cloudConfig struct {
	Packages   []string    `json:"packages,omitempty"`
	WriteFiles []writeFile `json:"write_files"`
	Runcmd     []any       `json:"runcmd"`
	Bootcmd    [][]string  `json:"bootcmd"`
}

type writeFile struct {
	Path        string `json:"path"`
	Permissions string `json:"permissions"`
	Content     string `json:"content"`
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (b Bootstrap) validate() error {
	if !sha256Hex.MatchString(b.BinarySHA256) {
		return fmt.Errorf("bootstrap: binary SHA-256 %q is not 64 lower-case hex digits", b.BinarySHA256)
	}
	u, err := url.Parse(b.BinaryURL)
	switch {
	case b.BinaryURL == "":
		return errors.New("bootstrap: no URL of the unpacker binary")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("bootstrap: the unpacker binary's URL is not an http(s) URL with a host")
	case strings.ContainsAny(b.BinaryURL, "' \t\r\n\"\\`$"):
		// It is quoted in a shell command of the per-boot part.
		return fmt.Errorf("bootstrap: the unpacker binary's URL contains a quote, space or shell character")
	}
	if err := checkCAPEM(b.ClientCACertificatePEM); err != nil {
		return fmt.Errorf("bootstrap: client CA: %w", err)
	}
	if b.Port < 0 || b.Port > 65535 {
		return fmt.Errorf("bootstrap: port %d is not between 1 and 65535", b.Port)
	}
	if b.IdlePoweroff < 0 || b.IdlePoweroff%time.Second != 0 {
		return fmt.Errorf("bootstrap: idle power-off %s is not a whole number of seconds (0: never)", b.IdlePoweroff)
	}
	if _, err := packagesFor(b.Architecture); err != nil && !b.SkipPackages {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// checkCAPEM accepts one or more CERTIFICATE blocks of CA certificates and
// nothing else: a private key must never reach user-data.
func checkCAPEM(s string) error {
	if s == "" {
		return errors.New("no certificate")
	}
	if strings.ContainsAny(s, "'\\") {
		return errors.New("contains a quote or backslash") // it is quoted in the per-boot part
	}
	rest := []byte(s)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a %s block; only CA certificates may go into user-data", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		if !cert.IsCA {
			return fmt.Errorf("certificate %d (%s) is not a CA", n+1, cert.Subject)
		}
		n++
	}
	if n == 0 || len(bytes.TrimSpace(rest)) != 0 {
		return errors.New("not PEM certificates only")
	}
	return nil
}

// unpackerArgs is UNPACKER_ARGS: the flags that vary per unpacker.
func unpackerArgs(b Bootstrap) string {
	args := "--idle-poweroff=" + formatDuration(b.IdlePoweroff)
	if b.Port != 0 && b.Port != wire.DefaultPort {
		// After the unit's --listen on the command line: the last one wins.
		args += " --listen=:" + strconv.Itoa(b.Port)
	}
	return args
}

// formatDuration is d as the contract writes it ("30m", "1h30m", "45s", "0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// upgradeCommand is the per-boot part that installs a binary of another
// digest: it runs at every boot before the unit starts (cloud-init's
// bootcmd, frequency always, reads the user-data of this boot), does
// nothing on the first boot (runcmd installs), and replaces the binary only
// after the download passed its checksum.
func upgradeCommand(sum, binaryURL string) string {
	return fmt.Sprintf(`if [ -e %[1]s ] && ! echo "%[2]s  %[1]s" | sha256sum --check --status -; then `+
		`curl -fsS --retry 5 -o %[1]s.new '%[3]s' && echo "%[2]s  %[1]s.new" | sha256sum -c - && `+
		`chmod 0755 %[1]s.new && mv -f %[1]s.new %[1]s; fi`, binaryPath, sum, binaryURL)
}

// clientCACommand is the per-boot part that installs the client CA of this
// boot's user-data (a new one after an import); on the first boot
// write_files does.
func clientCACommand(caPEM string) string {
	return fmt.Sprintf(`if [ -e %[1]s ]; then printf '%%s' '%[2]s' > %[1]s; fi`, clientCAPath, caPEM)
}

func renderUserData(b Bootstrap) ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	cfg := cloudConfig{
		WriteFiles: []writeFile{
			{Path: clientCAPath, Permissions: "0644", Content: b.ClientCACertificatePEM},
			{Path: unitPath, Permissions: "0644", Content: deploy.Unit},
			{Path: defaultsPath, Permissions: "0644", Content: "UNPACKER_ARGS=" + unpackerArgs(b) + "\n"},
		},
		Runcmd: []any{
			"set -e",
			[]string{"curl", "-fsS", "--retry", "5", "-o", binaryPath, b.BinaryURL},
			[]string{"sh", "-c", fmt.Sprintf(`echo "%s  %s" | sha256sum -c -`, b.BinarySHA256, binaryPath)},
			[]string{"chmod", "0755", binaryPath},
			[]string{"systemctl", "daemon-reload"},
			[]string{"systemctl", "enable", "--now", deploy.UnitName},
		},
		Bootcmd: [][]string{
			{"sh", "-c", upgradeCommand(b.BinarySHA256, b.BinaryURL)},
			{"sh", "-c", clientCACommand(b.ClientCACertificatePEM)},
		},
	}
	if !b.SkipPackages {
		cfg.Packages, _ = packagesFor(b.Architecture)
	}
	var buf bytes.Buffer
	buf.WriteString(cloudConfigHeader)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // a presigned URL's & stays &
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("render user-data: %w", err)
	}
	if buf.Len() > userDataLimit {
		return nil, fmt.Errorf("user-data is %d bytes, over EC2's limit of %d (is the client CA a long chain?)", buf.Len(), userDataLimit)
	}
	return buf.Bytes(), nil
}

// parsedConfig reads any runcmd item form.
type parsedConfig struct {
	Packages   []string          `json:"packages"`
	WriteFiles []writeFile       `json:"write_files"`
	Runcmd     []json.RawMessage `json:"runcmd"`
	Bootcmd    [][]string        `json:"bootcmd"`
}

var (
	checksumStep = regexp.MustCompile(`^echo "([0-9a-f]{64})  ` + regexp.QuoteMeta(binaryPath) + `" \| sha256sum -c -$`)
	idleFlag     = regexp.MustCompile(`(?:^|\s)--idle-poweroff=(\S+)`)
	listenFlag   = regexp.MustCompile(`(?:^|\s)--listen=\S*:(\d+)`)
)

func parseUserData(data []byte) (Bootstrap, error) {
	var b Bootstrap
	body, ok := bytes.CutPrefix(data, []byte(cloudConfigHeader))
	if !ok {
		return b, errors.New("user-data is not an unpacker's bootstrap: it does not start with #cloud-config")
	}
	var cfg parsedConfig
	if err := json.Unmarshal(body, &cfg); err != nil {
		return b, fmt.Errorf("user-data is not an unpacker's bootstrap (autoami writes it as JSON): %w", err)
	}
	files := map[string]string{}
	for _, f := range cfg.WriteFiles {
		files[f.Path] = f.Content
	}
	b.ClientCACertificatePEM = files[clientCAPath]
	if _, ok := files[unitPath]; !ok {
		return b, fmt.Errorf("user-data is not an unpacker's bootstrap: it writes no %s", unitPath)
	}
	args, ok := strings.CutPrefix(strings.TrimSpace(files[defaultsPath]), "UNPACKER_ARGS=")
	if !ok {
		return b, fmt.Errorf("user-data is not an unpacker's bootstrap: %s holds no UNPACKER_ARGS", defaultsPath)
	}
	b.Port = wire.DefaultPort
	if m := listenFlag.FindStringSubmatch(args); m != nil {
		b.Port, _ = strconv.Atoi(m[1])
	}
	if m := idleFlag.FindStringSubmatch(args); m != nil {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			return b, fmt.Errorf("user-data: --idle-poweroff=%s: %w", m[1], err)
		}
		b.IdlePoweroff = d
	}
	for _, raw := range cfg.Runcmd {
		var item []string
		if json.Unmarshal(raw, &item) != nil || len(item) == 0 {
			continue
		}
		switch {
		case item[0] == "curl" && len(item) > 1:
			b.BinaryURL = item[len(item)-1]
		case len(item) == 3 && item[0] == "sh" && checksumStep.MatchString(item[2]):
			b.BinarySHA256 = checksumStep.FindStringSubmatch(item[2])[1]
		}
	}
	b.SkipPackages = len(cfg.Packages) == 0
	for _, p := range cfg.Packages {
		switch p {
		case "grub-pc-bin", "grub-efi-amd64-bin":
			b.Architecture = unpackerbinary.X86_64
		case "grub-efi-arm64-bin":
			b.Architecture = unpackerbinary.ARM64
		}
	}
	if b.BinarySHA256 == "" || b.BinaryURL == "" {
		return b, errors.New("user-data is not an unpacker's bootstrap: no download and checksum of the unpacker binary in runcmd")
	}
	if err := checkCAPEM(b.ClientCACertificatePEM); err != nil {
		return b, fmt.Errorf("user-data: client CA: %w", err)
	}
	return b, nil
}
