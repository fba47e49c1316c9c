package unpackerinstance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
)

const testURL = "https://autoami-content.s3.eu-west-1.amazonaws.com/objects/ab/abcd?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261201%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=0123"

func testBootstrap(t *testing.T) (Bootstrap, Identity) {
	t.Helper()
	id, err := NewIdentity("autoami test")
	if err != nil {
		t.Fatal(err)
	}
	return Bootstrap{Architecture: unpackerbinary.X86_64, ClientCACertificatePEM: id.ClientCACertificatePEM,
		BinaryURL: testURL, BinarySHA256: strings.Repeat("ab", 32), Port: 6975, IdlePoweroff: 30 * time.Minute}, id
}

// readmeContract is deploy/README.md's section "Bootstrap contract", and
// its package table.
func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func readmePackages(t *testing.T) []string {
	t.Helper()
	_, table, ok := strings.Cut(readme(t), "## Debian packages the instance needs")
	if !ok {
		t.Fatal("deploy/README.md has no section \"Debian packages the instance needs\"")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9.+-]+)` \\|").FindAllStringSubmatch(table, -1) {
		out = append(out, m[1])
	}
	return out
}

// The user-data is exactly the contract of deploy/README.md: its keys, the
// package table, the three files (the unit verbatim), the runcmd forms and
// the per-boot bootcmd forms, and nothing else.
func TestUserDataIsTheContract(t *testing.T) {
	b, id := testBootstrap(t)
	data, err := UserData(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("#cloud-config\n")) {
		t.Fatalf("user-data does not start with #cloud-config: %q", data[:20])
	}
	var doc map[string]any
	if err := json.Unmarshal(data[len("#cloud-config\n"):], &doc); err != nil {
		t.Fatalf("user-data is not JSON (valid YAML) after the header: %v", err)
	}
	keys := []string{}
	for k := range doc {
		keys = append(keys, k)
	}
	if len(doc) != 4 || doc["packages"] == nil || doc["write_files"] == nil || doc["runcmd"] == nil || doc["bootcmd"] == nil {
		t.Fatalf("cloud-config keys %v, want packages, write_files, runcmd, bootcmd", keys)
	}

	var cfg struct {
		Packages   []string            `json:"packages"`
		WriteFiles []map[string]string `json:"write_files"`
		Runcmd     []json.RawMessage   `json:"runcmd"`
		Bootcmd    [][]string          `json:"bootcmd"`
	}
	if err := json.Unmarshal(data[len("#cloud-config\n"):], &cfg); err != nil {
		t.Fatal(err)
	}
	if want := readmePackages(t); strings.Join(cfg.Packages, " ") != strings.Join(want, " ") {
		t.Errorf("packages %v, want deploy/README.md's table %v", cfg.Packages, want)
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", "autoami-unpacker.service"))
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []map[string]string{
		{"path": "/etc/autoami-unpacker/client-ca.pem", "permissions": "0644", "content": id.ClientCACertificatePEM},
		{"path": "/etc/systemd/system/autoami-unpacker.service", "permissions": "0644", "content": string(unit)},
		{"path": "/etc/default/autoami-unpacker", "permissions": "0644", "content": "UNPACKER_ARGS=--idle-poweroff=30m\n"},
	}
	if got, _ := json.Marshal(cfg.WriteFiles); string(got) != mustJSON(t, wantFiles) {
		t.Errorf("write_files\n%s\nwant\n%s", got, mustJSON(t, wantFiles))
	}
	wantRuncmd := []any{
		"set -e",
		[]string{"curl", "-fsS", "--retry", "5", "-o", "/usr/local/bin/unpacker", testURL},
		[]string{"sh", "-c", `echo "` + b.BinarySHA256 + `  /usr/local/bin/unpacker" | sha256sum -c -`},
		[]string{"chmod", "0755", "/usr/local/bin/unpacker"},
		[]string{"systemctl", "daemon-reload"},
		[]string{"systemctl", "enable", "--now", "autoami-unpacker.service"},
	}
	if got, _ := json.Marshal(cfg.Runcmd); string(got) != mustJSON(t, wantRuncmd) {
		t.Errorf("runcmd\n%s\nwant\n%s", got, mustJSON(t, wantRuncmd))
	}
	wantBootcmd := [][]string{
		{"sh", "-c", `if [ -e /usr/local/bin/unpacker ] && ! echo "` + b.BinarySHA256 + `  /usr/local/bin/unpacker" | sha256sum --check --status -; then ` +
			`curl -fsS --retry 5 -o /usr/local/bin/unpacker.new '` + testURL + `' && echo "` + b.BinarySHA256 + `  /usr/local/bin/unpacker.new" | sha256sum -c - && ` +
			`chmod 0755 /usr/local/bin/unpacker.new && mv -f /usr/local/bin/unpacker.new /usr/local/bin/unpacker; fi`},
		{"sh", "-c", `if [ -e /etc/autoami-unpacker/client-ca.pem ]; then printf '%s' '` + id.ClientCACertificatePEM + `' > /etc/autoami-unpacker/client-ca.pem; fi`},
	}
	if got, _ := json.Marshal(cfg.Bootcmd); string(got) != mustJSON(t, wantBootcmd) {
		t.Errorf("bootcmd\n%s\nwant\n%s", got, mustJSON(t, wantBootcmd))
	}

	// The README shows the same forms (with placeholders).
	contract := readme(t)
	for _, form := range []string{
		"[curl, -fsS, --retry, '5', -o, /usr/local/bin/unpacker, '<presigned GET URL of the binary>']",
		`if [ -e /usr/local/bin/unpacker ] && ! echo "<sha256 hex of the binary>  /usr/local/bin/unpacker" | sha256sum --check --status -; then`,
		`if [ -e /etc/autoami-unpacker/client-ca.pem ]; then printf ''%s'' ''<the client CA (PEM)>'' > /etc/autoami-unpacker/client-ca.pem; fi`,
	} {
		if !strings.Contains(contract, form) {
			t.Errorf("deploy/README.md does not show %q", form)
		}
	}

	// Only public material.
	for _, secret := range []string{"PRIVATE KEY", id.ClientPrivateKeyPEM, id.ClientCertificatePEM} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("user-data holds %.40q", secret)
		}
	}

	// ParseUserData reads it back.
	got, err := ParseUserData(data)
	if err != nil {
		t.Fatal(err)
	}
	if got != b {
		t.Errorf("ParseUserData = %+v\nwant %+v", got, b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUserDataFlagsAndArchitectures(t *testing.T) {
	b, _ := testBootstrap(t)
	for _, tc := range []struct {
		port int
		idle time.Duration
		args string
	}{
		{6975, 30 * time.Minute, "--idle-poweroff=30m"},
		{0, 0, "--idle-poweroff=0s"},
		{7443, 90 * time.Minute, "--idle-poweroff=1h30m --listen=:7443"},
		{6975, 2 * time.Hour, "--idle-poweroff=2h"},
		{6975, 45 * time.Second, "--idle-poweroff=45s"},
	} {
		b.Port, b.IdlePoweroff = tc.port, tc.idle
		data, err := UserData(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"UNPACKER_ARGS=`+tc.args+`\n"`)) {
			t.Errorf("port %d idle %s: user-data lacks UNPACKER_ARGS=%s", tc.port, tc.idle, tc.args)
		}
		back, err := ParseUserData(data)
		if err != nil {
			t.Fatal(err)
		}
		wantPort := tc.port
		if wantPort == 0 {
			wantPort = 6975
		}
		if back.Port != wantPort || back.IdlePoweroff != tc.idle {
			t.Errorf("read back port %d idle %s, want %d %s", back.Port, back.IdlePoweroff, wantPort, tc.idle)
		}
	}

	b.Architecture = unpackerbinary.ARM64
	data, err := UserData(b)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("grub-pc-bin")) || bytes.Contains(data, []byte("grub-efi-amd64-bin")) || !bytes.Contains(data, []byte("grub-efi-arm64-bin")) {
		t.Errorf("arm64 user-data names amd64-only GRUB packages or lacks grub-efi-arm64-bin")
	}
	if back, err := ParseUserData(data); err != nil || back.Architecture != unpackerbinary.ARM64 {
		t.Errorf("arm64 read back: %+v, %v", back, err)
	}
	b.SkipPackages = true
	data, err = UserData(b)
	if err != nil || bytes.Contains(data, []byte(`"packages"`)) {
		t.Errorf("SkipPackages: %v, user-data still has packages: %v", err, bytes.Contains(data, []byte(`"packages"`)))
	}
}

// Bad input is an error naming the field; a private key never makes it
// into user-data.
func TestUserDataRefuses(t *testing.T) {
	good, id := testBootstrap(t)
	for name, tc := range map[string]struct {
		mutate func(*Bootstrap)
		want   string
	}{
		"private key":      {func(b *Bootstrap) { b.ClientCACertificatePEM += id.ClientPrivateKeyPEM }, "PRIVATE KEY block"},
		"leaf certificate": {func(b *Bootstrap) { b.ClientCACertificatePEM = id.ClientCertificatePEM }, "is not a CA"},
		"no CA":            {func(b *Bootstrap) { b.ClientCACertificatePEM = "" }, "client CA"},
		"garbage CA":       {func(b *Bootstrap) { b.ClientCACertificatePEM = "hello" }, "not PEM certificates only"},
		"short digest":     {func(b *Bootstrap) { b.BinarySHA256 = "abc" }, "SHA-256"},
		"upper digest":     {func(b *Bootstrap) { b.BinarySHA256 = strings.Repeat("AB", 32) }, "SHA-256"},
		"no URL":           {func(b *Bootstrap) { b.BinaryURL = "" }, "no URL"},
		"ftp URL":          {func(b *Bootstrap) { b.BinaryURL = "ftp://example.com/x" }, "http(s)"},
		"quote in URL":     {func(b *Bootstrap) { b.BinaryURL = "https://example.com/x'y" }, "quote"},
		"port":             {func(b *Bootstrap) { b.Port = 70000 }, "port 70000"},
		"idle fraction":    {func(b *Bootstrap) { b.IdlePoweroff = 1500 * time.Millisecond }, "whole number of seconds"},
		"architecture":     {func(b *Bootstrap) { b.Architecture = "sparc" }, `"sparc"`},
		"too large": {func(b *Bootstrap) {
			for range 20 {
				b.ClientCACertificatePEM += id.ClientCACertificatePEM
			}
		}, "limit of 16384"},
	} {
		b := good
		tc.mutate(&b)
		_, err := UserData(b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error containing %q", name, err, tc.want)
		}
	}
	if _, err := ParseUserData([]byte("#!/bin/sh\necho hi\n")); err == nil || !strings.Contains(err.Error(), "#cloud-config") {
		t.Errorf("a shell script read as a bootstrap: %v", err)
	}
	if _, err := ParseUserData([]byte("#cloud-config\n{\"runcmd\": []}\n")); err == nil {
		t.Error("a cloud-config without the unpacker's files read as a bootstrap")
	}
}

// The per-boot part does what deploy/README.md says, run by sh as
// cloud-init runs bootcmd (paths moved into a scratch directory): nothing
// on the first boot, nothing when the binary has the digest, a verified
// replacement when it differs, the old binary kept when the download fails
// its checksum; the client CA rewritten once it exists.
func TestPerBootPartRunsInAShell(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	newBinary := []byte("#!/bin/sh\necho new\n")
	sum := sha256.Sum256(newBinary)
	digest := hex.EncodeToString(sum[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/corrupt" {
			w.Write([]byte("#!/bin/sh\necho evil\n"))
			return
		}
		w.Write(newBinary)
	}))
	defer srv.Close()
	_, id := testBootstrap(t)

	run := func(t *testing.T, root, command string) error {
		t.Helper()
		command = strings.ReplaceAll(command, "/usr/local/bin/unpacker", root+"/usr/local/bin/unpacker")
		command = strings.ReplaceAll(command, "/etc/autoami-unpacker/", root+"/etc/autoami-unpacker/")
		out, err := exec.Command("sh", "-c", command).CombinedOutput()
		t.Logf("sh: %s", out)
		return err
	}
	newRoot := func(t *testing.T, binary []byte) string {
		root := t.TempDir()
		os.MkdirAll(root+"/usr/local/bin", 0o755)
		os.MkdirAll(root+"/etc/autoami-unpacker", 0o755)
		if binary != nil {
			os.WriteFile(root+"/usr/local/bin/unpacker", binary, 0o755)
		}
		return root
	}
	upgrade := upgradeCommand(digest, srv.URL+"/unpacker")

	t.Run("FirstBootDoesNothing", func(t *testing.T) {
		root := newRoot(t, nil)
		if err := run(t, root, upgrade); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(root + "/usr/local/bin/unpacker"); !os.IsNotExist(err) {
			t.Fatalf("the per-boot part installed a binary on the first boot (runcmd's job): %v", err)
		}
		if err := run(t, root, clientCACommand(id.ClientCACertificatePEM)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(root + "/etc/autoami-unpacker/client-ca.pem"); !os.IsNotExist(err) {
			t.Fatal("the per-boot part wrote the client CA on the first boot (write_files' job)")
		}
	})
	t.Run("SameDigestKeepsTheBinary", func(t *testing.T) {
		root := newRoot(t, newBinary)
		srv.Close() // any download would fail
		defer func() { srv = httptest.NewServer(srv.Config.Handler) }()
		if err := run(t, root, upgrade); err != nil {
			t.Fatalf("the per-boot part failed with the binary in place: %v", err)
		}
	})
	srv = httptest.NewServer(srv.Config.Handler)
	upgrade = upgradeCommand(digest, srv.URL+"/unpacker")
	t.Run("OtherDigestIsReplaced", func(t *testing.T) {
		root := newRoot(t, []byte("old binary"))
		if err := run(t, root, upgrade); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(root + "/usr/local/bin/unpacker")
		fi, _ := os.Stat(root + "/usr/local/bin/unpacker")
		if !bytes.Equal(got, newBinary) || fi.Mode().Perm() != 0o755 {
			t.Fatalf("binary %q mode %s after the upgrade, want the new one, 0755", got, fi.Mode())
		}
		if _, err := os.Stat(root + "/usr/local/bin/unpacker.new"); !os.IsNotExist(err) {
			t.Fatal("unpacker.new left behind")
		}
	})
	t.Run("BadDownloadKeepsTheOldBinary", func(t *testing.T) {
		root := newRoot(t, []byte("old binary"))
		if err := run(t, root, upgradeCommand(digest, srv.URL+"/corrupt")); err == nil {
			t.Fatal("a download failing its checksum did not fail the per-boot part")
		}
		if got, _ := os.ReadFile(root + "/usr/local/bin/unpacker"); string(got) != "old binary" {
			t.Fatalf("binary %q after a failed upgrade, want the old one", got)
		}
	})
	t.Run("ClientCAIsRewritten", func(t *testing.T) {
		root := newRoot(t, nil)
		os.WriteFile(root+"/etc/autoami-unpacker/client-ca.pem", []byte("old CA"), 0o644)
		if err := run(t, root, clientCACommand(id.ClientCACertificatePEM)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(root + "/etc/autoami-unpacker/client-ca.pem"); string(got) != id.ClientCACertificatePEM {
			t.Fatalf("client CA %q, want the user-data's", got)
		}
	})
	srv.Close()
}
