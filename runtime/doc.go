// Package runtime runs a Qwen2/Llama-family chat model on CPU: it loads a
// verified model directory (config.json, safetensors weights, tokenizer.json,
// tokenizer_config.json, generation_config.json), applies the chat template,
// and generates tokens with a KV cache. Tensors are spago mat matrices; the
// hot paths use the SIMD kernels of runtime/kernels.
package runtime
