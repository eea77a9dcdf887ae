package data

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"unicode/utf8"
)

// BuiltinConfig configures the built-in corpus (see Builtin). Its zero
// value is not the default: start from DefaultBuiltinConfig.
type BuiltinConfig struct {
	// MaxBytes is the total size of the corpus in bytes, synthetic
	// documents included. Default 4 MiB.
	MaxBytes int
	// DupFraction is the fraction of MaxBytes made of duplicate documents.
	// Default 0.10.
	DupFraction float64
	// NoiseFraction is the fraction of MaxBytes made of noise documents.
	// Default 0.05.
	NoiseFraction float64
	// EntropyFraction is the fraction of MaxBytes made of the synthetic
	// entropy domain. Default 0.10.
	EntropyFraction float64
	// DupCopies is the number of copies made of each duplicated document.
	// Default 8.
	DupCopies int
	// Domains are the top-level directories of GOROOT/src whose Go files
	// make the real domains. Default runtime, net, crypto, cmd.
	Domains []string
	// GOROOT is the Go tree to read; empty means find it: $GOROOT, the
	// GOROOT this binary was built with, then `go env GOROOT`.
	GOROOT string
	// Seed drives every random choice. Default 1.
	Seed uint64
}

// DefaultBuiltinConfig returns the default built-in corpus configuration.
func DefaultBuiltinConfig() BuiltinConfig {
	return BuiltinConfig{
		MaxBytes:        4 << 20,
		DupFraction:     0.10,
		NoiseFraction:   0.05,
		EntropyFraction: 0.10,
		DupCopies:       8,
		Domains:         []string{"runtime", "net", "crypto", "cmd"},
		Seed:            1,
	}
}

// The synthetic parts of the built-in corpus.
const (
	// EntropyDomain is the domain of the synthetic documents of known
	// entropy.
	EntropyDomain = "entropy"
	// EntropyAlphabet are the symbols of the entropy domain, drawn i.i.d.
	// with probabilities EntropyWeights/16.
	EntropyAlphabet = " abcdefg"
	// EntropyNatsPerByte is the exact entropy of one symbol of the entropy
	// domain: 2.75 bits. Each symbol is one byte, so it is also the exact
	// loss floor in nats per token of the byte tokenizer.
	EntropyNatsPerByte = 2.75 * math.Ln2
	// NoiseAlphabetSize is the number of symbols noise documents draw from
	// uniformly: the printable ASCII characters 0x20..0x7E.
	NoiseAlphabetSize = 95
	// EntropyDocBytes is the size of an entropy document.
	EntropyDocBytes = 4096
	// NoiseDocBytes is the size of a noise document.
	NoiseDocBytes = 2048
)

// EntropyWeights are the probabilities of EntropyAlphabet's symbols, in
// sixteenths: 1/4, 1/4, 1/8, 1/8, 1/16, 1/16, 1/16, 1/16.
var EntropyWeights = [8]int{4, 4, 2, 2, 1, 1, 1, 1}

// NoiseNatsPerByte is the entropy of one noise byte, ln 95: noise
// documents are uniform printable ASCII.
var NoiseNatsPerByte = math.Log(NoiseAlphabetSize)

// BuiltinInfo describes a built-in corpus.
type BuiltinInfo struct {
	// Config is the configuration used, with GOROOT filled in.
	Config BuiltinConfig
	// GoVersion is the version of the Go tree read, e.g. "go1.26.8": the
	// real documents depend on it.
	GoVersion string
	// Domains are the corpus's domains: the real ones in Config.Domains
	// order, then EntropyDomain if it has documents.
	Domains []string
	// Docs and Bytes count documents and bytes per kind.
	Docs, Bytes map[string]int
	// DomainBytes counts bytes per domain, all kinds.
	DomainBytes map[string]int
	// EntropyNatsPerByte maps each synthetic domain of known entropy to its
	// entropy in nats per byte, which is the exact loss floor per token for
	// the byte tokenizer. For another tokenizer the floor per token is this
	// times the domain's bytes per token (see DomainStats.BytesPerToken): the
	// tokenisation is invertible, so the information per byte is unchanged.
	EntropyNatsPerByte map[string]float64
	// NoiseNatsPerByte is the entropy of noise documents per byte, ln 95.
	NoiseNatsPerByte float64
}

// Builtin returns the built-in corpus, which needs no download: real text
// every machine building goreweight has, the Go toolchain's own source tree,
// mixed with synthetic documents of known kind.
//
//   - Real (KindReal): .go files under GOROOT/src/<domain> for each of
//     cfg.Domains (testdata and vendor directories skipped), picked in a
//     seeded random order until each domain holds its share of the real
//     bytes, split by SplitText into documents of at most TextDocBytes, and
//     ordered by path. Domain: the directory name.
//   - Duplicate (KindDuplicate): cfg.DupCopies exact copies of each of a
//     pool of real documents (seeded random picks from each domain in turn),
//     with the domain of the original, until they make cfg.DupFraction of
//     the bytes.
//   - Noise (KindNoise): documents of NoiseDocBytes uniform printable ASCII
//     (entropy ln 95 nats per byte), assigned to the real domains in turn.
//   - Entropy (KindEntropy, domain EntropyDomain): documents of
//     EntropyDocBytes symbols drawn i.i.d. from EntropyAlphabet with
//     probabilities EntropyWeights/16: exactly EntropyNatsPerByte nats per
//     byte (2.75 bits).
//
// Documents come real (by domain), duplicate, noise, entropy, numbered in
// that order. The same configuration and Go tree give the same corpus.
func Builtin(cfg BuiltinConfig) ([]Document, BuiltinInfo, error) {
	if err := cfg.validate(); err != nil {
		return nil, BuiltinInfo{}, err
	}
	root, err := findGOROOT(cfg.GOROOT)
	if err != nil {
		return nil, BuiltinInfo{}, err
	}
	cfg.GOROOT = root
	cfg.Domains = append([]string(nil), cfg.Domains...)

	total := float64(cfg.MaxBytes)
	dupBytes := int(cfg.DupFraction * total)
	noiseBytes := int(cfg.NoiseFraction * total)
	entropyBytes := int(cfg.EntropyFraction * total)
	realBytes := cfg.MaxBytes - dupBytes - noiseBytes - entropyBytes
	perDomain := realBytes / len(cfg.Domains)

	var docs []Document
	for i, dom := range cfg.Domains {
		got, err := goDomain(root, dom, perDomain, newRNG(cfg.Seed, "builtin/files", uint64(i)))
		if err != nil {
			return nil, BuiltinInfo{}, err
		}
		docs = append(docs, got...)
	}
	docs = append(docs, duplicates(docs, dupBytes, cfg.DupCopies, cfg.Seed)...)
	docs = append(docs, noiseDocs(noiseBytes, cfg.Domains, cfg.Seed)...)
	docs = append(docs, entropyDocs(entropyBytes, cfg.Seed)...)
	renumber(docs)

	info := BuiltinInfo{
		Config:             cfg,
		GoVersion:          goVersion(root),
		Domains:            append([]string(nil), cfg.Domains...),
		Docs:               map[string]int{},
		Bytes:              map[string]int{},
		DomainBytes:        map[string]int{},
		EntropyNatsPerByte: map[string]float64{},
		NoiseNatsPerByte:   NoiseNatsPerByte,
	}
	for _, d := range docs {
		info.Docs[d.Kind]++
		info.Bytes[d.Kind] += len(d.Text)
		info.DomainBytes[d.Domain] += len(d.Text)
	}
	if info.Docs[KindEntropy] > 0 {
		info.Domains = append(info.Domains, EntropyDomain)
		info.EntropyNatsPerByte[EntropyDomain] = EntropyNatsPerByte
	}
	return docs, info, nil
}

func (c BuiltinConfig) validate() error {
	if c.MaxBytes <= 0 {
		return fmt.Errorf("data: builtin: MaxBytes %d must be positive (DefaultBuiltinConfig uses %d)", c.MaxBytes, DefaultBuiltinConfig().MaxBytes)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"DupFraction", c.DupFraction}, {"NoiseFraction", c.NoiseFraction}, {"EntropyFraction", c.EntropyFraction}} {
		if !(f.v >= 0 && f.v < 1) {
			return fmt.Errorf("data: builtin: %s %v must be in [0, 1)", f.name, f.v)
		}
	}
	if s := c.DupFraction + c.NoiseFraction + c.EntropyFraction; s >= 0.95 {
		return fmt.Errorf("data: builtin: DupFraction+NoiseFraction+EntropyFraction = %v leaves almost no real text (must be < 0.95)", s)
	}
	if c.DupFraction > 0 && c.DupCopies < 1 {
		return fmt.Errorf("data: builtin: DupCopies %d must be at least 1 when DupFraction > 0", c.DupCopies)
	}
	if len(c.Domains) == 0 {
		return errors.New("data: builtin: no Domains")
	}
	seen := map[string]bool{}
	for _, d := range c.Domains {
		if d == "" || d == EntropyDomain || strings.ContainsAny(d, `/\.`) || seen[d] {
			return fmt.Errorf("data: builtin: bad or repeated domain %q (want a top-level directory of GOROOT/src, not %q)", d, EntropyDomain)
		}
		seen[d] = true
	}
	return nil
}

// findGOROOT returns the first Go tree with a src/runtime directory among
// the configured one, $GOROOT, the build-time GOROOT and `go env GOROOT`.
func findGOROOT(configured string) (string, error) {
	if configured != "" {
		if !isGoTree(configured) {
			return "", fmt.Errorf("data: builtin: GOROOT %q has no src/runtime directory", configured)
		}
		return configured, nil
	}
	tried := []string{}
	try := func(dir string) bool {
		dir = strings.TrimSpace(dir)
		if dir == "" {
			return false
		}
		tried = append(tried, dir)
		return isGoTree(dir)
	}
	if d := os.Getenv("GOROOT"); try(d) {
		return d, nil
	}
	//lint:ignore SA1019 the build-time GOROOT is a legitimate fallback here.
	if d := runtime.GOROOT(); try(d) {
		return d, nil
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); try(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("data: builtin corpus needs the Go source tree, which was not found (tried %q); install Go, or set GOROOT or BuiltinConfig.GOROOT", tried)
}

func isGoTree(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "src", "runtime"))
	return err == nil && st.IsDir()
}

func goVersion(root string) string {
	if b, err := os.ReadFile(filepath.Join(root, "VERSION")); err == nil {
		if line, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(line, "go") {
			return strings.TrimSpace(line)
		}
	}
	return runtime.Version()
}

// goDomain reads .go files of GOROOT/src/dom in a seeded random order until
// budget bytes, and returns their documents in path order.
func goDomain(root, dom string, budget int, r *rand.PCG) ([]Document, error) {
	dir := filepath.Join(root, "src", dom)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("data: builtin: domain %q: %s is not a directory of the Go tree", dom, dir)
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && strings.HasSuffix(name, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("data: builtin: %w", err)
	}
	shuffle(r, len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	type chunk struct {
		file string
		idx  int
		text string
	}
	var chunks []chunk
	used := 0
	for _, f := range files {
		if used >= budget {
			break
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("data: builtin: %w", err)
		}
		if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
			continue
		}
		for i, c := range SplitText(string(b), TextDocBytes) {
			if used >= budget {
				break
			}
			chunks = append(chunks, chunk{f, i, c})
			used += len(c)
		}
	}
	sort.Slice(chunks, func(i, j int) bool {
		if chunks[i].file != chunks[j].file {
			return chunks[i].file < chunks[j].file
		}
		return chunks[i].idx < chunks[j].idx
	})
	docs := make([]Document, len(chunks))
	for i, c := range chunks {
		rel, _ := filepath.Rel(root, c.file)
		docs[i] = Document{
			Domain: dom,
			Kind:   KindReal,
			Text:   c.text,
			Source: fmt.Sprintf("GOROOT/%s#%d", filepath.ToSlash(rel), c.idx),
		}
	}
	return docs, nil
}

// duplicates makes copies copies of a pool of real documents, round-robin,
// until they hold budget bytes. The pool takes seeded random documents from
// each domain in turn, so that every domain has duplicates.
func duplicates(real []Document, budget, copies int, seed uint64) []Document {
	if budget <= 0 || len(real) == 0 {
		return nil
	}
	var groups [][]int
	groupOf := map[string]int{}
	for i, d := range real {
		g, ok := groupOf[d.Domain]
		if !ok {
			g = len(groups)
			groupOf[d.Domain] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	r := newRNG(seed, "builtin/dup", 0)
	for _, g := range groups {
		shuffle(r, len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
	}
	target := (budget + copies - 1) / copies
	var pool []int
	for n, k := 0, 0; n < target && len(pool) < len(real); k++ {
		for _, g := range groups {
			if k < len(g) && n < target {
				pool = append(pool, g[k])
				n += len(real[g[k]].Text)
			}
		}
	}
	sort.Ints(pool)
	var out []Document
	for used := 0; used < budget; {
		for _, i := range pool {
			if used >= budget {
				break
			}
			src := real[i]
			out = append(out, Document{
				Domain: src.Domain,
				Kind:   KindDuplicate,
				Text:   src.Text,
				Source: "duplicate of " + src.Source,
			})
			used += len(src.Text)
		}
	}
	return out
}

// noiseDocs makes budget bytes of uniform printable ASCII in documents of
// NoiseDocBytes, spread over domains in turn.
func noiseDocs(budget int, domains []string, seed uint64) []Document {
	r := newRNG(seed, "builtin/noise", 0)
	var out []Document
	for used := 0; used < budget; {
		n := min(NoiseDocBytes, budget-used)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0x20 + uintn(r, NoiseAlphabetSize))
		}
		out = append(out, Document{
			Domain: domains[len(out)%len(domains)],
			Kind:   KindNoise,
			Text:   string(b),
			Source: fmt.Sprintf("builtin noise #%d", len(out)),
		})
		used += n
	}
	return out
}

// entropyTable maps 4 random bits to a symbol with EntropyWeights.
var entropyTable = func() [16]byte {
	var t [16]byte
	k := 0
	for s, w := range EntropyWeights {
		for range w {
			t[k] = EntropyAlphabet[s]
			k++
		}
	}
	return t
}()

// EntropyText returns n symbols drawn i.i.d. from EntropyAlphabet with
// probabilities EntropyWeights/16, from the stream given by seed and index.
// The entropy domain of Builtin is made of such texts.
func EntropyText(n int, seed, index uint64) string {
	r := newRNG(seed, "builtin/entropy", index)
	b := make([]byte, n)
	var bits uint64
	for i := range b {
		if i%16 == 0 {
			bits = r.Uint64()
		}
		b[i] = entropyTable[bits&15]
		bits >>= 4
	}
	return string(b)
}

// entropyDocs makes budget bytes of entropy-domain documents of
// EntropyDocBytes.
func entropyDocs(budget int, seed uint64) []Document {
	var out []Document
	for used := 0; used < budget; {
		n := min(EntropyDocBytes, budget-used)
		out = append(out, Document{
			Domain: EntropyDomain,
			Kind:   KindEntropy,
			Text:   EntropyText(n, seed, uint64(len(out))),
			Source: fmt.Sprintf("builtin entropy #%d", len(out)),
		})
		used += n
	}
	return out
}
