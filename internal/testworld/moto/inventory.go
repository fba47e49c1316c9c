package moto

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Inventory is everything tests and the provider made in the local AWS, per
// target (account and region): instances, volumes, snapshots, images and SSM
// parameters. What the world starts with is never in it: moto's built-in AMIs
// and their snapshots, SSM's public /aws/ parameters, seeded resources.
// Targets with nothing in them are left out, so an empty world has no Targets.
type Inventory struct {
	// Targets are sorted by account, then region.
	Targets []TargetInventory `json:"targets"`
}

// TargetInventory is what one account holds in one region; each list is
// sorted by ID (parameters by name).
type TargetInventory struct {
	Account    string               `json:"account"`
	Region     string               `json:"region"`
	Instances  []InventoryInstance  `json:"instances"`
	Volumes    []InventoryVolume    `json:"volumes"`
	Snapshots  []InventorySnapshot  `json:"snapshots"`
	Images     []InventoryImage     `json:"images"`
	Parameters []InventoryParameter `json:"parameters"`
}

// InventoryInstance is an EC2 instance, terminated ones included.
type InventoryInstance struct {
	ID    string            `json:"id"`
	State string            `json:"state"`
	Tags  map[string]string `json:"tags"`
}

// InventoryVolume is an EBS volume.
type InventoryVolume struct {
	ID          string                      `json:"id"`
	State       string                      `json:"state"`
	SizeGiB     int                         `json:"sizeGiB"`
	Attachments []InventoryVolumeAttachment `json:"attachments"`
	Tags        map[string]string           `json:"tags"`
}

// InventoryVolumeAttachment says where a volume is attached.
type InventoryVolumeAttachment struct {
	InstanceID string `json:"instanceId"`
	Device     string `json:"device"`
	State      string `json:"state"`
}

// InventorySnapshot is an EBS snapshot (EBS direct ones included).
type InventorySnapshot struct {
	ID       string            `json:"id"`
	State    string            `json:"state"`
	VolumeID string            `json:"volumeId"`
	Tags     map[string]string `json:"tags"`
}

// InventoryImage is an AMI the target's account owns (disabled ones included).
type InventoryImage struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	State       string            `json:"state"`
	SnapshotIDs []string          `json:"snapshotIds"`
	Tags        map[string]string `json:"tags"`
}

// InventoryParameter is an SSM parameter (its latest version).
type InventoryParameter struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	DataType string            `json:"dataType"`
	Tags     map[string]string `json:"tags"`
}

// ResourceKind names what a Resource is.
type ResourceKind string

// The kinds of resources an Inventory lists.
const (
	KindInstance  ResourceKind = "instance"
	KindVolume    ResourceKind = "volume"
	KindSnapshot  ResourceKind = "snapshot"
	KindImage     ResourceKind = "image"
	KindParameter ResourceKind = "parameter"
)

// Resource is one entry of an Inventory whatever its kind, for filters and
// failure messages.
type Resource struct {
	Kind    ResourceKind
	Account string
	Region  string
	// ID is the resource's ID, or a parameter's name.
	ID string
	// State is the resource's state ("" for parameters).
	State string
	Tags  map[string]string
}

// String is e.g. `volume vol-1234 (available) in 111111111111/eu-west-1 {autoami:stream=web}`.
func (r Resource) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Kind, r.ID)
	if r.State != "" {
		fmt.Fprintf(&b, " (%s)", r.State)
	}
	fmt.Fprintf(&b, " in %s/%s", r.Account, r.Region)
	if len(r.Tags) > 0 {
		tags := make([]string, 0, len(r.Tags))
		for _, k := range slices.Sorted(maps.Keys(r.Tags)) {
			tags = append(tags, k+"="+r.Tags[k])
		}
		fmt.Fprintf(&b, " {%s}", strings.Join(tags, ", "))
	}
	return b.String()
}

// Resources lists every resource of the inventory, terminated instances
// included, target by target.
func (inv Inventory) Resources() []Resource {
	var out []Resource
	for _, t := range inv.Targets {
		add := func(kind ResourceKind, id, state string, tags map[string]string) {
			out = append(out, Resource{Kind: kind, Account: t.Account, Region: t.Region, ID: id, State: state, Tags: tags})
		}
		for _, r := range t.Instances {
			add(KindInstance, r.ID, r.State, r.Tags)
		}
		for _, r := range t.Volumes {
			add(KindVolume, r.ID, r.State, r.Tags)
		}
		for _, r := range t.Snapshots {
			add(KindSnapshot, r.ID, r.State, r.Tags)
		}
		for _, r := range t.Images {
			add(KindImage, r.ID, r.State, r.Tags)
		}
		for _, r := range t.Parameters {
			add(KindParameter, r.Name, "", r.Tags)
		}
	}
	return out
}

// Leftovers lists the resources that still exist (every one but terminated
// instances) and that match says are of interest; a nil match takes them all.
// After a destroy, a test asserts that Leftovers(its filter) is empty.
func (inv Inventory) Leftovers(match func(Resource) bool) []Resource {
	var out []Resource
	for _, r := range inv.Resources() {
		if r.Kind == KindInstance && r.State == "terminated" {
			continue
		}
		if match == nil || match(r) {
			out = append(out, r)
		}
	}
	return out
}

// Empty reports whether nothing is left: no resource but terminated instances.
func (inv Inventory) Empty() bool { return len(inv.Leftovers(nil)) == 0 }

// TaggedWith matches resources that carry tag key, with value when value is
// not empty; use it with Leftovers.
func TaggedWith(key, value string) func(Resource) bool {
	return func(r Resource) bool {
		v, ok := r.Tags[key]
		return ok && (value == "" || v == value)
	}
}

// Inventory lists what tests and the provider made in this server (see
// Inventory); it is also served as GET /autoami-harness/inventory.
func (s *Server) Inventory(ctx context.Context) (Inventory, error) {
	var inv Inventory
	if err := s.control(ctx, "inventory", nil, &inv); err != nil {
		return Inventory{}, err
	}
	return inv, nil
}

// InventoryAt is Inventory of a local AWS that another process runs, at
// endpoint: the server's URL, or that of a fault proxy in front of it (which
// passes the harness's unsigned control calls through).
func InventoryAt(ctx context.Context, endpoint string) (Inventory, error) {
	if endpoint == "" {
		return Inventory{}, fmt.Errorf("inventory: no endpoint of a local AWS given")
	}
	return (&Server{URL: strings.TrimRight(endpoint, "/")}).Inventory(ctx)
}
