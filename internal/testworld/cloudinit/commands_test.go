package cloudinit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
)

// The paths the bootstrap's commands write on an instance; the tests below
// move them into a test directory.
const (
	binaryPath   = "/usr/local/bin/unpacker"
	clientCAPath = "/etc/autoami-unpacker/client-ca.pem"
)

// TestRuncmdStopsAtTheFirstFailure runs the provider's runcmd as Debian 12's
// cloud-init does: its runcmd module turns the list into one script with
// cloud-init's own shellify, and scripts_user executes that script (#!/bin/sh,
// no -e). With the contract's leading `set -e`, a binary whose checksum does
// not match is neither made executable nor started; without it, it would be.
func TestRuncmdStopsAtTheFirstFailure(t *testing.T) {
	binary := []byte("#!/bin/sh\necho the unpacker\n")
	b := exampleBootstrap(t)
	b.BinarySHA256 = sha256Hex(binary)

	t.Run("right checksum", func(t *testing.T) {
		run := runCommands(t, "runcmd", contractUserData(t, b), binary, nil)
		if run.err != nil {
			t.Fatalf("runcmd failed: %v\n%s", run.err, run.output)
		}
		if want := "daemon-reload\nenable --now autoami-unpacker.service\n"; run.systemctl != want {
			t.Errorf("systemctl calls %q, want %q", run.systemctl, want)
		}
		if run.binaryMode != 0o755 || !bytes.Equal(run.binary, binary) {
			t.Errorf("the binary: mode %o, %d bytes; want mode 755 and the downloaded bytes", run.binaryMode, len(run.binary))
		}
		if want := b.BinaryURL + "\n"; run.curlURLs != want {
			t.Errorf("curl fetched %q, want the presigned URL %q", run.curlURLs, want)
		}
	})
	wrong := b
	wrong.BinarySHA256 = strings.Repeat("0", 64)
	t.Run("wrong checksum", func(t *testing.T) {
		run := runCommands(t, "runcmd", contractUserData(t, wrong), binary, nil)
		if run.err == nil {
			t.Fatalf("runcmd succeeded with a wrong checksum:\n%s", run.output)
		}
		if !strings.Contains(run.output, "FAILED") {
			t.Errorf("the output does not say the checksum failed:\n%s", run.output)
		}
		if run.systemctl != "" || run.binaryMode&0o111 != 0 {
			t.Errorf("after a failed checksum: systemctl calls %q, binary mode %o; want none and not executable", run.systemctl, run.binaryMode)
		}
	})
	t.Run("wrong checksum without set -e", func(t *testing.T) {
		userData := string(contractUserData(t, wrong))
		withoutE := strings.Replace(userData, `"set -e",`, "", 1)
		if withoutE == userData {
			t.Fatalf("the user-data has no \"set -e\" item:\n%s", userData)
		}
		run := runCommands(t, "runcmd", []byte(withoutE), binary, nil)
		if run.systemctl == "" || run.binaryMode != 0o755 {
			t.Fatalf("without set -e the bootstrap stopped anyway (systemctl %q, mode %o): "+
				"cloud-init would run runcmd under -e, and the contract's first line is redundant", run.systemctl, run.binaryMode)
		}
	})
}

// TestBootcmdOnLaterBoots runs the provider's bootcmd as Debian 12's
// cloud-init does at every boot (its own shellify, the script run by
// /bin/sh, no -e): nothing on the first boot; on a later boot with the
// user-data of an upgrade, the binary of the new digest replaces the old
// one only after its checksum passed, and the client CA is the new one, to
// the byte.
func TestBootcmdOnLaterBoots(t *testing.T) {
	oldBinary, newBinary := []byte("#!/bin/sh\necho old\n"), []byte("#!/bin/sh\necho new\n")
	b := exampleBootstrap(t)
	b.BinarySHA256 = sha256Hex(newBinary)
	newCA := b.ClientCACertificatePEM
	oldCA := string(testpki.NewCA(t, "the old client CA").PEM)

	t.Run("first boot", func(t *testing.T) {
		run := runCommands(t, "bootcmd", contractUserData(t, b), newBinary, nil)
		if run.err != nil || run.curlURLs != "" || run.binary != nil || run.clientCA != nil {
			t.Fatalf("bootcmd on the first boot: %v, fetched %q, binary %q, client CA %q; want nothing done\n%s",
				run.err, run.curlURLs, run.binary, run.clientCA, run.output)
		}
	})
	t.Run("upgrade and new client CA", func(t *testing.T) {
		run := runCommands(t, "bootcmd", contractUserData(t, b), newBinary, &installed{binary: oldBinary, clientCA: oldCA})
		if run.err != nil {
			t.Fatalf("bootcmd failed: %v\n%s", run.err, run.output)
		}
		if !bytes.Equal(run.binary, newBinary) || run.binaryMode != 0o755 || run.curlURLs != b.BinaryURL+"\n" {
			t.Errorf("binary %q (mode %o) fetched from %q; want the new one, 755, from %s", run.binary, run.binaryMode, run.curlURLs, b.BinaryURL)
		}
		if string(run.clientCA) != newCA {
			t.Errorf("client CA after bootcmd:\n%q\nwant the user-data's, to the byte:\n%q", run.clientCA, newCA)
		}
	})
	t.Run("same digest", func(t *testing.T) {
		run := runCommands(t, "bootcmd", contractUserData(t, b), newBinary, &installed{binary: newBinary, clientCA: newCA})
		if run.err != nil || run.curlURLs != "" {
			t.Fatalf("bootcmd with the installed digest: %v, fetched %q; want no download\n%s", run.err, run.curlURLs, run.output)
		}
	})
	t.Run("download fails its checksum", func(t *testing.T) {
		run := runCommands(t, "bootcmd", contractUserData(t, b), []byte("tampered"), &installed{binary: oldBinary, clientCA: oldCA})
		if !bytes.Equal(run.binary, oldBinary) || run.binaryMode != 0o755 {
			t.Errorf("after a failed checksum the binary is %q (mode %o), want the old one, still executable", run.binary, run.binaryMode)
		}
		if !strings.Contains(run.output, "FAILED") {
			t.Errorf("the output does not say the checksum failed:\n%s", run.output)
		}
		// The script's status is its last command's (the client CA's): a
		// failed upgrade does not fail cloud-init's bootcmd module; the
		// console has curl's or sha256sum's message, and the daemon starts
		// with the old binary.
		if run.err != nil {
			t.Errorf("bootcmd's script failed (%v): cloud-init would log its bootcmd module as failed", run.err)
		}
	})
}

// installed is what an earlier boot left on the instance.
type installed struct {
	binary   []byte
	clientCA string
}

// commandsRun is what one run of a runcmd or bootcmd script did.
type commandsRun struct {
	err        error
	output     string
	systemctl  string // the stub's calls, one line each
	curlURLs   string // the URLs curl was asked for, one line each
	binary     []byte // nil when there is none
	binaryMode os.FileMode
	clientCA   []byte // nil when there is none
}

// runCommands makes the script cloud-init makes of userData's key (runcmd
// or bootcmd) with cloud-init's own code, moves the instance's paths into a
// test directory (holding what before says an earlier boot left), stubs
// curl (it "downloads" download) and systemctl, and runs the script as
// cloud-init does: runcmd's file by its #! line, bootcmd's with /bin/sh.
// sh, sha256sum, chmod, mv and printf are the host's (Debian's, as on an
// instance).
func runCommands(t *testing.T, key string, userData, download []byte, before *installed) commandsRun {
	t.Helper()
	script := shellify(t, key, userData)
	dir := t.TempDir()
	binary, clientCA := filepath.Join(dir, "unpacker"), filepath.Join(dir, "client-ca.pem")
	if !strings.Contains(script, binaryPath) {
		t.Fatalf("the %s script does not name %s:\n%s", key, binaryPath, script)
	}
	script = strings.NewReplacer(binaryPath, binary, clientCAPath, clientCA).Replace(script)
	if before != nil {
		if err := os.WriteFile(binary, before.binary, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(clientCA, []byte(before.clientCA), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stubs := map[string]string{
		// curl -fsS --retry 5 -o PATH URL: writes the download as curl would (0644).
		"curl": `#!/bin/sh
out= url=
while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift;; -*) ;; *) url=$1;; esac; shift; done
printf '%s\n' "$url" >>"$STUBS/curl.urls"
cp "$STUBS/download" "$out" && chmod 0644 "$out"
`,
		"systemctl": "#!/bin/sh\necho \"$*\" >>\"$STUBS/systemctl.log\"\n",
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "download"), download, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, key)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path) // runcmd: scripts_user executes the file
	if key == "bootcmd" {
		cmd = exec.Command("/bin/sh", path) // cc_bootcmd: /bin/sh FILE
	}
	cmd.Env = []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin", "STUBS=" + dir}
	out, err := cmd.CombinedOutput()
	run := commandsRun{err: err, output: string(out)}
	if b, err := os.ReadFile(filepath.Join(dir, "systemctl.log")); err == nil {
		run.systemctl = string(b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "curl.urls")); err == nil {
		run.curlURLs = string(b)
	}
	if b, err := os.ReadFile(binary); err == nil {
		run.binary = b
		st, _ := os.Stat(binary)
		run.binaryMode = st.Mode().Perm()
	}
	if b, err := os.ReadFile(clientCA); err == nil {
		run.clientCA = b
	}
	return run
}

// shellify is the script cloud-init makes of userData's runcmd or bootcmd
// list (cloudinit.util.shellify, the YAML read with cloud-init's own loader).
func shellify(t *testing.T, key string, userData []byte) string {
	t.Helper()
	cache, err := schemaScript.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python, "-I", "-S", "-c", `
import sys
sys.path.insert(0, sys.argv[1])
from cloudinit import safeyaml, util
sys.stdout.write(util.shellify(safeyaml.load(sys.stdin.buffer.read())[sys.argv[2]]))
`, filepath.Join(cache, "root", "usr", "lib", "python3", "dist-packages"), key)
	cmd.Stdin = bytes.NewReader(userData)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cloud-init's shellify of %s: %v: %s", key, err, stderr.String())
	}
	return string(out)
}

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
