package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/runtime/tokenizer"
)

// maxTokenizeInput bounds what tokenize reads from stdin.
const maxTokenizeInput = 64 << 20

func init() {
	register(&cli.Command{
		Name:        "tokenize",
		Usage:       "print the token ids of the text on stdin",
		ArgsUsage:   "DIR",
		Description: "Reads UTF-8 text on stdin and prints its token ids, space-separated, or {\"ids\":[...]} with --json.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: `print {"ids":[...]}`},
		},
		Action: runTokenize,
	})
}

func runTokenize(c *cli.Context) error {
	dir, err := modelDirArg(c)
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(os.Stdin, maxTokenizeInput+1))
	if err != nil {
		return fmt.Errorf("tokenize: read stdin: %w", err)
	}
	if len(data) > maxTokenizeInput {
		return fmt.Errorf("tokenize: input exceeds %d bytes", maxTokenizeInput)
	}
	ids := tok.Encode(string(data))
	if ids == nil {
		ids = []int{}
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(struct {
			IDs []int `json:"ids"`
		}{ids})
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	_, err = fmt.Println(strings.Join(parts, " "))
	return err
}
