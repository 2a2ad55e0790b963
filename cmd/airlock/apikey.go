package main

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/auth"
)

func init() {
	keysFlag := &cli.StringFlag{Name: "api-keys", Usage: "API key file (keys are stored as sha256 only)", Required: true, EnvVars: []string{"AIRLOCK_API_KEYS"}}
	register(&cli.Command{
		Name:  "apikey",
		Usage: "manage bearer API keys for airlock serve (for OpenAI SDKs and scripts)",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "make a new key and print it once on stdout",
				Description: "Only the key's sha256 is stored; the key itself is shown once and cannot be\n" +
					"recovered. Clients send it as Authorization: Bearer KEY (OPENAI_API_KEY for the SDKs).",
				Flags: []cli.Flag{keysFlag, &cli.StringFlag{Name: "name", Usage: "label, e.g. who holds the key"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("apikey create: unexpected arguments")
					}
					tok, info, err := auth.CreateKey(c.String("api-keys"), c.String("name"))
					if err != nil {
						return fmt.Errorf("apikey create: %w", err)
					}
					fmt.Fprintf(os.Stderr, "key %s created; it is shown once:\n", info.ID)
					fmt.Println(tok)
					return nil
				},
			},
			{
				Name:      "revoke",
				Usage:     "remove a key by its id",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{keysFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("apikey revoke: want exactly one key ID")
					}
					if err := auth.RevokeKey(c.String("api-keys"), c.Args().First()); err != nil {
						return fmt.Errorf("apikey revoke: %w", err)
					}
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list key ids, creation times and names",
				Flags: []cli.Flag{keysFlag},
				Action: func(c *cli.Context) error {
					keys, err := auth.ListKeys(c.String("api-keys"))
					if err != nil {
						return fmt.Errorf("apikey list: %w", err)
					}
					for _, k := range keys {
						fmt.Printf("%s\t%s\t%s\n", k.ID, k.Created.UTC().Format(time.RFC3339), k.Name)
					}
					return nil
				},
			},
		},
	})
}
