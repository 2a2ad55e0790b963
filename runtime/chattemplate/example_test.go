package chattemplate_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/airlock-dev/airlock/runtime/chattemplate"
)

func Example() {
	cfg, err := os.ReadFile(filepath.Join("..", "..", "testdata", "qwen-tokenizer", "tokenizer_config.json"))
	if err != nil {
		log.Fatal(err)
	}
	tpl, err := chattemplate.FromConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	prompt, err := tpl.Render([]chattemplate.Message{{Role: "user", Content: "Hello!"}}, true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tpl.Kind())
	fmt.Printf("%q\n", prompt)
	// Output:
	// chatml-default-system
	// "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
}
