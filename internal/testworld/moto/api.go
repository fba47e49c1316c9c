// Package moto starts and controls a moto_server on 127.0.0.1, the AWS of
// autoami's tests and demo.
//
// One Server per test binary is the intended use: start it in TestMain, Reset
// it at the start of each test so that no test depends on another's leftovers,
// and Stop it when the binary ends. Stop kills the server's own process group
// by PID, never by name, so parallel test binaries do not disturb each other.
package moto

import (
	"context"
	"os/exec"
)

// DefaultAccountID is the account moto uses for requests whose credentials are
// not assumed-role credentials.
const DefaultAccountID = "123456789012"

// InstallHint is the one line printed when moto_server is missing.
const InstallHint = "moto_server not found on PATH: install it with `pip install 'moto[server]==5.2.1'`"

// Options configure Start.
type Options struct {
	// Binary is the moto_server executable; empty means "moto_server" on PATH.
	Binary string
	// LogPath receives the server's stdout and stderr; empty discards them.
	LogPath string
	// Port to listen on; 0 picks a free port.
	Port int
}

// Server is a running moto_server.
type Server struct {
	// URL is the endpoint for every AWS service, e.g. http://127.0.0.1:41234.
	URL string
	// Port is the TCP port the server listens on.
	Port int

	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches a moto_server on 127.0.0.1 and waits until it answers.
func Start(ctx context.Context, opts Options) (*Server, error) { return start(ctx, opts) }

// LookBinary reports whether moto_server can be found, with InstallHint as the
// error when it cannot.
func LookBinary(binary string) (string, error) { return lookBinary(binary) }

// Reset clears every account, region and resource in the server.
func (s *Server) Reset(ctx context.Context) error { return s.reset(ctx) }

// Stop terminates the server (its whole process group) and waits for it.
func (s *Server) Stop() error { return s.stop() }

// PID is the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }
