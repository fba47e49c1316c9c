provider "autoami" {
  # The home region: content store and policies live here.
  region = "eu-west-1"

  # Optional: run as a publishing role.
  assume_role {
    role_arn     = "arn:aws:iam::123456789012:role/ami-publisher"
    session_name = "ci-ami-pipeline"
  }

  default_tags = {
    "team"       = "platform"
    "managed-by" = "terraform"
  }

  # Default content store for image streams.
  content_store = {
    bucket = "acme-autoami-content"
    prefix = "autoami/"
  }
}
