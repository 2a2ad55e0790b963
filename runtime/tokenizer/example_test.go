package tokenizer_test

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/airlock-dev/airlock/runtime/tokenizer"
)

func Example() {
	tok, err := tokenizer.LoadDir(filepath.Join("..", "..", "testdata", "qwen-tokenizer"))
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode("<|im_start|>user\n你好<|im_end|>")
	fmt.Println(ids)
	fmt.Printf("%q\n", tok.Decode(ids))

	// Stream decoding emits only complete characters: the byte-level tokens
	// of "𓀀" (U+13000) produce text only once the character is complete.
	d := tok.NewStreamDecoder()
	for _, id := range tok.Encode("a𓀀") {
		fmt.Printf("%q ", d.Push(id))
	}
	fmt.Printf("%q\n", d.Flush())
	fmt.Println(tok.EOSIDs())
	// Output:
	// [151644 872 198 108386 151645]
	// "<|im_start|>user\n你好<|im_end|>"
	// "a" "" "" "𓀀" ""
	// [151645 151643]
}
