package cloudinit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
)

// cachedScript runs one of the repository's cache-building scripts at most
// once per process with success: its last line of output (the cache
// directory) is kept, a failure is retried by the next caller.
type cachedScript struct {
	name string // under scripts/
	mu   sync.Mutex
	dir  string
}

var (
	schemaScript = &cachedScript{name: "cloud-init-schema"}
	imageScript  = &cachedScript{name: "cloud-init-image"}
)

// scriptStopGrace is how long a cancelled script may take to clean up (its
// EXIT trap unmounts and detaches what it attached) before it is killed.
const scriptStopGrace = time.Minute

func (s *cachedScript) run(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != "" {
		return s.dir, nil
	}
	repo, err := bootfs.RepoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(repo, "scripts", s.name)
	cmd := exec.CommandContext(ctx, script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, stopped by SIGTERM when ctx ends, so that the
	// script's trap can undo mounts and loop devices of what it ran.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = scriptStopGrace
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := lines[len(lines)-1]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s: last line %q is not the cache directory", script, dir)
	}
	s.dir = dir
	return dir, nil
}
