package publisher

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// imageDataType is the SSM data type that makes AWS check a value is an AMI.
const imageDataType = "aws:ec2:image"

// writeSSMParameter writes the image ID into the parameter (type String,
// data type aws:ec2:image) and reads it back until it holds the ID: AWS
// answers the write before it validates such a value, and drops one it
// cannot validate without a word. A parameter this publication did not
// write is replaced only with Overwrite.
func (a *actor) writeSSMParameter(ctx context.Context) error {
	sp := a.pub.SSMParameter
	if sp == nil {
		return nil
	}
	c := a.aws.SSM
	value, exists, err := getParameter(ctx, c, sp.Name)
	if err != nil {
		return err
	}
	ours := false
	if exists {
		if ours, err = parameterIsOurs(ctx, c, sp.Name, a.pub.ID); err != nil {
			return err
		}
		if value == a.rec.ImageID && ours {
			return nil
		}
		if !ours && !sp.Overwrite {
			return fmt.Errorf("SSM parameter %s exists (it holds %q) and this publication did not write it: set ssm_parameter.overwrite to replace it", sp.Name, value)
		}
	}
	in := &ssm.PutParameterInput{
		Name:      aws.String(sp.Name),
		Value:     aws.String(a.rec.ImageID),
		Type:      ssmtypes.ParameterTypeString,
		DataType:  aws.String(imageDataType),
		Overwrite: aws.Bool(exists),
	}
	if !exists {
		// Tags only go with a new parameter (AWS refuses them with Overwrite).
		in.Tags = a.ssmTags()
	}
	if _, err := c.PutParameter(ctx, in); err != nil {
		return fmt.Errorf("PutParameter %s = %s: %w", sp.Name, a.rec.ImageID, err)
	}
	if exists && !ours {
		if _, err := c.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
			ResourceId: aws.String(sp.Name), Tags: a.ssmTags()}); err != nil {
			return fmt.Errorf("AddTagsToResource %s: %w", sp.Name, err)
		}
	}
	err = a.poll(ctx, StepSSMParameter, fmt.Sprintf("SSM parameter %s to hold %s", sp.Name, a.rec.ImageID), a.p.cfg.Timeouts.SSMParameter,
		func(ctx context.Context) (bool, error) {
			v, _, err := getParameter(ctx, c, sp.Name)
			return v == a.rec.ImageID, err
		})
	if err != nil {
		return fmt.Errorf("%w: AWS validates aws:ec2:image values after answering and drops one it cannot validate (is %s available in this account and region?)", err, a.rec.ImageID)
	}
	a.info(StepSSMParameter, "SSM parameter %s holds %s", sp.Name, a.rec.ImageID)
	return nil
}

func (a *actor) ssmTags() []ssmtypes.Tag {
	return []ssmtypes.Tag{
		{Key: aws.String(TagPublication), Value: aws.String(a.pub.ID)},
		{Key: aws.String(TagStream), Value: aws.String(a.pub.Stream)},
		{Key: aws.String(TagTarget), Value: aws.String(a.t.Key())},
	}
}

// getParameter reads a parameter's value; exists is false when there is none.
func getParameter(ctx context.Context, c *ssm.Client, name string) (value string, exists bool, err error) {
	out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if isCode(err, "ParameterNotFound") {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("GetParameter %s: %w", name, err)
	}
	return aws.ToString(out.Parameter.Value), true, nil
}

// parameterIsOurs reports whether the parameter carries this publication's tag.
func parameterIsOurs(ctx context.Context, c *ssm.Client, name, publication string) (bool, error) {
	out, err := c.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name)})
	if err != nil {
		return false, fmt.Errorf("ListTagsForResource %s: %w", name, err)
	}
	for _, t := range out.TagList {
		if aws.ToString(t.Key) == TagPublication && aws.ToString(t.Value) == publication {
			return true, nil
		}
	}
	return false, nil
}
