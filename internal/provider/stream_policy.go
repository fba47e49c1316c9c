package provider

import (
	"context"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// loadPolicy reads the policy an image stream names by policy_id: the id of
// an autoami_policy, which is the SSM parameter (in the home region) holding
// its document. An empty id is the default policy.
func (r *imageStreamResource) loadPolicy(ctx context.Context, id string) (policy.Policy, error) {
	if id == "" {
		return policy.Default(), nil
	}
	store, err := policyStoreOf(ctx, r.data)
	if err != nil {
		return policy.Policy{}, err
	}
	return store.Load(ctx, id)
}
