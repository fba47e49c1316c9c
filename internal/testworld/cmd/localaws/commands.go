package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// subcommand is a `localaws NAME ...` command that acts on a running local
// AWS instead of serving one.
type subcommand struct {
	summary string
	run     func(args []string) error
}

// subcommands are registered by the files that implement them (init).
var subcommands = map[string]subcommand{}

// runSubcommand runs os.Args[1] when it names a subcommand; ok is false when
// it does not (the flags of the server follow).
func runSubcommand() (ok bool) {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		return false
	}
	cmd, found := subcommands[os.Args[1]]
	if !found {
		fmt.Fprintf(os.Stderr, "localaws: unknown command %q; commands: %s (or no command and flags to serve)\n", os.Args[1], subcommandNames())
		os.Exit(2)
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "localaws %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	return true
}

func subcommandNames() string {
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
