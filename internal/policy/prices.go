package policy

// builtinPrices is the estimator's price table: approximate on-demand list
// prices in USD from the AWS price pages as of 2025, for
//   - EBS snapshot storage, standard tier, per GB-month;
//   - EBS gp3 volume storage, per GB-month (the unpacker's persistent volume);
//   - one hour of a t3.small, Linux, on-demand (the unpacker instance).
//
// AWS bills GB-months of 2^30 bytes, so the figures are per GiB. Prices
// change rarely but do change, and other instance types cost more: a policy's
// prices override any entry, and the "default" entry prices regions the table
// lacks (set a little above the cheapest regions so estimates err high).
var builtinPrices = map[string]RegionPrices{
	"us-east-1":      {SnapshotGiBMonthUSD: 0.05, VolumeGiBMonthUSD: 0.08, UnpackerHourUSD: 0.0208},
	"us-east-2":      {SnapshotGiBMonthUSD: 0.05, VolumeGiBMonthUSD: 0.08, UnpackerHourUSD: 0.0208},
	"us-west-1":      {SnapshotGiBMonthUSD: 0.055, VolumeGiBMonthUSD: 0.096, UnpackerHourUSD: 0.0248},
	"us-west-2":      {SnapshotGiBMonthUSD: 0.05, VolumeGiBMonthUSD: 0.08, UnpackerHourUSD: 0.0208},
	"ca-central-1":   {SnapshotGiBMonthUSD: 0.055, VolumeGiBMonthUSD: 0.088, UnpackerHourUSD: 0.0232},
	"sa-east-1":      {SnapshotGiBMonthUSD: 0.068, VolumeGiBMonthUSD: 0.152, UnpackerHourUSD: 0.0336},
	"eu-west-1":      {SnapshotGiBMonthUSD: 0.05, VolumeGiBMonthUSD: 0.088, UnpackerHourUSD: 0.0228},
	"eu-west-2":      {SnapshotGiBMonthUSD: 0.053, VolumeGiBMonthUSD: 0.0928, UnpackerHourUSD: 0.0236},
	"eu-west-3":      {SnapshotGiBMonthUSD: 0.053, VolumeGiBMonthUSD: 0.0928, UnpackerHourUSD: 0.0236},
	"eu-central-1":   {SnapshotGiBMonthUSD: 0.054, VolumeGiBMonthUSD: 0.0952, UnpackerHourUSD: 0.024},
	"eu-north-1":     {SnapshotGiBMonthUSD: 0.0475, VolumeGiBMonthUSD: 0.0836, UnpackerHourUSD: 0.0216},
	"ap-northeast-1": {SnapshotGiBMonthUSD: 0.05, VolumeGiBMonthUSD: 0.096, UnpackerHourUSD: 0.0272},
	"ap-northeast-2": {SnapshotGiBMonthUSD: 0.05, VolumeGiBMonthUSD: 0.0912, UnpackerHourUSD: 0.026},
	"ap-southeast-1": {SnapshotGiBMonthUSD: 0.05, VolumeGiBMonthUSD: 0.096, UnpackerHourUSD: 0.0264},
	"ap-southeast-2": {SnapshotGiBMonthUSD: 0.055, VolumeGiBMonthUSD: 0.096, UnpackerHourUSD: 0.0264},
	"ap-south-1":     {SnapshotGiBMonthUSD: 0.05, VolumeGiBMonthUSD: 0.0912, UnpackerHourUSD: 0.0224},
	DefaultPricesKey: {SnapshotGiBMonthUSD: 0.055, VolumeGiBMonthUSD: 0.096, UnpackerHourUSD: 0.0264},
}

func defaultPrices() map[string]RegionPrices {
	out := make(map[string]RegionPrices, len(builtinPrices))
	for k, v := range builtinPrices {
		out[k] = v
	}
	return out
}

func (p Policy) pricesFor(region string) (RegionPrices, bool) {
	if v, ok := p.Prices[region]; ok {
		return v, true
	}
	if v, ok := builtinPrices[region]; ok {
		return v, true
	}
	if v, ok := p.Prices[DefaultPricesKey]; ok {
		return v, false
	}
	return builtinPrices[DefaultPricesKey], false
}
