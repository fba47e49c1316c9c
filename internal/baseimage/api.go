// Package baseimage finds the newest base image (AMI) for a selector and says
// what changed since the one before it: the previous image, the update type,
// the security level, a changelog link and CVEs.
//
// The level comes from a tag on the image or, failing that, from an advisory
// feed (see advisories.go for its format); the tag wins. The package knows no
// Terraform: the autoami_latest_base_image data source and the image-stream
// resource both call Find.
package baseimage

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

// DefaultArchitecture is the architecture a Selector matches when it names none.
const DefaultArchitecture = "x86_64"

// DefaultSecurityLevelTag is the tag key carrying an image's security level.
const DefaultSecurityLevelTag = "autoami:security-level"

// Update types.
const (
	UpdateSecurity    = "security"
	UpdateFeature     = "feature"
	UpdateMaintenance = "maintenance"
	UpdateUnknown     = "unknown"
)

// UpdateTypes lists the valid update types.
var UpdateTypes = []string{UpdateSecurity, UpdateFeature, UpdateMaintenance, UpdateUnknown}

// Filter is one DescribeImages filter.
type Filter struct {
	Name   string
	Values []string
}

// Selector says which images are candidates. Exactly one of SSMParameter or
// Owners must be set; Name and Filters need Owners.
type Selector struct {
	SSMParameter      string
	Owners            []string
	Name              string
	Filters           []Filter
	Architecture      string
	IncludeDeprecated bool
	// Advisories is a path or an http(s) URL of an advisory feed; empty
	// means none.
	Advisories string
	// SecurityLevelTag is the tag key carrying the level; empty means
	// DefaultSecurityLevelTag.
	SecurityLevelTag string
}

// Image is what autoami needs to know of one AMI.
type Image struct {
	ID              string
	Name            string
	Description     string
	OwnerID         string
	CreationDate    time.Time
	Architecture    string
	BootMode        string
	ENASupport      bool
	RootDeviceName  string
	RootSnapshotID  string
	DeprecationTime *time.Time
	Tags            map[string]string
}

// Result is the newest image, the one before it, and what changed.
type Result struct {
	Image Image
	// Previous is the newest image older than Image among the same matches
	// (for an SSM parameter: the image its previous version named); nil when
	// there is none.
	Previous   *Image
	UpdateType string
	// SecurityLevel is canonical: vendor words on tags and in feeds
	// ("important", "moderate", "negligible") are mapped by
	// securitylevel.Parse.
	SecurityLevel securitylevel.Level
	ChangelogURL  string
	CVEs          []string
	// LevelSource says where SecurityLevel came from: "tag", "advisories" or
	// "default".
	LevelSource string
	// Warnings are problems that did not stop the lookup (e.g. an SSM
	// parameter's history could not be read, so Previous is unknown).
	Warnings []string
}

// EC2API is the part of the EC2 client Find uses.
type EC2API interface {
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
}

// SSMAPI is the part of the SSM client Find uses.
type SSMAPI interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	GetParameterHistory(context.Context, *ssm.GetParameterHistoryInput, ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error)
}

// Find resolves sel to the newest image and its predecessor, and classifies
// the update. Errors name what was searched.
func Find(ctx context.Context, ec2c EC2API, ssmc SSMAPI, sel Selector) (*Result, error) {
	return find(ctx, ec2c, ssmc, sel)
}

// RegionClients are the clients of one region, for FindNamed.
type RegionClients struct {
	Region string
	EC2    EC2API
	SSM    SSMAPI
}

// FindNamed returns, for each region, the image called name that sel vouches
// for there: for an owners selector, the newest image of that exact name
// among sel's owners (never another account's image of the same name, which
// anyone can register and make public); for an SSM parameter selector, the
// image of that name the same parameter, read in that region, names now or
// named in an earlier version. AMI IDs differ per region, so a stream names
// its base image by name and resolves the IDs here. A region without such an
// image is a *MissingError naming the region, the owners (or parameter) and
// the name.
func FindNamed(ctx context.Context, sel Selector, name string, regions []RegionClients) (map[string]Image, error) {
	return findNamed(ctx, sel, name, regions)
}

// MissingError is FindNamed's answer for a region that has no image of the
// name from the selector's owners or parameter.
type MissingError struct {
	Region string
	Name   string
	// Source says whose images were searched: "owned by amazon" or "named
	// by SSM parameter /x".
	Source string
}

// Validate checks a selector's shape without calling AWS (used at plan time).
func (s Selector) Validate() error { return s.validate() }

// Describe renders the selector for messages ("SSM parameter /x", "images
// owned by amazon named al2023-*").
func (s Selector) Describe() string { return s.describe() }

// LoadAdvisories reads and checks an advisory feed from a path or URL.
func LoadAdvisories(ctx context.Context, location string) (*Feed, error) {
	return loadAdvisories(ctx, location)
}

// Sort orders images newest first: by CreationDate, ties broken by Name, then
// ID, all descending. The order is deterministic for any input order.
func Sort(images []Image) { sortImages(images) }
