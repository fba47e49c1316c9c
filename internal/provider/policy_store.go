package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// maxDescriptionRunes is SSM's limit on a parameter description.
const maxDescriptionRunes = 1024

// policyStore keeps policy documents in SSM parameters of the home region.
type policyStore struct {
	ssm    *ssm.Client
	region string
}

// storedPolicy is what the store read back.
type storedPolicy struct {
	ARN      string
	Document string
	Tags     map[string]string
}

// errPolicyNotFound: the parameter does not exist.
var errPolicyNotFound = errors.New("policy parameter not found")

// get reads the parameter and its tags; errPolicyNotFound when it is gone.
func (s policyStore) get(ctx context.Context, name string) (storedPolicy, error) {
	out, err := s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var notFound *ssmtypes.ParameterNotFound
	if errors.As(err, &notFound) {
		return storedPolicy{}, errPolicyNotFound
	}
	if err != nil {
		return storedPolicy{}, fmt.Errorf("read policy parameter %s in %s: %w", name, s.region, err)
	}
	tags, err := s.tags(ctx, name)
	if err != nil {
		return storedPolicy{}, err
	}
	return storedPolicy{ARN: aws.ToString(out.Parameter.ARN), Document: aws.ToString(out.Parameter.Value), Tags: tags}, nil
}

func (s policyStore) tags(ctx context.Context, name string) (map[string]string, error) {
	out, err := s.ssm.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
		ResourceId:   aws.String(name),
	})
	if err != nil {
		return nil, fmt.Errorf("list tags of policy parameter %s in %s: %w", name, s.region, err)
	}
	tags := make(map[string]string, len(out.TagList))
	for _, t := range out.TagList {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}

// create writes a new parameter with its tags; it fails if one exists, so
// two configurations never fight over one policy unnoticed.
func (s policyStore) create(ctx context.Context, name, document, description string, tags map[string]string) error {
	in := s.putInput(name, document, description)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		in.Tags = append(in.Tags, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err := s.ssm.PutParameter(ctx, in)
	var exists *ssmtypes.ParameterAlreadyExists
	if errors.As(err, &exists) {
		return fmt.Errorf("policy parameter %s already exists in %s: import it (terraform import <address> %s) or choose another name or parameter_prefix",
			name, s.region, name)
	}
	if err != nil {
		return fmt.Errorf("create policy parameter %s in %s: %w", name, s.region, err)
	}
	return nil
}

// update overwrites the parameter's value (creating it if it vanished) and
// brings its tags from oldTags to tags.
func (s policyStore) update(ctx context.Context, name, document, description string, oldTags, tags map[string]string) error {
	in := s.putInput(name, document, description)
	in.Overwrite = aws.Bool(true)
	if _, err := s.ssm.PutParameter(ctx, in); err != nil {
		return fmt.Errorf("update policy parameter %s in %s: %w", name, s.region, err)
	}
	var add []ssmtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if v, ok := oldTags[k]; !ok || v != tags[k] {
			add = append(add, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
	}
	var remove []string
	for _, k := range slices.Sorted(maps.Keys(oldTags)) {
		if _, ok := tags[k]; !ok {
			remove = append(remove, k)
		}
	}
	if len(remove) > 0 {
		if _, err := s.ssm.RemoveTagsFromResource(ctx, &ssm.RemoveTagsFromResourceInput{
			ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name), TagKeys: remove,
		}); err != nil {
			return fmt.Errorf("remove tags %v from policy parameter %s in %s: %w", remove, name, s.region, err)
		}
	}
	if len(add) > 0 {
		if _, err := s.ssm.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{
			ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name), Tags: add,
		}); err != nil {
			return fmt.Errorf("tag policy parameter %s in %s: %w", name, s.region, err)
		}
	}
	return nil
}

func (s policyStore) putInput(name, document, description string) *ssm.PutParameterInput {
	return &ssm.PutParameterInput{
		Name:     aws.String(name),
		Value:    aws.String(document),
		Type:     ssmtypes.ParameterTypeString,
		DataType: aws.String("text"),
		// Intelligent-Tiering stays standard (free) while the document fits
		// in 4 KB and moves to advanced for big price tables; a plain
		// Standard would fail on, and could never downgrade, such a parameter.
		Tier:        ssmtypes.ParameterTierIntelligentTiering,
		Description: aws.String(truncateRunes(description, maxDescriptionRunes)),
	}
}

// delete removes the parameter; one already gone is not an error.
func (s policyStore) delete(ctx context.Context, name string) error {
	_, err := s.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)})
	var notFound *ssmtypes.ParameterNotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("delete policy parameter %s in %s: %w", name, s.region, err)
	}
	return nil
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
