package baseimage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func (e *MissingError) Error() string {
	return fmt.Sprintf("no image named %q %s in %s", e.Name, e.Source, e.Region)
}

func findNamed(ctx context.Context, sel Selector, name string, regions []RegionClients) (map[string]Image, error) {
	if err := sel.validate(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("no base image name to look up in each region")
	}
	found := make(map[string]Image, len(regions))
	for _, rc := range regions {
		var img Image
		var err error
		if sel.SSMParameter != "" {
			img, err = namedBySSM(ctx, rc, sel.SSMParameter, name)
		} else {
			img, err = namedByOwners(ctx, rc, sel, name)
		}
		if err != nil {
			return nil, err
		}
		found[rc.Region] = img
	}
	return found, nil
}

// namedByOwners asks EC2 for the image called name among the selector's
// owners only: an image of that name from anyone else is never a candidate,
// whatever its date (the name-confusion attack on AMI lookups).
func namedByOwners(ctx context.Context, rc RegionClients, sel Selector, name string) (Image, error) {
	in := &ec2.DescribeImagesInput{
		Owners: sel.Owners,
		Filters: []ec2types.Filter{
			{Name: aws.String("name"), Values: []string{name}},
			{Name: aws.String("architecture"), Values: []string{sel.architecture()}},
		},
		// A stream may stay on an image its vendor has since deprecated.
		IncludeDeprecated: aws.Bool(true),
	}
	owners := strings.Join(sel.Owners, ", ")
	var images []Image
	pages := ec2.NewDescribeImagesPaginator(rc.EC2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return Image{}, fmt.Errorf("look up image %q owned by %s in %s: %w", name, owners, rc.Region, err)
		}
		for _, img := range page.Images {
			// The filter matches wildcards; only the exact name counts.
			if aws.ToString(img.Name) == name {
				images = append(images, fromEC2(img))
			}
		}
	}
	if len(images) == 0 {
		return Image{}, &MissingError{Region: rc.Region, Name: name, Source: "owned by " + owners}
	}
	sortImages(images)
	return images[0], nil
}

// namedBySSM reads the selector's parameter in the region and returns the
// image of that name it names now or named in an earlier version, so the
// image comes from whoever writes the parameter there, never from a search
// by name.
func namedBySSM(ctx context.Context, rc RegionClients, parameter, name string) (Image, error) {
	out, err := rc.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(parameter)})
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return Image{}, fmt.Errorf("SSM parameter %s does not exist in %s", parameter, rc.Region)
		}
		return Image{}, fmt.Errorf("read SSM parameter %s in %s: %w", parameter, rc.Region, err)
	}
	current := strings.TrimSpace(aws.ToString(out.Parameter.Value))
	if !amiIDPattern.MatchString(current) {
		return Image{}, fmt.Errorf("SSM parameter %s in %s does not hold an AMI ID (it holds %q)", parameter, rc.Region, truncate(current, 64))
	}
	img, err := describeOne(ctx, rc.EC2, current)
	if err != nil {
		return Image{}, fmt.Errorf("SSM parameter %s in %s names %s: %w", parameter, rc.Region, current, err)
	}
	if img != nil && img.Name == name {
		return *img, nil
	}
	// The stream is still on an older image (a deferred or unapproved
	// update): it is among the images earlier versions named.
	candidates, err := historyImageIDs(ctx, rc.SSM, parameter, current)
	if err != nil {
		return Image{}, fmt.Errorf("SSM parameter %s in %s names %s now, not an image called %q, and its history could not be read to find that one: %w",
			parameter, rc.Region, current, name, err)
	}
	earlier, err := describeIDs(ctx, rc.EC2, candidates)
	if err != nil {
		return Image{}, fmt.Errorf("describe the images earlier versions of SSM parameter %s in %s named: %w", parameter, rc.Region, err)
	}
	for _, id := range candidates {
		if img, ok := earlier[id]; ok && img.Name == name {
			return img, nil
		}
	}
	return Image{}, &MissingError{Region: rc.Region, Name: name, Source: "named by SSM parameter " + parameter}
}

// describeIDs describes existing images among ids (deprecated included),
// keyed by ID; IDs of images that no longer exist are left out.
func describeIDs(ctx context.Context, ec2c EC2API, ids []string) (map[string]Image, error) {
	found := map[string]Image{}
	if len(ids) == 0 {
		return found, nil
	}
	out, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Filters:           []ec2types.Filter{{Name: aws.String("image-id"), Values: ids}},
		IncludeDeprecated: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	for _, img := range out.Images {
		found[aws.ToString(img.ImageId)] = fromEC2(img)
	}
	return found, nil
}
