// Package policystore keeps autoami's rebuild policies where every other
// part of autoami reads them: each policy is a JSON document
// (policy.Policy.Document) in an SSM parameter of the home region, tagged,
// with the one-line summary as the parameter's description, so it can be
// read and audited outside Terraform. The autoami_policy resource writes
// policies through a Store; image streams and the publisher read them with
// Load. The package knows no Terraform.
package policystore

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// SSMAPI is the part of the SSM client a Store uses.
type SSMAPI interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameter(context.Context, *ssm.DeleteParameterInput, ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
	ListTagsForResource(context.Context, *ssm.ListTagsForResourceInput, ...func(*ssm.Options)) (*ssm.ListTagsForResourceOutput, error)
	AddTagsToResource(context.Context, *ssm.AddTagsToResourceInput, ...func(*ssm.Options)) (*ssm.AddTagsToResourceOutput, error)
	RemoveTagsFromResource(context.Context, *ssm.RemoveTagsFromResourceInput, ...func(*ssm.Options)) (*ssm.RemoveTagsFromResourceOutput, error)
}

// Store reads and writes policy parameters in one region.
type Store struct {
	ssm    SSMAPI
	region string
}

// New returns a store on the SSM client of region (named in errors).
func New(client SSMAPI, region string) *Store { return &Store{ssm: client, region: region} }

// Region is the region the store's parameters live in.
func (s *Store) Region() string { return s.region }

// Stored is a policy parameter as read back.
type Stored struct {
	ARN string
	// Document is the parameter's value, as stored (it may have been
	// changed outside autoami; ParseDocument checks it).
	Document string
	Tags     map[string]string
}

// ErrNotFound is wrapped by the errors for a parameter that does not exist.
var ErrNotFound = errors.New("policy parameter not found")

// ErrExists is wrapped by Create's error for a parameter that already exists.
var ErrExists = errors.New("already exists")

// Get reads the parameter name and its tags. An absent parameter is an error
// wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Stored, error) { return s.get(ctx, name) }

// Load reads and parses the policy stored under name (an autoami_policy's
// id). An absent parameter is an error wrapping ErrNotFound that names the
// parameter and region; a document that is not a valid policy is an error
// naming the policy and the offending field.
func (s *Store) Load(ctx context.Context, name string) (policy.Policy, error) {
	return s.load(ctx, name)
}

// Create writes a new parameter holding p's document, described by p's
// summary and tagged with tags. It fails (wrapping ErrExists) when the
// parameter exists, so two configurations never fight over one policy
// unnoticed.
func (s *Store) Create(ctx context.Context, name string, p policy.Policy, tags map[string]string) error {
	return s.create(ctx, name, p, tags)
}

// Update overwrites the parameter with p's document (recreating it if it
// vanished) and brings its tags from oldTags to tags.
func (s *Store) Update(ctx context.Context, name string, p policy.Policy, oldTags, tags map[string]string) error {
	return s.update(ctx, name, p, oldTags, tags)
}

// Delete removes the parameter; one already gone is not an error.
func (s *Store) Delete(ctx context.Context, name string) error { return s.delete(ctx, name) }

// Description is the parameter description of p: what it is and its rules,
// cut to SSM's limit.
func Description(p policy.Policy) string { return description(p) }
