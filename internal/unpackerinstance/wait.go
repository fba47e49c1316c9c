package unpackerinstance

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// describeInstance reads one instance; a missing or terminated one is an
// error wrapping ErrGone (the instance is returned with it when known).
func describeInstance(ctx context.Context, c *ec2.Client, id string) (ec2types.Instance, error) {
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if apiCode(err) == "InvalidInstanceID.NotFound" {
		return ec2types.Instance{}, fmt.Errorf("instance %s: %w", id, ErrGone)
	}
	if err != nil {
		return ec2types.Instance{}, fmt.Errorf("describe instance %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			if aws.ToString(inst.InstanceId) != id {
				continue
			}
			if inst.State != nil && inst.State.Name == ec2types.InstanceStateNameTerminated {
				return inst, fmt.Errorf("instance %s is terminated: %w", id, ErrGone)
			}
			return inst, nil
		}
	}
	return ec2types.Instance{}, fmt.Errorf("instance %s: %w", id, ErrGone)
}

func stateOf(inst ec2types.Instance) ec2types.InstanceStateName {
	if inst.State == nil {
		return ""
	}
	return inst.State.Name
}

// waitInstance waits with the SDK's waiter until the instance is in state
// (running, stopped or terminated), bounded by ctx.
func (e readyEnv) waitInstance(ctx context.Context, c *ec2.Client, id string, state ec2types.InstanceStateName) (ec2types.Instance, error) {
	done := timed(ctx, e.log, "instance "+string(state), "instance", id)
	bound, err := waitBound(ctx)
	if err == nil {
		in := &ec2.DescribeInstancesInput{InstanceIds: []string{id}}
		minD, maxD := e.poll.InstanceMinDelay, e.poll.InstanceMaxDelay
		switch state {
		case ec2types.InstanceStateNameRunning:
			err = ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) { o.MinDelay, o.MaxDelay = minD, maxD }).Wait(ctx, in, bound)
		case ec2types.InstanceStateNameStopped:
			err = ec2.NewInstanceStoppedWaiter(c, func(o *ec2.InstanceStoppedWaiterOptions) { o.MinDelay, o.MaxDelay = minD, maxD }).Wait(ctx, in, bound)
		case ec2types.InstanceStateNameTerminated:
			err = ec2.NewInstanceTerminatedWaiter(c, func(o *ec2.InstanceTerminatedWaiterOptions) { o.MinDelay, o.MaxDelay = minD, maxD }).Wait(ctx, in, bound)
		default:
			err = fmt.Errorf("no waiter for instance state %s", state)
		}
	}
	if state == ec2types.InstanceStateNameTerminated {
		done(err)
		return ec2types.Instance{}, err
	}
	inst, derr := describeInstance(context.WithoutCancel(ctx), c, id)
	if err != nil {
		err = fmt.Errorf("wait for instance %s to be %s (it is %s%s): %w", id, state, stateOf(inst), reasonOf(inst), err)
	} else if derr != nil {
		err = derr
	}
	done(err)
	return inst, err
}

// reasonOf is ", <state reason>" when the instance has one.
func reasonOf(inst ec2types.Instance) string {
	if inst.StateReason != nil && aws.ToString(inst.StateReason.Message) != "" {
		return ": " + aws.ToString(inst.StateReason.Message)
	}
	if r := aws.ToString(inst.StateTransitionReason); r != "" {
		return ": " + r
	}
	return ""
}

// console reads the instance's latest console output (Latest: the output
// as of now, where the instance type supports it; else what EC2 posted).
func console(ctx context.Context, c *ec2.Client, id string) (string, error) {
	out, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if code := apiCode(err); code == "UnsupportedOperation" || code == "InvalidParameterCombination" {
		out, err = c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	}
	if err != nil {
		return "", fmt.Errorf("read the console output of %s: %w", id, err)
	}
	data, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return "", fmt.Errorf("console output of %s is not base64: %w", id, err)
	}
	return string(data), nil
}

var fingerprintLine = regexp.MustCompile(regexp.QuoteMeta(wire.FingerprintLinePrefix) + `(sha256:[0-9a-f]{64})`)

// lastFingerprint is the fingerprint of the last fingerprint line, or "".
func lastFingerprint(console string) string {
	all := fingerprintLine.FindAllStringSubmatch(console, -1)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1][1]
}

// bootstrapFailure is the line cloud-init prints when runcmd failed: the
// daemon will not start on this boot.
const bootstrapFailure = "Failed to run module scripts_user"

// consoleTail is the end of a console output, for error messages.
func consoleTail(console string) string {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(console, "\r", ""), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	s := strings.Join(lines, "\n")
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	if strings.TrimSpace(s) == "" {
		return "(the console output is empty)"
	}
	return s
}

// answer is what waitAnswering waits for.
type answer struct {
	ec2        *ec2.Client
	instanceID string
	endpoint   string
	cert       tls.Certificate
	// pin is the fingerprint to trust; "" learns it from the console's
	// last fingerprint line (create, rebootstrap).
	pin string
	// firstBoot makes a failed bootstrap on the console fail the wait at once.
	firstBoot bool
}

// answered is what the daemon said.
type answered struct {
	fingerprint string
	health      wire.Health
}

// waitAnswering waits until the daemon answers GET /v1/health over mutual
// TLS pinned to a.pin or, without one, to the last fingerprint its console
// printed: the console is the only source of trust, never the network. A
// pinned wait refuses a daemon that shows another certificate at once (a
// *client.PinError naming both); a learning wait looks at the console
// again, since a restarted daemon prints its line a moment after it starts.
func (e readyEnv) waitAnswering(ctx context.Context, a answer) (answered, error) {
	pin := a.pin
	if pin == "" {
		fp, err := e.waitFingerprint(ctx, a)
		if err != nil {
			return answered{}, err
		}
		pin = fp
	}
	done := timed(ctx, e.log, "daemon answering over mutual TLS", "instance", a.instanceID, "endpoint", a.endpoint, "fingerprint", pin)
	var lastErr error
	for {
		c, err := client.New(client.Config{Address: a.endpoint, Fingerprint: pin, Certificate: a.cert,
			RetryMax: 1, RetryWaitMax: e.poll.Health, Timeout: 15 * time.Second})
		if err != nil {
			done(err)
			return answered{}, err
		}
		h, err := c.Health(ctx)
		if err == nil {
			done(nil)
			return answered{fingerprint: pin, health: h}, nil
		}
		lastErr = err
		var pe *client.PinError
		if errors.As(err, &pe) {
			if a.pin != "" {
				err = fmt.Errorf("refusing the daemon of instance %s at %s: its TLS handshake shows certificate %s, but %s is "+
					"pinned (learnt from its console): %w", a.instanceID, a.endpoint, pe.Got, pe.Want, err)
				done(err)
				return answered{}, err
			}
			// Learning: the console may not show the restarted daemon's
			// line yet; never trust the network's answer.
			if out, cerr := console(ctx, a.ec2, a.instanceID); cerr == nil {
				if fp := lastFingerprint(out); fp != "" && fp != pin {
					e.log.WarnContext(ctx, "the console shows another server certificate fingerprint than before; pinning it",
						"instance", a.instanceID, "was", pin, "now", fp)
					pin = fp
					continue
				}
			}
		}
		inst, derr := describeInstance(ctx, a.ec2, a.instanceID)
		if derr == nil && stateOf(inst) != ec2types.InstanceStateNameRunning {
			err = fmt.Errorf("instance %s is %s%s while waiting for its daemon to answer at %s", a.instanceID, stateOf(inst), reasonOf(inst), a.endpoint)
			done(err)
			return answered{}, err
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("the daemon of instance %s did not answer at %s over mutual TLS (pinned %s): %w; last error: %v%s",
				a.instanceID, a.endpoint, pin, ctx.Err(), lastErr, e.consoleForError(ctx, a))
			done(err)
			return answered{}, err
		case <-time.After(e.poll.Health):
		}
	}
}

// waitFingerprint waits until the console shows a fingerprint line.
func (e readyEnv) waitFingerprint(ctx context.Context, a answer) (string, error) {
	done := timed(ctx, e.log, "server certificate fingerprint on the console", "instance", a.instanceID)
	for {
		out, err := console(ctx, a.ec2, a.instanceID)
		if err == nil {
			if fp := lastFingerprint(out); fp != "" {
				done(nil)
				return fp, nil
			}
			if a.firstBoot && strings.Contains(out, bootstrapFailure) {
				err = fmt.Errorf("the bootstrap of instance %s failed (cloud-init's runcmd); its console ends:\n%s", a.instanceID, consoleTail(out))
				done(err)
				return "", err
			}
		}
		inst, derr := describeInstance(ctx, a.ec2, a.instanceID)
		if derr != nil || stateOf(inst) != ec2types.InstanceStateNameRunning {
			if derr == nil {
				derr = fmt.Errorf("instance %s is %s%s", a.instanceID, stateOf(inst), reasonOf(inst))
			}
			err = fmt.Errorf("waiting for the daemon's fingerprint on the console: %w%s", derr, e.consoleForError(ctx, a))
			done(err)
			return "", err
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("the console of instance %s shows no server certificate fingerprint line (%q): %w%s",
				a.instanceID, strings.TrimSpace(wire.FingerprintLinePrefix), ctx.Err(), e.consoleForError(ctx, a))
			done(err)
			return "", err
		case <-time.After(e.poll.Console):
		}
	}
}

// consoleForError is "; its console ends: ..." for an error message, read
// with a short context of its own (ctx may be over).
func (e readyEnv) consoleForError(ctx context.Context, a answer) string {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	out, err := console(cctx, a.ec2, a.instanceID)
	if err != nil {
		return ""
	}
	return "; its console ends:\n" + consoleTail(out)
}
