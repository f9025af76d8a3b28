// Package examples holds example functions for nanofaas, one per directory, each with a
// function.json that registers it with the control plane's process backend. Each Go example is
// a main package built with `go build -o bin/examples/<name> ./examples/<name>`; shell-upper is a
// STDIO handler script. This package itself only tests that every function.json is a valid
// registration and that the shell handler works.
package examples
