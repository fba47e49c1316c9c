// Package awsclient gives every other layer of autoami its AWS clients: one set
// per target (an account, reached through an IAM role or the caller's own
// credentials, and a region), built from the provider's credentials, cached for
// the life of the process, with the account ID resolved once.
//
// It knows nothing about Terraform; the provider turns its configuration into
// Settings, and the publication layer asks the Factory for the clients of each
// target it works on.
package awsclient

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Service names an AWS service whose endpoint can be overridden.
type Service string

// The services autoami calls.
const (
	EC2 Service = "ec2"
	S3  Service = "s3"
	SSM Service = "ssm"
	STS Service = "sts"
	KMS Service = "kms"
	EBS Service = "ebs"
	IAM Service = "iam"
)

// Services lists every Service, in the order the provider documents them.
var Services = []Service{EC2, S3, SSM, STS, KMS, EBS, IAM}

// AssumeRole says which role the provider's own credentials come from.
type AssumeRole struct {
	RoleARN     string
	SessionName string
	ExternalID  string
}

// Settings are the provider-level choices that every client shares.
type Settings struct {
	// Region is the home region (content store, policies) and the default
	// region of every target that does not name one.
	Region string
	// Profile selects a profile of the shared config and credentials files.
	Profile string
	// AssumeRole, when set, is assumed from the credential chain first.
	AssumeRole *AssumeRole
	// EndpointURL replaces the endpoint of every service (for example a local
	// moto_server). Endpoints override it per service. AWS_ENDPOINT_URL and
	// AWS_ENDPOINT_URL_<SERVICE> apply when neither is set.
	EndpointURL string
	Endpoints   map[Service]string
	// MaxRetries is how many times a throttled or failed call is retried by
	// the SDK's standard retryer; 0 means DefaultMaxRetries.
	MaxRetries int
	// UserAgent is appended to every request's User-Agent (e.g. the
	// provider's name and version).
	UserAgent string
}

// ErrAssumeRole is wrapped by errors of targets whose role (or the
// provider's assume_role) could not be assumed.
var ErrAssumeRole = errors.New("cannot assume role")

// DefaultMaxRetries is used when Settings.MaxRetries is 0. It is higher than
// the SDK's default because publication fans out across many targets and
// AWS throttles bursts.
const DefaultMaxRetries = 8

// Target is where a set of clients works: an account (through RoleARN, or
// the provider's own account when RoleARN is empty) and a region (empty
// means the home region).
type Target struct {
	RoleARN string
	Region  string
}

// Clients are the service clients for one target, plus the target's
// resolved account ID.
type Clients struct {
	Target    Target
	AccountID string
	// CallerARN is the ARN GetCallerIdentity returned for these credentials.
	CallerARN string
	Config    aws.Config

	EC2 *ec2.Client
	S3  *s3.Client
	SSM *ssm.Client
	STS *sts.Client
	KMS *kms.Client
	EBS *ebs.Client
	IAM *iam.Client
}

// Factory builds and caches Clients per Target. It is safe for concurrent use.
type Factory struct{ factory }

// NewFactory checks the settings and loads the credential chain. It makes no
// network call: problems with credentials or endpoints surface, with the
// setting named, at the first For.
func NewFactory(ctx context.Context, settings Settings) (*Factory, error) {
	return newFactory(ctx, settings)
}

// For returns the clients for target, building and verifying them (one
// GetCallerIdentity) on first use.
func (f *Factory) For(ctx context.Context, target Target) (*Clients, error) {
	return f.clientsFor(ctx, target)
}

// Home returns the clients for the provider's own account in the home region.
func (f *Factory) Home(ctx context.Context) (*Clients, error) {
	return f.clientsFor(ctx, Target{})
}

// HomeRegion is the region of Settings.Region, after defaults were applied.
func (f *Factory) HomeRegion() string { return f.settings.Region }

// ValidateRegion reports whether name has the shape of an AWS region name.
func ValidateRegion(name string) error { return validateRegion(name) }

// KnownRegion reports whether name is a region this build of autoami knows.
// Unknown but well-formed names are allowed (AWS adds regions); callers warn.
func KnownRegion(name string) bool { return knownRegions[name] }
