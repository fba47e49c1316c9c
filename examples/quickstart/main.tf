# The autoami quickstart. `make demo` runs it against a local AWS; against
# real AWS, drop the endpoint settings (see the README).
terraform {
  required_providers {
    autoami = {
      source = "autoami/autoami"
    }
  }
}

provider "autoami" {
  region = "us-east-1"
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
