package publisher

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ownTags are the tags naming what a resource belongs to.
func (a *actor) ownTags(role string, withRevision bool) map[string]string {
	tags := map[string]string{
		TagStream:      a.pub.Stream,
		TagTarget:      a.t.Key(),
		TagPublication: a.pub.ID,
		TagRole:        role,
	}
	if withRevision {
		tags[TagRevision] = a.pub.Revision
	}
	return tags
}

// allTags are the user's tags plus autoami's own (which win) and a Name.
func (a *actor) allTags(role string, withRevision bool, name string) map[string]string {
	tags := maps.Clone(a.pub.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	if _, ok := tags["Name"]; !ok && name != "" {
		tags["Name"] = name
	}
	maps.Copy(tags, a.ownTags(role, withRevision))
	return tags
}

func ec2Tags(tags map[string]string) []ec2types.Tag {
	out := make([]ec2types.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func tagSpec(rt ec2types.ResourceType, tags map[string]string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: ec2Tags(tags)}}
}

// tagFilters select resources carrying every tag.
func tagFilters(tags map[string]string) []ec2types.Filter {
	out := make([]ec2types.Filter, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	return out
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// removeTags deletes the tags the configuration dropped from the image and
// its snapshot; keys still set (by the user or by autoami) are kept.
func (a *actor) removeTags(ctx context.Context) error {
	keep := a.allTags(roleImage, true, a.rec.Name)
	var drop []ec2types.Tag
	for _, k := range a.pub.RemovedTags {
		if _, ok := keep[k]; !ok {
			drop = append(drop, ec2types.Tag{Key: aws.String(k)})
		}
	}
	if len(drop) == 0 {
		return nil
	}
	ids := []string{a.rec.ImageID}
	if a.rec.SnapshotID != "" {
		ids = append(ids, a.rec.SnapshotID)
	}
	if _, err := a.aws.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: drop}); err != nil {
		return fmt.Errorf("DeleteTags %v on %v: %w", tagKeys(drop), ids, err)
	}
	return nil
}

func tagKeys(tags []ec2types.Tag) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = aws.ToString(t.Key)
	}
	return out
}
