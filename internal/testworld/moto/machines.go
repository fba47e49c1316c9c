package moto

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// InstanceTransitions says how long instances stay in their transitional
// states (autoami_machines.py). Zero means as soon as the harness can; real
// EC2 takes seconds to minutes.
type InstanceTransitions struct {
	// Pending is how long RunInstances and StartInstances leave an instance
	// pending before it is running (and its bootstrap or services start).
	Pending time.Duration
	// Stopping is how long a stopping instance stays stopping at least
	// (stopping its daemon takes its own time on top).
	Stopping time.Duration
	// ShuttingDown is the same for shutting-down before terminated.
	ShuttingDown time.Duration
}

// SetInstanceTransitions sets how long instances stay pending, stopping and
// shutting-down, until the next Reset (which returns them to zero).
func (s *Server) SetInstanceTransitions(ctx context.Context, t InstanceTransitions) error {
	for name, d := range map[string]time.Duration{"Pending": t.Pending, "Stopping": t.Stopping, "ShuttingDown": t.ShuttingDown} {
		if d < 0 {
			return fmt.Errorf("instance transitions: %s is negative (%s)", name, d)
		}
	}
	body := map[string]float64{
		"instance":             t.Pending.Seconds(),
		"instanceStopping":     t.Stopping.Seconds(),
		"instanceShuttingDown": t.ShuttingDown.Seconds(),
	}
	return s.control(ctx, "pending", body, nil)
}

// Machine is what the harness runs for one instance.
type Machine struct {
	Account    string `json:"account"`
	Region     string `json:"region"`
	InstanceID string `json:"instanceId"`
	// State is the instance state (pending, running, stopping, ...).
	State string `json:"state"`
	// Address is the machine's own loopback address (its PrivateIpAddress);
	// empty for an instance whose user-data is not cloud-config.
	Address string `json:"address"`
	// Dir is the instance directory: root/, devices/, console.log.
	Dir string `json:"dir"`
	// Services are the units running now, with their main process.
	Services []MachineService `json:"services"`
}

// MachineService is one running unit of a Machine.
type MachineService struct {
	Unit string `json:"unit"`
	PID  int    `json:"pid"`
}

// Machines lists every instance of every account and region with what
// runs for it.
func (s *Server) Machines(ctx context.Context) ([]Machine, error) {
	var out struct {
		Machines []Machine `json:"machines"`
	}
	if err := s.control(ctx, "machines", nil, &out); err != nil {
		return nil, err
	}
	sort.Slice(out.Machines, func(i, j int) bool { return out.Machines[i].InstanceID < out.Machines[j].InstanceID })
	return out.Machines, nil
}

// HostLeftovers lists what the world's machines hold on this host: processes
// running a binary under the data directory (the daemons, also once their
// instance directory is deleted), mount points under it and loop devices
// backed by files under it. Empty after a Reset or Stop; tests assert that.
func (s *Server) HostLeftovers() ([]string, error) { return hostLeftovers(s.DataDir) }

func hostLeftovers(dataDir string) ([]string, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("leftovers of %s: %w", dataDir, err)
	}
	var found []string
	procs, err := processesUnder(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		found = append(found, fmt.Sprintf("process %d (%s)", p.pid, p.exe))
	}
	mounts, err := mountsUnder(dir)
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		found = append(found, "mount "+m)
	}
	for _, l := range loopsUnder(dir) {
		found = append(found, fmt.Sprintf("loop device %s (%s)", l.device, l.backing))
	}
	return found, nil
}

// releaseHost is the safety net of Stop: what a moto that was killed
// (SIGKILL skips its stop hooks) left behind under dataDir is killed,
// unmounted and detached, by PID and path. Errors are returned joined.
func releaseHost(dataDir string) error {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	var errs []error
	procs, err := processesUnder(dir)
	errs = append(errs, err)
	for _, p := range procs {
		// Daemons die with moto (parent-death signal); this catches a
		// process that outlived it anyway.
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d (%s): %w", p.pid, p.exe, err))
		}
	}
	mounts, err := mountsUnder(dir)
	errs = append(errs, err)
	for _, m := range mounts {
		if err := unix.Unmount(m, 0); err != nil {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	for _, l := range loopsUnder(dir) {
		if err := detachLoop(l.device); err != nil {
			errs = append(errs, fmt.Errorf("detach %s (%s): %w", l.device, l.backing, err))
		}
	}
	return errors.Join(errs...)
}

type process struct {
	pid int
	exe string
}

// processesUnder finds processes whose executable lies under dir.
func processesUnder(dir string) ([]process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue // gone, or a kernel thread
		}
		if under(strings.TrimSuffix(exe, " (deleted)"), dir) {
			out = append(out, process{pid: pid, exe: exe})
		}
	}
	return out, nil
}

// mountsUnder lists mount points under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		point := unescapeMountinfo(fields[4])
		if under(point, dir) {
			out = append(out, point)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

type loop struct {
	device, backing string
}

// loopsUnder lists loop devices whose backing file lies under dir (also
// when the file has been deleted since).
func loopsUnder(dir string) []loop {
	paths, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []loop
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		backing := strings.TrimSuffix(strings.TrimSpace(string(data)), " (deleted)")
		if under(backing, dir) {
			name := filepath.Base(filepath.Dir(filepath.Dir(p)))
			out = append(out, loop{device: "/dev/" + name, backing: backing})
		}
	}
	return out
}

func detachLoop(device string) error {
	f, err := os.Open(device)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
		return err
	}
	return nil
}

func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}
