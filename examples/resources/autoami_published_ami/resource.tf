provider "autoami" {
  region        = "eu-west-1"
  content_store = { bucket = "acme-autoami-content", prefix = "autoami/" }
  default_tags  = { managed-by = "autoami" }
}

# One unpacker per target (account, region): they patch the stream's
# volume in their target.
resource "autoami_unpacker" "prod_eu" {
  subnet_id     = "subnet-0a1b2c3d4e5f60718"
  allowed_cidrs = ["10.20.0.0/16"]
}

resource "autoami_unpacker" "prod_us" {
  region        = "us-east-1"
  subnet_id     = "subnet-0f1e2d3c4b5a69788"
  allowed_cidrs = ["10.20.0.0/16"]
}

resource "autoami_unpacker" "staging_eu" {
  role_arn      = "arn:aws:iam::222222222222:role/autoami-publisher"
  allowed_cidrs = ["10.30.0.0/16"]
}

# How old an AMI may get: its deprecation time is its publication time
# plus max_age.
resource "autoami_policy" "web" {
  name    = "web"
  max_age = "30d"
}

# The content: a root file system built by CI into a tarball.
resource "autoami_image_stream" "web" {
  name            = "web/debian-12"
  root_filesystem = { tarball = "build/rootfs.tar.zst" }
  policy_id       = autoami_policy.web.id
}

# The stream's revision as an encrypted AMI in all three targets at once.
resource "autoami_published_ami" "web" {
  image_stream = autoami_image_stream.web.id
  revision     = autoami_image_stream.web.revision
  targets = [
    autoami_unpacker.prod_eu.target,
    autoami_unpacker.prod_us.target,
    autoami_unpacker.staging_eu.target,
  ]

  name        = "{stream}-{date}-{revision}"
  description = "Web servers, Debian 12"
  boot_mode   = "uefi-preferred"
  policy_id   = autoami_policy.web.id

  # Each target's default EBS key must be a customer managed key to share.
  launch_permission = {
    organization_arns = ["arn:aws:organizations::111111111111:organization/o-abcdef1234"]
  }

  # Downstream modules read the latest AMI of their region from here.
  ssm_parameter = { name = "/images/web/debian-12/latest" }

  tags = { team = "web" }

  timeouts = {
    create = "60m"
    update = "60m"
  }
}

# The AMI IDs, keyed ACCOUNT_ID/REGION.
output "web_amis" {
  value = { for target, ami in autoami_published_ami.web.amis : target => ami.image_id }
}
