package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/runtime"
)

func init() {
	register(&cli.Command{
		Name:      "chat",
		Usage:     "chat with the model in the terminal (streaming, multi-turn)",
		ArgsUsage: "DIR",
		Description: "Type a message and press Enter; the reply streams as it is generated. Ctrl-C stops\n" +
			"a reply; Ctrl-D (or /exit) quits; /reset starts a new conversation.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "system", Usage: "system prompt (default: the chat template's)"},
			&cli.BoolFlag{Name: "heap", Usage: "read the weights into memory instead of memory-mapping them", EnvVars: []string{"AIRLOCK_HEAP_WEIGHTS"}},
		}, samplingFlags()...),
		Action: runChat,
	})
}

func runChat(c *cli.Context) error {
	dir, err := modelDirArg(c)
	if err != nil {
		return err
	}
	m, err := loadModel(c, dir)
	if err != nil {
		return err
	}
	defer m.Close()
	if !m.HasTokenizer() {
		return fmt.Errorf("chat: %w", runtime.ErrNoTokenizer)
	}
	p := sampleParams(c, m)
	if !c.IsSet("seed") {
		p.Seed = uint64(os.Getpid())
	}
	return chatLoop(c.Context, m, p, c.String("system"), os.Stdin, os.Stdout)
}

// chatLoop reads user turns from in and streams replies to out until EOF.
func chatLoop(ctx context.Context, m *runtime.Model, p runtime.SampleParams, system string, in io.Reader, out io.Writer) error {
	var history []runtime.Message
	if system != "" {
		history = append(history, runtime.Message{Role: "system", Content: system})
	}
	base := len(history)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for {
		fmt.Fprint(out, "> ")
		if !sc.Scan() {
			fmt.Fprintln(out)
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return nil
		case "/reset":
			history = history[:base]
			fmt.Fprintln(out, "(new conversation)")
			continue
		}
		history = append(history, runtime.Message{Role: "user", Content: line})
		prompt, err := m.RenderChat(history, true)
		if err != nil {
			return fmt.Errorf("chat: %w", err)
		}
		ids := m.Encode(prompt)
		turnCtx, stop := signalContext(ctx)
		res, err := m.Generate(turnCtx, ids, p, func(ev runtime.TokenEvent) error {
			_, err := io.WriteString(out, ev.Text)
			return err
		})
		stop()
		fmt.Fprintln(out)
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("chat: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.FinishReason == runtime.FinishCancelled {
			fmt.Fprintln(out, "(stopped)")
		}
		history = append(history, runtime.Message{Role: "assistant", Content: res.Text})
	}
}
