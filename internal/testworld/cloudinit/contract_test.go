package cloudinit

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
)

// bootstrap is what one unpacker's user-data carries (deploy/README.md,
// "Bootstrap contract").
type bootstrap struct {
	// ClientCAPEM is the client CA the daemon trusts.
	ClientCAPEM []byte
	// BinaryURL is the presigned GET URL of the unpacker binary.
	BinaryURL string
	// BinarySHA256 is the binary's SHA-256, hex.
	BinarySHA256 string
	// UnpackerArgs is UNPACKER_ARGS in /etc/default/autoami-unpacker.
	UnpackerArgs string
}

// contractUserData is the unpacker's user-data for b, written here by hand
// exactly as deploy/README.md's "Bootstrap contract" shows it (its YAML
// block form), until the provider renders it. When the renderer exists,
// this function's body becomes one call to it, and every test of this
// package (schema validation and the real boot) then proves the renderer's
// output.
func contractUserData(t testing.TB, b bootstrap) []byte {
	t.Helper()
	unit := readRepoFile(t, "deploy", "systemd", "autoami-unpacker.service")
	var out bytes.Buffer
	err := contractTemplate.Execute(&out, map[string]any{
		"Packages":     documentedPackages(t),
		"ClientCA":     string(b.ClientCAPEM),
		"Unit":         string(unit),
		"UnpackerArgs": b.UnpackerArgs,
		"URL":          b.BinaryURL,
		"SHA256":       b.BinarySHA256,
	})
	if err != nil {
		t.Fatalf("render the contract's user-data: %v", err)
	}
	return out.Bytes()
}

var contractTemplate = template.Must(template.New("user-data").Funcs(template.FuncMap{
	// indented is s as the body of a YAML literal block scalar at indent.
	"indented": func(indent int, s string) string {
		pad := strings.Repeat(" ", indent)
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		for i, l := range lines {
			if l != "" {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "\n")
	},
	// quote is s as a YAML single-quoted scalar.
	"quote": func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" },
	"join":  strings.Join,
}).Parse(`#cloud-config
packages: [{{join .Packages ", "}}]
write_files:
  - path: /etc/autoami-unpacker/client-ca.pem
    permissions: '0644'
    content: |
{{indented 6 .ClientCA}}
  - path: /etc/systemd/system/autoami-unpacker.service
    permissions: '0644'
    content: |
{{indented 6 .Unit}}
  - path: /etc/default/autoami-unpacker
    permissions: '0644'
    content: |
      UNPACKER_ARGS={{.UnpackerArgs}}
runcmd:
  - set -e
  - [curl, -fsS, --retry, '5', -o, /usr/local/bin/unpacker, {{quote .URL}}]
  - [sh, -c, {{quote (printf "echo \"%s  /usr/local/bin/unpacker\" | sha256sum -c -" .SHA256)}}]
  - [chmod, '0755', /usr/local/bin/unpacker]
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, autoami-unpacker.service]
`))

// documentedPackages are the packages of deploy/README.md's table "Debian
// packages the instance needs".
func documentedPackages(t testing.TB) []string {
	t.Helper()
	_, table, ok := strings.Cut(string(readRepoFile(t, "deploy", "README.md")), "## Debian packages the instance needs")
	if !ok {
		t.Fatal(`deploy/README.md has no section "Debian packages the instance needs"`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9.+-]+)` \\|").FindAllStringSubmatch(table, -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("no packages in deploy/README.md's table")
	}
	return out
}

// readRepoFile reads a file of the repository by its path from the root.
func readRepoFile(t testing.TB, path ...string) []byte {
	t.Helper()
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(append([]string{repo}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
