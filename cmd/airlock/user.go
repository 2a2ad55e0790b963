package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/airlock-dev/airlock/auth"
)

func init() {
	htpasswdFlag := &cli.StringFlag{Name: "htpasswd", Usage: "htpasswd file (bcrypt entries)", Required: true, EnvVars: []string{"AIRLOCK_HTPASSWD"}}
	register(&cli.Command{
		Name:  "user",
		Usage: "manage the users of airlock serve's basic auth (htpasswd file, bcrypt)",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "add a user or change a password",
				ArgsUsage: "USER",
				Description: "The password is read from AIRLOCK_PASSWORD, from stdin with --password-stdin,\n" +
					"or asked for twice on the terminal. A running server picks the change up by itself.",
				Flags: []cli.Flag{htpasswdFlag,
					&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from the first line of stdin"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("user add: want exactly one USER")
					}
					pw, err := readPassword(c.Bool("password-stdin"), os.Stdin, os.Stderr)
					if err != nil {
						return fmt.Errorf("user add: %w", err)
					}
					if err := auth.SetUser(c.String("htpasswd"), c.Args().First(), pw); err != nil {
						return fmt.Errorf("user add: %w", err)
					}
					fmt.Fprintf(os.Stderr, "user %s saved in %s\n", c.Args().First(), c.String("htpasswd"))
					return nil
				},
			},
			{
				Name:      "remove",
				Usage:     "remove a user",
				ArgsUsage: "USER",
				Flags:     []cli.Flag{htpasswdFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("user remove: want exactly one USER")
					}
					if err := auth.RemoveUser(c.String("htpasswd"), c.Args().First()); err != nil {
						return fmt.Errorf("user remove: %w", err)
					}
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list user names",
				Flags: []cli.Flag{htpasswdFlag},
				Action: func(c *cli.Context) error {
					users, err := auth.ListUsers(c.String("htpasswd"))
					if err != nil {
						return fmt.Errorf("user list: %w", err)
					}
					for _, u := range users {
						fmt.Println(u)
					}
					return nil
				},
			},
		},
	})
}

// readPassword gets a new password from AIRLOCK_PASSWORD, stdin or the
// terminal (asked twice).
func readPassword(fromStdin bool, in *os.File, prompt io.Writer) (string, error) {
	if pw, ok := os.LookupEnv("AIRLOCK_PASSWORD"); ok {
		return pw, nil
	}
	if fromStdin || !term.IsTerminal(int(in.Fd())) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("empty password on stdin")
		}
		return line, nil
	}
	fmt.Fprint(prompt, "New password: ")
	a, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", err
	}
	fmt.Fprint(prompt, "Repeat password: ")
	b, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords differ")
	}
	return string(a), nil
}
