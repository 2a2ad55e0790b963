package main

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/airlock-dev/airlock/internal/signing"
)

// keyPasswordEnv holds the signing key's password for non-interactive use.
const keyPasswordEnv = "AIRLOCK_KEY_PASSWORD"

func init() {
	register(&cli.Command{
		Name:      "keygen",
		Usage:     "create a minisign key pair for signing bundles",
		ArgsUsage: " ",
		Description: "Writes NAME.key (the private key, password-protected unless --unencrypted,\n" +
			"mode 0600) and NAME.pub (the public key to carry to the intranet host).\n" +
			"The files are in minisign's format: `minisign -V` checks bundles with NAME.pub,\n" +
			"and keys made by `minisign -G` work with `airlock bundle --sign`.\n\n" +
			"The password comes from --password-file, else $" + keyPasswordEnv + ", else a\n" +
			"terminal prompt (asked twice).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write `NAME`.key and NAME.pub"},
			&cli.BoolFlag{Name: "unencrypted", Usage: "store the private key without a password (protect the file yourself)"},
			&cli.StringFlag{Name: "password-file", Usage: "read the password from the first line of `FILE`"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite existing key files"},
		},
		Action: runKeygen,
	})
}

func runKeygen(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usagef("keygen: unexpected argument %q (use --out NAME)", c.Args().First())
	}
	name := strings.TrimSuffix(strings.TrimSuffix(c.String("out"), ".key"), ".pub")
	if name == "" {
		return usagef("keygen: --out NAME is required")
	}
	keyPath, pubPath := name+".key", name+".pub"
	if !c.Bool("force") {
		for _, p := range []string{keyPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("keygen: %s already exists (use --force to overwrite)", p)
			}
		}
	}
	var password []byte
	if !c.Bool("unencrypted") {
		var err error
		password, err = keyPassword(c, true)
		if err != nil {
			return err
		}
		if len(password) == 0 {
			return usagef("keygen: empty password (use --unencrypted for a key without one)")
		}
	}
	pub, priv, err := signing.GenerateKey(password)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeNewFile(keyPath, priv, 0o600, c.Bool("force")); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeNewFile(pubPath, pub, 0o644, c.Bool("force")); err != nil {
		_ = os.Remove(keyPath)
		return fmt.Errorf("keygen: %w", err)
	}
	k, err := signing.ParsePublicKey(pub)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "key id %s\nprivate key: %s\npublic key:  %s\n", signing.KeyID(k.ID()), keyPath, pubPath)
	return nil
}

// writeNewFile writes data to path via a temporary file and a rename, so a
// reader never sees a partial key.
func writeNewFile(path string, data []byte, mode os.FileMode, overwrite bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !overwrite {
		if _, serr := os.Lstat(path); serr == nil {
			err = fmt.Errorf("%s already exists", path)
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// keyPassword returns the signing key password from --password-file, the
// environment, or a terminal prompt (confirmed when confirm is set). It
// never logs or echoes the password.
func keyPassword(c *cli.Context, confirm bool) ([]byte, error) {
	if f := c.String("password-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
	if v, ok := os.LookupEnv(keyPasswordEnv); ok {
		return []byte(v), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			_ = tty.Close()
		}
		return nil, usagef("a key password is needed: use --password-file, $%s, or run on a terminal", keyPasswordEnv)
	}
	defer tty.Close()
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(tty, prompt)
		p, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		return p, nil
	}
	p, err := ask("Key password: ")
	if err != nil {
		return nil, err
	}
	if confirm {
		again, err := ask("Repeat password: ")
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(p, again) != 1 {
			return nil, errors.New("passwords do not match")
		}
	}
	return p, nil
}
