package publisher

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testRevision = "750ea802a0ccf597683e3e987d74efe9c7b492cddc685cbfc18ab4f67293cf0b"

func TestRenderName(t *testing.T) {
	date := time.Date(2026, 11, 30, 23, 59, 59, 0, time.FixedZone("CET", 3600))
	got := RenderName("{stream}-{revision}-{date} ({stream})", "web/al2023", testRevision, date)
	if want := "web/al2023-750ea802a0cc-20261130-2259 (web/al2023)"; got != want {
		t.Fatalf("RenderName = %q, want %q (UTC date, 12 hex digits)", got, want)
	}
}

func TestValidateNameTemplate(t *testing.T) {
	if err := ValidateNameTemplate(DefaultNameTemplate, "web/al2023"); err != nil {
		t.Fatalf("default template: %v", err)
	}
	for _, tc := range []struct{ template, stream, says string }{
		{"{stream}-{rev}", "web", "unknown placeholder {rev}"},
		{"{stream}-{date}", "web", "lacks {revision}"},
		{"web-{revision}-{", "web", "brace"},
		{"web:{revision}", "web", "characters an AMI name may not hold"},
		{"{stream}{revision}" + strings.Repeat("x", 120), "web", "AMI names have 3 to 128"},
	} {
		err := ValidateNameTemplate(tc.template, tc.stream)
		if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "name: ") {
			t.Errorf("ValidateNameTemplate(%q) = %v, want an error about name saying %q", tc.template, err, tc.says)
		}
	}
}

func validPublication() Publication {
	return Publication{ID: "pub-1", Stream: "web/al2023", Revision: testRevision, ENASupport: true, IMDSSupport: "v2.0",
		Date: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}.WithDefaults()
}

func TestPublicationValidateNamesTheAttribute(t *testing.T) {
	if err := validPublication().Validate(); err != nil {
		t.Fatalf("valid publication: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Publication)
		says   string
	}{
		{"id", func(p *Publication) { p.ID = "" }, "id:"},
		{"stream", func(p *Publication) { p.Stream = "Web//x" }, "image_stream:"},
		{"revision", func(p *Publication) { p.Revision = "abc" }, "revision:"},
		{"architecture", func(p *Publication) { p.Architecture = "i386" }, "architecture: \"i386\""},
		{"boot mode", func(p *Publication) { p.BootMode = "bios" }, "boot_mode:"},
		{"volume type", func(p *Publication) { p.VolumeType = "gp9" }, "volume_type:"},
		{"imds", func(p *Publication) { p.IMDSSupport = "v1.0" }, "imds_support:"},
		{"tpm without uefi", func(p *Publication) { p.TPMSupport = "v2.0" }, "tpm_support: NitroTPM needs boot_mode \"uefi\""},
		{"volume size", func(p *Publication) { p.VolumeSizeGiB = -1 }, "volume_size:"},
		{"account", func(p *Publication) { p.LaunchPermission.AccountIDs = []string{"12345"} }, "launch_permission.account_ids:"},
		{"organization", func(p *Publication) { p.LaunchPermission.OrganizationARNs = []string{"o-123"} }, "launch_permission.organization_arns:"},
		{"ou", func(p *Publication) { p.LaunchPermission.OrganizationalUnitARNs = []string{orgARN} }, "launch_permission.organizational_unit_arns:"},
		{"ssm name", func(p *Publication) { p.SSMParameter = &SSMParameter{Name: "/aws/x"} }, "ssm_parameter.name:"},
		{"deprecation", func(p *Publication) { p.DeprecateAt = time.Now().AddDate(11, 0, 0) }, "10 years"},
		{"reserved tag", func(p *Publication) { p.Tags = map[string]string{"autoami:stream": "x"} }, "tags: key \"autoami:stream\""},
		{"aws tag", func(p *Publication) { p.Tags = map[string]string{"aws:x": "x"} }, "reserved by AWS"},
		{"description", func(p *Publication) { p.Description = strings.Repeat("d", 256) }, "description:"},
		{"date", func(p *Publication) { p.Date = time.Time{} }, "uses {date}, but the publication has no date"},
	} {
		p := validPublication()
		tc.mutate(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: Validate() = %v, want an error saying %q", tc.name, err, tc.says)
		}
	}
	p := validPublication()
	p.BootMode, p.TPMSupport = "uefi", "v2.0"
	if err := p.Validate(); err != nil {
		t.Errorf("NitroTPM with uefi: %v", err)
	}
}

func TestValidateSSMParameterName(t *testing.T) {
	for _, ok := range []string{"/autoami/web/image-id", "web.image_id", "/a/b-c/d.e_f"} {
		if err := ValidateSSMParameterName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/aws/service/x", "ssm-x", "/a//b", "/a/b/", "/a b", "/" + strings.Repeat("a/", 16) + "x", strings.Repeat("a", 1012)} {
		if err := ValidateSSMParameterName(bad); err == nil || !strings.HasPrefix(err.Error(), "ssm_parameter.name: ") {
			t.Errorf("%q: %v, want an error naming ssm_parameter.name", bad, err)
		}
	}
}

func TestValidateKMSKeyID(t *testing.T) {
	targets := []Target{{AccountID: accountA, Region: "eu-west-1"}, {AccountID: accountB, Region: "eu-west-1"}}
	for _, ok := range []string{"", "alias/autoami", "1234abcd-12ab-34cd-56ef-1234567890ab"} {
		if err := ValidateKMSKeyID(ok, targets); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	keyA := "arn:aws:kms:eu-west-1:" + accountA + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
	if err := ValidateKMSKeyID(keyA, targets[:1]); err != nil {
		t.Errorf("the target's own key ARN: %v", err)
	}
	for _, tc := range []struct {
		key     string
		targets []Target
		says    string
	}{
		{keyA, targets, "never shared across accounts"},
		{keyA, []Target{{AccountID: accountA, Region: "us-east-1"}}, "is in eu-west-1"},
		{"alias/aws/ebs", targets, "AWS managed key"},
		{"arn:aws:s3:::bucket", targets, "not a KMS key ARN"},
	} {
		if err := ValidateKMSKeyID(tc.key, tc.targets); err == nil || !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "kms_key_id: ") {
			t.Errorf("%q: %v, want a kms_key_id error saying %q", tc.key, err, tc.says)
		}
	}
}

func TestValidateTargets(t *testing.T) {
	ok := Target{AccountID: accountA, Region: "eu-west-1", InstanceID: "i-0123456789abcdef0", Endpoint: "10.0.0.1:6975",
		ServerCertificateFingerprint: "sha256:" + strings.Repeat("ab", 32), ClientCertificatePEM: "x", ClientKeyPEM: "y"}
	err := ValidateTargets([]Target{ok})
	if err == nil || !strings.Contains(err.Error(), "targets[0].client_certificate_pem: not a certificate and key pair") {
		t.Fatalf("a bad key pair: %v", err)
	}
	bad := ok
	bad.AccountID, bad.Region, bad.InstanceID, bad.Endpoint, bad.ServerCertificateFingerprint = "1", "moon-1", "x", "", "nope"
	err = ValidateTargets([]Target{ok, ok, bad})
	for _, s := range []string{"targets[1].account_id: account 222222222222 in eu-west-1 is also targets[0]", "targets[2].account_id:",
		"targets[2].region:", "targets[2].instance_id:", "targets[2].endpoint:", "targets[2].server_certificate_fingerprint:"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("ValidateTargets = %v, want it to say %q", err, s)
		}
	}
	if err := ValidateTargets(nil); err == nil {
		t.Error("no targets: want an error")
	}
}

func TestStreamVolumeSize(t *testing.T) {
	for _, tc := range []struct {
		content int64
		want    int32
	}{{0, 1}, {13 << 20, 1}, {600 << 20, 1}, {700 << 20, 2}, {3 << 30, 4}, {3<<30 + 1, 5}} {
		if got := streamVolumeGiB(tc.content); got != tc.want {
			t.Errorf("streamVolumeGiB(%d MiB) = %d, want %d", tc.content>>20, got, tc.want)
		}
	}
}

func TestOutcomeError(t *testing.T) {
	if err := (Outcome{Results: []Result{{}, {}}}).Error(); err != nil {
		t.Fatalf("all targets fine: %v", err)
	}
	te := &TargetError{Target: Target{AccountID: accountA, Region: "eu-west-1"}, Step: StepRegister, Err: errors.New("boom")}
	err := Outcome{Results: []Result{{}, {Err: te}}}.Error()
	if !errors.Is(err, te) || err.Error() != "publish to account 222222222222 in eu-west-1: register image: boom" {
		t.Fatalf("Error() = %v", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without clients: want an error")
	}
}
