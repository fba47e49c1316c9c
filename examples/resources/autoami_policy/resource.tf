# Critical fixes at once, the rest in the nightly build window in Berlin, low-severity
# updates only when approved, and no AMI older than 30 days.
resource "autoami_policy" "prod" {
  name = "prod"

  rebuild_delays = {
    critical = "immediate"
    high     = "24h"
    medium   = "7d"
    low      = "manual"
    # unknown defaults to the same rebuild delay as high
  }

  max_age = "30d"

  build_window = {
    start    = "02:00"
    end      = "06:00"
    timezone = "Europe/Berlin"
  }

  retention = {
    keep_revisions   = 3
    deregister_after = "30d"
    delete_snapshots = true
  }

  budget = {
    monthly_usd = 200
    urgent_usd  = 100
  }

  tags = {
    team = "platform"
  }
}

output "prod_policy" {
  value = autoami_policy.prod.summary
}
