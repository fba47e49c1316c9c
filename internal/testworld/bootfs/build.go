package bootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func build(ctx context.Context) (Trees, error) {
	repo, err := repoRoot()
	if err != nil {
		return Trees{}, err
	}
	script := filepath.Join(repo, "scripts", "bootable-rootfs")
	cmd := exec.CommandContext(ctx, script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Trees{}, fmt.Errorf("%s: %w: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := lines[len(lines)-1]
	kv, err := os.ReadFile(filepath.Join(dir, "kernel-version"))
	if err != nil {
		return Trees{}, fmt.Errorf("%s: no kernel-version in %s: %w", script, dir, err)
	}
	t := Trees{
		Dir: dir, Rev1: filepath.Join(dir, "rev1"), Rev2: filepath.Join(dir, "rev2"),
		Overlay: filepath.Join(dir, "overlay"), KernelVersion: strings.TrimSpace(string(kv)),
	}
	for _, d := range []string{t.Rev1, t.Rev2, t.Overlay} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return Trees{}, fmt.Errorf("%s: tree %s missing after build", script, d)
		}
	}
	return t, nil
}

// repoRoot walks up from the working directory to the module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bootfs: no go.mod above the working directory")
		}
		dir = parent
	}
}
