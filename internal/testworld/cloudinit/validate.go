package cloudinit

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// validatePy runs `cloud-init schema` and the top-level key check; see its
// docstring for the exit statuses.
//
//go:embed validate.py
var validatePy []byte

func validateUserData(ctx context.Context, data []byte) error {
	if _, err := os.Stat(Python); err != nil {
		return fmt.Errorf("validate user-data: %s missing: %s", Python, InstallHint)
	}
	cache, err := schemaScript.run(ctx)
	if err != nil {
		return fmt.Errorf("validate user-data: unpack cloud-init: %w", err)
	}
	work, err := os.MkdirTemp("", "autoami-cloudinit-validate-")
	if err != nil {
		return fmt.Errorf("validate user-data: %w", err)
	}
	defer os.RemoveAll(work)
	script, file := filepath.Join(work, "validate.py"), filepath.Join(work, "user-data")
	if err := os.WriteFile(script, validatePy, 0o644); err != nil {
		return fmt.Errorf("validate user-data: %w", err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return fmt.Errorf("validate user-data: %w", err)
	}
	// -I -S: nothing of the host's Python setup (PYTHONPATH, site-packages,
	// the host's dist-packages) but the standard library; cloud-init and its
	// imports come only from the unpacked packages.
	cmd := exec.CommandContext(ctx, Python, "-I", "-S", script,
		filepath.Join(cache, "root", "usr", "lib", "python3", "dist-packages"), file)
	cmd.Dir = work
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return &InvalidUserDataError{Report: report(stderr.String(), file)}
	default:
		return fmt.Errorf("validate user-data: %s %s: %w: %s", Python, script, err, strings.TrimSpace(stderr.String()+stdout.String()))
	}
}

// report is the validator's complaint without cloud-init's empty headings
// and with the temporary file's name as "user-data".
func report(stderr, file string) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(strings.ReplaceAll(l, file, "user-data"))
		switch l {
		case "", "Error:", "Cloud config schema deprecations:":
			continue
		}
		lines = append(lines, strings.TrimPrefix(l, "Error: "))
	}
	if len(lines) == 0 {
		return "(the validator gave no reason)"
	}
	return strings.Join(lines, "; ")
}
