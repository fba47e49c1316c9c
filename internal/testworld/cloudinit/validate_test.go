package cloudinit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// exampleBootstrap is a bootstrap with real material but a URL nobody
// serves: enough for the schema.
func exampleBootstrap(t testing.TB) unpackerinstance.Bootstrap {
	return unpackerinstance.Bootstrap{
		Architecture:           unpackerbinary.X86_64,
		ClientCACertificatePEM: string(testpki.NewCA(t, "autoami test client CA").PEM),
		BinaryURL: "https://autoami-content.s3.eu-central-1.amazonaws.com/unpacker/0c1d?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
			"&X-Amz-Credential=AKIAEXAMPLE%2F20250101%2Feu-central-1%2Fs3%2Faws4_request&X-Amz-Signature=ab12",
		BinarySHA256: strings.Repeat("0c", 32),
		IdlePoweroff: 30 * time.Minute,
	}
}

// TestValidateUserDataAcceptsTheContract: every kind of user-data the
// provider renders (each architecture, with and without the packages step,
// another port, no idle power-off) is valid for Debian 12's cloud-init, and
// so is the example deploy/README.md shows.
func TestValidateUserDataAcceptsTheContract(t *testing.T) {
	ctx := context.Background()
	for _, arch := range unpackerbinary.Architectures {
		for _, skip := range []bool{false, true} {
			b := exampleBootstrap(t)
			b.Architecture, b.SkipPackages = arch, skip
			if skip {
				b.Port, b.IdlePoweroff = 7000, 0
			}
			t.Run(fmt.Sprintf("%s, skip packages %v", arch, skip), func(t *testing.T) {
				t.Parallel()
				userData := contractUserData(t, b)
				if err := ValidateUserData(ctx, userData); err != nil {
					t.Fatalf("the provider's user-data:\n%s\nis refused: %v", userData, err)
				}
			})
		}
	}
	t.Run("deploy/README.md's example", func(t *testing.T) {
		t.Parallel()
		if err := ValidateUserData(ctx, readmeExample(t)); err != nil {
			t.Fatalf("the documented example is refused: %v", err)
		}
	})
}

// TestValidateUserDataRefuses: what Debian 12's cloud-init refuses, or would
// silently ignore, fails with an InvalidUserDataError naming the problem.
func TestValidateUserDataRefuses(t *testing.T) {
	ctx := context.Background()
	valid := string(contractUserData(t, exampleBootstrap(t)))
	mustReplace := func(old, new string) string {
		t.Helper()
		if !strings.Contains(valid, old) {
			t.Fatalf("the provider's user-data has no %q:\n%s", old, valid)
		}
		return strings.Replace(valid, old, new, 1)
	}
	for _, tc := range []struct {
		name, userData string
		want           []string
	}{
		{"misspelt write_files key", mustReplace(`"permissions": "0644"`, `"permission": "0644"`),
			[]string{"write_files.0", "'permission' was unexpected"}},
		// cloud-init 22.4's schema allows any top-level key and cloud-init
		// ignores one it does not know: the validator's own check.
		{"misspelt top-level key", mustReplace(`"runcmd":`, `"runcmds":`),
			[]string{"top-level key 'runcmds'", "did you mean 'runcmd'?"}},
		// YAML 1.1 reads 0644 as the integer 420: cloud-init's schema wants
		// a string, and in a runcmd list the command would get "493".
		{"unquoted permissions", mustReplace(`"permissions": "0644"`, `"permissions": 0644`),
			[]string{"write_files.0.permissions: 420 is not of type 'string'"}},
		{"unquoted chmod mode", mustReplace(`"chmod",
      "0755",`, `"chmod",
      0755,`),
			[]string{"runcmd.3", "493"}},
		{"runcmd as one string", "#cloud-config\nruncmd: set -e\n",
			[]string{"runcmd: 'set -e' is not of type 'array'"}},
		{"no #cloud-config line", strings.TrimPrefix(valid, "#cloud-config\n"),
			[]string{`needs to begin with "#cloud-config"`}},
		{"not YAML", "#cloud-config\nruncmd: [a, b\n", []string{"is not valid yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateUserData(ctx, []byte(tc.userData))
			var invalid *InvalidUserDataError
			if !errors.As(err, &invalid) {
				t.Fatalf("ValidateUserData = %v, want an InvalidUserDataError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(invalid.Report, w) {
					t.Errorf("report %q lacks %q", invalid.Report, w)
				}
			}
			if strings.Contains(err.Error(), "autoami-cloudinit-validate-") {
				t.Errorf("the error names the validator's temporary file: %v", err)
			}
		})
	}
}
