package publisher

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
)

func withDefaults(p Publication) Publication {
	if p.BootMode == "" {
		p.BootMode = DefaultBootMode
	}
	if p.VolumeType == "" {
		p.VolumeType = DefaultVolumeType
	}
	if p.Architecture == "" {
		p.Architecture = DefaultArchitecture
	}
	if p.NameTemplate == "" {
		p.NameTemplate = DefaultNameTemplate
	}
	return p
}

var (
	revisionPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	publicationIDRE = regexp.MustCompile(`^[A-Za-z0-9._:/-]{1,128}$`)
	organizationARN = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$`)
	ouARN           = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`)
)

// Accepted values of the registration attributes.
var (
	architectures = []string{"x86_64", "arm64"}
	bootModes     = []string{"legacy-bios", "uefi", "uefi-preferred"}
	volumeTypes   = []string{"gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"}
)

// maxVolumeSizeGiB is EBS's largest volume (64 TiB for io2 Block Express;
// 16 TiB for the others, checked by AWS).
const maxVolumeSizeGiB = 64 << 10

func validatePublication(p Publication) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !publicationIDRE.MatchString(p.ID) {
		add("id: %q is not a publication ID (1–128 characters of letters, digits and ._:/-)", p.ID)
	}
	if err := contentstore.ValidateStreamName(p.Stream); err != nil {
		add("image_stream: %v", err)
	}
	if !revisionPattern.MatchString(p.Revision) {
		add("revision: %q is not a revision (64 lower-case hex digits)", p.Revision)
	}
	if err := validateNameTemplate(p.NameTemplate, p.Stream); err != nil {
		errs = append(errs, err)
	}
	if p.Date.IsZero() && strings.Contains(p.NameTemplate, placeholderDate) {
		add("name: %q uses {date}, but the publication has no date (the revision's creation time)", p.NameTemplate)
	}
	if len(p.Description) > 255 {
		add("description: %d characters, AWS allows 255", len(p.Description))
	}
	oneOf := func(attr, v string, allowed []string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		add("%s: %q is not one of %s", attr, v, strings.Join(allowed, ", "))
	}
	oneOf("architecture", p.Architecture, architectures)
	oneOf("boot_mode", p.BootMode, bootModes)
	oneOf("volume_type", p.VolumeType, volumeTypes)
	if p.IMDSSupport != "" && p.IMDSSupport != "v2.0" {
		add("imds_support: %q; the only value is \"v2.0\"", p.IMDSSupport)
	}
	switch p.TPMSupport {
	case "":
	case "v2.0":
		if p.BootMode != "uefi" {
			add("tpm_support: NitroTPM needs boot_mode \"uefi\" (it is %q)", p.BootMode)
		}
	default:
		add("tpm_support: %q; the only value is \"v2.0\"", p.TPMSupport)
	}
	if p.VolumeSizeGiB < 0 || p.VolumeSizeGiB > maxVolumeSizeGiB {
		add("volume_size: %d GiB is not between 1 and %d", p.VolumeSizeGiB, maxVolumeSizeGiB)
	}
	for _, a := range p.LaunchPermission.AccountIDs {
		if !accountIDPattern.MatchString(a) {
			add("launch_permission.account_ids: %q is not a 12-digit account ID", a)
		}
	}
	for _, a := range p.LaunchPermission.OrganizationARNs {
		if !organizationARN.MatchString(a) {
			add("launch_permission.organization_arns: %q is not an organization ARN (arn:aws:organizations::ACCOUNT:organization/o-...)", a)
		}
	}
	for _, a := range p.LaunchPermission.OrganizationalUnitARNs {
		if !ouARN.MatchString(a) {
			add("launch_permission.organizational_unit_arns: %q is not an organizational unit ARN (arn:aws:organizations::ACCOUNT:ou/o-.../ou-...)", a)
		}
	}
	if p.SSMParameter != nil {
		if err := validateSSMParameterName(p.SSMParameter.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if !p.DeprecateAt.IsZero() && p.DeprecateAt.After(time.Now().AddDate(10, 0, 0)) {
		add("deprecation time %s is more than 10 years ahead (AWS's limit)", p.DeprecateAt.UTC().Format(time.RFC3339))
	}
	for k, v := range p.Tags {
		switch {
		case strings.HasPrefix(k, "autoami:"):
			add("tags: key %q: keys starting with autoami: are autoami's own", k)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			add("tags: key %q: keys starting with aws: are reserved by AWS", k)
		case k == "" || len(k) > 128:
			add("tags: key %q must have 1 to 128 characters", k)
		case len(v) > 256:
			add("tags: value of %q has %d characters, AWS allows 256", k, len(v))
		}
	}
	if len(p.Tags) > 40 {
		// 50 per resource, minus autoami's own and room for the user.
		add("tags: %d tags; at most 40 (AWS allows 50 per resource and autoami adds its own)", len(p.Tags))
	}
	return errors.Join(errs...)
}

// ssmNameRE: letters, digits and . - _ / ; a path starts with /.
var ssmNameRE = regexp.MustCompile(`^/?[A-Za-z0-9._\-/]+$`)

func validateSSMParameterName(name string) error {
	if len(name) > 1011 {
		return fmt.Errorf("ssm_parameter.name: %d characters; AWS allows 1011", len(name))
	}
	if !ssmNameRE.MatchString(name) || strings.Contains(name, "//") || strings.HasSuffix(name, "/") {
		return fmt.Errorf("ssm_parameter.name: %q is not a parameter name (letters, digits, . - _ and / separating a path)", name)
	}
	lower := strings.ToLower(strings.TrimPrefix(name, "/"))
	if strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm") {
		return fmt.Errorf("ssm_parameter.name: %q: names beginning with aws or ssm are reserved by AWS", name)
	}
	if strings.Count(name, "/") > 15 {
		return fmt.Errorf("ssm_parameter.name: %q has more than 15 levels", name)
	}
	return nil
}

// validateKMSKeyID: IDs and aliases resolve in each target's own account;
// an ARN names one account and region, so it suits only a single target
// there (a key of another account would be a key shared across accounts).
func validateKMSKeyID(keyID string, targets []Target) error {
	if keyID == "" {
		return nil
	}
	if !strings.HasPrefix(keyID, "arn:") {
		if strings.HasPrefix(keyID, "alias/aws/") {
			return fmt.Errorf("kms_key_id: %q is an AWS managed key; leave kms_key_id empty for each target's default EBS key", keyID)
		}
		return nil
	}
	a, err := arn.Parse(keyID)
	if err != nil || a.Service != "kms" {
		return fmt.Errorf("kms_key_id: %q is not a KMS key ARN", keyID)
	}
	for i, t := range targets {
		if t.AccountID != "" && a.AccountID != t.AccountID {
			return fmt.Errorf("kms_key_id: %s belongs to account %s, but targets[%d] is %s: keys are never shared across accounts; use an alias that each account defines, or leave kms_key_id empty", keyID, a.AccountID, i, t)
		}
		if t.Region != "" && a.Region != t.Region {
			return fmt.Errorf("kms_key_id: %s is in %s, but targets[%d] is %s; use an alias that each region defines", keyID, a.Region, i, t)
		}
	}
	return nil
}
