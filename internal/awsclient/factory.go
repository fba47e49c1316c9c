package awsclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
)

// Timeouts that keep a misconfigured endpoint from hanging a plan for
// minutes: connecting and the TLS handshake are quick or broken.
const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	// identityTimeout bounds the first call to a target, which also proves
	// the endpoint is reachable and the credentials (or role) work.
	identityTimeout = 45 * time.Second
	// identityAttempts is deliberately small for errors other than
	// throttling: an unreachable endpoint or an unassumable role does not
	// get better with retries (quickRetryer).
	identityAttempts = 2
)

// roleSessionName is used when assuming a target's role.
const roleSessionName = "autoami"

type factory struct {
	settings Settings
	base     aws.Config

	mu      sync.Mutex
	targets map[Target]*targetEntry
}

type targetEntry struct {
	mu      sync.Mutex
	clients *Clients
	// err is kept too: a wrong endpoint or an unassumable role does not get
	// better within one Terraform run, and every caller waiting on this
	// target should get the answer at once rather than retry in turn.
	err error
}

func newFactory(ctx context.Context, settings Settings) (*Factory, error) {
	if settings.Region != "" {
		if err := validateRegion(settings.Region); err != nil {
			return nil, fmt.Errorf("region: %w", err)
		}
	}
	for svc, url := range settings.Endpoints {
		if err := validateEndpoint(url); err != nil {
			return nil, fmt.Errorf("endpoints.%s: %w", svc, err)
		}
	}
	if settings.EndpointURL != "" {
		if err := validateEndpoint(settings.EndpointURL); err != nil {
			return nil, fmt.Errorf("endpoint_url: %w", err)
		}
	}
	maxRetries := settings.MaxRetries
	if maxRetries <= 0 {
		maxRetries = DefaultMaxRetries
	}
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(t *http.Transport) { t.TLSHandshakeTimeout = handshakeTimeout })

	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxRetries + 1
				o.MaxBackoff = 30 * time.Second
			})
		}),
	}
	if settings.Region != "" {
		opts = append(opts, config.WithRegion(settings.Region))
	}
	if settings.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(settings.Profile))
	}
	if settings.UserAgent != "" {
		name, version, _ := strings.Cut(settings.UserAgent, "/")
		opts = append(opts, config.WithAPIOptions([]func(*middleware.Stack) error{
			awsmiddleware.AddUserAgentKeyValue(name, version),
		}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		if settings.Profile != "" {
			return nil, fmt.Errorf("profile %q: %w", settings.Profile, err)
		}
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if err := validateRegion(cfg.Region); err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	settings.Region = cfg.Region

	// Clients built from Clients.Config elsewhere must reach the same place.
	if settings.EndpointURL != "" {
		cfg.BaseEndpoint = aws.String(settings.EndpointURL)
	}
	f := &Factory{factory{settings: settings, targets: map[Target]*targetEntry{}}}
	if ar := settings.AssumeRole; ar != nil && ar.RoleARN != "" {
		stsClient := sts.NewFromConfig(cfg, f.assumeRoleSTSOptions)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, ar.RoleARN,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = roleSessionName
				if ar.SessionName != "" {
					o.RoleSessionName = ar.SessionName
				}
				if ar.ExternalID != "" {
					o.ExternalID = aws.String(ar.ExternalID)
				}
			}))
	}
	f.base = cfg
	return f, nil
}

func (f *factory) clientsFor(ctx context.Context, target Target) (*Clients, error) {
	if target.Region == "" {
		target.Region = f.settings.Region
	}
	if err := validateRegion(target.Region); err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	f.mu.Lock()
	entry, ok := f.targets[target]
	if !ok {
		entry = &targetEntry{}
		f.targets[target] = entry
	}
	f.mu.Unlock()

	// One build per target, even when many goroutines ask at once.
	entry.mu.Lock()
	defer entry.mu.Unlock()
	if entry.clients != nil || entry.err != nil {
		return entry.clients, entry.err
	}
	clients, err := f.build(ctx, target)
	if errors.Is(err, context.Canceled) {
		return nil, err // the caller gave up: not kept, the next one may try again
	}
	entry.clients, entry.err = clients, err
	return entry.clients, entry.err
}

func (f *factory) build(ctx context.Context, target Target) (*Clients, error) {
	if target.RoleARN != "" {
		// The provider's own credentials first, so that their failure is
		// reported as theirs and not as the target role's.
		if _, err := f.clientsFor(ctx, Target{}); err != nil {
			return nil, err
		}
	}
	cfg := f.base.Copy()
	cfg.Region = target.Region
	if target.RoleARN != "" {
		stsClient := sts.NewFromConfig(cfg, f.assumeRoleSTSOptions)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, target.RoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = roleSessionName }))
	}
	c := &Clients{
		Target: target,
		Config: cfg,
		EC2:    ec2.NewFromConfig(cfg, func(o *ec2.Options) { f.override(EC2, &o.BaseEndpoint) }),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			f.override(S3, &o.BaseEndpoint)
			// Custom endpoints (moto, MinIO, VPC endpoints by URL) rarely
			// serve virtual-hosted bucket names.
			o.UsePathStyle = o.BaseEndpoint != nil
			// Objects autoami stores carry their own SHA-256; the SDK's note
			// about responses without a checksum is noise on every GET.
			o.DisableLogOutputChecksumValidationSkipped = true
		}),
		SSM: ssm.NewFromConfig(cfg, func(o *ssm.Options) { f.override(SSM, &o.BaseEndpoint) }),
		STS: sts.NewFromConfig(cfg, f.stsOptions),
		KMS: kms.NewFromConfig(cfg, func(o *kms.Options) { f.override(KMS, &o.BaseEndpoint) }),
		EBS: ebs.NewFromConfig(cfg, func(o *ebs.Options) { f.override(EBS, &o.BaseEndpoint) }),
		IAM: iam.NewFromConfig(cfg, func(o *iam.Options) { f.override(IAM, &o.BaseEndpoint) }),
	}
	if err := f.identify(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// identify resolves the target's account once, and is where a wrong
// endpoint, missing credentials or an unassumable role first show.
func (f *factory) identify(ctx context.Context, c *Clients) error {
	ctx, cancel := context.WithTimeout(ctx, identityTimeout)
	defer cancel()
	out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
		o.Retryer = newQuickRetryer(o.Retryer, identityAttempts)
	})
	if err != nil {
		return f.explainIdentityError(c.Target, err)
	}
	c.AccountID = aws.ToString(out.Account)
	c.CallerARN = aws.ToString(out.Arn)
	return nil
}

func (f *factory) explainIdentityError(target Target, err error) error {
	var netErr net.Error
	assumeRoleFailed := operationFailed(err, "AssumeRole")
	switch {
	case isNetError(err, &netErr):
		return fmt.Errorf("cannot reach the STS endpoint %s for region %s (set by %s): %w",
			f.endpointDescription(STS, target.Region), target.Region, f.endpointSource(STS), err)
	case assumeRoleFailed && target.RoleARN != "":
		return fmt.Errorf("%w: assume role %s for region %s: %w", ErrAssumeRole, target.RoleARN, target.Region, err)
	case assumeRoleFailed && f.settings.AssumeRole != nil:
		return fmt.Errorf("%w: assume_role.role_arn %s: %w", ErrAssumeRole, f.settings.AssumeRole.RoleARN, err)
	default:
		return fmt.Errorf("check AWS credentials for region %s (GetCallerIdentity): %w", target.Region, err)
	}
}

// override applies the provider's endpoint for svc, which wins over the
// AWS_ENDPOINT_URL* environment variables the SDK has already applied.
func (f *factory) override(svc Service, base **string) {
	if url := f.endpoint(svc); url != "" {
		*base = aws.String(url)
	}
}

func (f *factory) stsOptions(o *sts.Options) { f.override(STS, &o.BaseEndpoint) }

// assumeRoleSTSOptions configure the STS clients that assume roles: quick
// retries, few for errors other than throttling, because an unassumable
// role or a wrong endpoint does not heal within a run, while throttled
// AssumeRole calls (many targets starting at once) do.
func (f *factory) assumeRoleSTSOptions(o *sts.Options) {
	f.stsOptions(o)
	o.Retryer = newQuickRetryer(retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = DefaultMaxRetries + 1
		so.MaxBackoff = 2 * time.Second
	}), 3)
}

func (f *factory) endpoint(svc Service) string {
	if url := f.settings.Endpoints[svc]; url != "" {
		return url
	}
	return f.settings.EndpointURL
}

// endpointSource names the setting an endpoint came from, for errors.
func (f *factory) endpointSource(svc Service) string {
	switch {
	case f.settings.Endpoints[svc] != "":
		return "endpoints." + string(svc)
	case f.settings.EndpointURL != "":
		return "endpoint_url"
	case os.Getenv(serviceEndpointEnv(svc)) != "":
		return serviceEndpointEnv(svc)
	case os.Getenv("AWS_ENDPOINT_URL") != "":
		return "AWS_ENDPOINT_URL"
	default:
		return "the default AWS endpoint"
	}
}

func (f *factory) endpointDescription(svc Service, region string) string {
	if url := f.endpoint(svc); url != "" {
		return url
	}
	if url := os.Getenv(serviceEndpointEnv(svc)); url != "" {
		return url
	}
	if url := os.Getenv("AWS_ENDPOINT_URL"); url != "" {
		return url
	}
	return fmt.Sprintf("https://%s.%s.amazonaws.com", svc, region)
}

func serviceEndpointEnv(svc Service) string {
	return "AWS_ENDPOINT_URL_" + strings.ToUpper(string(svc))
}
