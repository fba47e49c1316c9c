package volume

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
)

// fsInfo is what blkid's low-level probe says about a block device.
type fsInfo struct {
	Type, Label, UUID string
}

// probeFS probes dev for a filesystem, bypassing blkid's cache. A device
// holding nothing blkid recognises yields a zero fsInfo and no error.
func probeFS(ctx context.Context, log *slog.Logger, dev string) (fsInfo, error) {
	out, err := run(ctx, log, command{device: dev, name: "blkid", args: []string{"-p", "-o", "export", dev}})
	if err != nil {
		// Exit status 2: nothing was found on the device.
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			return fsInfo{}, nil
		}
		return fsInfo{}, fmt.Errorf("probe filesystem: %w", err)
	}
	var info fsInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = unescapeExport(v)
		switch k {
		case "TYPE":
			info.Type = v
		case "LABEL":
			info.Label = v
		case "UUID":
			info.UUID = v
		}
	}
	return info, nil
}

// probePartitions fills in Filesystem, Label and UUID of each partition.
func probePartitions(ctx context.Context, log *slog.Logger, parts []Partition) error {
	for i := range parts {
		info, err := probeFS(ctx, log, parts[i].Device)
		if err != nil {
			return fmt.Errorf("partition %d: %w", parts[i].Number, err)
		}
		parts[i].Filesystem, parts[i].Label, parts[i].UUID = info.Type, info.Label, info.UUID
	}
	return nil
}

// unescapeExport undoes blkid's export-format escaping (a backslash before
// each special character, e.g. `my\ label`).
func unescapeExport(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
