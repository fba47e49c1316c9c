package cloudinit

import (
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

// TestRuncmdStopsAtTheFirstFailure runs the contract's runcmd as Debian 12's
// cloud-init does: its runcmd module turns the list into one script with
// cloud-init's own shellify, and scripts_user executes that script (#!/bin/sh,
// no -e). With the contract's leading `set -e`, a binary whose checksum does
// not match is neither made executable nor started; without it, it would be.
// The commands outside this test's directory (curl, systemctl) are stubs;
// sh, sha256sum and chmod are the host's (Debian's, as on the instance).
func TestRuncmdStopsAtTheFirstFailure(t *testing.T) {
	binary := []byte("#!/bin/sh\necho the unpacker\n")
	sum := sha256.Sum256(binary)
	good := hex.EncodeToString(sum[:])
	b := bootstrap{ClientCAPEM: testpki.NewCA(t, "autoami test client CA").PEM,
		BinaryURL:    "http://10.0.2.100:8080/autoami-content/unpacker/" + good + "?X-Amz-Signature=ab'12",
		BinarySHA256: good, UnpackerArgs: "--idle-poweroff=30m"}

	t.Run("right checksum", func(t *testing.T) {
		run := runRuncmd(t, contractUserData(t, b), binary)
		if run.err != nil {
			t.Fatalf("runcmd failed: %v\n%s", run.err, run.output)
		}
		if want := "daemon-reload\nenable --now autoami-unpacker.service\n"; run.systemctl != want {
			t.Errorf("systemctl calls %q, want %q", run.systemctl, want)
		}
		if run.mode != 0o755 {
			t.Errorf("the binary's mode is %o, want 755", run.mode)
		}
		if want := b.BinaryURL + "\n"; run.curlURL != want {
			t.Errorf("curl fetched %q, want the presigned URL %q (quotes and all)", run.curlURL, want)
		}
	})
	wrong := b
	wrong.BinarySHA256 = strings.Repeat("0", 64)
	t.Run("wrong checksum", func(t *testing.T) {
		run := runRuncmd(t, contractUserData(t, wrong), binary)
		if run.err == nil {
			t.Fatalf("runcmd succeeded with a wrong checksum:\n%s", run.output)
		}
		if !strings.Contains(run.output, "FAILED") {
			t.Errorf("the output does not say the checksum failed:\n%s", run.output)
		}
		if run.systemctl != "" || run.mode&0o111 != 0 {
			t.Errorf("after a failed checksum: systemctl calls %q, binary mode %o; want none and not executable", run.systemctl, run.mode)
		}
	})
	t.Run("wrong checksum without set -e", func(t *testing.T) {
		userData := strings.Replace(string(contractUserData(t, wrong)), "  - set -e\n", "", 1)
		run := runRuncmd(t, []byte(userData), binary)
		if run.systemctl == "" || run.mode != 0o755 {
			t.Fatalf("without set -e the bootstrap stopped anyway (systemctl %q, mode %o): "+
				"cloud-init would run runcmd under -e, and the contract's first line is redundant", run.systemctl, run.mode)
		}
	})
}

// runcmdRun is what one run of a runcmd script did.
type runcmdRun struct {
	err       error
	output    string
	systemctl string // the stub's calls, one line each
	curlURL   string
	mode      os.FileMode // of the downloaded binary
}

// runRuncmd makes the runcmd script of userData with cloud-init's own code
// and runs it with the binary's path moved into a test directory and curl
// and systemctl stubbed (curl "downloads" binary).
func runRuncmd(t *testing.T, userData, binary []byte) runcmdRun {
	t.Helper()
	script := shellifyRuncmd(t, userData)
	dir := t.TempDir()
	if !strings.Contains(script, "/usr/local/bin/unpacker") {
		t.Fatalf("the runcmd script does not name /usr/local/bin/unpacker:\n%s", script)
	}
	script = strings.ReplaceAll(script, "/usr/local/bin/unpacker", filepath.Join(dir, "unpacker"))
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stubs := map[string]string{
		// curl -fsS --retry 5 -o PATH URL: writes the binary as curl would (0644).
		"curl": `#!/bin/sh
out= url=
while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift;; -*) ;; *) url=$1;; esac; shift; done
printf '%s\n' "$url" >"$STUBS/curl.url"
cp "$STUBS/payload" "$out" && chmod 0644 "$out"
`,
		"systemctl": "#!/bin/sh\necho \"$*\" >>\"$STUBS/systemctl.log\"\n",
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "payload"), binary, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "runcmd")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	// Executed as scripts_user executes it: the file itself, by its #! line.
	cmd := exec.Command(path)
	cmd.Env = []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin", "STUBS=" + dir}
	out, err := cmd.CombinedOutput()
	run := runcmdRun{err: err, output: string(out)}
	if b, err := os.ReadFile(filepath.Join(dir, "systemctl.log")); err == nil {
		run.systemctl = string(b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "curl.url")); err == nil {
		run.curlURL = string(b)
	}
	if st, err := os.Stat(filepath.Join(dir, "unpacker")); err == nil {
		run.mode = st.Mode().Perm()
	}
	return run
}

// shellifyRuncmd is the script cloud-init's runcmd module writes for
// userData (cloudinit.util.shellify of its runcmd list, YAML read with
// cloud-init's own loader).
func shellifyRuncmd(t *testing.T, userData []byte) string {
	t.Helper()
	cache, err := schemaScript.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python, "-I", "-S", "-c", `
import sys
sys.path.insert(0, sys.argv[1])
from cloudinit import safeyaml, util
sys.stdout.write(util.shellify(safeyaml.load(sys.stdin.buffer.read())["runcmd"]))
`, filepath.Join(cache, "root", "usr", "lib", "python3", "dist-packages"))
	cmd.Stdin = strings.NewReader(string(userData))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = exit.Stderr
		}
		t.Fatalf("cloud-init's shellify: %v: %s", err, stderr)
	}
	return string(out)
}
