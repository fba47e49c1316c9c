package volume

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"
)

// command is one external tool invocation against a device.
type command struct {
	// device is what the command acts on; every error names it.
	device string
	name   string
	args   []string
	// env is added to the inherited environment.
	env []string
	// stdin, when set, is fed to the command.
	stdin []byte
}

// run executes c and returns its standard output. A failure wraps the exit
// status with the device, the command line and the last lines of stderr.
func run(ctx context.Context, log *slog.Logger, c command) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.name, c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.stdin != nil {
		cmd.Stdin = bytes.NewReader(c.stdin)
	}
	start := time.Now()
	err := cmd.Run()
	log.Debug("ran command", "target", c.device, "command", c.name, "args", c.args,
		"duration", time.Since(start), "error", err)
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s on %s: %s: %w%s", c.name, c.device,
			strings.Join(c.args, " "), err, stderrTail(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// stderrTail formats the end of a command's error output for an error message.
func stderrTail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return ": " + strings.Join(lines, "; ")
}

// loggerOr returns l, or slog.Default() when l is nil.
func loggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
