package manifest

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

func TestStatCacheSkipsUnchangedFilesAndSeesChanges(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	cache := filepath.Join(dir, "cache")
	os.MkdirAll(root, 0o755)
	p := filepath.Join(root, "f")
	os.WriteFile(p, []byte("one"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	ctx := context.Background()
	m1, err := FromDirectory(ctx, root, DirOptions{StatCachePath: cache})
	if err != nil {
		t.Fatal(err)
	}
	// The ctime is recent (racy): the first scan must not have cached it.
	c := loadStatCache(cache, nil)
	if c == nil {
		t.Fatal("no cache written")
	}
	if _, ok := c.Files["f"]; ok {
		t.Fatal("a file changed within the racy window was cached")
	}
	// Record it as the patch engine would, then lie in the cache: a stat
	// match must be trusted (proving the cache is used)...
	if err := WriteStatCache(root, m1, cache); err != nil {
		t.Fatal(err)
	}
	c = loadStatCache(cache, nil)
	fake := c.Files["f"]
	fake.Digest = objects.Digest{1}
	c.Files["f"] = fake
	if err := c.save(cache); err != nil {
		t.Fatal(err)
	}
	m2, _ := FromDirectory(ctx, root, DirOptions{StatCachePath: cache})
	if m2.Entries[1].Digest != (objects.Digest{1}) {
		t.Fatal("stat cache not used for an unchanged file")
	}
	// ...and any change of the file's stat must be noticed.
	os.WriteFile(p, []byte("two"), 0o644)
	os.Chtimes(p, old, old)
	m3, _ := FromDirectory(ctx, root, DirOptions{StatCachePath: cache})
	if m3.Entries[1].Digest != sha256.Sum256([]byte("two")) {
		t.Fatal("changed file not re-hashed")
	}
}
