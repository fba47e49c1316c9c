package cloudinit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func writeSeed(ctx context.Context, path string, userData []byte, meta MetaData) error {
	if meta.InstanceID == "" {
		return fmt.Errorf("NoCloud seed %s: meta-data needs an instance ID", path)
	}
	if _, err := exec.LookPath("genisoimage"); err != nil {
		return fmt.Errorf("NoCloud seed %s: genisoimage not found: %s", path, InstallHint)
	}
	// JSON is YAML: cloud-init reads meta-data with a YAML loader.
	metaData, err := json.Marshal(map[string]string{"instance-id": meta.InstanceID, "local-hostname": meta.LocalHostname})
	if err != nil {
		return fmt.Errorf("NoCloud seed %s: meta-data: %w", path, err)
	}
	dir, err := os.MkdirTemp("", "autoami-cidata-")
	if err != nil {
		return fmt.Errorf("NoCloud seed %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	for name, b := range map[string][]byte{"user-data": userData, "meta-data": metaData} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("NoCloud seed %s: %w", path, err)
		}
	}
	// Rock Ridge and Joliet keep the names as they are ("user-data", not
	// "USER_DAT.;1"), as cloud-init's documentation makes its seeds.
	cmd := exec.CommandContext(ctx, "genisoimage", "-quiet", "-output", path, "-volid", NoCloudLabel,
		"-joliet", "-rock", filepath.Join(dir, "user-data"), filepath.Join(dir, "meta-data"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("NoCloud seed %s: genisoimage: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return nil
}
