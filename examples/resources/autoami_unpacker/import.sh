# An unpacker in the provider's own account: REGION/INSTANCE_ID.
terraform import autoami_unpacker.prod_eu eu-west-1/i-0123456789abcdef0

# In another account: ROLE_ARN/REGION/INSTANCE_ID (the configuration's
# role_arn must be the same role).
terraform import autoami_unpacker.staging_us arn:aws:iam::222222222222:role/autoami-publisher/us-east-2/i-0fedcba9876543210

# The client CA of an imported unpacker cannot be read back: the next apply
# makes a new client identity and installs its CA (stop, new user-data,
# start); the daemon keeps its key, so its fingerprint stays.
