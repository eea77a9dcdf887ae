package data

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultBuiltinConfig(t *testing.T) {
	c := DefaultBuiltinConfig()
	want := BuiltinConfig{
		MaxBytes: 4 << 20, DupFraction: 0.10, NoiseFraction: 0.05, EntropyFraction: 0.10,
		DupCopies: 8, Domains: []string{"runtime", "net", "crypto", "cmd"}, Seed: 1,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("DefaultBuiltinConfig = %+v, want %+v", c, want)
	}
}

func smallBuiltin(t *testing.T, seed uint64) ([]Document, BuiltinInfo) {
	t.Helper()
	cfg := DefaultBuiltinConfig()
	cfg.MaxBytes = 1 << 20
	cfg.Seed = seed
	docs, info, err := Builtin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return docs, info
}

func TestBuiltinCorpus(t *testing.T) {
	docs, info := smallBuiltin(t, 1)
	cfg := info.Config
	if cfg.GOROOT == "" || !strings.HasPrefix(info.GoVersion, "go") {
		t.Errorf("info: GOROOT %q, version %q", cfg.GOROOT, info.GoVersion)
	}
	if want := []string{"runtime", "net", "crypto", "cmd", EntropyDomain}; !reflect.DeepEqual(info.Domains, want) {
		t.Errorf("domains %v, want %v", info.Domains, want)
	}
	realText := map[string]string{} // text -> domain
	bytes := map[string]int{}
	total := 0
	for i, d := range docs {
		if d.ID != i {
			t.Fatalf("doc %d has ID %d", i, d.ID)
		}
		bytes[d.Kind] += len(d.Text)
		total += len(d.Text)
		switch d.Kind {
		case KindReal:
			if !strings.HasPrefix(d.Source, "GOROOT/src/"+d.Domain+"/") || !strings.Contains(d.Source, ".go#") {
				t.Errorf("real doc %d from %q in domain %q", i, d.Source, d.Domain)
			}
			if len(d.Text) > TextDocBytes+256 {
				t.Errorf("real doc %d has %d bytes", i, len(d.Text))
			}
			realText[d.Text] = d.Domain
		case KindDuplicate:
			dom, ok := realText[d.Text]
			if !ok || dom != d.Domain {
				t.Errorf("duplicate %d (%s) is not an exact copy of a real document of its domain", i, d.Source)
			}
		case KindNoise:
			if d.Domain == EntropyDomain || len(d.Text) > NoiseDocBytes {
				t.Errorf("noise doc %d: domain %q, %d bytes", i, d.Domain, len(d.Text))
			}
			for _, c := range []byte(d.Text) {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("noise doc %d holds byte %#x", i, c)
				}
			}
		case KindEntropy:
			if d.Domain != EntropyDomain || strings.Trim(d.Text, EntropyAlphabet) != "" {
				t.Errorf("entropy doc %d: domain %q or foreign symbols", i, d.Domain)
			}
		default:
			t.Errorf("doc %d: kind %q", i, d.Kind)
		}
	}
	if !reflect.DeepEqual(bytes, info.Bytes) {
		t.Errorf("info.Bytes %v, counted %v", info.Bytes, bytes)
	}
	// Sizes: each synthetic part within one document of its share; the
	// total within one real document of MaxBytes per domain.
	for kind, frac := range map[string]float64{KindDuplicate: cfg.DupFraction, KindNoise: cfg.NoiseFraction, KindEntropy: cfg.EntropyFraction} {
		want := math.Floor(frac * float64(cfg.MaxBytes))
		if got := float64(bytes[kind]); got < want || got > want+TextDocBytes {
			t.Errorf("%s: %v bytes, want about %v", kind, got, want)
		}
	}
	if d := total - cfg.MaxBytes; d < 0 || d > (len(cfg.Domains)+1)*(TextDocBytes+256) {
		t.Errorf("total %d bytes, MaxBytes %d", total, cfg.MaxBytes)
	}
	// Every real domain has duplicates and noise.
	for _, dom := range cfg.Domains {
		var dup, noise bool
		for _, d := range docs {
			dup = dup || (d.Domain == dom && d.Kind == KindDuplicate)
			noise = noise || (d.Domain == dom && d.Kind == KindNoise)
		}
		if !dup || !noise {
			t.Errorf("domain %s: duplicates %v, noise %v", dom, dup, noise)
		}
	}
	// Deterministic; another seed picks other files.
	again, info2 := smallBuiltin(t, 1)
	if !reflect.DeepEqual(docs, again) || !reflect.DeepEqual(info, info2) {
		t.Error("same config gave a different corpus")
	}
	other, _ := smallBuiltin(t, 2)
	if reflect.DeepEqual(docs, other) {
		t.Error("seeds 1 and 2 gave the same corpus")
	}
}

func TestBuiltinThroughOpen(t *testing.T) {
	docs, err := Open("builtin")
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Builtin(DefaultBuiltinConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(docs, want) {
		t.Error("Open(\"builtin\") differs from Builtin(DefaultBuiltinConfig())")
	}
}

func TestBuiltinErrors(t *testing.T) {
	cfg := DefaultBuiltinConfig()
	cfg.GOROOT = t.TempDir()
	if _, _, err := Builtin(cfg); err == nil || !strings.Contains(err.Error(), "src/runtime") {
		t.Errorf("missing Go tree: %v", err)
	}
	bad := []func(*BuiltinConfig){
		func(c *BuiltinConfig) { c.MaxBytes = 0 },
		func(c *BuiltinConfig) { c.DupFraction = -0.1 },
		func(c *BuiltinConfig) { c.NoiseFraction = math.NaN() },
		func(c *BuiltinConfig) { c.EntropyFraction = 1 },
		func(c *BuiltinConfig) { c.DupFraction, c.NoiseFraction, c.EntropyFraction = 0.5, 0.3, 0.2 },
		func(c *BuiltinConfig) { c.DupCopies = 0 },
		func(c *BuiltinConfig) { c.Domains = nil },
		func(c *BuiltinConfig) { c.Domains = []string{"net", "net"} },
		func(c *BuiltinConfig) { c.Domains = []string{"../etc"} },
		func(c *BuiltinConfig) { c.Domains = []string{"nosuchdir"} },
	}
	for i, f := range bad {
		c := DefaultBuiltinConfig()
		f(&c)
		if _, _, err := Builtin(c); err == nil {
			t.Errorf("bad config %d: want error", i)
		}
	}
}

// entropyOf is the plug-in entropy, in nats, of the counts.
func entropyOf(counts map[string]int) float64 {
	n := 0
	for _, c := range counts {
		n += c
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log(p)
	}
	return h
}

func TestEntropyDomain(t *testing.T) {
	// The stated entropy from the stated distribution, by hand: 2.75 bits.
	probs := []float64{0.25, 0.25, 0.125, 0.125, 0.0625, 0.0625, 0.0625, 0.0625}
	h := 0.0
	for _, p := range probs {
		h -= p * math.Log(p)
	}
	if math.Abs(h-EntropyNatsPerByte) > 1e-12 || math.Abs(EntropyNatsPerByte/math.Ln2-2.75) > 1e-12 {
		t.Fatalf("EntropyNatsPerByte %v, by hand %v", EntropyNatsPerByte, h)
	}

	docs, info := smallBuiltin(t, 7)
	if info.EntropyNatsPerByte[EntropyDomain] != EntropyNatsPerByte {
		t.Fatalf("info entropy %v", info.EntropyNatsPerByte)
	}
	uni, bi, prev := map[string]int{}, map[string]int{}, map[string]int{}
	noise := map[string]int{}
	n := 0
	for _, d := range docs {
		switch d.Kind {
		case KindEntropy:
			for i := 0; i < len(d.Text); i++ {
				uni[d.Text[i:i+1]]++
				if i > 0 {
					bi[d.Text[i-1:i+1]]++
					prev[d.Text[i-1:i]]++
				}
				n++
			}
		case KindNoise:
			for i := 0; i < len(d.Text); i++ {
				noise[d.Text[i:i+1]]++
			}
		}
	}
	if n < 100000 {
		t.Fatalf("only %d entropy symbols", n)
	}
	// Standard error of the plug-in estimate is about 0.575/sqrt(n) < 0.002.
	if got := entropyOf(uni); math.Abs(got-EntropyNatsPerByte) > 0.01 {
		t.Errorf("empirical entropy %v nats/byte, stated %v", got, EntropyNatsPerByte)
	}
	for i, s := range EntropyAlphabet {
		p := float64(uni[string(s)]) / float64(n)
		if math.Abs(p-probs[i]) > 0.005 {
			t.Errorf("symbol %q: frequency %v, want %v", s, p, probs[i])
		}
	}
	// Independence: H(X_t | X_t-1) = H(X_t-1, X_t) - H(X_t-1) matches too.
	if cond := entropyOf(bi) - entropyOf(prev); math.Abs(cond-EntropyNatsPerByte) > 0.01 {
		t.Errorf("conditional entropy %v, want %v", cond, EntropyNatsPerByte)
	}
	if got := entropyOf(noise); math.Abs(got-NoiseNatsPerByte) > 0.01 || math.Abs(NoiseNatsPerByte-math.Log(95)) > 1e-12 {
		t.Errorf("noise entropy %v, stated %v", got, NoiseNatsPerByte)
	}
}
