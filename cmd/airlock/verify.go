package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/verify"
)

func init() {
	register(&cli.Command{
		Name:      "verify",
		Usage:     "verify a bundle and install it, or re-check an installed directory",
		ArgsUsage: "FILE.tar.zst --out DIR | DIR",
		Description: "airlock verify FILE.tar.zst --pubkey KEY.pub --out DIR\n" +
			"  checks the manifest signature first, then every file's size and sha256\n" +
			"  while extracting into a staging directory beside DIR; DIR appears only\n" +
			"  when everything verified. An existing DIR is refused unless --force,\n" +
			"  which swaps it atomically and never leaves a half state.\n\n" +
			"airlock verify DIR --pubkey KEY.pub\n" +
			"  re-checks an installed directory against its signed manifest and names\n" +
			"  every modified, missing and unexpected file (--quick: sizes only).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "pubkey", Aliases: []string{"p"}, Usage: "trusted minisign public key `FILE`", EnvVars: []string{"AIRLOCK_PUBKEY"}},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "install the verified bundle into `DIR`"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing --out directory (atomically)"},
			&cli.BoolFlag{Name: "quick", Usage: "directory check: compare sizes only, skip re-hashing"},
			&cli.BoolFlag{Name: "no-sync", Usage: "do not flush extracted files to disk before installing them"},
			&cli.BoolFlag{Name: "detached", Usage: "also check FILE.tar.zst.minisig over the whole file first (one extra read)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout"},
		},
		Action: runVerify,
	})
}

// verifyResult is the --json output of airlock verify.
type verifyResult struct {
	OK         bool             `json:"ok"`
	Bundle     string           `json:"bundle,omitempty"`
	Dir        string           `json:"dir"`
	Name       string           `json:"name,omitempty"`
	SignerKey  string           `json:"signer_key,omitempty"`
	Files      int              `json:"files"`
	Bytes      int64            `json:"bytes"`
	FullHashes bool             `json:"full_hashes"`
	Missing    []string         `json:"missing,omitempty"`
	Modified   []verify.Problem `json:"modified,omitempty"`
	Unexpected []string         `json:"unexpected,omitempty"`
	Error      string           `json:"error,omitempty"`
}

func runVerify(c *cli.Context) error {
	pos := c.Args().Slice()
	if len(pos) != 1 {
		return usagef("verify: want one FILE.tar.zst or DIR argument, got %d", len(pos))
	}
	if c.String("pubkey") == "" {
		return usagef("verify: --pubkey KEY.pub is required (the trusted public key)")
	}
	pub, err := signing.LoadPublicKey(c.String("pubkey"))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	target := pos[0]
	st, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var res verifyResult
	if st.IsDir() {
		if c.String("out") != "" {
			return usagef("verify: --out is for bundles; %s is a directory", target)
		}
		res, err = verifyDir(c, target, pub)
	} else {
		if c.String("out") == "" {
			return usagef("verify: --out DIR is required to verify and install a bundle")
		}
		res, err = verifyBundle(c, target, pub)
	}
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else if err == nil {
		printVerifySummary(c.App.Writer, res)
	}
	return err
}

func verifyBundle(c *cli.Context, path string, pub signing.PublicKey) (verifyResult, error) {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := verifyResult{Bundle: path, Dir: c.String("out"), FullHashes: true}
	if c.Bool("detached") {
		if _, err := verify.Detached(path, pub); err != nil {
			return res, fmt.Errorf("verify %s: %w", path, err)
		}
	}
	m, err := verify.Extract(ctx, path, pub, c.String("out"), verify.Options{
		Force: c.Bool("force"), NoSync: c.Bool("no-sync"), Progress: os.Stderr,
	})
	if err != nil {
		return res, err
	}
	res.Name, res.Files, res.Bytes = m.Name, len(m.Files), m.TotalSize()
	res.SignerKey = signing.KeyID(pub.ID())
	return res, nil
}

func verifyDir(c *cli.Context, dir string, pub signing.PublicKey) (verifyResult, error) {
	res := verifyResult{Dir: dir, FullHashes: !c.Bool("quick")}
	rep, err := verify.CheckDir(dir, pub, verify.DirOptions{FullHashes: !c.Bool("quick"), Progress: os.Stderr})
	if rep != nil {
		res.Name, res.SignerKey, res.Files, res.Bytes = rep.Name, rep.SignerKey, rep.Files, rep.Bytes
		res.Missing, res.Modified, res.Unexpected = rep.Missing, rep.Modified, rep.Unexpected
	}
	return res, err
}

func printVerifySummary(w io.Writer, r verifyResult) {
	how := "sizes and sha256"
	if !r.FullHashes {
		how = "sizes only (--quick)"
	}
	if r.Bundle != "" {
		fmt.Fprintf(w, "verified %s: %q, %d files, %d bytes, signed by key %s\ninstalled into %s\n",
			r.Bundle, r.Name, r.Files, r.Bytes, r.SignerKey, r.Dir)
		return
	}
	fmt.Fprintf(w, "%s matches its signed manifest: %q, %d files, %d bytes, signed by key %s (checked %s)\n",
		r.Dir, r.Name, r.Files, r.Bytes, r.SignerKey, how)
}
