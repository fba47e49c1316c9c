# The autoami quickstart. `make demo` runs it against a local AWS (it points
# the provider there with a generated provider_override.tf); with real AWS
# credentials and the vendor's owner ID changed, it runs against AWS as is.
terraform {
  required_providers {
    autoami = {
      source = "autoami/autoami"
    }
  }
}

provider "autoami" {
  region = "us-east-1"

  # Where image streams keep their content (the demo's local AWS has it).
  content_store = {
    bucket = "autoami-demo-content"
    prefix = "autoami/"
  }
}

# The rules for security rebuilds: critical at once, the rest in the night
# build window, low-severity updates only when approved, best before 30 days.
resource "autoami_policy" "demo" {
  name = "demo"
  rebuild_delays = {
    critical = "immediate"
    high     = "24h"
    low      = "manual"
  }
  max_age = "30d"
  build_window = {
    start    = "02:00"
    end      = "06:00"
    timezone = "UTC"
  }
}

# A stream from a complete root filesystem: its revision is the digest of the
# tree, and apply uploads only the files the content store lacks.
resource "autoami_image_stream" "rootfs" {
  name = "demo/rootfs"
  root_filesystem = {
    directory = "${path.module}/rootfs"
  }
}

# A stream layered on the vendor's newest base image plus an overlay. When the
# vendor ships a newer image, the policy decides when the plan rebuilds.
resource "autoami_image_stream" "app" {
  name = "demo/app"
  base_image = {
    owners     = ["111122223333"]
    name       = "acme-linux-*-x86_64"
    advisories = "${path.module}/advisories.json"
  }
  overlay = {
    directory = "${path.module}/overlay"
  }
  policy_id = autoami_policy.demo.id
}

# The newest Amazon Linux 2023, by its public SSM parameter.
data "autoami_latest_base_image" "al2023" {
  ssm_parameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

# A vendor's base image line, by owner and name, with its update classified
# by an advisory feed (advisories.json beside this file).
data "autoami_latest_base_image" "acme" {
  owners     = ["111122223333"]
  name       = "acme-linux-*-x86_64"
  advisories = "${path.module}/advisories.json"
}

output "al2023" {
  value = {
    id            = data.autoami_latest_base_image.al2023.id
    name          = data.autoami_latest_base_image.al2023.name
    creation_date = data.autoami_latest_base_image.al2023.creation_date
    boot_mode     = data.autoami_latest_base_image.al2023.boot_mode
  }
}

output "acme" {
  value = {
    id             = data.autoami_latest_base_image.acme.id
    name           = data.autoami_latest_base_image.acme.name
    previous_name  = data.autoami_latest_base_image.acme.previous_name
    update_type    = data.autoami_latest_base_image.acme.update_type
    security_level = data.autoami_latest_base_image.acme.security_level
    cves           = data.autoami_latest_base_image.acme.cves
    changelog_url  = data.autoami_latest_base_image.acme.changelog_url
  }
}

output "policy" {
  value = autoami_policy.demo.summary
}

output "streams" {
  value = {
    for s in [autoami_image_stream.rootfs, autoami_image_stream.app] : s.name => {
      revision         = s.revision
      files            = s.file_count
      objects_uploaded = s.objects_uploaded
      base_image       = s.base_image_name
    }
  }
}
