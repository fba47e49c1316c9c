package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

func estimate(in CostInput, p Policy) (Estimate, error) {
	p = p.withDefaults()
	revisions := in.Revisions
	if revisions == 0 {
		revisions = p.Retention.KeepRevisions
	}
	switch {
	case revisions < 0:
		return Estimate{}, fmt.Errorf("cost estimate: revisions %d is negative", in.Revisions)
	case badAmount(in.RevisionGiB):
		return Estimate{}, fmt.Errorf("cost estimate: revision size %v GiB is not a size (want ≥ 0)", in.RevisionGiB)
	case badAmount(in.ChangedGiB):
		return Estimate{}, fmt.Errorf("cost estimate: changed size %v GiB is not a size (want ≥ 0)", in.ChangedGiB)
	case badAmount(in.VolumeGiB):
		return Estimate{}, fmt.Errorf("cost estimate: volume size %v GiB is not a size (want ≥ 0)", in.VolumeGiB)
	case badAmount(in.UnpackerHoursPerMonth) || in.UnpackerHoursPerMonth > 744:
		return Estimate{}, fmt.Errorf("cost estimate: unpacker hours %v per month not between 0 and 744", in.UnpackerHoursPerMonth)
	}
	// Snapshots are incremental: the first revision stores everything, each
	// later one what it changed. Without a change size, assume full copies.
	storedGiB := float64(revisions) * in.RevisionGiB
	if in.ChangedGiB > 0 && revisions > 0 {
		storedGiB = in.RevisionGiB + float64(revisions-1)*math.Min(in.ChangedGiB, in.RevisionGiB)
	}
	volumeGiB := in.VolumeGiB
	if volumeGiB == 0 {
		volumeGiB = in.RevisionGiB
	}
	var est Estimate
	for _, region := range in.Regions {
		if strings.TrimSpace(region) == "" {
			return Estimate{}, fmt.Errorf("cost estimate: empty region name among targets")
		}
		prices, exact := p.pricesFor(region)
		if !exact && !slices.Contains(est.DefaultPricedRegions, region) {
			est.DefaultPricedRegions = append(est.DefaultPricedRegions, region)
		}
		est.SnapshotUSD += storedGiB * prices.SnapshotGiBMonthUSD
		est.VolumeUSD += volumeGiB * prices.VolumeGiBMonthUSD
		est.UnpackerUSD += in.UnpackerHoursPerMonth * prices.UnpackerHourUSD
	}
	// Round each part to cents and add the rounded parts, so the figures a
	// user sees always sum up.
	est.SnapshotUSD = cents(est.SnapshotUSD)
	est.VolumeUSD = cents(est.VolumeUSD)
	est.UnpackerUSD = cents(est.UnpackerUSD)
	est.TotalUSD = cents(est.SnapshotUSD + est.VolumeUSD + est.UnpackerUSD)
	return est, nil
}

func badAmount(v float64) bool {
	return math.IsNaN(v) || math.IsInf(v, 0) || v < 0
}

func cents(v float64) float64 {
	return math.Round(v*100) / 100
}
