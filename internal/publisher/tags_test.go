package publisher

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
)

// A tag dropped from the configuration (RemovedTags) is deleted from the
// image and its snapshot when the publication runs again; the tags it
// still sets and a tag set out of band stay.
func TestRemovedTagsAreDeleted(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	target := e.targets(accountA)[0]
	rev := e.upload("web/tags", trees.Rev1)
	pub := testPublication("pub-tags", "web/tags", rev)
	pub.Tags = map[string]string{"team": "web", "cost-center": "42"}
	p := e.publisher()
	out := p.Publish(e.ctx, pub, []Target{target})
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	rec := out.Results[0].Record
	c := e.ec2In(target.AccountID, target.Region)
	if _, err := c.CreateTags(e.ctx, &ec2.CreateTagsInput{Resources: []string{rec.ImageID}, Tags: ec2Tags(map[string]string{"set-out-of-band": "yes"})}); err != nil {
		t.Fatal(err)
	}

	pub.Tags = map[string]string{"team": "web"}
	pub.RemovedTags = []string{"cost-center"}
	if err := p.Publish(e.ctx, pub, []Target{target}).Error(); err != nil {
		t.Fatal(err)
	}
	tagsOf := func(id string) map[string]string {
		t.Helper()
		out, err := c.DescribeTags(e.ctx, &ec2.DescribeTagsInput{Filters: nil})
		if err != nil {
			t.Fatal(err)
		}
		tags := map[string]string{}
		for _, d := range out.Tags {
			if *d.ResourceId == id {
				tags[*d.Key] = *d.Value
			}
		}
		return tags
	}
	img, snap := tagsOf(rec.ImageID), tagsOf(rec.SnapshotID)
	if _, ok := img["cost-center"]; ok {
		t.Errorf("image %s still has the removed tag cost-center: %v", rec.ImageID, img)
	}
	if _, ok := snap["cost-center"]; ok {
		t.Errorf("snapshot %s still has the removed tag cost-center: %v", rec.SnapshotID, snap)
	}
	if img["team"] != "web" || snap["team"] != "web" || img[TagPublication] != "pub-tags" || img["set-out-of-band"] != "yes" {
		t.Errorf("tags kept: image %v, snapshot %v; want team, autoami's own and the out-of-band tag", img, snap)
	}
}
