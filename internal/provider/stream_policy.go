package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// loadPolicy reads the policy an image stream names by policy_id: the id of
// an autoami_policy, which is the SSM parameter (in the home region) holding
// its document. An empty id is the default policy.
func (r *imageStreamResource) loadPolicy(ctx context.Context, id string) (policy.Policy, error) {
	return loadPolicyByID(ctx, r.data, id)
}

func loadPolicyByID(ctx context.Context, data *providerData, id string) (policy.Policy, error) {
	if id == "" {
		return policy.Default(), nil
	}
	clients, err := data.clients.Home(ctx)
	if err != nil {
		return policy.Policy{}, err
	}
	stored, err := policyStore{ssm: clients.SSM, region: clients.Target.Region}.get(ctx, id)
	if errors.Is(err, errPolicyNotFound) {
		return policy.Policy{}, fmt.Errorf("policy %s does not exist (no SSM parameter %s in %s)", id, id, clients.Target.Region)
	}
	if err != nil {
		return policy.Policy{}, err
	}
	p, err := policy.ParseDocument([]byte(stored.Document))
	if err != nil {
		return policy.Policy{}, fmt.Errorf("policy %s: %w", id, err)
	}
	return p, nil
}
