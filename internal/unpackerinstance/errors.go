package unpackerinstance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
)

// apiCode is the AWS error code of err ("InvalidInstanceID.NotFound"), or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// launchContext says what a failed RunInstances tried.
type launchContext struct {
	where, instanceType, zone, imageID, kmsKeyID string
}

// explainLaunchError turns RunInstances' refusals into what to do about them.
func explainLaunchError(lc launchContext, err error) error {
	code := apiCode(err)
	prefix := fmt.Sprintf("launch the unpacker instance (%s from %s in %s, %s)", lc.instanceType, lc.imageID, lc.zone, lc.where)
	switch {
	case code == "InsufficientInstanceCapacity" || strings.HasPrefix(code, "Insufficient") && strings.HasSuffix(code, "Capacity"):
		return fmt.Errorf("%s: AWS has no capacity for %s in %s right now: try again later, or set instance_type or "+
			"subnet_id to another type or zone: %w", prefix, lc.instanceType, lc.zone, err)
	case code == "InstanceLimitExceeded" || code == "VcpuLimitExceeded":
		return fmt.Errorf("%s: the account's instance or vCPU quota in %s is used up: raise it (Service Quotas) or "+
			"free some: %w", prefix, lc.where, err)
	case code == "Unsupported":
		return fmt.Errorf("%s: %s is not offered there: set instance_type or subnet_id: %w", prefix, lc.instanceType, err)
	case strings.HasPrefix(code, "InvalidAMIID"):
		return fmt.Errorf("%s: image %s cannot be launched there: %w", prefix, lc.imageID, err)
	case strings.Contains(code, "KMS") || strings.Contains(strings.ToLower(err.Error()), "kms"):
		key := lc.kmsKeyID
		if key == "" {
			key = "the account's default EBS key"
		}
		return fmt.Errorf("%s: the root volume cannot be encrypted with %s (or the image's snapshot cannot be "+
			"decrypted): %w", prefix, key, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
