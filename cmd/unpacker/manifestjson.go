package main

import (
	"fmt"
	"strings"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// manifestReport is what `unpacker manifest -json` prints: one JSON object
// with snake_case keys (the daemon API's convention) and words, never
// numbers, for kinds and types. Keys are never renamed or removed; new ones
// may be added. manifestJSONHelp describes it for users; keep the two in step.
type manifestReport struct {
	// Revision is "sha256:" and the revision digest in hex.
	Revision string `json:"revision"`
	// Source says what SOURCE is: "directory", "tarball" or "raw_image".
	Source string `json:"source"`
	// Kind is what the manifest describes: "tree" or "raw_image" (the
	// content store's words for the same kinds of stream).
	Kind string `json:"kind"`
	// ManifestBytes is the size of the serialized manifest.
	ManifestBytes int `json:"manifest_bytes"`
	// Tree is set for kind "tree", RawImage for kind "raw_image".
	Tree     *treeReport     `json:"tree,omitempty"`
	RawImage *rawImageReport `json:"raw_image,omitempty"`
}

// treeReport counts a file tree's manifest.
type treeReport struct {
	// Entries counts every entry, the root directory included.
	Entries       int         `json:"entries"`
	EntriesByType entryCounts `json:"entries_by_type"`
	Xattrs        int         `json:"xattrs"`
	ContentBytes  int64       `json:"content_bytes"`
	Objects       int         `json:"objects"`
	ObjectBytes   int64       `json:"object_bytes"`
}

// entryCounts counts a tree's entries per type; every type is always present.
type entryCounts struct {
	Directory   int `json:"directory"`
	File        int `json:"file"`
	Symlink     int `json:"symlink"`
	Hardlink    int `json:"hardlink"`
	CharDevice  int `json:"char_device"`
	BlockDevice int `json:"block_device"`
	FIFO        int `json:"fifo"`
}

// rawImageReport counts a raw image's manifest.
type rawImageReport struct {
	ImageBytes  int64 `json:"image_bytes"`
	BlockSize   int   `json:"block_size"`
	Blocks      int   `json:"blocks"`
	Objects     int   `json:"objects"`
	ObjectBytes int64 `json:"object_bytes"`
}

// manifestJSONHelp documents manifestReport in the command's help.
const manifestJSONHelp = `
With -json, one JSON object (keys are never renamed or removed; new ones may be added):
  revision         "sha256:" and the revision digest (64 hex digits)
  source           what SOURCE is: "directory", "tarball" or "raw_image"
  kind             what the manifest describes: "tree" or "raw_image"
  manifest_bytes   size of the serialized manifest
  tree             only for kind "tree":
    entries          entries, the root directory included
    entries_by_type  entries per type, every type present: "directory", "file",
                     "symlink", "hardlink" (each name of a group of hard links
                     but the one holding the data), "char_device",
                     "block_device", "fifo"
    xattrs           extended attributes (POSIX ACLs included)
    content_bytes    sum of the regular files' sizes
    objects          distinct file contents
    object_bytes     their total size
  raw_image        only for kind "raw_image":
    image_bytes      the image's size
    block_size       bytes per block (524288)
    blocks           blocks, the last one possibly shorter
    objects          distinct blocks
    object_bytes     their total size
`

// newManifestReport describes m, of revision d, read from a source of the
// given kind (loadedSource.kind); serialized is the length of m.Marshal().
func newManifestReport(m *manifest.Manifest, sourceKind string, d objects.Digest, serialized int) (manifestReport, error) {
	s := m.Summarize()
	r := manifestReport{
		Revision:      "sha256:" + d.String(),
		Source:        strings.ReplaceAll(sourceKind, " ", "_"),
		ManifestBytes: serialized,
	}
	switch m.Kind {
	case manifest.KindTree:
		r.Kind = "tree"
		r.Tree = &treeReport{Entries: s.Entries, Xattrs: s.Xattrs, ContentBytes: s.Bytes,
			Objects: s.Objects, ObjectBytes: s.ObjectBytes}
		for _, e := range m.Entries {
			if err := r.Tree.EntriesByType.add(e); err != nil {
				return manifestReport{}, err
			}
		}
	case manifest.KindRawImage:
		r.Kind = "raw_image"
		r.RawImage = &rawImageReport{ImageBytes: s.Bytes, BlockSize: manifest.BlockSize, Blocks: s.Entries,
			Objects: s.Objects, ObjectBytes: s.ObjectBytes}
	default:
		return manifestReport{}, fmt.Errorf("manifest of unknown kind %d", m.Kind)
	}
	return r, nil
}

// add counts entry e.
func (c *entryCounts) add(e manifest.Entry) error {
	switch e.Type {
	case manifest.TypeDirectory:
		c.Directory++
	case manifest.TypeRegular:
		c.File++
	case manifest.TypeSymlink:
		c.Symlink++
	case manifest.TypeHardLink:
		c.Hardlink++
	case manifest.TypeCharDevice:
		c.CharDevice++
	case manifest.TypeBlockDevice:
		c.BlockDevice++
	case manifest.TypeFIFO:
		c.FIFO++
	default:
		return fmt.Errorf("manifest entry %q: unknown type %d", e.Path, e.Type)
	}
	return nil
}
