package policy

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestEstimateMonthlyCost(t *testing.T) {
	tests := []struct {
		name     string
		in       CostInput
		policy   Policy
		snapshot float64
		volume   float64
		unpacker float64
		defaults []string
	}{
		{
			// Per us-east-1 target: 24 GiB of snapshots × 0.05 = 1.20,
			// 8 GiB volume × 0.08 = 0.64, 10 h × 0.0208 = 0.208.
			// eu-central-1: 24 × 0.054 = 1.296, 8 × 0.0952 = 0.7616, 10 × 0.024 = 0.24.
			name:     "three targets, full copies",
			in:       CostInput{Regions: []string{"us-east-1", "us-east-1", "eu-central-1"}, Revisions: 3, RevisionGiB: 8, UnpackerHoursPerMonth: 10},
			snapshot: 3.70, volume: 2.04, unpacker: 0.66,
		},
		{
			// 8 + 2 × 0.5 = 9 GiB stored; explicit 20 GiB volume.
			name:     "incremental snapshots",
			in:       CostInput{Regions: []string{"us-east-1"}, Revisions: 3, RevisionGiB: 8, ChangedGiB: 0.5, VolumeGiB: 20},
			snapshot: 0.45, volume: 1.60, unpacker: 0,
		},
		{
			// Changed larger than the revision is capped at the revision size.
			name:     "changed size capped",
			in:       CostInput{Regions: []string{"us-east-1"}, Revisions: 2, RevisionGiB: 10, ChangedGiB: 50},
			snapshot: 1.00, volume: 0.80,
		},
		{
			// Revisions 0 takes the policy's keep_revisions (5): 5 × 10 × 0.05.
			name:     "revisions from the policy",
			in:       CostInput{Regions: []string{"us-west-2"}, RevisionGiB: 10},
			policy:   Policy{Retention: Retention{KeepRevisions: 5}},
			snapshot: 2.50, volume: 0.80,
		},
		{
			name: "policy override replaces the region's entry",
			in:   CostInput{Regions: []string{"us-east-1"}, Revisions: 1, RevisionGiB: 10, UnpackerHoursPerMonth: 100},
			policy: Policy{Prices: map[string]RegionPrices{
				"us-east-1": {SnapshotGiBMonthUSD: 0.1, VolumeGiBMonthUSD: 0.2, UnpackerHourUSD: 0.5},
			}},
			snapshot: 1.00, volume: 2.00, unpacker: 50,
		},
		{
			// Built-in default entry: 0.055, 0.096, 0.0264.
			name:     "unknown region uses the default entry and is reported",
			in:       CostInput{Regions: []string{"xx-test-1", "xx-test-1", "us-east-1"}, Revisions: 1, RevisionGiB: 10, UnpackerHoursPerMonth: 10},
			snapshot: 1.60, volume: 2.72, unpacker: 0.74,
			defaults: []string{"xx-test-1"},
		},
		{
			name:     "the policy can override the default entry",
			in:       CostInput{Regions: []string{"xx-test-1"}, Revisions: 1, RevisionGiB: 10},
			policy:   Policy{Prices: map[string]RegionPrices{DefaultPricesKey: {SnapshotGiBMonthUSD: 1, VolumeGiBMonthUSD: 1}}},
			snapshot: 10, volume: 10,
			defaults: []string{"xx-test-1"},
		},
		{
			name: "no targets cost nothing",
			in:   CostInput{Revisions: 3, RevisionGiB: 8, UnpackerHoursPerMonth: 10},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			est, err := EstimateMonthlyCost(tc.in, tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			if est.SnapshotUSD != tc.snapshot || est.VolumeUSD != tc.volume || est.UnpackerUSD != tc.unpacker {
				t.Errorf("snapshot, volume, unpacker = %v, %v, %v; want %v, %v, %v",
					est.SnapshotUSD, est.VolumeUSD, est.UnpackerUSD, tc.snapshot, tc.volume, tc.unpacker)
			}
			if want := math.Round((tc.snapshot+tc.volume+tc.unpacker)*100) / 100; est.TotalUSD != want {
				t.Errorf("total = %v, want %v", est.TotalUSD, want)
			}
			if !slices.Equal(est.DefaultPricedRegions, tc.defaults) {
				t.Errorf("DefaultPricedRegions = %v, want %v", est.DefaultPricedRegions, tc.defaults)
			}
		})
	}
}

func TestEstimateMonthlyCostErrors(t *testing.T) {
	tests := []struct {
		in   CostInput
		want string
	}{
		{CostInput{Revisions: -1}, "revisions -1 is negative"},
		{CostInput{RevisionGiB: -1}, "revision size"},
		{CostInput{RevisionGiB: math.NaN()}, "revision size"},
		{CostInput{ChangedGiB: math.Inf(1)}, "changed size"},
		{CostInput{VolumeGiB: -2}, "volume size"},
		{CostInput{UnpackerHoursPerMonth: 745}, "unpacker hours"},
		{CostInput{Regions: []string{"us-east-1", " "}}, "empty region"},
	}
	for _, tc := range tests {
		if _, err := EstimateMonthlyCost(tc.in, Policy{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EstimateMonthlyCost(%+v) error = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestPriceTable(t *testing.T) {
	table := DefaultPrices()
	if _, ok := table[DefaultPricesKey]; !ok {
		t.Fatal("the price table has no default entry")
	}
	for region, p := range table {
		if p.SnapshotGiBMonthUSD <= 0 || p.VolumeGiBMonthUSD <= 0 || p.UnpackerHourUSD <= 0 {
			t.Errorf("%s: a price is not positive: %+v", region, p)
		}
		// Sanity bounds so a typo (a factor of 10) is caught.
		if p.SnapshotGiBMonthUSD > 0.1 || p.VolumeGiBMonthUSD > 0.2 || p.UnpackerHourUSD > 0.05 {
			t.Errorf("%s: a price is implausibly high: %+v", region, p)
		}
	}
	// DefaultPrices returns a copy.
	table["us-east-1"] = RegionPrices{}
	if got, exact := (Policy{}).PricesFor("us-east-1"); !exact || got.SnapshotGiBMonthUSD != 0.05 {
		t.Errorf("changing DefaultPrices' result changed the table: %+v", got)
	}
	if _, exact := (Policy{}).PricesFor("xx-test-1"); exact {
		t.Errorf("an unknown region must not be priced exactly")
	}
}
