package policy

import "testing"

func TestSummary(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   string
	}{
		{
			name:   "defaults",
			policy: Policy{},
			want: "critical within 4h, high within 24h, medium within 7d, low only after manual approval, unknown within 24h; " +
				"best before 30d; builds at any time; keeps 3 revisions, deregisters older ones after 30d and keeps their snapshots; no budget",
		},
		{
			name:   "custom",
			policy: customPolicy(t),
			want: "critical immediately, high within 6h, medium within 14d, low within 30d, unknown only after manual approval; " +
				"best before 14d; builds 22:00-04:30 Europe/Berlin; keeps 5 revisions, deregisters older ones at once and deletes their snapshots; " +
				"budget $100.00/month (+$50.00 for critical rebuilds); custom prices for 1 region",
		},
		{
			name: "one revision, never deregistered, budget without urgent room",
			policy: Policy{
				Retention: Retention{KeepRevisions: 1, DeregisterAfter: Manual(), DeleteSnapshots: true},
				Budget:    &Budget{MonthlyUSD: 12.5},
			},
			want: "critical within 4h, high within 24h, medium within 7d, low only after manual approval, unknown within 24h; " +
				"best before 30d; builds at any time; keeps 1 revision, never deregisters older ones; budget $12.50/month",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.policy.Summary(); got != tc.want {
				t.Errorf("Summary() =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
