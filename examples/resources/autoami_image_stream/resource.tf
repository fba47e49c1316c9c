# A stream from a root filesystem built elsewhere (debootstrap, mkosi,
# docker export). An unchanged tree plans no change; a changed one shows the
# new revision in the plan and uploads only the changed files.
resource "autoami_image_stream" "bookworm" {
  name = "base/bookworm"
  root_filesystem = {
    directory = "/srv/images/bookworm"
  }
  tags = { os = "debian-12" }
}

# A stream layered on Amazon Linux 2023: when AWS ships a new image, the
# policy decides whether the plan rebuilds now, defers to the build window,
# or waits for approval (change rebuild_trigger to approve).
resource "autoami_image_stream" "web" {
  name = "web/al2023"
  base_image = {
    ssm_parameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    advisories    = "https://security.example.com/ami-advisories.json"
    regions       = ["eu-west-1", "us-east-1"]
  }
  overlay = {
    tarball = "build/web-overlay.tar.zst"
  }
  policy_id       = autoami_policy.prod.id
  rebuild_trigger = "approved-2026-11-22"
}

# A raw disk image (for example a unikernel), stored as 512 KiB blocks.
resource "autoami_image_stream" "unikernel" {
  name = "edge/unikernel"
  raw_image = {
    path = "build/unikernel.img"
  }
  content_store = {
    bucket = "acme-edge-images"
    prefix = "autoami/"
  }
}
