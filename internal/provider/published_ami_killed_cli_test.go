package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real terraform CLI for TestAccPublishedAMI_killed: the provider is a
// binary of its own (built with -tags autoami_killtest, for fast waits),
// run by terraform through dev_overrides, so terraform and its plugin are
// two processes that a test can kill. Every command runs in a process group
// of its own, which is SIGKILLed when the command ends or is abandoned.

// killedProviderBinary builds the provider (with -tags autoami_killtest)
// into a directory of the test's own and returns the directory (what
// dev_overrides names).
func killedProviderBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	cmd := exec.Command("go", "build", "-tags", "autoami_killtest", "-ldflags", "-X main.version=0.0.1-killtest",
		"-o", filepath.Join(dir, "terraform-provider-autoami"), ".")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the provider: %v\n%s", err, out)
	}
	t.Logf("provider built in %s", time.Since(start).Round(time.Millisecond))
	return dir
}

// tfCLI is one terraform working directory driven by the real CLI.
type tfCLI struct {
	t *testing.T
	// terraform is the CLI's path.
	terraform string
	// dir is the working directory (configuration and local state).
	dir string
	// logs is where every command's output goes, one file per command.
	logs string
	// env is the commands' environment.
	env []string
}

// newTFCLI makes a working directory whose CLI configuration serves the
// provider binary through dev_overrides (no `terraform init`, nothing
// leaves loopback). The environment is the test's (AWS_ENDPOINT_URL at the
// test world, fake credentials), which the plugin inherits.
func newTFCLI(t *testing.T, providerDir string) *tfCLI {
	t.Helper()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH (scripts/ensure-terraform builds one)")
	}
	root := t.TempDir()
	c := &tfCLI{t: t, terraform: bin, dir: filepath.Join(root, "work"), logs: filepath.Join(root, "logs")}
	for _, d := range []string{c.dir, c.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// The commands' logs outlive a failed test (TempDir does not).
		if !t.Failed() {
			return
		}
		keep := filepath.Join(os.TempDir(), fmt.Sprintf("autoami-killed-logs-%d", os.Getpid()))
		if out, err := exec.Command("cp", "-a", c.logs, keep).CombinedOutput(); err != nil {
			t.Logf("keeping the terraform logs: %v: %s", err, out)
			return
		}
		t.Logf("terraform logs kept in %s", keep)
	})
	rc := filepath.Join(root, "terraformrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf(`provider_installation {
  dev_overrides {
    "autoami/autoami" = %q
  }
}
`, providerDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		// The test decides the log level of each command.
		if !strings.HasPrefix(kv, "TF_LOG") && !strings.HasPrefix(kv, "TF_CLI_CONFIG_FILE=") {
			env = append(env, kv)
		}
	}
	c.env = append(env, "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	return c
}

// writeConfig replaces the working directory's configuration.
func (c *tfCLI) writeConfig(hcl string) {
	c.t.Helper()
	head := `
terraform {
  required_providers {
    autoami = { source = "autoami/autoami" }
  }
}
`
	if err := os.WriteFile(filepath.Join(c.dir, "main.tf"), []byte(head+hcl), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// command is terraform args in its own process group, killed (the whole
// group: terraform and its plugin) when the test ends, whatever happened.
func (c *tfCLI) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.terraform, args...)
	cmd.Dir = c.dir
	cmd.Env = append(append([]string{}, c.env...), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	return cmd
}

// start starts cmd and makes sure its group dies with the test.
func (c *tfCLI) start(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %v: %w", cmd.Args, err)
	}
	pgid := cmd.Process.Pid
	c.t.Cleanup(func() { _ = killGroup(pgid) })
	return nil
}

// run runs `terraform args…` to completion (bounded by ctx) with its
// output in logs/name.log; a failure returns the output's tail. The group
// is killed afterwards, so no plugin outlives its terraform.
func (c *tfCLI) run(ctx context.Context, name string, args ...string) error {
	_, err := c.runCode(ctx, name, args...)
	return err
}

// runCode is run that also returns terraform's exit code (plan
// -detailed-exitcode: 2 is not a failure).
func (c *tfCLI) runCode(ctx context.Context, name string, args ...string) (int, error) {
	path := filepath.Join(c.logs, name+".log")
	f, err := os.Create(path)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	cmd := c.command(ctx, nil, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := c.start(cmd); err != nil {
		return -1, err
	}
	err = cmd.Wait()
	_ = killGroup(cmd.Process.Pid)
	code := cmd.ProcessState.ExitCode()
	if err != nil {
		if args[0] == "plan" && code == 2 {
			return code, nil
		}
		return code, fmt.Errorf("terraform %s: %w\n%s", strings.Join(args, " "), err, tail(path, 40))
	}
	return code, nil
}

// tail is the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// providerLine is one log line of the provider (TF_LOG_PROVIDER), as
// terraform writes it: `TIME [INFO]  provider.terraform-provider-autoami:
// MESSAGE: key=value key="value with spaces" …`.
type providerLine struct {
	Raw     string
	Message string
	Fields  map[string]string
}

// parseProviderLine parses a provider log line; ok is false for other
// lines (terraform's own, plugin start-up).
func parseProviderLine(line string) (providerLine, bool) {
	const marker = "provider.terraform-provider-autoami: "
	i := strings.Index(line, marker)
	if i < 0 {
		return providerLine{}, false
	}
	rest := line[i+len(marker):]
	// The message ends at the first ": " followed by a field (key=…).
	msg, fields := rest, ""
	for j := 0; ; {
		k := strings.Index(rest[j:], ": ")
		if k < 0 {
			break
		}
		cand := rest[j+k+2:]
		if eq := strings.IndexByte(cand, '='); eq > 0 && !strings.ContainsAny(cand[:eq], " \"") {
			msg, fields = rest[:j+k], cand
			break
		}
		j += k + 2
	}
	return providerLine{Raw: line, Message: msg, Fields: parseFields(fields)}, true
}

// parseFields parses hclog's `key=value key="quoted value"` pairs.
func parseFields(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		key, v := s[:eq], s[eq+1:]
		if strings.HasPrefix(v, `"`) {
			// The shortest prefix that unquotes is the value.
			end := -1
			for k := 1; k < len(v); k++ {
				if v[k] == '"' && v[k-1] != '\\' {
					end = k
					break
				}
			}
			if end < 0 {
				out[key] = v
				break
			}
			uq, err := strconv.Unquote(v[:end+1])
			if err != nil {
				uq = v[1:end]
			}
			out[key], s = uq, v[end+1:]
			continue
		}
		sp := strings.IndexByte(v, ' ')
		if sp < 0 {
			out[key], s = v, ""
			continue
		}
		out[key], s = v[:sp], v[sp:]
	}
	return out
}

// killedRun is what applyKilled saw.
type killedRun struct {
	// At is the line on which the group was killed.
	At providerLine
	// Progress is every publisher progress line the provider logged, the
	// ones that reached the pipe after the kill included.
	Progress []providerLine
	// Group is the processes of the group: those at the first progress
	// line and those right after the kill.
	Group []groupProc
	// Elapsed is from the start of terraform to the kill.
	Elapsed time.Duration
}

// applyKilled runs `terraform apply` with the provider logging at INFO to
// terraform's stderr (a pipe: each line is seen as it is written, no
// polling) and SIGKILLs the whole process group on the first provider
// line that kill accepts. It returns once every process of the group is
// gone, and fails if the apply ends before the line came or if a process
// of the group survived.
func (c *tfCLI) applyKilled(ctx context.Context, name string, kill func(providerLine) bool, args ...string) (killedRun, error) {
	var run killedRun
	logPath := filepath.Join(c.logs, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return run, err
	}
	defer logFile.Close()
	cmd := c.command(ctx, []string{"TF_LOG_PROVIDER=INFO"}, append([]string{"apply"}, args...)...)
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return run, err
	}
	started := time.Now()
	if err := c.start(cmd); err != nil {
		return run, err
	}
	pgid := cmd.Process.Pid
	killed := false
	var killErr error
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logFile, line)
		pl, ok := parseProviderLine(line)
		if !ok || pl.Fields["step"] == "" {
			continue
		}
		run.Progress = append(run.Progress, pl)
		if len(run.Progress) == 1 {
			// The plugin that publishes is running: who is in the group
			// (listed now, as after the kill a reaped process is not).
			run.Group, killErr = groupProcs(pgid)
		}
		if killed || !kill(pl) {
			continue
		}
		// The kill at once, the bookkeeping after it.
		if err := killGroup(pgid); err != nil {
			killErr = errors.Join(killErr, err)
		}
		run.Elapsed = time.Since(started)
		run.At = pl
		killed = true
		more, err := groupProcs(pgid)
		killErr = errors.Join(killErr, err)
		for _, p := range more {
			if !slices.ContainsFunc(run.Group, func(q groupProc) bool { return q.PID == p.PID }) {
				run.Group = append(run.Group, p)
			}
		}
		fmt.Fprintf(logFile, "=== test: SIGKILL process group %d after %s\n", pgid, run.Elapsed.Round(time.Millisecond))
	}
	// EOF: every writer of the pipe (terraform, and the plugin through it)
	// has exited or closed it.
	_, _ = io.Copy(io.Discard, stderr)
	waitErr := cmd.Wait()
	if !killed {
		return run, fmt.Errorf("terraform apply ended (%v) before the provider logged the chosen progress\n%s", waitErr, tail(logPath, 30))
	}
	if killErr != nil {
		return run, killErr
	}
	if err := waitGone(run.Group, 30*time.Second); err != nil {
		return run, err
	}
	if left, err := groupProcs(pgid); err != nil || len(alive(left)) > 0 {
		return run, fmt.Errorf("processes of the killed group %d still alive: %v (%v)", pgid, alive(left), err)
	}
	return run, nil
}

// showJSON is `terraform show -json`'s resources by address, with their
// attribute values.
func (c *tfCLI) showJSON(ctx context.Context) (map[string]map[string]any, error) {
	cmd := c.command(ctx, nil, "show", "-json")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := c.start(cmd); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	_ = killGroup(cmd.Process.Pid)
	if err != nil {
		return nil, fmt.Errorf("terraform show -json: %w: %s", err, errOut.String())
	}
	var doc struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string         `json:"address"`
					Values  map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		return nil, fmt.Errorf("terraform show -json: %w", err)
	}
	res := map[string]map[string]any{}
	for _, r := range doc.Values.RootModule.Resources {
		res[r.Address] = r.Values
	}
	return res, nil
}
