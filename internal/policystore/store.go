package policystore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// maxDescriptionRunes is SSM's limit on a parameter description.
const maxDescriptionRunes = 1024

func (s *Store) get(ctx context.Context, name string) (Stored, error) {
	out, err := s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var notFound *ssmtypes.ParameterNotFound
	if errors.As(err, &notFound) {
		return Stored{}, fmt.Errorf("no SSM parameter %s in %s: %w", name, s.region, ErrNotFound)
	}
	if err != nil {
		return Stored{}, fmt.Errorf("read policy parameter %s in %s: %w", name, s.region, err)
	}
	tags, err := s.tags(ctx, name)
	if err != nil {
		return Stored{}, err
	}
	return Stored{ARN: aws.ToString(out.Parameter.ARN), Document: aws.ToString(out.Parameter.Value), Tags: tags}, nil
}

func (s *Store) load(ctx context.Context, name string) (policy.Policy, error) {
	out, err := s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var notFound *ssmtypes.ParameterNotFound
	if errors.As(err, &notFound) {
		return policy.Policy{}, fmt.Errorf("policy %s does not exist (no SSM parameter %s in %s): %w", name, name, s.region, ErrNotFound)
	}
	if err != nil {
		return policy.Policy{}, fmt.Errorf("read policy parameter %s in %s: %w", name, s.region, err)
	}
	p, err := policy.ParseDocument([]byte(aws.ToString(out.Parameter.Value)))
	if err != nil {
		return policy.Policy{}, fmt.Errorf("policy %s: %w", name, err)
	}
	return p, nil
}

func (s *Store) tags(ctx context.Context, name string) (map[string]string, error) {
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

func (s *Store) create(ctx context.Context, name string, p policy.Policy, tags map[string]string) error {
	in, err := putInput(name, p)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		in.Tags = append(in.Tags, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err = s.ssm.PutParameter(ctx, in)
	var exists *ssmtypes.ParameterAlreadyExists
	if errors.As(err, &exists) {
		return fmt.Errorf("policy parameter %s in %s: %w", name, s.region, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create policy parameter %s in %s: %w", name, s.region, err)
	}
	return nil
}

func (s *Store) update(ctx context.Context, name string, p policy.Policy, oldTags, tags map[string]string) error {
	in, err := putInput(name, p)
	if err != nil {
		return err
	}
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

func putInput(name string, p policy.Policy) (*ssm.PutParameterInput, error) {
	doc, err := p.Document()
	if err != nil {
		return nil, fmt.Errorf("policy parameter %s: %w", name, err)
	}
	return &ssm.PutParameterInput{
		Name:     aws.String(name),
		Value:    aws.String(string(doc)),
		Type:     ssmtypes.ParameterTypeString,
		DataType: aws.String("text"),
		// Intelligent-Tiering stays standard (free) while the document fits
		// in 4 KB and moves to advanced for big price tables; a plain
		// Standard would fail on, and could never downgrade, such a parameter.
		Tier:        ssmtypes.ParameterTierIntelligentTiering,
		Description: aws.String(description(p)),
	}, nil
}

func (s *Store) delete(ctx context.Context, name string) error {
	_, err := s.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)})
	var notFound *ssmtypes.ParameterNotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("delete policy parameter %s in %s: %w", name, s.region, err)
	}
	return nil
}

func description(p policy.Policy) string {
	return truncateRunes(fmt.Sprintf("autoami rebuild policy %q: %s", p.Name, p.Summary()), maxDescriptionRunes)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
