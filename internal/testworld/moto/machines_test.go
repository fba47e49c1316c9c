package moto

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// builtinX86 is one of moto's built-in x86_64 Amazon images (every account
// sees them).
func builtinX86(t *testing.T, ctx context.Context, c *ec2.Client) string {
	t.Helper()
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"},
		Filters: []types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil || len(out.Images) == 0 {
		t.Fatalf("a built-in x86_64 image: %v", err)
	}
	return aws.ToString(out.Images[0].ImageId)
}

func runOne(ctx context.Context, c *ec2.Client, image string, instanceType types.InstanceType, mutate ...func(*ec2.RunInstancesInput)) (*ec2.RunInstancesOutput, error) {
	in := &ec2.RunInstancesInput{ImageId: aws.String(image), InstanceType: instanceType, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
	for _, m := range mutate {
		m(in)
	}
	return c.RunInstances(ctx, in)
}

func instanceIDs(t *testing.T, ctx context.Context, c *ec2.Client) []string {
	t.Helper()
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	slices.Sort(ids)
	return ids
}

// RunInstances refuses what AWS refuses, and a refused launch makes nothing.
func TestRunInstancesRefusesWhatAWSRefuses(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	other := ec2As(t, ctx, otherAccount, region)
	x86 := builtinX86(t, ctx, c)
	arm := register(t, ctx, c, "arm64 image", snapshot(t, ctx, c, 8, false, ""))
	private := register(t, ctx, other, "private image", snapshot(t, ctx, other, 8, false, ""))
	shared := register(t, ctx, other, "shared image", snapshot(t, ctx, other, 8, false, ""))
	if _, err := other.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(shared),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String(DefaultAccountID)}}}}); err != nil {
		t.Fatal(err)
	}
	if err := world.SetPending(ctx, Pending{Image: time.Hour}); err != nil {
		t.Fatal(err)
	}
	pending := register(t, ctx, c, "pending image", snapshot(t, ctx, c, 8, false, ""))
	if err := world.SetPending(ctx, Pending{}); err != nil {
		t.Fatal(err)
	}
	userData := func(n int) func(*ec2.RunInstancesInput) {
		return func(in *ec2.RunInstancesInput) {
			in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", n))))
		}
	}

	refused := []struct {
		name         string
		image        string
		instanceType types.InstanceType
		mutate       []func(*ec2.RunInstancesInput)
		code         string
		says         []string
	}{
		{"missing image", "ami-0123456789abcdef0", types.InstanceTypeT3Micro, nil, "InvalidAMIID.NotFound", []string{"ami-0123456789abcdef0"}},
		{"malformed image ID", "ami-nope", types.InstanceTypeT3Micro, nil, "InvalidAMIID.Malformed", []string{"ami-nope"}},
		{"another account's private image", private, types.InstanceTypeT4gMicro, nil, "InvalidAMIID.NotFound", []string{private}},
		{"pending image", pending, types.InstanceTypeT4gMicro, nil, "InvalidAMIID.Unavailable", []string{pending, "pending"}},
		{"arm64 image on t3.micro", arm, types.InstanceTypeT3Micro, nil, "InvalidParameterValue", []string{"'arm64'", "'x86_64'", "t3.micro", arm}},
		{"x86_64 image on t4g.micro", x86, types.InstanceTypeT4gMicro, nil, "InvalidParameterValue", []string{"'arm64'", "'x86_64'", "t4g.micro"}},
		{"unknown instance type", x86, "t9.huge", nil, "InvalidParameterValue", []string{"t9.huge"}},
		{"user-data over 16 KiB", x86, types.InstanceTypeT3Micro, []func(*ec2.RunInstancesInput){userData(16385)}, "InvalidParameterValue", []string{"16384"}},
	}
	for _, tc := range refused {
		_, err := runOne(ctx, c, tc.image, tc.instanceType, tc.mutate...)
		if apiCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not name %q", tc.name, err, s)
			}
		}
	}
	if ids := instanceIDs(t, ctx, c); len(ids) != 0 {
		t.Fatalf("refused launches made instances %v", ids)
	}

	// Just inside every limit, launches go through.
	accepted := []struct {
		name         string
		image        string
		instanceType types.InstanceType
		mutate       []func(*ec2.RunInstancesInput)
	}{
		{"arm64 image on t4g.micro", arm, types.InstanceTypeT4gMicro, nil},
		{"image shared by launch permission", shared, types.InstanceTypeT4gMicro, nil},
		{"16 KiB of user-data", x86, types.InstanceTypeT3Micro, []func(*ec2.RunInstancesInput){userData(16384)}},
	}
	for _, tc := range accepted {
		if _, err := runOne(ctx, c, tc.image, tc.instanceType, tc.mutate...); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if ids := instanceIDs(t, ctx, c); len(ids) != len(accepted) {
		t.Fatalf("instances %v, want %d", ids, len(accepted))
	}
}

// The same ClientToken returns the first launch instead of a second one.
func TestRunInstancesClientTokenIsIdempotent(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	x86 := builtinX86(t, ctx, c)
	token := func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("autoami-unpacker-create-1") }
	first, err := runOne(ctx, c, x86, types.InstanceTypeT3Micro, token)
	if err != nil {
		t.Fatal(err)
	}
	again, err := runOne(ctx, c, x86, types.InstanceTypeT3Micro, token)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(again.ReservationId) != aws.ToString(first.ReservationId) ||
		aws.ToString(again.Instances[0].InstanceId) != aws.ToString(first.Instances[0].InstanceId) {
		t.Fatalf("a repeated ClientToken launched %s/%s after %s/%s", aws.ToString(again.ReservationId),
			aws.ToString(again.Instances[0].InstanceId), aws.ToString(first.ReservationId), aws.ToString(first.Instances[0].InstanceId))
	}
	if ids := instanceIDs(t, ctx, c); len(ids) != 1 {
		t.Fatalf("instances %v after two launches with one token, want one", ids)
	}
	_, err = runOne(ctx, c, x86, types.InstanceTypeT3Small, token)
	wantCode(t, err, "IdempotentParameterMismatch")

	// Tokens belong to an account: another account's launch is its own.
	other := ec2As(t, ctx, otherAccount, region)
	theirs, err := runOne(ctx, other, x86, types.InstanceTypeT3Micro, token)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(theirs.Instances[0].InstanceId) == aws.ToString(first.Instances[0].InstanceId) {
		t.Fatal("another account's launch with the same token returned this account's instance")
	}
	// Without a token every call launches.
	for range 2 {
		if _, err := runOne(ctx, c, x86, types.InstanceTypeT3Micro); err != nil {
			t.Fatal(err)
		}
	}
	if ids := instanceIDs(t, ctx, c); len(ids) != 3 {
		t.Fatalf("instances %v, want 3", ids)
	}
}

// Instances stay pending, stopping and shutting-down for the configured
// time, refuse calls their state does not allow, and Reset returns the knob
// to zero.
func TestInstanceStatesTakeTheirTime(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	const step = 2 * time.Second
	if err := world.SetInstanceTransitions(ctx, InstanceTransitions{Pending: step, Stopping: step, ShuttingDown: step}); err != nil {
		t.Fatal(err)
	}
	state := func(id string) types.Instance {
		t.Helper()
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Reservations[0].Instances[0]
	}
	in := func(id string) *ec2.DescribeInstancesInput {
		return &ec2.DescribeInstancesInput{InstanceIds: []string{id}}
	}
	fast := func(min, max *time.Duration) { *min, *max = 50*time.Millisecond, 200*time.Millisecond }

	start := time.Now()
	run, err := runOne(ctx, c, builtinX86(t, ctx, c), types.InstanceTypeT3Micro)
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	if got := state(id); got.State.Name != types.InstanceStateNamePending || aws.ToString(got.StateReason.Code) != "pending" {
		t.Fatalf("right after RunInstances: %s (%v), want pending", got.State.Name, got.StateReason)
	}
	_, err = c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "IncorrectInstanceState")
	if err := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(ctx, in(id), time.Minute); err != nil {
		t.Fatal(err)
	}
	if since := time.Since(start); since < step {
		t.Fatalf("running after %s, want at least %s pending", since, step)
	}

	start = time.Now()
	stop, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if s := stop.StoppingInstances[0]; s.CurrentState.Name != types.InstanceStateNameStopping || s.PreviousState.Name != types.InstanceStateNameRunning {
		t.Fatalf("StopInstances answered %s -> %s", s.PreviousState.Name, s.CurrentState.Name)
	}
	if got := state(id); got.State.Name != types.InstanceStateNameStopping || !strings.HasPrefix(aws.ToString(got.StateTransitionReason), "User initiated (") {
		t.Fatalf("after StopInstances: %s, %q; want stopping, User initiated (time)", got.State.Name, aws.ToString(got.StateTransitionReason))
	}
	_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "IncorrectInstanceState")
	_, err = c.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "IncorrectInstanceState")
	if err := ec2.NewInstanceStoppedWaiter(c, func(o *ec2.InstanceStoppedWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(ctx, in(id), time.Minute); err != nil {
		t.Fatal(err)
	}
	if since := time.Since(start); since < step {
		t.Fatalf("stopped after %s, want at least %s stopping", since, step)
	}
	if got := state(id); aws.ToString(got.StateReason.Code) != "Client.UserInitiatedShutdown" {
		t.Fatalf("stopped with %v, want Client.UserInitiatedShutdown", got.StateReason)
	}
	// Stopping a stopped instance is no error.
	if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}

	if _, err := c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if got := state(id); got.State.Name != types.InstanceStateNamePending {
		t.Fatalf("after StartInstances: %s, want pending", got.State.Name)
	}

	start = time.Now()
	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if got := term.TerminatingInstances[0].CurrentState.Name; got != types.InstanceStateNameShuttingDown {
		t.Fatalf("TerminateInstances answered %s", got)
	}
	if err := ec2.NewInstanceTerminatedWaiter(c, func(o *ec2.InstanceTerminatedWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(ctx, in(id), time.Minute); err != nil {
		t.Fatal(err)
	}
	if since := time.Since(start); since < step {
		t.Fatalf("terminated after %s, want at least %s shutting-down", since, step)
	}

	if err := world.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	var knobs struct {
		Pending map[string]float64 `json:"pending"`
	}
	if err := world.control(ctx, "", nil, &knobs); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"instance", "instanceStopping", "instanceShuttingDown"} {
		if v, ok := knobs.Pending[k]; !ok || v != 0 {
			t.Errorf("after Reset %s = %v (present %v), want 0", k, v, ok)
		}
	}
}

// The instance type and user data change only while the instance is
// stopped, to a type of its architecture and user data of at most 16 KiB.
func TestModifyInstanceAttributeNeedsAStoppedInstance(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	run, err := runOne(ctx, c, builtinX86(t, ctx, c), types.InstanceTypeT3Micro)
	if err != nil {
		t.Fatal(err)
	}
	id := run.Instances[0].InstanceId
	in := &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(id)}}
	if err := ec2.NewInstanceRunningWaiter(c).Wait(ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	setType := func(it string) error {
		_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: id, InstanceType: &types.AttributeValue{Value: aws.String(it)}})
		return err
	}
	setUserData := func(n int) error {
		// The blob is the user data itself: the SDK base64-encodes it, as
		// terraform-provider-aws relies on.
		_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: id,
			UserData: &types.SecureBlobAttributeValue{Value: []byte(strings.Repeat("u", n))}})
		return err
	}
	wantCode(t, setType("t3.small"), "IncorrectInstanceState")
	wantCode(t, setUserData(10), "IncorrectInstanceState")

	if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{aws.ToString(id)}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceStoppedWaiter(c).Wait(ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	wantCode(t, setType("t4g.micro"), "InvalidParameterValue")
	wantCode(t, setUserData(16385), "InvalidParameterValue")
	if err := setType("t3.small"); err != nil {
		t.Fatal(err)
	}
	if err := setUserData(16384); err != nil {
		t.Fatal(err)
	}
	attr, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: id, Attribute: types.InstanceAttributeNameInstanceType})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(attr.InstanceType.Value); got != "t3.small" {
		t.Fatalf("instance type %s after the change, want t3.small", got)
	}
}

// GetConsoleOutput answers the instance's own console: base64, the last
// 64 KiB; without Latest what was posted at the last state transition,
// with Latest what is there now.
func TestConsoleOutputLatestAndBuffered(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	run, err := runOne(ctx, c, builtinX86(t, ctx, c), types.InstanceTypeT3Micro)
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	waitIn := &ec2.DescribeInstancesInput{InstanceIds: []string{id}}
	if err := ec2.NewInstanceRunningWaiter(c).Wait(ctx, waitIn, time.Minute); err != nil {
		t.Fatal(err)
	}
	console := func(latest bool) string {
		t.Helper()
		out, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(latest)})
		if err != nil {
			t.Fatal(err)
		}
		data, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
		if err != nil {
			t.Fatalf("console output is not base64: %v", err)
		}
		return string(data)
	}
	machines, err := world.Machines(ctx)
	if err != nil || len(machines) != 1 || machines[0].InstanceID != id {
		t.Fatalf("machines %+v, %v; want %s", machines, err, id)
	}
	dir := machines[0].Dir
	for _, sub := range []string{"root", "devices"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			t.Fatalf("instance directory %s/%s: %v", dir, sub, err)
		}
	}
	// An instance without cloud-config runs nothing, and says so.
	if got := console(true); !strings.Contains(got, "no cloud-config in the user-data; nothing to run") {
		t.Fatalf("console of a plain instance: %q", got)
	}
	buffered := console(false)

	// 100 KiB more on its serial console: Latest shows the last 64 KiB.
	f, err := os.OpenFile(filepath.Join(dir, "console.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := 0; lines.Len() < 100<<10; i++ {
		fmt.Fprintf(&lines, "%s line %06d\n", strings.Repeat("=", 60), i)
	}
	if _, err := f.WriteString(lines.String()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	all, err := os.ReadFile(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	latest := console(true)
	if len(latest) != 64<<10 || latest != string(all[len(all)-64<<10:]) {
		t.Fatalf("Latest gave %d bytes, want the last 65536 of %d", len(latest), len(all))
	}
	if got := console(false); got != buffered {
		t.Fatalf("without Latest the output changed between transitions (%d bytes, was %d)", len(got), len(buffered))
	}

	// The stop is a transition: the post now has the newer lines.
	if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceStoppedWaiter(c).Wait(ctx, waitIn, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := console(false); len(got) != 64<<10 || !strings.HasSuffix(got, "stopped\n") || !strings.Contains(got, " line ") {
		t.Fatalf("buffered output after the stop: %d bytes ending %q", len(got), got[max(0, len(got)-80):])
	}

	// Only the owner reads it.
	other := ec2As(t, ctx, otherAccount, region)
	_, err = other.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	wantCode(t, err, "InvalidInstanceID.NotFound")
}

// The Debian packages an unpacker's user-data may name are those
// deploy/README.md lists (its table, and the arm64 GRUB package named below
// it), in the stand-in as in the document.
func TestStandInPackagesAreTheDocumentedOnes(t *testing.T) {
	py, err := harnessFiles.ReadFile("autoami_cloudinit.py")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)DEBIAN_PACKAGES = \((.*?)\)`).FindSubmatch(py)
	if m == nil {
		t.Fatal("no DEBIAN_PACKAGES in autoami_cloudinit.py")
	}
	var standIn []string
	for _, q := range regexp.MustCompile(`"([^"]+)"`).FindAllSubmatch(m[1], -1) {
		standIn = append(standIn, string(q[1]))
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "## Debian packages the instance needs")
	if !ok {
		t.Fatal("deploy/README.md has no section \"Debian packages the instance needs\"")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var documented []string
	for _, row := range regexp.MustCompile("(?m)^\\| `([a-z0-9.+-]+)` \\|").FindAllStringSubmatch(table, -1) {
		documented = append(documented, row[1])
	}
	arm64 := regexp.MustCompile("On arm64 instances `([a-z0-9.+-]+)` replaces").FindStringSubmatch(table)
	if arm64 == nil {
		t.Fatal("deploy/README.md names no arm64 GRUB package below its table")
	}
	documented = append(documented, arm64[1])
	if len(documented) == 0 || !slices.Equal(standIn, documented) {
		t.Fatalf("stand-in packages %v, deploy/README.md %v", standIn, documented)
	}
}

// launchWithUserData runs one instance with userData and waits until it is
// no longer pending.
func launchWithUserData(t *testing.T, ctx context.Context, c *ec2.Client, image string, userData []byte) types.Instance {
	t.Helper()
	run, err := runOne(ctx, c, image, types.InstanceTypeT3Micro, func(in *ec2.RunInstancesInput) {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString(userData))
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if inst := out.Reservations[0].Instances[0]; inst.State.Name != types.InstanceStateNamePending {
			return inst
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still pending after a minute", id)
		}
		<-tick.C
	}
}

// The stand-in writes files as cloud-init does (permissions, base64), and
// refuses whatever it does not implement, naming it.
func TestCloudConfigStandIn(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	image := builtinX86(t, ctx, c)

	secret := "not a secret\x00\xff"
	inst := launchWithUserData(t, ctx, c, image, []byte("#cloud-config\n"+`write_files:
  - path: /etc/example/plain.conf
    content: |
      a = 1
    permissions: '0600'
  - path: /opt/example/tool
    encoding: b64
    content: `+base64.StdEncoding.EncodeToString([]byte(secret))+`
    permissions: '0755'
`))
	if inst.State.Name != types.InstanceStateNameRunning {
		t.Fatalf("instance %s (%v)", inst.State.Name, inst.StateReason)
	}
	if strings.HasPrefix(aws.ToString(inst.PrivateIpAddress), "127.") {
		t.Fatalf("an instance without a unit got a loopback address %s", aws.ToString(inst.PrivateIpAddress))
	}
	var dir string
	ms, err := world.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.InstanceID == aws.ToString(inst.InstanceId) {
			dir = m.Dir
		}
	}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		console, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		if strings.Contains(string(console), "cloud-init: finished") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cloud-init did not finish:\n%s", console)
		}
		<-tick.C
	}
	for path, want := range map[string]struct {
		content string
		mode    os.FileMode
	}{
		"root/etc/example/plain.conf": {"a = 1\n", 0o600},
		"root/opt/example/tool":       {secret, 0o755},
	} {
		data, err := os.ReadFile(filepath.Join(dir, path))
		fi, _ := os.Stat(filepath.Join(dir, path))
		if err != nil || string(data) != want.content || fi.Mode().Perm() != want.mode {
			t.Errorf("%s: %q %v (%v), want %q %v", path, data, fi.Mode().Perm(), err, want.content, want.mode)
		}
	}

	runcmd := func(items string) []byte {
		return []byte("#cloud-config\nruncmd:\n" + items)
	}
	refused := map[string]struct {
		userData []byte
		says     string
	}{
		"no set -e":        {runcmd("  - [chmod, '0755', /x]\n"), "starts runcmd with 'set -e'"},
		"other command":    {runcmd("  - set -e\n  - [echo, hi]\n"), "['echo', 'hi'] is not a command form"},
		"string command":   {runcmd("  - set -e\n  - echo hi\n"), "'echo hi'"},
		"curl without -o":  {runcmd("  - set -e\n  - [curl, -fsS, 'http://127.0.0.1:1/x']\n"), "curl needs -o PATH"},
		"curl option":      {runcmd("  - set -e\n  - [curl, -k, -o, /x, 'http://127.0.0.1:1/x']\n"), "curl argument '-k'"},
		"unit not written": {runcmd("  - set -e\n  - [systemctl, enable, --now, x.service]\n"), "unit x.service is not among write_files"},
		"owner":            {[]byte("#cloud-config\nwrite_files:\n  - {path: /x, content: a, owner: 'nobody:nogroup'}\n"), "files belong to root"},
		"gzip encoding":    {[]byte("#cloud-config\nwrite_files:\n  - {path: /x, content: a, encoding: gzip}\n"), "encoding: 'gzip'"},
		"relative path":    {[]byte("#cloud-config\nwrite_files:\n  - {path: x, content: a}\n"), "not a normalised absolute path"},
		"not YAML":         {[]byte("#cloud-config\nwrite_files: [\n"), "cloud-config is not YAML"},
		"#include":         {[]byte("#include\nhttp://127.0.0.1/x\n"), "runs only #cloud-config"},
		"gzip user-data":   {[]byte{0x1f, 0x8b, 8, 0}, "gzip-compressed user-data"},
		"other bootcmd":    {[]byte("#cloud-config\nbootcmd:\n  - [sh, -c, 'echo hi']\n"), "not one of the contract's per-boot forms"},
		"arm64 package on x86_64": {[]byte("#cloud-config\npackages: [grub-efi-arm64-bin]\n"),
			"Debian has no grub-efi-arm64-bin for x86_64"},
	}
	for name, tc := range refused {
		inst := launchWithUserData(t, ctx, c, image, tc.userData)
		code, msg := aws.ToString(inst.StateReason.Code), aws.ToString(inst.StateReason.Message)
		if inst.State.Name != types.InstanceStateNameTerminated || code != "TestWorld.UserDataNotUnderstood" || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: %s, %s %q; want terminated, TestWorld.UserDataNotUnderstood saying %q", name, inst.State.Name, code, msg, tc.says)
		}
	}

	// Text cloud-init ignores gives a plain instance.
	if inst := launchWithUserData(t, ctx, c, image, []byte("hello, instance\n")); inst.State.Name != types.InstanceStateNameRunning {
		t.Fatalf("plain-text user-data: %s (%v)", inst.State.Name, inst.StateReason)
	}
}
