// Package goreweight is the core of goreweight: dynamic loss-based sample
// reweighting for language-model pretraining (Sow et al., "Dynamic Loss-Based
// Sample Reweighting for Improved Large Language Model Pretraining", ICLR 2025,
// arXiv 2502.06733).
//
// # Layout
//
// The module github.com/goreweight/goreweight holds three layers side by
// side at its root: this core (directory goreweight/), the C ABI (capi/)
// and the Python package (python/). That is why the core's import path reads
// github.com/goreweight/goreweight/goreweight: the repository is the
// product, the directory goreweight/ is its Go core. The Go-native GPT
// trainer lives below it in goreweight/trainer/ (nn, gpt, optim, data,
// train, cmd/goreweight-train); it imports this package, and this package
// imports nothing of it.
package goreweight
