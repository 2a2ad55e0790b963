package runtime

// textCodec is what the model needs from a tokenizer and chat template.
type textCodec interface {
	encode(text string) []int
	decode(ids []int) string
	newStream() streamDecoder
	renderChat(msgs []Message, addGenerationPrompt bool) (string, error)
	stopIDs() []int
}

// streamDecoder turns ids into text as they arrive, holding back the bytes
// of a character that is still incomplete.
type streamDecoder interface {
	push(id int) string
	flush() string
}
