package boottest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/patch"
)

// unpackTree makes root hold exactly the tree at src, with the patch engine,
// and checks the result: a fresh manifest of root equals src's.
func unpackTree(t *testing.T, root, src string) patch.Result {
	t.Helper()
	ctx := context.Background()
	m, err := manifest.FromDirectory(ctx, src, manifest.DirOptions{})
	if err != nil {
		t.Fatalf("manifest of %s: %v", src, err)
	}
	res, err := patch.Apply(ctx, root, m, manifest.DirectorySource(src, m), patch.Options{})
	if err != nil {
		t.Fatalf("patch %s to %s: %v", root, src, err)
	}
	requireExactly(t, root, m)
	return res
}

// requireExactly fails t unless root (ignoring lost+found) is exactly m.
func requireExactly(t *testing.T, root string, m *manifest.Manifest) {
	t.Helper()
	got, err := manifest.FromDirectory(context.Background(), root, manifest.DirOptions{Exclude: []string{"lost+found"}})
	if err != nil {
		t.Fatalf("manifest of %s: %v", root, err)
	}
	gd, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	wd, err := m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if gd != wd {
		t.Fatalf("%s is not exactly the revision: digest %s, want %s (%d entries, want %d)", root, gd, wd, len(got.Entries), len(m.Entries))
	}
}

// bootTimes collects the wall time of every boot for the summary line.
type bootTimes []string

func (b *bootTimes) add(name string, r *qemuboot.Result) {
	*b = append(*b, fmt.Sprintf("%s %.1fs (%s)", name, r.Elapsed.Seconds(), r.Accel))
}

func (b bootTimes) String() string { return strings.Join(b, ", ") }

// markerLine returns the "AUTOAMI-BOOT-OK …" line the image's init printed.
func markerLine(t *testing.T, r *qemuboot.Result) string {
	t.Helper()
	m := regexp.MustCompile(`AUTOAMI-BOOT-OK [^\r\n]*`).FindString(r.Console)
	if m == "" {
		t.Fatalf("login prompt without the boot marker; last console lines:\n%s", qemuboot.LastLines(r.Console, 25))
	}
	return m
}

// requireConsole fails t unless every pattern matches the console output.
func requireConsole(t *testing.T, r *qemuboot.Result, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(r.Console) {
			t.Errorf("console lacks %q; marker: %s; last console lines:\n%s", p,
				regexp.MustCompile(`AUTOAMI-BOOT-OK [^\r\n]*`).FindString(r.Console), qemuboot.LastLines(r.Console, 25))
		}
	}
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }
