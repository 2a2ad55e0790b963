package main

import (
	"flag"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersedCommand makes cmd accept flags before and after its
// arguments ("airlock verify FILE --pubkey K --out D"), as the documented
// forms use. urfave/cli v2 stops parsing flags at the first argument, so
// such a command skips the library's parsing and its Action receives a
// context parsed here: flags first, then "--", then the arguments, giving
// exactly the library's semantics (env vars, defaults, aliases, IsSet).
//
// Required flags are checked here too: the library's own check would run
// before these flags are parsed.
func interspersedCommand(cmd *cli.Command) *cli.Command {
	if cmd.SkipFlagParsing || cmd.Action == nil {
		return cmd
	}
	action := cmd.Action
	takeRequired(cmd.Flags)
	cmd.SkipFlagParsing = true
	cmd.Action = func(c *cli.Context) error {
		ctx, help, err := parseInterspersed(c, cmd)
		if err != nil {
			return err
		}
		if help {
			return cli.ShowCommandHelp(c.Lineage()[1], cmd.Name)
		}
		for _, f := range cmd.Flags {
			if name := f.Names()[0]; requiredFlags[f] && !ctx.IsSet(name) {
				return usagef("%s: required flag --%s not set", cmd.Name, name)
			}
		}
		return action(ctx)
	}
	return cmd
}

// interspersedTree applies interspersedCommand to cmd and every subcommand
// that has an action of its own.
func interspersedTree(cmd *cli.Command) *cli.Command {
	for _, sub := range cmd.Subcommands {
		interspersedTree(sub)
	}
	return interspersedCommand(cmd)
}

// requiredFlags are the flags whose Required mark takeRequired moved here.
// Flags may be shared between commands, so the mark is kept per flag.
var requiredFlags = map[cli.Flag]bool{}

// takeRequired clears the Required mark of flags (so the library does not
// check them before they are parsed) and records it in requiredFlags.
func takeRequired(flags []cli.Flag) {
	for _, f := range flags {
		rf, ok := f.(cli.RequiredFlag)
		if !ok || !rf.IsRequired() {
			continue
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Required = false
		case *cli.PathFlag:
			f.Required = false
		case *cli.IntFlag:
			f.Required = false
		case *cli.StringSliceFlag:
			f.Required = false
		default:
			panic("interspersedCommand: unsupported required flag type")
		}
		requiredFlags[f] = true
	}
}

func parseInterspersed(c *cli.Context, cmd *cli.Command) (*cli.Context, bool, error) {
	set := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range cmd.Flags {
		if err := f.Apply(set); err != nil {
			return nil, false, err
		}
	}
	primary := map[string]string{} // alias -> first name, so values land where c.String(name) looks
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			primary[n] = f.Names()[0]
		}
	}
	args := c.Args().Slice()
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			return nil, true, nil
		}
		f := set.Lookup(name)
		if f == nil || primary[name] == "" {
			return nil, false, usagef("%s: flag provided but not defined: %s", cmd.Name, a)
		}
		name = primary[name]
		if hasValue {
			flags = append(flags, "--"+name+"="+value)
		} else {
			flags = append(flags, "--"+name)
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, false, usagef("%s: flag needs an argument: %s", cmd.Name, a)
			}
			i++
			flags = append(flags, args[i])
		}
	}
	if err := set.Parse(append(append(flags, "--"), pos...)); err != nil {
		return nil, false, usagef("%s: %v", cmd.Name, err)
	}
	ctx := cli.NewContext(c.App, set, c.Lineage()[1])
	ctx.Command = cmd
	ctx.Context = c.Context
	return ctx, false, nil
}
