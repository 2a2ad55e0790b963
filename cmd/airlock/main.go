// Command airlock carries a small chat LLM across an air gap and serves it.
//
// Subcommands live in their own files and add themselves to the app with
// register, so each concern stays in one place.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/internal/version"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

var commands []*cli.Command

// register adds a subcommand to the app. It is called from init functions.
// Every command accepts its flags before and after its arguments.
func register(c *cli.Command) { commands = append(commands, interspersedTree(c)) }

// usageError marks an error caused by how the command was called (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns an error that makes airlock exit with the usage code.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	return &cli.App{
		Name:                 "airlock",
		Usage:                "carry a small chat LLM across an air gap and serve it safely",
		Version:              version.String(),
		Commands:             commands,
		EnableBashCompletion: true,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main decides the exit code
	}
}

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	app := newApp()
	for _, c := range app.Commands {
		setUsageHandler(c)
	}
	err := app.Run(args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "airlock: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return exitFailure
}

func setUsageHandler(c *cli.Command) {
	if c.OnUsageError == nil {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	}
	for _, sub := range c.Subcommands {
		setUsageHandler(sub)
	}
}
