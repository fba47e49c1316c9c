package provider

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Processes of a process group, read from /proc: what a killed terraform
// left running, if anything.

// groupProc is one process of a group.
type groupProc struct {
	PID  int
	Comm string
	// State is /proc/PID/stat's state: R, S, D, Z (zombie: exited, not yet
	// reaped), …
	State byte
}

func (p groupProc) String() string { return fmt.Sprintf("%d %s (%c)", p.PID, p.Comm, p.State) }

// groupProcs lists the processes whose process group is pgid.
func groupProcs(pgid int) ([]groupProc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []groupProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "PID (COMM) STATE PPID PGRP …"; COMM may hold spaces and parens.
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		f := strings.Fields(s[closing+1:])
		if len(f) < 3 {
			continue
		}
		pgrp, err := strconv.Atoi(f[2])
		if err != nil || pgrp != pgid {
			continue
		}
		out = append(out, groupProc{PID: pid, Comm: s[open+1 : closing], State: f[0][0]})
	}
	return out, nil
}

// alive are the processes that have not exited (zombies have).
func alive(procs []groupProc) []groupProc {
	var out []groupProc
	for _, p := range procs {
		if p.State != 'Z' && p.State != 'X' {
			out = append(out, p)
		}
	}
	return out
}

// killGroup SIGKILLs every process of the group; a group that is gone
// already is no error.
func killGroup(pgid int) error {
	if pgid <= 1 {
		return fmt.Errorf("refusing to kill process group %d", pgid)
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pgid, err)
	}
	return nil
}

// waitGone waits until every process of procs has exited, through pidfds
// (which become readable when the process exits, child or not), at most
// timeout in all.
func waitGone(procs []groupProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, p := range procs {
		fd, err := unix.PidfdOpen(p.PID, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // gone (and reaped) already
		}
		if err != nil {
			return fmt.Errorf("pidfd of %s: %w", p, err)
		}
		err = pollReadable(fd, time.Until(deadline))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("process %s: %w", p, err)
		}
	}
	return nil
}

func pollReadable(fd int, d time.Duration) error {
	for {
		ms := int(d / time.Millisecond)
		if ms < 0 {
			ms = 0
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("still running after %s", d)
		}
		return nil
	}
}
