// Package nn holds the layers of goreweight's Go-native GPT trainer, each a pair
// of hand-written Forward and Backward functions over plain float32 buffers.
//
// # Conventions
//
// All tensors are row-major []float32 slices owned by the caller; a layer never
// allocates its outputs. Shapes are documented on each function with the
// letters N (rows, usually B*T), B (batch), T (time), C (channels), V
// (vocabulary) and H (heads).
//
// Forward overwrites its output buffers. Backward ACCUMULATES (+=) into both the
// input gradients it is given and the Grad slices of the layer's parameters, as
// in karpathy/llm.c: the caller zeroes gradient buffers before a backward pass,
// and a residual connection is just two layers adding into the same buffer.
// Input and output buffers of one call must not overlap unless a function says
// otherwise.
//
// Inputs are assumed valid (token ids in range, lengths consistent): the caller
// (package gpt) checks user input and returns errors; a layer handed
// inconsistent buffers panics like an out-of-range slice index.
//
// # Backend and threads
//
// Matrix products go through two functions, gemm and colSums (backend.go).
// Which BLAS backs them is decided in one place, the backend_*.go files, by
// build tags:
//
//	go build ./...                       # pure-Go gonum (default, no cgo)
//	go build -tags scipyopenblas ./...   # the scipy-openblas32 wheel, through cgo
//	go build -tags openblas ./...        # a system libopenblas, through cgo
//
// `pip install .` uses scipyopenblas (setup.py passes the wheel's include and
// lib directories and an rpath in CGO_CFLAGS / CGO_LDFLAGS; see
// backend_scipyopenblas.go). The openblas tag needs the library and headers
// at link time (Debian/Ubuntu: apt-get install libopenblas-dev). Both need
// cgo (CGO_ENABLED=1, a C compiler); with either tag but without cgo the
// build stops with an error naming the fix. [Backend] names the backend in
// use; the trainer prints it at start-up. On this project's 2-core machines
// gonum's Sgemm runs at about 10 GFLOP/s per core, OpenBLAS at about 100 with
// its AVX2 (Haswell) kernels and about 200 with its AVX-512 (SkylakeX) ones on
// a Zen 5 core (OPENBLAS_CORETYPE forces a kernel set).
//
// Outside the matrix products, the hot loops (GELU's tanh, softmax's exp, and
// the LayerNorm and softmax rows) run as AVX2+FMA assembly in the internal
// fastmath package when the CPU has it, with a pure-Go fallback that the
// purego build tag forces. All parallelism is Go's: every layer splits
// its work over [Threads] goroutines by fixed rows (or fixed columns for
// reductions over rows), so each output element is computed by exactly one
// goroutine in a fixed order and results are bitwise reproducible for a given
// seed and thread count. Reductions over rows (bias, LayerNorm and embedding
// gradients) are partitioned by columns, so no two goroutines ever add into
// the same element. Different thread counts may differ in the last bits.
// With OpenBLAS, its own thread pool is set to one thread so that it never
// competes with the goroutines (see backend_cblas.go).
package nn
