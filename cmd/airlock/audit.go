package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/audit"
)

func init() {
	register(&cli.Command{
		Name:  "audit",
		Usage: "check airlock serve's tamper-evident audit log",
		Subcommands: []*cli.Command{{
			Name:      "verify",
			Usage:     "verify the hash chain of an audit log and its rotated files",
			ArgsUsage: "LOG...",
			Description: "With one LOG (the active file), its rotated files LOG.1, LOG.2, ... are checked first,\n" +
				"in order. With several, they are checked in the order given. The first edited, deleted,\n" +
				"inserted, reordered, truncated or malformed record is reported by file and line (exit 1).\n" +
				"--head catches records removed from the end: pass the head hash recorded out of band.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "head", Usage: "chain hash the log must end with (an anchor kept elsewhere)"},
				&cli.BoolFlag{Name: "allow-partial-start", Usage: "accept a log whose oldest files were archived"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return usagef("audit verify: want at least one LOG")
				}
				files := c.Args().Slice()
				if len(files) == 1 {
					var err error
					if files, err = audit.Files(files[0]); err != nil {
						return fmt.Errorf("audit verify: %w", err)
					}
				}
				rep, err := audit.Verify(files, audit.VerifyOptions{Head: c.String("head"), AllowPartialStart: c.Bool("allow-partial-start")})
				var ce *audit.ChainError
				if errors.As(err, &ce) {
					return fmt.Errorf("audit verify: TAMPERED or DAMAGED: %w (%d records verified before it)", ce, rep.Records)
				}
				if err != nil {
					return fmt.Errorf("audit verify: %w", err)
				}
				fmt.Fprintf(os.Stdout, "ok: %d records in %d files, seq %d..%d, head %s\n",
					rep.Records, len(rep.Files), rep.FirstSeq, rep.LastSeq, rep.Head)
				return nil
			},
		}},
	})
}
