// Package manifests defines the signed bundle manifest (what a bundle holds)
// and, beside it, the recipes and lock files that say what to fetch. The
// recipes shipped with airlock live in this directory as YAML files.
package manifests

import "time"

// FormatVersion is the bundle manifest format written by this airlock.
const FormatVersion = 1

// Role says what a bundled file is for.
type Role string

// Roles a bundled file can have.
const (
	RoleWeights   Role = "weights"
	RoleTokenizer Role = "tokenizer"
	RoleConfig    Role = "config"
	RoleRuntime   Role = "runtime"
	RoleExtra     Role = "extra"
)

// Manifest is the signed description of a bundle: where its content came
// from and the size and sha256 of every file in it.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"created_at"`
	Source        Source    `json:"source"`
	Tool          Tool      `json:"tool"`
	Files         []File    `json:"files"`
}

// Source names where a bundle's model came from.
type Source struct {
	Kind     string `json:"kind"`               // "local", "modelscope", "huggingface"
	ID       string `json:"id"`                 // e.g. "qwen/Qwen1.5-0.5B-Chat" or a directory name
	Revision string `json:"revision,omitempty"` // resolved revision (commit or tag), if any
}

// Tool names the program that wrote the bundle.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// File is one file of a bundle.
type File struct {
	Path             string `json:"path"` // slash-separated, relative, clean
	Size             int64  `json:"size"`
	SHA256           string `json:"sha256"` // lowercase hex
	Role             Role   `json:"role"`
	Platform         string `json:"platform,omitempty"`          // "linux/amd64" for runtime binaries
	UpstreamRevision string `json:"upstream_revision,omitempty"` // commit of the file's last upstream change
}
