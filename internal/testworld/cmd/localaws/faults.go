package main

import (
	"flag"
	"log/slog"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
)

// faultsFile is the -faults flag: fault rules to start with. It is declared
// here, beside the code that reads it, rather than in main.
var faultsFile = flag.String("faults", "", "start with the fault rules of this JSON file ({\"rules\": [...]}, see internal/testworld/README.md); "+
	"a running world takes new ones at <endpoint>"+faultproxy.ControlPath+"rules")

// loadFaults reads the -faults file, if one is given, before anything starts,
// so that a bad file fails fast with the field it names.
func loadFaults() ([]faultproxy.Rule, error) {
	if *faultsFile == "" {
		return nil, nil
	}
	return faultproxy.LoadRules(*faultsFile)
}

// applyFaults puts rules into the running world's fault proxy and says where
// they can be changed.
func applyFaults(world *testworld.World, rules []faultproxy.Rule) {
	world.Faults.SetRules(rules...)
	slog.Info("fault rules", "file", *faultsFile, "rules", len(rules),
		"control", world.Endpoint+faultproxy.ControlPath+"rules", "stats", world.Endpoint+faultproxy.ControlPath+"stats")
}
