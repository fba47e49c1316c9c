package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/imagestream"
)

var (
	_ resource.ResourceWithConfigure        = (*imageStreamResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*imageStreamResource)(nil)
	_ resource.ResourceWithImportState      = (*imageStreamResource)(nil)
	_ resource.ResourceWithConfigValidators = (*imageStreamResource)(nil)
)

// defaultUploadTimeout bounds a create or update that uploads content.
const defaultUploadTimeout = 60 * time.Minute

// NewImageStreamResource is the constructor of autoami_image_stream.
func NewImageStreamResource() resource.Resource { return &imageStreamResource{} }

type imageStreamResource struct {
	data *providerData
}

func (r *imageStreamResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_image_stream"
}

func (r *imageStreamResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

// streamStore opens the stream's content store: its own, else the provider's.
func (r *imageStreamResource) streamStore(ctx context.Context, m *imageStreamModel) (*contentstore.Store, error) {
	loc := contentstore.Location{}
	switch {
	case m.ContentStore != nil:
		loc = contentstore.Location{Bucket: m.ContentStore.Bucket.ValueString(), Prefix: m.ContentStore.Prefix.ValueString()}
	case r.data.contentStore != nil:
		loc = contentstore.Location{Bucket: r.data.contentStore.Bucket, Prefix: r.data.contentStore.Prefix}
	default:
		return nil, fmt.Errorf("no content store: set content_store on the stream or on the provider")
	}
	clients, err := r.data.clients.Home(ctx)
	if err != nil {
		return nil, err
	}
	return contentstore.New(clients.S3, loc, contentstore.Options{}), nil
}

// cacheDir is where stat caches and manifests of sources are kept between
// plans, so an unchanged source is not read again.
func cacheDir() string {
	if dir := os.Getenv("AUTOAMI_CACHE_DIR"); dir != "" {
		return dir
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "autoami")
	}
	return filepath.Join(os.TempDir(), "autoami-cache")
}

func (r *imageStreamResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan imageStreamModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultUploadTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.upload(ctx, &plan, nil, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *imageStreamResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state imageStreamModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUploadTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.upload(ctx, &plan, &state, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	// The decision that led here is spent; the next refresh makes a new one.
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, rebuildDecisionKey, nil)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// upload loads the planned source, checks that it is what the plan showed,
// uploads what the store lacks and writes the revision; it fills the
// computed attributes of plan.
func (r *imageStreamResource) upload(ctx context.Context, plan, prior *imageStreamModel, diags *diag.Diagnostics) {
	name := plan.Name.ValueString()
	// The policy is checked here, not at plan: it is often created in the
	// same apply. A stream never starts with a policy_id that names nothing,
	// which the refresh would otherwise only notice at the first update.
	if id := plan.PolicyID.ValueString(); id != "" && (prior == nil || !prior.PolicyID.Equal(plan.PolicyID)) {
		if _, err := r.loadPolicy(ctx, id); err != nil {
			diags.AddAttributeError(path.Root("policy_id"), "Cannot read the stream's policy", err.Error())
			return
		}
	}
	if plan.BaseImage != nil && plan.BaseImageName.IsUnknown() {
		// Create, or a changed selector: the newest image now.
		latest, _, err := r.findLatestBaseImage(ctx, plan.BaseImage)
		if err != nil {
			diags.AddAttributeError(path.Root("base_image"), "Base image lookup failed", err.Error())
			return
		}
		plan.BaseImageName = types.StringValue(latest.Image.Name)
		var d diag.Diagnostics
		plan.LatestBaseImage, d = latestBaseImageValue(latest)
		if diags.Append(d...); diags.HasError() {
			return
		}
	}
	src, srcPath := sourceOf(plan, plan.BaseImageName.ValueString())
	content, err := imagestream.Load(ctx, src, imagestream.LoadOptions{CacheDir: cacheDir()})
	if err != nil {
		diags.AddAttributeError(srcPath, "Cannot read the stream's source", err.Error())
		return
	}
	defer content.Close()
	if planned := plan.Revision.ValueString(); !plan.Revision.IsUnknown() && planned != content.Revision {
		diags.AddAttributeError(srcPath, "The source changed since the plan",
			fmt.Sprintf("Stream %q was planned at revision %s, but %s is now revision %s. Run terraform plan again.",
				name, planned, content.Path, content.Revision))
		return
	}
	store, err := r.streamStore(ctx, plan)
	if err != nil {
		diags.AddError("Content store unavailable", err.Error())
		return
	}
	extra, err := streamExtra(ctx, r.data, plan)
	if err != nil {
		diags.AddError("Invalid tags", err.Error())
		return
	}
	tflog.Info(ctx, "uploading stream revision", map[string]any{
		"stream": name, "revision": content.Revision, "objects": content.Summary.Objects, "bytes": content.Summary.ObjectBytes,
		"store": store.Location().Bucket + "/" + store.Location().Prefix,
	})
	started := now()
	createdAt := started
	if prior != nil && prior.Revision.ValueString() == content.Revision {
		// The same revision uploaded again (tags, store): it was made then.
		t, err := time.Parse(time.RFC3339, prior.RevisionCreatedAt.ValueString())
		if err != nil {
			diags.AddAttributeWarning(path.Root("revision_created_at"), "Revision creation time unreadable",
				fmt.Sprintf("Stream %q: the state's revision_created_at %q is not an RFC 3339 time (%s); the revision is recorded as made now.",
					name, prior.RevisionCreatedAt.ValueString(), err))
		} else {
			createdAt = t
		}
	}
	up, err := imagestream.Upload(ctx, store, name, content, createdAt, extra)
	if err != nil {
		diags.AddError(fmt.Sprintf("Uploading stream %q failed", name), err.Error())
		return
	}
	tflog.Info(ctx, "uploaded stream revision", map[string]any{
		"stream": name, "revision": content.Revision, "objects_uploaded": up.ObjectsUploaded,
		"bytes_uploaded": up.BytesUploaded, "seconds": now().Sub(started).Seconds(),
	})
	plan.ID = types.StringValue(name)
	plan.Revision = types.StringValue(content.Revision)
	plan.RevisionCreatedAt = timeString(up.Record.CreatedAt)
	plan.ManifestURI = types.StringValue(up.ManifestURI)
	plan.SizeBytes = types.Int64Value(up.Record.SizeBytes)
	plan.FileCount = types.Int64Value(up.Record.FileCount)
	plan.BytesUploaded = types.Int64Value(up.BytesUploaded)
	plan.ObjectsUploaded = types.Int64Value(int64(up.ObjectsUploaded))
	if plan.BaseImage != nil {
		ids, err := r.baseImageIDs(ctx, plan.BaseImage, plan.BaseImageName.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("base_image"), "Cannot find the base image in every region", err.Error())
			return
		}
		plan.BaseImageIDs = ids
		if plan.LatestBaseImage.IsUnknown() {
			plan.LatestBaseImage = types.ObjectNull(latestBaseImageAttrTypes)
		}
	} else {
		plan.BaseImageName = types.StringNull()
		plan.BaseImageIDs = types.MapNull(types.StringType)
		plan.LatestBaseImage = types.ObjectNull(latestBaseImageAttrTypes)
	}
	// A new revision settles the decision (planned so); uploading the same
	// revision again leaves a pending one as planned.
	if plan.RebuildRequired.IsUnknown() {
		plan.RebuildRequired = types.BoolValue(false)
	}
	if plan.RebuildReason.IsUnknown() {
		plan.RebuildReason = types.StringNull()
	}
}

func (r *imageStreamResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state imageStreamModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	store, err := r.streamStore(ctx, &state)
	if err != nil {
		resp.Diagnostics.AddError("Content store unavailable", err.Error())
		return
	}
	name := state.Name.ValueString()
	imported := state.Revision.IsNull()
	rec, found, err := store.GetStream(ctx, name)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read stream %q", name), err.Error())
		return
	}
	if !found {
		tflog.Warn(ctx, "stream record is gone; planning to upload the stream again", map[string]any{"stream": name})
		resp.State.RemoveResource(ctx)
		return
	}
	state.ID = types.StringValue(name)
	state.Revision = types.StringValue(rec.Revision)
	state.RevisionCreatedAt = timeString(rec.CreatedAt)
	state.ManifestURI = types.StringValue(store.ManifestURI(name, rec.Revision))
	state.SizeBytes = types.Int64Value(rec.SizeBytes)
	state.FileCount = types.Int64Value(rec.FileCount)
	if state.BytesUploaded.IsNull() || state.BytesUploaded.IsUnknown() { // imported
		state.BytesUploaded, state.ObjectsUploaded = types.Int64Value(0), types.Int64Value(0)
	}
	if imported {
		var d diag.Diagnostics
		state.Tags, d = r.importedTags(ctx, rec)
		resp.Diagnostics.Append(d...)
	}
	if rec.BaseImageName != "" {
		state.BaseImageName = types.StringValue(rec.BaseImageName)
	} else {
		state.BaseImageName = types.StringNull()
	}
	if state.BaseImage == nil {
		state.BaseImageIDs = types.MapNull(types.StringType)
		state.LatestBaseImage = types.ObjectNull(latestBaseImageAttrTypes)
		state.RebuildRequired = types.BoolValue(false)
		state.RebuildReason = types.StringNull()
	} else {
		r.refreshBaseImage(ctx, &state, resp)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *imageStreamResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state imageStreamModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, 10*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	store, err := r.streamStore(ctx, &state)
	if err != nil {
		resp.Diagnostics.AddError("Content store unavailable", err.Error())
		return
	}
	if err := store.DeleteStream(ctx, state.Name.ValueString()); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot delete stream %q", state.Name.ValueString()), err.Error())
	}
}

// ImportState takes a stream name (in the provider's content store) or
// BUCKET[/PREFIX]:NAME for a stream in a store of its own.
func (r *imageStreamResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	name := req.ID
	if store, n, ok := strings.Cut(req.ID, ":"); ok {
		bucket, prefix, _ := strings.Cut(store, "/")
		if bucket == "" {
			resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("%q: give NAME, or BUCKET[/PREFIX]:NAME", req.ID))
			return
		}
		cs := &contentStoreModel{Bucket: types.StringValue(bucket), Prefix: types.StringNull()}
		if prefix != "" {
			cs.Prefix = types.StringValue(prefix + "/")
		}
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("content_store"), cs)...)
		name = n
	}
	if err := contentstore.ValidateStreamName(name); err != nil {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Import an image stream by its name (e.g. web/al2023) or BUCKET[/PREFIX]:NAME: %s", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
}

// importedTags are the stream's recorded tags less the provider's default
// tags (which every stream carries and which are not its own). A record
// without tags has none; one whose tags cannot be read gets a warning.
func (r *imageStreamResource) importedTags(ctx context.Context, rec contentstore.StreamRecord) (types.Map, diag.Diagnostics) {
	var diags diag.Diagnostics
	raw, ok := rec.Extra[extraTagsKey]
	if !ok {
		return types.MapNull(types.StringType), diags
	}
	var all map[string]string
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		diags.AddAttributeWarning(path.Root("tags"), "Stream tags unreadable",
			fmt.Sprintf("The record of stream %q holds tags that are not a JSON object of strings (%s); the import leaves tags unset.", rec.Name, err))
		return types.MapNull(types.StringType), diags
	}
	own := map[string]string{}
	for k, v := range all {
		if dv, isDefault := r.data.defaultTags[k]; !isDefault || dv != v {
			own[k] = v
		}
	}
	if len(own) == 0 {
		return types.MapNull(types.StringType), diags
	}
	m, d := types.MapValueFrom(ctx, types.StringType, own)
	diags.Append(d...)
	return m, diags
}

// extraTagsKey keeps the stream's tags (with default tags) in its record.
const extraTagsKey = "tags"

func streamExtra(ctx context.Context, data *providerData, m *imageStreamModel) (map[string]string, error) {
	own := map[string]string{}
	if diags := m.Tags.ElementsAs(ctx, &own, false); diags.HasError() {
		return nil, fmt.Errorf("tags: %v", diags)
	}
	b, err := json.Marshal(data.mergeTags(own))
	if err != nil {
		return nil, err
	}
	return map[string]string{extraTagsKey: string(b)}, nil
}

// sourceOf builds the content source of a stream from its configuration,
// and the attribute path errors about it should point at.
func sourceOf(m *imageStreamModel, baseImageName string) (imagestream.Source, path.Path) {
	switch {
	case m.RawImage != nil:
		return imagestream.Source{Kind: imagestream.KindRawImage, RawImage: m.RawImage.Path.ValueString()}, path.Root("raw_image").AtName("path")
	case m.BaseImage != nil:
		src := imagestream.Source{Kind: imagestream.KindLayered, BaseImageName: baseImageName, RebuildTrigger: m.RebuildTrigger.ValueString()}
		p := path.Root("base_image")
		if m.Overlay != nil {
			src.Directory, src.Tarball = m.Overlay.Directory.ValueString(), m.Overlay.Tarball.ValueString()
			p = treeSourcePath("overlay", m.Overlay)
		}
		return src, p
	default:
		src := imagestream.Source{Kind: imagestream.KindTree}
		if m.RootFilesystem != nil {
			src.Directory, src.Tarball = m.RootFilesystem.Directory.ValueString(), m.RootFilesystem.Tarball.ValueString()
		}
		return src, treeSourcePath("root_filesystem", m.RootFilesystem)
	}
}

func treeSourcePath(attr string, m *fileTreeSourceModel) path.Path {
	if m != nil && m.Tarball.ValueString() != "" {
		return path.Root(attr).AtName("tarball")
	}
	return path.Root(attr).AtName("directory")
}
