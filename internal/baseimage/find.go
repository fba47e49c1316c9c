package baseimage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

var amiIDPattern = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)

// maxHistory bounds how many earlier images of an SSM parameter are looked
// up for the previous image (one DescribeImages filter's worth).
const maxHistory = 100

func (s Selector) validate() error {
	switch {
	case s.SSMParameter != "" && len(s.Owners) > 0:
		return errors.New("ssm_parameter and owners cannot be combined: look up by SSM parameter, or by owners with name/filter")
	case s.SSMParameter != "" && (s.Name != "" || len(s.Filters) > 0):
		return errors.New("ssm_parameter cannot be combined with name or filter: the parameter already names one image")
	case s.SSMParameter == "" && len(s.Owners) == 0 && (s.Name != "" || len(s.Filters) > 0):
		return errors.New("name and filter lookups need owners (for example owners = [\"amazon\"] or an account ID): searching every public image is slow and unsafe")
	case s.SSMParameter == "" && len(s.Owners) == 0:
		return errors.New("give either ssm_parameter, or owners with name and/or filter")
	case s.SSMParameter == "" && s.Name == "" && len(s.Filters) == 0:
		return errors.New("owners needs a name pattern or at least one filter to narrow the search")
	}
	for i, f := range s.Filters {
		if f.Name == "" || len(f.Values) == 0 {
			return fmt.Errorf("filter %d needs a name and at least one value", i)
		}
	}
	return nil
}

func (s Selector) describe() string {
	if s.SSMParameter != "" {
		return fmt.Sprintf("SSM parameter %s", s.SSMParameter)
	}
	parts := []string{fmt.Sprintf("images owned by %s", strings.Join(s.Owners, ", "))}
	if s.Name != "" {
		parts = append(parts, fmt.Sprintf("named %q", s.Name))
	}
	for _, f := range s.Filters {
		parts = append(parts, fmt.Sprintf("with %s in [%s]", f.Name, strings.Join(f.Values, ", ")))
	}
	parts = append(parts, "for "+s.architecture())
	if s.IncludeDeprecated {
		parts = append(parts, "(deprecated included)")
	}
	return strings.Join(parts, " ")
}

func (s Selector) architecture() string {
	if s.Architecture == "" {
		return DefaultArchitecture
	}
	return s.Architecture
}

func (s Selector) levelTag() string {
	if s.SecurityLevelTag == "" {
		return DefaultSecurityLevelTag
	}
	return s.SecurityLevelTag
}

func find(ctx context.Context, ec2c EC2API, ssmc SSMAPI, sel Selector) (*Result, error) {
	if err := sel.validate(); err != nil {
		return nil, err
	}
	var feed *Feed
	if sel.Advisories != "" {
		var err error
		if feed, err = loadAdvisories(ctx, sel.Advisories); err != nil {
			return nil, err
		}
	}
	var res *Result
	var err error
	if sel.SSMParameter != "" {
		res, err = findBySSM(ctx, ec2c, ssmc, sel)
	} else {
		res, err = findByFilters(ctx, ec2c, sel)
	}
	if err != nil {
		return nil, err
	}
	if err := classify(res, feed, sel.levelTag()); err != nil {
		return nil, err
	}
	return res, nil
}

func findByFilters(ctx context.Context, ec2c EC2API, sel Selector) (*Result, error) {
	filters := []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{sel.architecture()}}}
	if sel.Name != "" {
		filters = append(filters, ec2types.Filter{Name: aws.String("name"), Values: []string{sel.Name}})
	}
	hasState := false
	for _, f := range sel.Filters {
		filters = append(filters, ec2types.Filter{Name: aws.String(f.Name), Values: f.Values})
		hasState = hasState || f.Name == "state"
	}
	if !hasState {
		filters = append(filters, ec2types.Filter{Name: aws.String("state"), Values: []string{"available"}})
	}
	in := &ec2.DescribeImagesInput{Owners: sel.Owners, Filters: filters, IncludeDeprecated: aws.Bool(sel.IncludeDeprecated)}
	var images []Image
	pages := ec2.NewDescribeImagesPaginator(ec2c, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", sel.describe(), err)
		}
		for _, img := range page.Images {
			images = append(images, fromEC2(img))
		}
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("no image matches: searched %s", sel.describe())
	}
	sortImages(images)
	res := &Result{Image: images[0]}
	if len(images) > 1 {
		prev := images[1]
		res.Previous = &prev
	}
	return res, nil
}

func findBySSM(ctx context.Context, ec2c EC2API, ssmc SSMAPI, sel Selector) (*Result, error) {
	out, err := ssmc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(sel.SSMParameter)})
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("SSM parameter %s does not exist", sel.SSMParameter)
		}
		return nil, fmt.Errorf("read SSM parameter %s: %w", sel.SSMParameter, err)
	}
	value := strings.TrimSpace(aws.ToString(out.Parameter.Value))
	if !amiIDPattern.MatchString(value) {
		return nil, fmt.Errorf("SSM parameter %s does not hold an AMI ID (it holds %q)", sel.SSMParameter, truncate(value, 64))
	}
	img, err := describeOne(ctx, ec2c, value)
	if err != nil {
		return nil, fmt.Errorf("SSM parameter %s names %s: %w", sel.SSMParameter, value, err)
	}
	if img == nil {
		return nil, fmt.Errorf("SSM parameter %s names %s, but no such image exists", sel.SSMParameter, value)
	}
	if img.Architecture != sel.architecture() {
		return nil, fmt.Errorf("SSM parameter %s names %s (%s), whose architecture is %s, not %s; set architecture to match",
			sel.SSMParameter, img.ID, img.Name, img.Architecture, sel.architecture())
	}
	res := &Result{Image: *img}
	// The previous image is secondary: a role allowed GetParameter but not
	// GetParameterHistory still gets the current image.
	if res.Previous, err = previousFromHistory(ctx, ec2c, ssmc, sel.SSMParameter, value); err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("previous image unknown: %s", err))
	}
	return res, nil
}

// previousFromHistory returns the newest image, other than current, that an
// earlier version of the parameter named and that still exists (one
// DescribeImages for all candidates).
func previousFromHistory(ctx context.Context, ec2c EC2API, ssmc SSMAPI, name, current string) (*Image, error) {
	candidates, err := historyImageIDs(ctx, ssmc, name, current)
	if err != nil {
		return nil, err
	}
	found, err := describeIDs(ctx, ec2c, candidates)
	if err != nil {
		return nil, fmt.Errorf("describe the images earlier versions of SSM parameter %s named: %w", name, err)
	}
	for _, id := range candidates {
		if img, ok := found[id]; ok {
			return &img, nil
		}
	}
	return nil, nil
}

// historyImageIDs walks the parameter's versions from newest to oldest and
// returns the AMI IDs they held, other than current, each once, at most
// maxHistory of them.
func historyImageIDs(ctx context.Context, ssmc SSMAPI, name, current string) ([]string, error) {
	var versions []ssmtypes.ParameterHistory
	pages := ssm.NewGetParameterHistoryPaginator(ssmc, &ssm.GetParameterHistoryInput{Name: aws.String(name)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the history of SSM parameter %s: %w", name, err)
		}
		versions = append(versions, page.Parameters...)
	}
	slices.SortFunc(versions, func(a, b ssmtypes.ParameterHistory) int { return cmp.Compare(b.Version, a.Version) })
	var candidates []string
	seen := map[string]bool{current: true}
	for _, v := range versions {
		id := strings.TrimSpace(aws.ToString(v.Value))
		if seen[id] || !amiIDPattern.MatchString(id) || len(candidates) == maxHistory {
			continue
		}
		seen[id] = true
		candidates = append(candidates, id)
	}
	return candidates, nil
}

// describeOne returns the image, or nil when it does not exist.
func describeOne(ctx context.Context, ec2c EC2API, id string) (*Image, error) {
	out, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && strings.HasPrefix(apiErr.ErrorCode(), "InvalidAMIID") {
			return nil, nil
		}
		return nil, fmt.Errorf("describe image %s: %w", id, err)
	}
	if len(out.Images) == 0 {
		return nil, nil
	}
	img := fromEC2(out.Images[0])
	return &img, nil
}

func classify(res *Result, feed *Feed, levelTag string) error {
	res.SecurityLevel, res.UpdateType, res.LevelSource = securitylevel.Unknown, UpdateUnknown, "default"
	if adv := feed.Lookup(res.Image); adv != nil {
		res.SecurityLevel, res.UpdateType, res.LevelSource = adv.SecurityLevel, adv.UpdateType, "advisories"
		res.ChangelogURL, res.CVEs = adv.ChangelogURL, adv.CVEs
	}
	// A blank tag says nothing, so the feed's level stands.
	if raw, ok := res.Image.Tags[levelTag]; ok && strings.TrimSpace(raw) != "" {
		level, err := securitylevel.Parse(raw)
		if err != nil {
			return fmt.Errorf("image %s (%s) has tag %s = %q, which is not a security level (want %s)",
				res.Image.ID, res.Image.Name, levelTag, raw, securitylevel.Accepted)
		}
		res.SecurityLevel, res.LevelSource = level, "tag"
		if res.UpdateType == UpdateUnknown {
			res.UpdateType = UpdateSecurity
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
