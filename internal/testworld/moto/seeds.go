package moto

import (
	"context"
	"fmt"
	"path/filepath"
)

func importSnapshot(ctx context.Context, url, region, account, path, description string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("import snapshot from %s: %w", path, err)
	}
	var out struct {
		SnapshotID string `json:"snapshotId"`
	}
	body := map[string]any{"region": region, "account": account, "path": abs, "description": description}
	if err := control(ctx, url, "import-snapshot", body, &out); err != nil {
		return "", fmt.Errorf("import snapshot from %s into %s/%s: %w", path, account, region, err)
	}
	return out.SnapshotID, nil
}

// DataDirOf asks the local AWS at url (moto's or the fault proxy's endpoint)
// where it keeps its bytes (Server.DataDir).
func DataDirOf(ctx context.Context, url string) (string, error) {
	var out struct {
		DataDir string `json:"dataDir"`
	}
	if err := control(ctx, url, "data-dir", nil, &out); err != nil {
		return "", err
	}
	if out.DataDir == "" {
		return "", fmt.Errorf("the local AWS at %s names no data directory", url)
	}
	return out.DataDir, nil
}
