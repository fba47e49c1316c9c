package volume

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

// kernelPrefixes name kernel images in /boot; initrdPatterns name the
// initramfs of version V, in the conventions of Debian/Ubuntu, Fedora/RHEL/
// Amazon Linux and SUSE.
var (
	kernelPrefixes = []string{"vmlinuz-"}
	initrdPatterns = []string{"initrd.img-%s", "initramfs-%s.img", "initrd-%s"}
)

// findKernels lists the kernels in rootDir/boot, the default one first: the
// one the root's /vmlinuz (or /boot/vmlinuz) symlink names when there is one
// (the distribution's notion of "current"), else the highest version.
func findKernels(rootDir string) ([]BootEntry, error) {
	bootDir := filepath.Join(rootDir, "boot")
	if err := beneath(rootDir, bootDir); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(bootDir)
	if err != nil {
		return nil, fmt.Errorf("no kernel in %s: %w", rootDir, err)
	}
	var out []BootEntry
	for _, e := range ents {
		for _, prefix := range kernelPrefixes {
			version, ok := strings.CutPrefix(e.Name(), prefix)
			// Skip "vmlinuz-x.y.z.old" style backups and non-regular files.
			if !ok || version == "" || strings.HasSuffix(version, ".old") || !e.Type().IsRegular() {
				continue
			}
			be := BootEntry{Version: version, Kernel: "/boot/" + e.Name()}
			for _, pat := range initrdPatterns {
				name := fmt.Sprintf(pat, version)
				if st, err := os.Lstat(filepath.Join(bootDir, name)); err == nil && st.Mode().IsRegular() {
					be.Initrd = "/boot/" + name
					break
				}
			}
			out = append(out, be)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no kernel (boot/vmlinuz-VERSION) in %s", rootDir)
	}
	sort.SliceStable(out, func(i, j int) bool { return versionLess(out[j].Version, out[i].Version) })
	if cur := currentKernel(rootDir); cur != "" {
		for i := range out {
			if out[i].Kernel == cur {
				out[0], out[i] = out[i], out[0]
				// Keep the rest newest first.
				sort.SliceStable(out[1:], func(a, b int) bool { return versionLess(out[1+b].Version, out[1+a].Version) })
				break
			}
		}
	}
	return out, nil
}

// currentKernel resolves the root's /vmlinuz or /boot/vmlinuz symlink inside
// the root ("/boot/vmlinuz-6.1.0-28-amd64"), or returns "".
func currentKernel(rootDir string) string {
	for _, link := range []string{"vmlinuz", "boot/vmlinuz"} {
		target, err := os.Readlink(filepath.Join(rootDir, link))
		if err != nil {
			continue
		}
		if !path.IsAbs(target) {
			target = path.Join("/", path.Dir(link), target)
		}
		return path.Clean(target)
	}
	return ""
}

// versionLess orders kernel versions: digit runs compare as numbers, other
// runs as strings ("6.1.0-9-amd64" < "6.1.0-28-amd64").
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ra, restA := versionRun(a)
		rb, restB := versionRun(b)
		if ra != rb {
			da, db := isDigits(ra), isDigits(rb)
			switch {
			case da && db:
				ta, tb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
				if len(ta) != len(tb) {
					return len(ta) < len(tb)
				}
				return ta < tb
			case da != db:
				return db // text sorts before a number
			default:
				return ra < rb
			}
		}
		a, b = restA, restB
	}
	return len(a) < len(b)
}

func versionRun(s string) (string, string) {
	digit := unicode.IsDigit(rune(s[0]))
	i := 1
	for i < len(s) && unicode.IsDigit(rune(s[i])) == digit {
		i++
	}
	return s[:i], s[i:]
}

func isDigits(s string) bool { return s != "" && unicode.IsDigit(rune(s[0])) }

// maxCmdlineFile bounds /etc/kernel/cmdline: the x86 kernel takes 2 KiB.
const maxCmdlineFile = 2048

// defaultKernelArgs are used when the root has no /etc/kernel/cmdline.
var defaultKernelArgs = []string{"ro", "console=tty0", "console=ttyS0,115200n8"}

// consoleArgs are added when the arguments name no console: tty0 for a
// screen, ttyS0 last so that it is /dev/console (EC2's serial console and
// get-console-output read it).
var consoleArgs = []string{"console=tty0", "console=ttyS0,115200n8"}

// kernelArgs returns the kernel arguments (without root=) for rootDir:
// etc/kernel/cmdline (systemd's kernel-install convention) when present,
// else defaults. root= in the file is dropped: the layout decides the root.
func kernelArgs(rootDir string, defaults []string) ([]string, []string, error) {
	file := filepath.Join(rootDir, "etc/kernel/cmdline")
	if err := beneath(rootDir, file); err != nil {
		return nil, nil, err
	}
	st, err := os.Lstat(file)
	if os.IsNotExist(err) {
		if defaults == nil {
			defaults = defaultKernelArgs
		}
		return append([]string(nil), defaults...), nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read kernel command line: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxCmdlineFile {
		return nil, nil, fmt.Errorf("kernel command line etc/kernel/cmdline in %s: want a regular file of at most %d bytes", rootDir, maxCmdlineFile)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("read kernel command line: %w", err)
	}
	var args, dropped []string
	hasConsole := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, a := range strings.Fields(line) {
			if strings.HasPrefix(a, "root=") || strings.HasPrefix(a, "BOOT_IMAGE=") {
				dropped = append(dropped, a)
				continue
			}
			hasConsole = hasConsole || strings.HasPrefix(a, "console=")
			args = append(args, a)
		}
	}
	if !hasConsole {
		args = append(args, consoleArgs...)
	}
	return args, dropped, nil
}

// osName returns PRETTY_NAME from the root's os-release, for menu titles.
func osName(rootDir string) string {
	for _, f := range []string{"etc/os-release", "usr/lib/os-release"} {
		p := filepath.Join(rootDir, f)
		if beneath(rootDir, p) != nil {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) > 64<<10 {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				v = strings.Trim(v, `"'`)
				if v != "" {
					return v
				}
			}
		}
	}
	return "Linux"
}

// beneath checks that p, with its symlinks resolved, stays inside rootDir:
// the root is image content, and an absolute symlink in it must not lead
// this code to the host's files.
func beneath(rootDir, p string) error {
	root, err := filepath.EvalSymlinks(rootDir)
	if err != nil {
		return fmt.Errorf("resolve root %s: %w", rootDir, err)
	}
	// Resolve the longest existing prefix of p.
	dir, rest := p, ""
	for {
		r, err := filepath.EvalSymlinks(dir)
		if err == nil {
			full := filepath.Join(r, rest)
			if full != root && !strings.HasPrefix(full, root+string(filepath.Separator)) {
				return fmt.Errorf("%s leads outside the root %s (to %s)", p, rootDir, full)
			}
			return nil
		}
		if !os.IsNotExist(err) {
			return fmt.Errorf("resolve %s: %w", dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return fmt.Errorf("resolve %s: nothing of it exists", p)
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}
