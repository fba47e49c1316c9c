package provider

import "regexp"

// Shapes of EC2 IDs and names, checked at plan time.
var (
	amiIDPattern           = regexp.MustCompile(`^ami-[0-9a-f]{8}([0-9a-f]{9})?$`)
	subnetIDPattern        = regexp.MustCompile(`^subnet-[0-9a-f]{8}([0-9a-f]{9})?$`)
	securityGroupIDPattern = regexp.MustCompile(`^sg-[0-9a-f]{8}([0-9a-f]{9})?$`)
	instanceTypePattern    = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	instanceIDPattern      = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)
)
