package awsclient

import (
	"fmt"
	"regexp"
)

// regionPattern matches every AWS partition's region names (us-east-1,
// us-gov-west-1, cn-north-1, eu-isoe-west-1, ...).
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

func validateRegion(name string) error {
	if name == "" {
		return fmt.Errorf("no region: set the provider's region, or AWS_REGION, or a region in the shared config profile")
	}
	if !regionPattern.MatchString(name) {
		return fmt.Errorf("%q is not an AWS region name (expected a name like us-east-1 or eu-central-2)", name)
	}
	return nil
}

// knownRegions are the commercial, GovCloud and China regions as of 2026.
var knownRegions = map[string]bool{
	"af-south-1": true, "ap-east-1": true, "ap-east-2": true, "ap-northeast-1": true,
	"ap-northeast-2": true, "ap-northeast-3": true, "ap-south-1": true, "ap-south-2": true,
	"ap-southeast-1": true, "ap-southeast-2": true, "ap-southeast-3": true, "ap-southeast-4": true,
	"ap-southeast-5": true, "ap-southeast-6": true, "ap-southeast-7": true, "ca-central-1": true,
	"ca-west-1": true, "eu-central-1": true, "eu-central-2": true, "eu-north-1": true,
	"eu-south-1": true, "eu-south-2": true, "eu-west-1": true, "eu-west-2": true,
	"eu-west-3": true, "il-central-1": true, "me-central-1": true, "me-south-1": true,
	"mx-central-1": true, "sa-east-1": true, "us-east-1": true, "us-east-2": true,
	"us-west-1": true, "us-west-2": true, "us-gov-east-1": true, "us-gov-west-1": true,
	"cn-north-1": true, "cn-northwest-1": true,
}
