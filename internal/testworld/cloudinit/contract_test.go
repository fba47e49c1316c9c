package cloudinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
)

// contractUserData is the unpacker's user-data for b exactly as the
// provider renders it for an instance (unpackerinstance.UserData, the
// contract of deploy/README.md, "Bootstrap contract"). Every test of this
// package takes its user-data from here, so schema validation, cloud-init's
// runcmd script and the real boot all prove the renderer's output.
func contractUserData(t testing.TB, b unpackerinstance.Bootstrap) []byte {
	t.Helper()
	data, err := unpackerinstance.UserData(b)
	if err != nil {
		t.Fatalf("render the user-data: %v", err)
	}
	return data
}

// readmeExample is the contract's example in deploy/README.md, as shown
// there (its YAML block form, with placeholders for the URL, digest and CA).
func readmeExample(t testing.TB) []byte {
	t.Helper()
	_, section, ok := strings.Cut(string(readRepoFile(t, "deploy", "README.md")), "## Bootstrap contract")
	if !ok {
		t.Fatal(`deploy/README.md has no section "Bootstrap contract"`)
	}
	_, example, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("deploy/README.md's bootstrap contract shows no ```yaml example")
	}
	example, _, ok = strings.Cut(example, "```")
	if !ok || !strings.HasPrefix(example, "#cloud-config\n") {
		t.Fatalf("deploy/README.md's bootstrap example is not a #cloud-config block:\n%s", example)
	}
	return []byte(example)
}

// readRepoFile reads a file of the repository by its path from the root.
func readRepoFile(t testing.TB, path ...string) []byte {
	t.Helper()
	repo, err := bootfs.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(append([]string{repo}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
