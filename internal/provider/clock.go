package provider

import "time"

// now is the provider's clock. Tests override it (as terraform-provider-tls
// does) to exercise time-dependent decisions: rebuild windows, deadlines,
// best-before ages. Production code must call now(), never time.Now().
var now = func() time.Time { return time.Now().UTC() }
