package moto

import (
	"context"
	"fmt"
	"time"
)

// Organization is an AWS organization of the test world, for launch
// permissions granted to an organization or an organizational unit
// (ModifyImageAttribute's OrganizationArn / OrganizationalUnitArn): an image
// shared with it is visible to, launchable and copyable by its accounts.
type Organization struct {
	// ARN is arn:aws:organizations::<management account>:organization/o-<10
	// to 32 of a-z, 0-9>. The management account belongs to the organization.
	ARN string `json:"arn"`
	// Accounts are further member accounts (12 digits) outside any OU.
	Accounts []string `json:"accounts,omitempty"`
	// OUs are the organization's organizational units (not nested).
	OUs []OrganizationalUnit `json:"ous,omitempty"`
}

// OrganizationalUnit is an OU of an Organization; its accounts are members of
// the organization too.
type OrganizationalUnit struct {
	// ARN is arn:aws:organizations::<management account>:ou/o-.../ou-<4 to
	// 32>-<8 to 32>, of the organization it is listed in.
	ARN string `json:"arn"`
	// Accounts are the OU's member accounts (12 digits).
	Accounts []string `json:"accounts,omitempty"`
}

// SetOrganizations tells the world which accounts belong to which
// organization and OU, replacing what it was told before; an account may be in
// one organization only. Lasts until Reset. The same is served as POST
// /autoami-harness/organizations with {"organizations": [...]}.
func (s *Server) SetOrganizations(ctx context.Context, orgs ...Organization) error {
	if orgs == nil {
		orgs = []Organization{}
	}
	return s.control(ctx, "organizations", map[string]any{"organizations": orgs}, nil)
}

// SetDeregistrationCooldown sets how long deregistration protection enabled
// WithCooldown keeps an image from being deregistered after the protection is
// disabled (AWS: 24 hours, the start value). It applies to cooldowns already
// running too, so zero ends them at once. Lasts until Reset.
func (s *Server) SetDeregistrationCooldown(ctx context.Context, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("set deregistration cooldown: %s is negative", d)
	}
	return s.control(ctx, "deregistration-cooldown", map[string]any{"seconds": d.Seconds()}, nil)
}
