package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/publisher"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

var (
	_ resource.ResourceWithConfigure   = (*publishedAMIResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*publishedAMIResource)(nil)
	_ resource.ResourceWithImportState = (*publishedAMIResource)(nil)
)

// Tests make the publisher's waits fast; zero fields take the defaults.
var (
	publishedAMIPolling  publisher.Polling
	publishedAMITimeouts publisher.Timeouts
)

// NewPublishedAMIResource is the constructor of autoami_published_ami.
func NewPublishedAMIResource() resource.Resource { return &publishedAMIResource{} }

// publishedAMIResource maps autoami_published_ami to internal/publisher,
// which does the work.
type publishedAMIResource struct {
	data *providerData
}

func (r *publishedAMIResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_published_ami"
}

func (r *publishedAMIResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

// store opens the content store holding the stream: the resource's
// content_store, else the provider's.
func (r *publishedAMIResource) store(ctx context.Context, m *publishedAMIModel) (*contentstore.Store, *s3.PresignClient, error) {
	if r.data == nil {
		return nil, nil, errors.New("the provider is not configured")
	}
	var loc contentstore.Location
	switch {
	case m.ContentStore != nil:
		loc = contentstore.Location{Bucket: m.ContentStore.Bucket.ValueString(), Prefix: m.ContentStore.Prefix.ValueString()}
	case r.data.contentStore != nil:
		loc = contentstore.Location{Bucket: r.data.contentStore.Bucket, Prefix: r.data.contentStore.Prefix}
	default:
		return nil, nil, errors.New("no content store: set content_store here (as on the stream) or on the provider")
	}
	home, err := r.data.clients.Home(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("AWS clients of the home region (content store): %w", err)
	}
	return contentstore.New(home.S3, loc, contentstore.Options{}), s3.NewPresignClient(home.S3), nil
}

// publisher returns a Publisher over the model's content store whose
// progress goes to tflog under ctx.
func (r *publishedAMIResource) publisher(ctx context.Context, m *publishedAMIModel) (*publisher.Publisher, *contentstore.Store, error) {
	store, presigner, err := r.store(ctx, m)
	if err != nil {
		return nil, nil, err
	}
	p, err := publisher.New(publisher.Config{
		Clients: r.data.clients, Store: store, Presigner: presigner,
		Connect:     r.connect,
		Progress:    func(ev publisher.Event) { logProgress(ctx, ev) },
		Concurrency: int(m.Concurrency.ValueInt64()),
		Timeouts:    publishedAMITimeouts,
		Polling:     publishedAMIPolling,
	})
	return p, store, err
}

// connect readies a target's unpacker (starting it when it sleeps) and
// returns a client of its daemon pinned to the target's fingerprint.
func (r *publishedAMIResource) connect(ctx context.Context, t publisher.Target) (*client.Client, error) {
	return unpackerinstance.EnsureReady(ctx, r.data.clients, unpackerinstance.Target{
		Region: t.Region, AccountID: t.AccountID, RoleARN: t.RoleARN, InstanceID: t.InstanceID, Endpoint: t.Endpoint,
		ServerCertificateFingerprint: t.ServerCertificateFingerprint,
		ClientCertificatePEM:         t.ClientCertificatePEM, ClientPrivateKeyPEM: t.ClientKeyPEM,
	}, unpackerinstance.ReadyOptions{Logger: newTflogLogger(), Polling: unpackerPolling})
}

// applyInputs gathers what an apply publishes: the targets, the revision's
// date and the deprecation time (the plan's, else now + the policy's
// max_age).
func (r *publishedAMIResource) applyInputs(ctx context.Context, plan *publishedAMIModel, store *contentstore.Store) ([]publisher.Target, time.Time, time.Time, diag.Diagnostics) {
	var diags diag.Diagnostics
	targets, known, d := targetsOf(ctx, plan.Targets)
	if diags.Append(d...); diags.HasError() {
		return nil, time.Time{}, time.Time{}, diags
	}
	if !known {
		diags.AddAttributeError(path.Root("targets"), "Unknown targets", "targets are not known at apply; this is a bug in the provider")
		return nil, time.Time{}, time.Time{}, diags
	}
	date, err := store.RevisionTime(ctx, plan.ImageStream.ValueString(), plan.Revision.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("revision"), "Revision not in the content store",
			fmt.Sprintf("%v. Publish a revision the image stream has uploaded (its `revision`).", err))
		return nil, time.Time{}, time.Time{}, diags
	}
	var deprecateAt time.Time
	switch dt := plan.DeprecationTime; {
	case dt.IsNull():
	case !dt.IsUnknown():
		if deprecateAt, err = time.Parse(time.RFC3339, dt.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("deprecation_time"), "Invalid deprecation_time", err.Error())
		}
	default:
		at, err := r.deprecationFor(ctx, plan.PolicyID.ValueString(), time.Now())
		if err != nil {
			diags.AddAttributeError(path.Root("policy_id"), "Cannot read the policy", err.Error())
		}
		deprecateAt = at
	}
	return targets, date, deprecateAt, diags
}

// deprecationFor is when AMIs published at now are deprecated under the
// policy: now + max_age, rounded up to the minute (as EC2 stores it).
func (r *publishedAMIResource) deprecationFor(ctx context.Context, policyID string, now time.Time) (time.Time, error) {
	store, err := policyStoreOf(ctx, r.data)
	if err != nil {
		return time.Time{}, err
	}
	p, err := store.Load(ctx, policyID)
	if err != nil {
		return time.Time{}, err
	}
	at := now.Add(p.WithDefaults().MaxAge).UTC()
	if t := at.Truncate(time.Minute); !t.Equal(at) {
		at = t.Add(time.Minute)
	}
	return at, nil
}

func (r *publishedAMIResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan publishedAMIModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultPublishedAMICreateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	records, deprecateAt, ok := r.publish(ctx, &plan, nil, &resp.Diagnostics)
	if !ok {
		// No state: a resource that failed to create is tainted, and its
		// replacement would delete the AMIs the other targets hold. What
		// was made carries the publication's tags (its ID is the stream),
		// so the next apply adopts it and finishes only what is missing.
		return
	}
	r.finish(ctx, &plan, records, deprecateAt, resp.Private, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *publishedAMIResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state publishedAMIModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultPublishedAMIUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	records, deprecateAt, ok := r.publish(ctx, &plan, &state, &resp.Diagnostics)
	if records == nil {
		return
	}
	// Also after a failure in some targets: the state keeps what is done,
	// and the next plan republishes only the targets missing from amis.
	r.finish(ctx, &plan, records, deprecateAt, resp.Private, &resp.Diagnostics)
	if !ok && len(records) == 0 {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// privateSetter is resp.Private of Create, Update and Read.
type privateSetter interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

// finish writes the computed attributes and the private state of an apply.
func (r *publishedAMIResource) finish(ctx context.Context, plan *publishedAMIModel, records map[string]publisher.Record, deprecateAt time.Time, priv privateSetter, diags *diag.Diagnostics) {
	plan.ID = plan.ImageStream
	plan.AMIs = amisValue(records)
	plan.DeprecationTime = deprecationValue(deprecateAt)
	diags.Append(priv.SetKey(ctx, publishedAMIPrivateKey, publishedAMIPrivate{Records: records, DeprecateAt: deprecateAt}.bytes())...)
}

// publish brings every planned target to the planned revision; with a
// prior state it first removes what the dropped targets hold and the SSM
// parameter a rename left behind. It returns the published targets'
// records (nil when nothing was tried) and whether every target succeeded.
func (r *publishedAMIResource) publish(ctx context.Context, plan, state *publishedAMIModel, diags *diag.Diagnostics) (map[string]publisher.Record, time.Time, bool) {
	p, store, err := r.publisher(ctx, plan)
	if err != nil {
		diags.AddError("Cannot publish", err.Error())
		return nil, time.Time{}, false
	}
	targets, date, deprecateAt, d := r.applyInputs(ctx, plan, store)
	if diags.Append(d...); diags.HasError() {
		return nil, time.Time{}, false
	}
	var removedTags []string
	if state != nil {
		removedTags = removedKeys(mapOf(ctx, state.TagsAll, diags), mapOf(ctx, plan.TagsAll, diags))
	}
	pub, d := plan.publication(ctx, date, deprecateAt, mapOf(ctx, plan.TagsAll, diags), removedTags)
	if diags.Append(d...); diags.HasError() {
		return nil, time.Time{}, false
	}
	if err := pub.Validate(); err != nil {
		addJoined(diags, "Invalid publication", err)
		return nil, time.Time{}, false
	}
	if state != nil && !r.removeDropped(ctx, p, pub, plan, state, targets, diags) {
		return nil, time.Time{}, false
	}
	tflog.Info(ctx, "publishing", map[string]any{"stream": pub.Stream, "revision": pub.Revision, "targets": len(targets)})
	started := time.Now()
	out := p.Publish(ctx, pub, targets)
	if out.Err != nil {
		diags.AddError("Cannot publish", out.Err.Error())
		return nil, time.Time{}, false
	}
	records := map[string]publisher.Record{}
	failed := 0
	for _, res := range out.Results {
		if res.Err != nil {
			failed++
			diags.AddError("Cannot publish to "+res.Target.String(), res.Err.Error())
			continue
		}
		records[res.Target.Key()] = res.Record
	}
	if failed > 0 {
		diags.AddError(fmt.Sprintf("Published in %d of %d targets", len(targets)-failed, len(targets)),
			fmt.Sprintf("The AMIs made in the other targets are kept (tagged autoami:publication = %q); the next apply "+
				"adopts them and publishes only the failed targets.", pub.ID))
	}
	tflog.Info(ctx, "published", map[string]any{"stream": pub.Stream, "revision": pub.Revision,
		"targets": len(targets), "failed": failed, "seconds": time.Since(started).Seconds()})
	return records, deprecateAt, failed == 0
}

// removeDropped deletes what the publication holds in targets the plan no
// longer has, and the SSM parameter of a previous name in the others.
func (r *publishedAMIResource) removeDropped(ctx context.Context, p *publisher.Publisher, pub publisher.Publication, plan, state *publishedAMIModel, targets []publisher.Target, diags *diag.Diagnostics) bool {
	before, _, d := targetsOf(ctx, state.Targets)
	diags.Append(d...)
	keep := map[string]bool{}
	for _, t := range targets {
		keep[t.Key()] = true
	}
	var dropped []publisher.Target
	for _, t := range before {
		if !keep[t.Key()] {
			dropped = append(dropped, t)
		}
	}
	if len(dropped) > 0 {
		// What the dropped targets hold was made as the state says (its
		// SSM parameter name, not a new one).
		was, d := state.publication(ctx, time.Time{}, time.Time{}, nil, nil)
		if diags.Append(d...); diags.HasError() {
			return false
		}
		tflog.Info(ctx, "removing the publication from dropped targets", map[string]any{"targets": len(dropped)})
		if err := p.Delete(ctx, was, dropped); err != nil {
			diags.AddError("Cannot remove the publication from dropped targets", err.Error())
			return false
		}
	}
	if old := state.SSMParameter; old != nil && (plan.SSMParameter == nil || plan.SSMParameter.Name.ValueString() != old.Name.ValueString()) {
		if err := p.DeleteParameter(ctx, pub, old.Name.ValueString(), targets); err != nil {
			diags.AddAttributeError(path.Root("ssm_parameter"), "Cannot remove the previous SSM parameter", err.Error())
			return false
		}
	}
	return true
}

func (r *publishedAMIResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state publishedAMIModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &state)...); resp.Diagnostics.HasError() {
		return
	}
	if state.Targets.IsNull() {
		// Imported and not applied yet: the targets come with the
		// configuration, and the plan finds the AMIs by their tags.
		return
	}
	timeout, diags := state.Timeouts.Read(ctx, defaultPublishedAMIReadTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	priv, d := readPublishedAMIPrivate(ctx, req.Private)
	resp.Diagnostics.Append(d...)
	records := priv.Records
	if len(records) == 0 {
		records = recordsFromAMIs(ctx, state.AMIs, state.Revision.ValueString())
	}
	p, _, err := r.publisher(ctx, &state)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the published AMIs", err.Error())
		return
	}
	targets, _, d := targetsOf(ctx, state.Targets)
	resp.Diagnostics.Append(d...)
	deprecateAt := priv.DeprecateAt
	if deprecateAt.IsZero() && !state.DeprecationTime.IsNull() {
		deprecateAt, _ = time.Parse(time.RFC3339, state.DeprecationTime.ValueString())
	}
	pub, d := state.publication(ctx, time.Time{}, deprecateAt, mapOf(ctx, state.TagsAll, &resp.Diagnostics), nil)
	if resp.Diagnostics.Append(d...); resp.Diagnostics.HasError() {
		return
	}
	drifts, err := p.Refresh(ctx, pub, targets, records)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the published AMIs", err.Error())
		return
	}
	showDrift(&state, drifts, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// showDrift writes what changed out of band into the state, so that the
// plan shows it and the apply restores it: a target whose AMI is gone
// leaves amis (and is republished), drifted permissions, SSM parameter,
// deprecation or protection show as unset or flipped.
func showDrift(state *publishedAMIModel, drifts map[string]publisher.Drift, diags *diag.Diagnostics) {
	var details []string
	gone := map[string]bool{}
	for _, k := range sortedKeys(drifts) {
		d := drifts[k]
		if !d.Any() {
			continue
		}
		for _, line := range d.Details {
			details = append(details, k+": "+line)
		}
		if d.ImageMissing {
			gone[k] = true
		}
		if d.LaunchPermission || d.SnapshotPermission {
			if state.LaunchPermission != nil {
				state.LaunchPermission = nil
			} else {
				empty := types.SetNull(types.StringType)
				state.LaunchPermission = &launchPermissionModel{AccountIDs: empty, OrganizationARNs: empty, OrganizationalUnitARNs: empty}
			}
		}
		if d.SSMParameter {
			state.SSMParameter = nil
		}
		if d.Deprecation {
			state.DeprecationTime = types.StringNull()
		}
		if d.Protection {
			state.DeregistrationProtection = types.BoolValue(!state.DeregistrationProtection.ValueBool())
		}
	}
	if len(details) == 0 {
		return
	}
	if len(gone) > 0 && !state.AMIs.IsNull() && !state.AMIs.IsUnknown() {
		elems := state.AMIs.Elements()
		kept := map[string]attr.Value{}
		for k, v := range elems {
			if !gone[k] {
				kept[k] = v
			}
		}
		state.AMIs = types.MapValueMust(types.ObjectType{AttrTypes: publishedAMIAttrTypes}, kept)
	}
	diags.AddWarning("Published AMIs changed outside Terraform",
		"The next apply republishes a target whose AMI is gone and restores the rest:\n- "+strings.Join(details, "\n- "))
}

func (r *publishedAMIResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state publishedAMIModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &state)...); resp.Diagnostics.HasError() {
		return
	}
	if state.Targets.IsNull() {
		resp.Diagnostics.AddWarning("Nothing deleted",
			"This publication was imported and never applied, so its targets are unknown; its AMIs are left as they are.")
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultPublishedAMIDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p, _, err := r.publisher(ctx, &state)
	if err != nil {
		resp.Diagnostics.AddError("Cannot delete the published AMIs", err.Error())
		return
	}
	targets, _, d := targetsOf(ctx, state.Targets)
	resp.Diagnostics.Append(d...)
	pub, d := state.publication(ctx, time.Time{}, time.Time{}, nil, nil)
	if resp.Diagnostics.Append(d...); resp.Diagnostics.HasError() {
		return
	}
	tflog.Info(ctx, "deleting the publication", map[string]any{"stream": pub.Stream, "targets": len(targets)})
	if err := p.Delete(ctx, pub, targets); err != nil {
		resp.Diagnostics.AddError("Cannot delete the published AMIs", err.Error())
	}
}

func (r *publishedAMIResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if err := contentstore.ValidateStreamName(req.ID); err != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("%v. The ID of autoami_published_ami is the name of its image stream.", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("image_stream"), req.ID)...)
}

// addJoined adds one error per error err joins.
func addJoined(diags *diag.Diagnostics, summary string, err error) {
	for _, e := range joinedErrors(err) {
		diags.AddError(summary, e.Error())
	}
}

// logProgress turns a publisher event into a log line.
func logProgress(ctx context.Context, ev publisher.Event) {
	fields := map[string]any{"target": ev.Target, "step": string(ev.Step), "event": string(ev.Kind)}
	msg := ev.Message
	if msg == "" {
		msg = string(ev.Step)
	}
	switch ev.Kind {
	case publisher.EventFailed:
		if ev.Err != nil {
			fields["error"] = ev.Err.Error()
		}
		tflog.Warn(ctx, msg, fields)
	case publisher.EventInfo:
		tflog.Debug(ctx, msg, fields)
	default:
		tflog.Info(ctx, msg, fields)
	}
}
