package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/bundle"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/verify"
)

func init() {
	register(&cli.Command{
		Name:      "inspect",
		Usage:     "show a bundle's manifest without extracting it",
		ArgsUsage: "FILE.tar.zst",
		Description: "Prints the manifest (name, source, files, sizes, roles) and the key id\n" +
			"that signed it. Without --pubkey nothing is verified and the output says so;\n" +
			"with --pubkey the manifest signature is checked first.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "pubkey", Aliases: []string{"p"}, Usage: "check the manifest signature with this minisign public key `FILE`", EnvVars: []string{"AIRLOCK_PUBKEY"}},
			&cli.BoolFlag{Name: "json", Usage: "print the manifest and signature facts as JSON"},
		},
		Action: runInspect,
	})
}

// inspectResult is the --json output of airlock inspect.
type inspectResult struct {
	Manifest       *manifests.Manifest `json:"manifest"`
	SignerKey      string              `json:"signer_key"`
	TrustedComment string              `json:"trusted_comment"`
	Verified       bool                `json:"verified"`
}

func runInspect(c *cli.Context) error {
	pos := c.Args().Slice()
	if len(pos) != 1 {
		return usagef("inspect: want one FILE.tar.zst argument, got %d", len(pos))
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	defer f.Close()
	r, err := bundle.NewReader(f)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", pos[0], err)
	}
	defer r.Close()

	var res inspectResult
	if p := c.String("pubkey"); p != "" {
		pub, err := signing.LoadPublicKey(p)
		if err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
		m, _, sig, err := verify.ReadVerifiedHeader(r, pub)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", pos[0], err)
		}
		s, _ := signing.ParseSignature(sig)
		res = inspectResult{Manifest: m, SignerKey: signing.KeyID(s.KeyID), TrustedComment: s.TrustedComment, Verified: true}
	} else {
		body, sig, err := r.ReadHeader()
		if err != nil {
			return fmt.Errorf("inspect %s: %w", pos[0], err)
		}
		m, err := manifests.Parse(body)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", pos[0], err)
		}
		s, err := signing.ParseSignature(sig)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", pos[0], err)
		}
		res = inspectResult{Manifest: m, SignerKey: signing.KeyID(s.KeyID), TrustedComment: s.TrustedComment}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printInspect(c.App.Writer, pos[0], res)
	return nil
}

func printInspect(w io.Writer, path string, r inspectResult) {
	m := r.Manifest
	status := "NOT VERIFIED: pass --pubkey to check the signature"
	if r.Verified {
		status = "signature verified"
	}
	fmt.Fprintf(w, "bundle:     %s\nname:       %s\ncreated:    %s\nsource:     %s %s", path, m.Name, m.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), m.Source.Kind, m.Source.ID)
	if m.Source.Revision != "" {
		fmt.Fprintf(w, " @ %s", m.Source.Revision)
	}
	fmt.Fprintf(w, "\ntool:       %s %s\nsigner key: %s (%s)\nfiles:      %d, %d bytes\n\n", m.Tool.Name, m.Tool.Version, r.SignerKey, status, len(m.Files), m.TotalSize())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SIZE\tROLE\tPLATFORM\tSHA256\tPATH\t")
	for _, f := range m.Files {
		plat := f.Platform
		if plat == "" {
			plat = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t\n", f.Size, f.Role, plat, f.SHA256[:16], f.Path)
	}
	_ = tw.Flush()
}
