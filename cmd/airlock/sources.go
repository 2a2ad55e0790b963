package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/local"
)

// sourceFlags are the `airlock bundle` flags that choose and configure the
// source (endpoints, tokens, caches, recipes, runtime targets).
func sourceFlags() []cli.Flag { return nil }

// openSource turns `airlock bundle`'s arguments and flags into a Source.
// Today: a local directory.
func openSource(c *cli.Context) (source.Source, error) {
	spec := c.Args().First()
	if spec == "" {
		return nil, usagef("bundle: missing SOURCE (a model directory)")
	}
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		return local.Dir{Root: spec}, nil
	}
	return nil, fmt.Errorf("bundle: unknown source %q", spec)
}
