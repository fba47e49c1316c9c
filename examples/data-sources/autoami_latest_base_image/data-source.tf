# The newest Amazon Linux 2023 image, by its public SSM parameter.
data "autoami_latest_base_image" "al2023" {
  ssm_parameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

# The newest Debian 12 arm64 image by owner and name, with updates classified
# by an advisory feed.
data "autoami_latest_base_image" "debian" {
  owners       = ["136693071363"] # Debian
  name         = "debian-12-arm64-*"
  architecture = "arm64"
  advisories   = "https://security.example.com/ami-advisories.json"
}

# Images shared with this account by a platform team, filtered by tag.
data "autoami_latest_base_image" "golden" {
  owners = ["111122223333"]
  filter {
    name   = "tag:pipeline"
    values = ["golden"]
  }
}

output "al2023_changed" {
  value = "${data.autoami_latest_base_image.al2023.previous_name} -> ${data.autoami_latest_base_image.al2023.name} (${data.autoami_latest_base_image.al2023.security_level})"
}
