package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/bundle"
	"github.com/airlock-dev/airlock/internal/signing"
)

func init() {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "sign", Usage: "sign with the minisign private key `FILE` (from airlock keygen or minisign -G)", EnvVars: []string{"AIRLOCK_SIGN_KEY"}},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the bundle to `FILE`.tar.zst (and FILE.tar.zst.minisig)"},
		&cli.StringFlag{Name: "password-file", Usage: "read the key password from the first line of `FILE` (else $" + keyPasswordEnv + " or a prompt)"},
		&cli.StringFlag{Name: "name", Usage: "bundle name recorded in the manifest (default: the source id)"},
		&cli.StringFlag{Name: "created-at", Usage: "creation time, RFC 3339 or Unix seconds, for reproducible bundles (default: $SOURCE_DATE_EPOCH, else now)"},
		&cli.StringFlag{Name: "compression", Value: string(bundle.CompressAuto), Usage: "auto (store incompressible weights, fast level for bf16, default for text), store, fast, default or better"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite an existing output file"},
	}
	register(&cli.Command{
		Name:      "bundle",
		Usage:     "pack a model into one signed .tar.zst bundle",
		ArgsUsage: "SOURCE",
		Description: "Reads every file of SOURCE once, hashing (sha256) while compressing, and\n" +
			"writes FILE.tar.zst: the signed manifest first, then the files. A detached\n" +
			"FILE.tar.zst.minisig covers the whole file, so an auditor can check it with\n" +
			"the stock tool before running airlock:  minisign -Vm FILE.tar.zst -p KEY.pub",
		Flags:  append(flags, sourceFlags()...),
		Action: runBundle,
	})
}

func runBundle(c *cli.Context) error {
	out := c.String("out")
	if out == "" {
		return usagef("bundle: --out FILE is required")
	}
	if c.String("sign") == "" {
		return usagef("bundle: --sign KEY is required (a private key from airlock keygen or minisign -G)")
	}
	if !c.Bool("force") {
		if _, err := os.Lstat(out); err == nil {
			return fmt.Errorf("bundle: %s already exists (use --force to overwrite)", out)
		}
	}
	compression, err := bundle.ParseCompression(c.String("compression"))
	if err != nil {
		return usagef("bundle: %v", err)
	}
	createdAt, err := bundleTime(c.String("created-at"))
	if err != nil {
		return usagef("bundle: %v", err)
	}
	signer, err := loadSigner(c, c.String("sign"))
	if err != nil {
		return err
	}
	src, err := openSource(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	snap, err := src.Resolve(ctx)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	m, err := bundle.WriteFile(ctx, out, snap, bundle.Options{
		Signer:      &signer,
		Name:        c.String("name"),
		CreatedAt:   createdAt,
		Compression: compression,
		Progress:    os.Stderr,
	})
	if err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s (%d files, %d bytes of content, %d bytes on disk)\nsignature %s.minisig by key %s\n",
		out, len(m.Files), m.TotalSize(), st.Size(), out, signing.KeyID(signer.ID()))
	return nil
}

// loadSigner loads a private key, asking for a password only when the key
// is encrypted.
func loadSigner(c *cli.Context, path string) (signing.PrivateKey, error) {
	encrypted, err := signing.IsEncryptedKeyFile(path)
	if err != nil {
		return signing.PrivateKey{}, fmt.Errorf("bundle: %w", err)
	}
	var password []byte
	if encrypted {
		if password, err = keyPassword(c, false); err != nil {
			return signing.PrivateKey{}, err
		}
	}
	k, err := signing.LoadPrivateKey(path, password)
	if err != nil {
		if errors.Is(err, signing.ErrWrongPassword) {
			return signing.PrivateKey{}, fmt.Errorf("bundle: %s: wrong password", path)
		}
		return signing.PrivateKey{}, fmt.Errorf("bundle: %w", err)
	}
	return k, nil
}

// bundleTime parses --created-at (RFC 3339 or Unix seconds), falling back
// to SOURCE_DATE_EPOCH, the reproducible-builds convention.
func bundleTime(s string) (time.Time, error) {
	if s == "" {
		s = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("created-at %q: want RFC 3339 or Unix seconds", s)
	}
	return t, nil
}
