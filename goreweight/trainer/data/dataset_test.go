package data

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// bt is the byte tokenizer, for decoding windows.
var bt Byte

func TestWindowsByHand(t *testing.T) {
	docs := []Document{
		{ID: 0, Domain: "a", Kind: KindReal, Text: "abcdefghij"}, // 10 tokens
		{ID: 1, Domain: "a", Kind: KindReal, Text: "xyz"},        // short
		{ID: 2, Domain: "a", Kind: KindReal, Text: "01234"},      // exactly one window
		{ID: 3, Domain: "b", Kind: KindNoise, Text: "!!"},
		{ID: 4, Domain: "a", Kind: KindReal, Text: "ABCD"},
	}
	ds, err := NewDataset(docs, Byte{}, DatasetConfig{SeqLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Doc 0: windows at 0 and 4 ("abcde", "efghi"), rest "ij" to the pack.
	// Doc 1: "xyz" to the pack: "ijxyz" is a window, pack keeps "z".
	// Doc 2: "01234". Doc 4: pack "zABCD" is a window.
	// Doc 3 (domain b, noise): "!!" never fills a window.
	want := []struct {
		text string
		doc  int
	}{{"abcde", 0}, {"efghi", 0}, {"ijxyz", 0}, {"01234", 2}, {"zABCD", 1}}
	if ds.NumSamples() != len(want) {
		t.Fatalf("%d windows, want %d", ds.NumSamples(), len(want))
	}
	for i, w := range want {
		if got := bt.Decode(ds.Window(i)); got != w.text {
			t.Errorf("window %d = %q, want %q", i, got, w.text)
		}
		s, _ := ds.Sample(i)
		if s.ID != i || s.Doc != w.doc || s.DomainName != "a" || s.Domain != 0 || s.Kind != KindReal || s.Val {
			t.Errorf("sample %d = %+v", i, s)
		}
	}
	if got := ds.Domains(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("domains %v", got)
	}
	b, err := ds.Batch([]int{1, 3})
	if err != nil {
		t.Fatal(err)
	}
	if bt.Decode(b.Tokens) != "efgh0123" || bt.Decode(b.Targets) != "fghi1234" || !slices.Equal(b.IDs, []int{1, 3}) || !slices.Equal(b.Domains, []int32{0, 0}) {
		t.Errorf("batch %+v", b)
	}
	if _, err := ds.Batch([]int{5}); err == nil {
		t.Error("out-of-range id: want error")
	}
}

func TestWindowsGPT2Separator(t *testing.T) {
	tok, err := NewGPT2()
	if err != nil {
		t.Fatal(err)
	}
	docs := []Document{
		{ID: 0, Domain: "a", Kind: KindReal, Text: "Hello world Hello world"},
		{ID: 1, Domain: "a", Kind: KindEntropy, Text: "Hello world Hello world"},
		{ID: 2, Domain: "b", Kind: KindReal, Tokens: []int32{GPT2EOT, 1, 2, 3, 4}, TokenizerName: "gpt2"},
	}
	ds, err := NewDataset(docs, tok, DatasetConfig{SeqLen: 3})
	if err != nil {
		t.Fatal(err)
	}
	// "Hello world Hello world" = 15496 995 18435 995.
	want := [][]int32{{GPT2EOT, 15496, 995, 18435}, {15496, 995, 18435, 995}, {GPT2EOT, 1, 2, 3}}
	for i, w := range want {
		if got := ds.Window(i); !slices.Equal(got, w) {
			t.Errorf("window %d = %v, want %v", i, got, w)
		}
	}
	// Pre-tokenised ids from another tokenizer, or out of range, are refused.
	if _, err := NewDataset(docs[2:], Byte{}, DatasetConfig{SeqLen: 2}); err == nil {
		t.Error("gpt2 tokens with the byte tokenizer: want error")
	}
	bad := []Document{{ID: 9, Domain: "x", Tokens: []int32{1, 2, 50257}, TokenizerName: "gpt2", Source: "f.bin@1024"}}
	if _, err := NewDataset(bad, tok, DatasetConfig{SeqLen: 2}); err == nil || !strings.Contains(err.Error(), "f.bin@1024") {
		t.Errorf("out-of-vocab token: %v", err)
	}
}

func TestDatasetErrors(t *testing.T) {
	docs := []Document{{ID: 0, Domain: "a", Text: "short"}}
	for _, cfg := range []DatasetConfig{
		{SeqLen: 0}, {SeqLen: 4, ValFraction: 1}, {SeqLen: 4, ValFraction: -0.1},
		{SeqLen: 4, NoiseFraction: math.NaN()}, {SeqLen: 4, NoiseFraction: 1},
	} {
		if _, err := NewDataset(docs, Byte{}, cfg); err == nil {
			t.Errorf("config %+v: want error", cfg)
		}
	}
	if _, err := NewDataset(docs, Byte{}, DatasetConfig{SeqLen: 64}); err == nil || !strings.Contains(err.Error(), "no window") {
		t.Errorf("too short: %v", err)
	}
	if _, err := NewDataset(nil, Byte{}, DatasetConfig{SeqLen: 4}); err == nil {
		t.Error("no documents: want error")
	}
	if _, err := NewDataset(docs, nil, DatasetConfig{SeqLen: 4}); err == nil {
		t.Error("nil tokenizer: want error")
	}
	if _, err := NewDataset([]Document{{Text: "abcdefgh", Kind: "fake"}}, Byte{}, DatasetConfig{SeqLen: 4}); err == nil {
		t.Error("unknown kind: want error")
	}
}

// synthCorpus is a corpus of random words in three domains, with exact
// duplicates and noise documents.
func synthCorpus() []Document {
	r := rand.New(rand.NewPCG(11, 12))
	words := []string{"the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "dog ", "ran\n", "far.\n\n"}
	var docs []Document
	for _, dom := range []string{"web", "code", "books"} {
		for range 40 {
			var sb strings.Builder
			for range 20 + r.IntN(200) {
				sb.WriteString(words[r.IntN(len(words))])
			}
			docs = append(docs, Document{Domain: dom, Kind: KindReal, Text: sb.String()})
		}
	}
	for i := range 10 {
		src := docs[i*7]
		docs = append(docs, Document{Domain: src.Domain, Kind: KindDuplicate, Text: src.Text})
	}
	docs = append(docs, Document{Domain: "web", Kind: KindNoise, Text: strings.Repeat("#$%", 300)})
	renumber(docs)
	return docs
}

func TestSplit(t *testing.T) {
	docs := synthCorpus()
	cfg := DatasetConfig{SeqLen: 16, ValFraction: 0.2, Seed: 5}
	ds, err := NewDataset(docs, Byte{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	train := map[string]bool{}
	for _, id := range ds.TrainIDs() {
		train[fmt.Sprint(ds.Window(id))] = true
	}
	stats := ds.Stats()
	nVal := 0
	for d := range ds.Domains() {
		perDomain := 0
		for id := range ds.NumSamples() {
			if s, _ := ds.Sample(id); s.Domain == d {
				perDomain++
			}
		}
		val := ds.ValIDs(d)
		nVal += len(val)
		if want := int(math.Round(0.2 * float64(perDomain))); len(val) != want {
			t.Errorf("domain %d: %d validation windows of %d, want %d", d, len(val), perDomain, want)
		}
		if stats[d].Val != len(val) || stats[d].Windows != perDomain || stats[d].Train != perDomain-len(val) {
			t.Errorf("stats %+v", stats[d])
		}
		for _, id := range val {
			s, _ := ds.Sample(id)
			if !s.Val || s.Domain != d || s.Kind != KindReal {
				t.Errorf("validation sample %+v", s)
			}
			if train[fmt.Sprint(ds.Window(id))] {
				t.Errorf("validation window %d has a copy in training", id)
			}
		}
		// Validation batches cover the validation windows in order.
		var got []int
		for _, b := range ds.ValBatches(d, 7) {
			if len(b.IDs) > 7 || len(b.Tokens) != len(b.IDs)*16 {
				t.Errorf("val batch sizes %d ids %d tokens", len(b.IDs), len(b.Tokens))
			}
			got = append(got, b.IDs...)
		}
		if !slices.Equal(got, val) {
			t.Errorf("ValBatches ids %v, want %v", got, val)
		}
	}
	if nVal+ds.NumTrain() != ds.NumSamples() {
		t.Errorf("%d val + %d train != %d", nVal, ds.NumTrain(), ds.NumSamples())
	}
	// Deterministic from the seed; another seed, another split.
	again, _ := NewDataset(docs, Byte{}, cfg)
	if !slices.Equal(again.TrainIDs(), ds.TrainIDs()) || again.Fingerprint() != ds.Fingerprint() {
		t.Error("same seed, different split")
	}
	cfg.Seed = 6
	other, _ := NewDataset(docs, Byte{}, cfg)
	if slices.Equal(other.TrainIDs(), ds.TrainIDs()) || other.Fingerprint() == ds.Fingerprint() {
		t.Error("seeds 5 and 6 give the same split")
	}
}

func TestIteratorOrderAndResume(t *testing.T) {
	docs := synthCorpus()
	cfg := DatasetConfig{SeqLen: 16, ValFraction: 0.1, Seed: 9}
	ds, err := NewDataset(docs, Byte{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const B = 13
	n := ds.NumTrain()
	it := ds.NewIterator()
	// Two full epochs: each a permutation of the training ids.
	var seen []int
	for len(seen) < 2*n+B {
		bt := it.Next(B)
		tokens, targets, ids, domains := bt.Tokens, bt.Targets, bt.IDs, bt.Domains
		if len(tokens) != B*16 || len(targets) != B*16 || len(ids) != B || len(domains) != B {
			t.Fatalf("batch shapes %d %d %d %d", len(tokens), len(targets), len(ids), len(domains))
		}
		for r, id := range ids {
			w := ds.Window(id)
			s, _ := ds.Sample(id)
			if !slices.Equal(tokens[r*16:(r+1)*16], w[:16]) || !slices.Equal(targets[r*16:(r+1)*16], w[1:]) || domains[r] != int32(s.Domain) || s.Val {
				t.Fatalf("row %d does not match window %d", r, id)
			}
		}
		seen = append(seen, ids...)
	}
	train := ds.TrainIDs()
	for e := range 2 {
		ep := slices.Clone(seen[e*n : (e+1)*n])
		slices.Sort(ep)
		if !slices.Equal(ep, train) {
			t.Fatalf("epoch %d is not a permutation of the training ids", e)
		}
	}
	if slices.Equal(seen[:n], seen[n:2*n]) || slices.Equal(seen[:n], train) {
		t.Error("epochs not shuffled, or shuffled alike")
	}
	// Same seed, same order.
	it2 := ds.NewIterator()
	if got := it2.NextIDs(len(seen)); !slices.Equal(got, seen) {
		t.Error("same seed, different order")
	}

	// Resume: stop mid-epoch, serialise the state, rebuild everything.
	it3 := ds.NewIterator()
	it3.NextIDs(n - 5)
	st, err := json.Marshal(it3.State())
	if err != nil {
		t.Fatal(err)
	}
	cont := it3.NextIDs(3 * B)

	ds2, err := NewDataset(synthCorpus(), Byte{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var state IteratorState
	if err := json.Unmarshal(st, &state); err != nil {
		t.Fatal(err)
	}
	it4 := ds2.NewIterator()
	if err := it4.Restore(state); err != nil {
		t.Fatal(err)
	}
	if got := it4.NextIDs(3 * B); !slices.Equal(got, cont) {
		t.Errorf("resumed order %v, want %v", got, cont)
	}
	if it4.Epoch() != 1 {
		t.Errorf("epoch %d after crossing the end", it4.Epoch())
	}

	// A state from another dataset, or out of range, is refused.
	cfg.NoiseFraction = 0.1
	ds3, _ := NewDataset(synthCorpus(), Byte{}, cfg)
	if err := ds3.NewIterator().Restore(state); err == nil {
		t.Error("restore on another dataset: want error")
	}
	bad := state
	bad.Pos = n + 1
	if err := it4.Restore(bad); err == nil {
		t.Error("position past the epoch: want error")
	}
	if b := it4.Next(0); len(b.IDs) != 0 {
		t.Error("Next(0) not empty")
	}
}

func TestNoiseOption(t *testing.T) {
	docs := synthCorpus()
	clean, err := NewDataset(docs, Byte{}, DatasetConfig{SeqLen: 16, ValFraction: 0.1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, frac := range []float64{0.05, 0.25, 0.5} {
		cfg := DatasetConfig{SeqLen: 16, ValFraction: 0.1, NoiseFraction: frac, Seed: 3}
		ds, err := NewDataset(docs, Byte{}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ds.TrainIDs(), clean.TrainIDs()) {
			t.Fatal("noise changed the split")
		}
		noisy := 0
		for id := range ds.NumSamples() {
			s, _ := ds.Sample(id)
			cs, _ := clean.Sample(id)
			changed := !slices.Equal(ds.Window(id), clean.Window(id))
			if changed {
				noisy++
				if s.Val || s.Kind != KindNoise {
					t.Errorf("noisy window %d: val %v, kind %q", id, s.Val, s.Kind)
				}
				for _, tk := range ds.Window(id) {
					if tk < 0 || tk > 255 {
						t.Fatalf("noise token %d", tk)
					}
				}
			} else if s.Kind != cs.Kind {
				t.Errorf("window %d: kind %q, unchanged window of kind %q", id, s.Kind, cs.Kind)
			}
		}
		if want := int(math.Round(frac * float64(ds.NumTrain()))); noisy != want {
			t.Errorf("fraction %v: %d noisy windows, want %d of %d", frac, noisy, want, ds.NumTrain())
		}
		again, _ := NewDataset(docs, Byte{}, cfg)
		if again.Fingerprint() != ds.Fingerprint() {
			t.Error("noise not deterministic")
		}
	}
	// Over the vocabulary: tokens look uniform (mean near (V-1)/2).
	ds, _ := NewDataset(docs[:len(docs)-1], Byte{}, DatasetConfig{SeqLen: 16, NoiseFraction: 0.5, Seed: 4}) // without the noise document
	sum, cnt := 0.0, 0
	for id := range ds.NumSamples() {
		if s, _ := ds.Sample(id); s.Kind == KindNoise {
			for _, tk := range ds.Window(id) {
				sum += float64(tk)
				cnt++
			}
		}
	}
	if m := sum / float64(cnt); math.Abs(m-127.5) > 5 {
		t.Errorf("noise token mean %v", m)
	}
}

func TestBuiltinDataset(t *testing.T) {
	docs, info := smallBuiltin(t, 1)
	ds, err := NewDataset(docs, Byte{}, DatasetConfig{SeqLen: 128, ValFraction: DefaultValFraction, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ds.Domains(), []string{"cmd", "crypto", EntropyDomain, "net", "runtime"}) {
		t.Errorf("domains %v", ds.Domains())
	}
	e := ds.DomainIndex(EntropyDomain)
	st := ds.Stats()[e]
	if st.ByKind[KindEntropy] != st.Windows || st.BytesPerToken() != 1 || len(ds.ValIDs(e)) == 0 {
		t.Errorf("entropy domain stats %+v", st)
	}
	// Entropy windows hold only the alphabet: no separators in the way of
	// the stated floor.
	for id := range ds.NumSamples() {
		s, _ := ds.Sample(id)
		if s.Domain == e && strings.Trim(bt.Decode(ds.Window(id)), EntropyAlphabet) != "" {
			t.Fatalf("entropy window %d holds other symbols", id)
		}
	}
	// Duplicated documents give identical windows, all in training.
	count := map[string]int{}
	for id := range ds.NumSamples() {
		count[string(bt.Decode(ds.Window(id)))]++
	}
	dups := 0
	for id := range ds.NumSamples() {
		s, _ := ds.Sample(id)
		if s.Kind == KindDuplicate && count[bt.Decode(ds.Window(id))] >= info.Config.DupCopies {
			dups++
		}
		if s.Val && count[bt.Decode(ds.Window(id))] > 1 {
			t.Fatalf("validation window %d is duplicated", id)
		}
	}
	if dups == 0 {
		t.Error("no duplicate window repeated DupCopies times")
	}
}
