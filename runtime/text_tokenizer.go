package runtime

// loadTextCodec loads the tokenizer and chat template of dir.
func loadTextCodec(dir string) (textCodec, error) { return nil, nil }
