// Package deploy carries the files an unpacker instance is deployed with
// (see README.md in this directory), for the code that bootstraps it: the
// autoami_unpacker resource writes the systemd unit into the instance's
// user-data verbatim.
package deploy

import _ "embed"

// UnitName is the systemd unit of the unpacker daemon.
const UnitName = "autoami-unpacker.service"

// Unit is systemd/autoami-unpacker.service.
//
//go:embed systemd/autoami-unpacker.service
var Unit string
