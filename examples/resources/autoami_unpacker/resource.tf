provider "autoami" {
  region        = "eu-west-1"
  content_store = { bucket = "acme-autoami-content", prefix = "autoami/" }
}

# An unpacker in the provider's own account and home region, in the subnet
# the CI runners reach (they run terraform and the publications).
resource "autoami_unpacker" "prod_eu" {
  subnet_id     = "subnet-0a1b2c3d4e5f60718"
  allowed_cidrs = ["10.20.0.0/16"]
  tags          = { team = "images" }
}

# Another account and region, through that account's role; arm64, with its
# root volume under a customer key, asleep after 15 idle minutes.
resource "autoami_unpacker" "staging_us" {
  region        = "us-east-2"
  role_arn      = "arn:aws:iam::222222222222:role/autoami-publisher"
  architecture  = "arm64"
  kms_key_id    = "alias/autoami-unpackers"
  allowed_cidrs = ["10.30.0.0/16"]
  idle_poweroff = "15m"
  tags          = { team = "images" }

  timeouts = {
    create = "30m"
  }
}

# Everything a published AMI needs to reach and trust each unpacker.
locals {
  targets = [autoami_unpacker.prod_eu.target, autoami_unpacker.staging_us.target]
}

output "unpacker_fingerprints" {
  value = {
    prod_eu    = autoami_unpacker.prod_eu.server_certificate_fingerprint
    staging_us = autoami_unpacker.staging_us.server_certificate_fingerprint
  }
}
