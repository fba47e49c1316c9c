# A policy stored under the default prefix (/autoami/policies/) is imported by name:
terraform import autoami_policy.prod prod

# A policy stored under another parameter_prefix is imported by its full parameter name:
terraform import autoami_policy.team /team-a/rules/prod
