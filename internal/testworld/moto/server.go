package moto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// startTimeout bounds how long a fresh server may take to answer; it is
// ready in about a second on an idle machine.
const startTimeout = 60 * time.Second

func lookBinary(binary string) (string, error) {
	if binary == "" {
		binary = "moto_server"
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		return "", errors.New(InstallHint)
	}
	return path, nil
}

func start(ctx context.Context, opts Options) (*Server, error) {
	python, err := findPython(ctx, opts)
	if err != nil {
		return nil, err
	}
	scriptDir, script, err := writeScript()
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			os.RemoveAll(scriptDir)
			return nil, fmt.Errorf("pick a port for moto: %w", err)
		}
	}
	pending, err := pendingJSON(opts.Pending)
	if err != nil {
		os.RemoveAll(scriptDir)
		return nil, err
	}
	dataDir, ownsDataDir := opts.DataDir, false
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "autoami-world-"); err != nil {
			os.RemoveAll(scriptDir)
			return nil, fmt.Errorf("data directory for the local AWS: %w", err)
		}
		ownsDataDir = true
	} else if err := os.MkdirAll(dataDir, 0o700); err != nil {
		os.RemoveAll(scriptDir)
		return nil, fmt.Errorf("data directory for the local AWS: %w", err)
	}
	cleanupDirs := func() {
		os.RemoveAll(scriptDir)
		if ownsDataDir {
			os.RemoveAll(dataDir)
		}
	}
	cmd := exec.Command(python, script, "-H", "127.0.0.1", "-p", strconv.Itoa(port), "--pending", pending, "--data-dir", dataDir, "--boot-disk", opts.BootDisk)
	// Its own process group, so Stop reaches the server's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// MOTO_ACCOUNT_ID would override AssumeRole accounts (research/moto.md).
	cmd.Env = withoutEnv(os.Environ(), "MOTO_ACCOUNT_ID")
	if opts.LogPath != "" {
		logFile, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			cleanupDirs()
			return nil, fmt.Errorf("open moto log %s: %w", opts.LogPath, err)
		}
		defer logFile.Close()
		cmd.Stdout, cmd.Stderr = logFile, logFile
	}
	if err := cmd.Start(); err != nil {
		cleanupDirs()
		return nil, fmt.Errorf("start %s %s: %w", python, script, err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, cmd: cmd, done: make(chan struct{}), scriptDir: scriptDir,
		DataDir: dataDir, ownsDataDir: ownsDataDir}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		_ = s.stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.done:
			return fmt.Errorf("moto on port %d exited during start (see its log)", s.Port)
		case <-ctx.Done():
			return fmt.Errorf("moto on port %d did not answer within %s", s.Port, startTimeout)
		case <-time.After(100 * time.Millisecond):
		}
		// The harness endpoint answers only once the additions are in place.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+controlPath, nil)
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}

func (s *Server) reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto at %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto at %s: HTTP %d", s.URL, resp.StatusCode)
	}
	return nil
}

func (s *Server) stop() error {
	defer func() {
		_ = releaseHost(s.DataDir) // what machines of a killed moto left (machines.go); HostLeftovers reports it
		os.RemoveAll(s.scriptDir)
		if s.ownsDataDir {
			os.RemoveAll(s.DataDir)
		}
	}()
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-s.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("moto (pid %d) did not exit", pid)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
