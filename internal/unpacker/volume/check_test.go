package volume

import (
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// tree builds a sorted tree manifest from entries (the root is added).
func tree(entries ...manifest.Entry) *manifest.Manifest {
	m := &manifest.Manifest{Kind: manifest.KindTree, Entries: append([]manifest.Entry{{Path: ".", Type: manifest.TypeDirectory, Mode: 0o755}}, entries...)}
	m.Sort()
	return m
}

func dir(p string) manifest.Entry {
	return manifest.Entry{Path: p, Type: manifest.TypeDirectory, Mode: 0o755}
}
func file(p string, size int64) manifest.Entry {
	return manifest.Entry{Path: p, Type: manifest.TypeRegular, Mode: 0o644, Size: size, Digest: objects.Sum([]byte(p))}
}
func symlink(p, target string) manifest.Entry {
	return manifest.Entry{Path: p, Type: manifest.TypeSymlink, Mode: 0o777, Link: target}
}

func TestCheckBootable(t *testing.T) {
	kernel := file("boot/vmlinuz-6.1.0-28-amd64", 100)
	for _, tc := range []struct {
		name string
		m    *manifest.Manifest
		want string // "" for bootable, else part of the error
	}{
		{"kernel", tree(dir("boot"), kernel, file("boot/initrd.img-6.1.0-28-amd64", 10)), ""},
		{"kernel and a cmdline", tree(dir("boot"), kernel, dir("etc"), dir("etc/kernel"), file("etc/kernel/cmdline", 100)), ""},
		{"boot is a relative symlink", tree(symlink("boot", "usr/boot"), dir("usr"), dir("usr/boot"), file("usr/boot/vmlinuz-6.1", 5)), ""},
		{"kernel is a hard link", tree(dir("boot"), file("boot/a", 5), manifest.Entry{Path: "boot/vmlinuz-6.1", Type: manifest.TypeHardLink, Link: "boot/a"}), ""},
		{"no boot directory", tree(dir("etc")), "no boot directory"},
		{"empty boot", tree(dir("boot")), "no regular file named vmlinuz-VERSION"},
		{"only a backup kernel", tree(dir("boot"), file("boot/vmlinuz-6.1.old", 5)), "vmlinuz-VERSION"},
		{"kernel is a symlink", tree(dir("boot"), file("boot/k", 5), symlink("boot/vmlinuz-6.1", "k")), "vmlinuz-VERSION"},
		{"kernel in a subdirectory", tree(dir("boot"), dir("boot/efi"), file("boot/efi/vmlinuz-6.1", 5)), "vmlinuz-VERSION"},
		{"boot is an absolute symlink", tree(symlink("boot", "/usr/boot"), dir("usr"), dir("usr/boot"), file("usr/boot/vmlinuz-6.1", 5)), "absolute path"},
		{"boot leads above the root", tree(symlink("boot", "../../boot")), "outside the root"},
		{"boot is a file", tree(file("boot", 5)), "no boot directory"},
		{"cmdline too big", tree(dir("boot"), kernel, dir("etc"), dir("etc/kernel"), file("etc/kernel/cmdline", 4096)), "at most 2048 bytes"},
		{"cmdline is a symlink", tree(dir("boot"), kernel, dir("etc"), dir("etc/kernel"), file("etc/kernel/real", 10), symlink("etc/kernel/cmdline", "real")), "etc/kernel/cmdline"},
		{"raw image", &manifest.Manifest{Kind: manifest.KindRawImage, Image: &manifest.RawImage{}}, "not a file tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.m.Kind == manifest.KindTree {
				if err := tc.m.Validate(); err != nil {
					t.Fatalf("test manifest: %v", err)
				}
			}
			err := CheckBootable(tc.m)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("bootable revision refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckBootable: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
