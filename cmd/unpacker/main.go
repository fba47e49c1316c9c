// Command unpacker is autoami's on-instance agent: it patches volumes to
// image revisions. Subcommands register themselves from their own files (see
// register), so adding one never touches this file.
//
//	unpacker apply SOURCE ROOT     make ROOT exactly equal to SOURCE
//	unpacker manifest SOURCE       print the revision digest and a summary
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of the unpacker binary.
type command struct {
	// name is the word after "unpacker" on the command line.
	name string
	// usage is the one-line synopsis after the name, e.g. "SOURCE ROOT".
	usage string
	// summary is one sentence for the command list.
	summary string
	// run executes the command with the arguments after its name; it parses
	// its own flags (using newFlagSet) and returns an error to report.
	run func(ctx context.Context, env *environment, args []string) error
}

// environment is what every command gets from main.
type environment struct {
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
}

// errUsage makes main print the command's usage and exit with status 2.
var errUsage = errors.New("usage")

var commands = map[string]command{}

// register adds a subcommand; it is called from the init function of the file
// implementing the command.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("unpacker: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// newFlagSet returns a flag set for command c that prints c's usage.
func newFlagSet(c string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(c, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		cmd := commands[c]
		fmt.Fprintf(stderr, "usage: unpacker %s %s\n", cmd.name, cmd.usage)
		fs.PrintDefaults()
	}
	return fs
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("unpacker", flag.ContinueOnError)
	global.SetOutput(stderr)
	level := global.String("log-level", "info", "log level: debug, info, warn or error")
	jsonLogs := global.Bool("log-json", false, "log as JSON lines instead of text")
	showVersion := global.Bool("version", false, "print the version (the one /v1/health reports) and exit")
	global.Usage = func() { printCommands(stderr) }
	if err := global.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "unpacker", daemonVersion())
		return 0
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "unpacker: bad -log-level %q: %v\n", *level, err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var handler slog.Handler = slog.NewTextHandler(stderr, hopts)
	if *jsonLogs {
		handler = slog.NewJSONHandler(stderr, hopts)
	}
	env := &environment{log: slog.New(handler), stdout: stdout, stderr: stderr}

	rest := global.Args()
	if len(rest) == 0 {
		printCommands(stderr)
		return 2
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "unpacker: unknown command %q\n", rest[0])
		printCommands(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, env, rest[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "usage: unpacker %s %s\n", cmd.name, cmd.usage)
		return 2
	default:
		fmt.Fprintf(stderr, "unpacker %s: %v\n", cmd.name, err)
		return 1
	}
}

func printCommands(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: unpacker [-log-level LEVEL] [-log-json] COMMAND [ARGS]")
	fmt.Fprintln(w, "       unpacker -version")
	fmt.Fprintln(w, "commands:")
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}
