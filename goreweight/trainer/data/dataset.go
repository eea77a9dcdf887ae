package data

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// DefaultValFraction is a sensible DatasetConfig.ValFraction.
const DefaultValFraction = 0.1

// DatasetConfig configures NewDataset.
type DatasetConfig struct {
	// SeqLen is T, the number of input tokens per window; a window holds
	// T+1 tokens. Required.
	SeqLen int
	// ValFraction is the fraction of each domain's windows held out for
	// validation, in [0, 1). Zero holds none out; DefaultValFraction is a
	// sensible value.
	ValFraction float64
	// NoiseFraction is the fraction of the training windows whose tokens are
	// replaced by uniform random tokens and whose kind becomes KindNoise, in
	// [0, 1): a robustness experiment. Validation windows are never touched.
	NoiseFraction float64
	// Seed drives the split, the noise and the batch order.
	Seed uint64
}

// DomainStats describes one domain of a Dataset.
type DomainStats struct {
	// Name is the domain's name.
	Name string
	// Docs is the number of documents of the domain.
	Docs int
	// TextBytes and TextTokens are the bytes and tokens of the domain's text
	// documents (not the pre-tokenised ones), separators not counted.
	TextBytes, TextTokens int64
	// Windows, Train and Val count the domain's windows.
	Windows, Train, Val int
	// ByKind counts the domain's windows per kind, after noise.
	ByKind map[string]int
}

// BytesPerToken returns TextBytes/TextTokens, or NaN without text. For a
// synthetic domain of known entropy H nats per byte, H*BytesPerToken is the
// loss floor in nats per token.
func (s DomainStats) BytesPerToken() float64 {
	if s.TextTokens == 0 {
		return math.NaN()
	}
	return float64(s.TextBytes) / float64(s.TextTokens)
}

// Sample describes one window.
type Sample struct {
	// ID is the window's sample id, its index in [0, NumSamples).
	ID int
	// Domain indexes Domains; DomainName is the name.
	Domain     int
	DomainName string
	// Kind is the window's kind: its documents' kind, or KindNoise for a
	// training window the noise option corrupted.
	Kind string
	// Doc is the ID of the document the window starts in.
	Doc int
	// Val says whether the window is held out for validation.
	Val bool
}

// Batch is a batch of windows. Tokens and Targets are row-major B×T:
// row b holds window IDs[b]'s tokens 0..T-1 and 1..T.
type Batch struct {
	Tokens, Targets []int32
	IDs             []int
	Domains         []int32
}

// Dataset holds the windows cut from a corpus, their train/validation
// split and their metadata. It is immutable and safe for concurrent use;
// batch order lives in an Iterator.
type Dataset struct {
	tok     Tokenizer
	cfg     DatasetConfig
	domains []string
	tokens  []int32 // window i is tokens[i*(T+1) : (i+1)*(T+1)]
	domain  []int32
	kind    []uint8 // index into Kinds
	doc     []int32
	val     []bool
	train   []int
	valIDs  [][]int
	stats   []DomainStats
	fp      uint64
}

var kindIndex = func() map[string]uint8 {
	m := map[string]uint8{}
	for i, k := range Kinds {
		m[k] = uint8(i)
	}
	return m
}()

// NewDataset tokenises docs with tok and cuts them into windows of
// cfg.SeqLen+1 tokens.
//
// Windows. A document's tokens are its Tokens, or tok.Encode(Text) preceded,
// for a tokenizer with an end-of-text token (GPT-2's <|endoftext|>) and a
// document of kind real or duplicate, by that token, as llm.c does.
// Synthetic documents get no separator, so their concatenation keeps its
// known statistics. Windows are cut from the start of each document with
// stride T (consecutive windows share one token: the last target of one is
// the first input of the next), so identical documents give identical
// windows. What is left of a document after its last full window (all of a
// document shorter than T+1) is appended to a pack of its domain and kind,
// from which windows are cut the same way; what is left in the packs at the
// end (fewer than T+1 tokens each) is dropped. Every window thus holds one
// domain and one kind. Sample ids number windows in the order they are cut,
// which follows the document order.
//
// Split. The domains are sorted by name. In each domain with at least two
// windows, round(ValFraction × windows) of them (at least one, at most all
// but one) go to validation, drawn with the seed from the candidates: the
// windows of kind real or entropy whose exact token content occurs once in
// the dataset, so that no validation window has a copy in training. A domain
// with fewer candidates gets them all. The other windows are for training.
//
// Noise. round(NoiseFraction × training windows) training windows, drawn
// with the seed, get uniform random tokens in [0, VocabSize) and kind
// KindNoise.
//
// Errors: a bad configuration, a document with an unknown kind, a document
// whose Tokens come from another tokenizer or fall outside the vocabulary,
// or no window at all.
func NewDataset(docs []Document, tok Tokenizer, cfg DatasetConfig) (*Dataset, error) {
	if err := checkDatasetArgs(docs, tok, cfg); err != nil {
		return nil, err
	}
	ds := &Dataset{tok: tok, cfg: cfg}
	domainIdx := ds.indexDomains(docs)
	toks, err := tokenizeAll(docs, tok)
	if err != nil {
		return nil, err
	}
	if err := ds.cutWindows(docs, toks, domainIdx); err != nil {
		return nil, err
	}
	ds.split()
	ds.addNoise(tok.VocabSize())
	ds.countWindows()
	ds.fp = ds.fingerprint()
	return ds, nil
}

// checkDatasetArgs reports the first problem with NewDataset's arguments.
func checkDatasetArgs(docs []Document, tok Tokenizer, cfg DatasetConfig) error {
	if tok == nil {
		return errors.New("data: NewDataset: nil tokenizer")
	}
	if cfg.SeqLen < 1 || cfg.SeqLen > 1<<20 {
		return fmt.Errorf("data: NewDataset: SeqLen %d must be in [1, %d]", cfg.SeqLen, 1<<20)
	}
	if !(cfg.ValFraction >= 0 && cfg.ValFraction < 1) {
		return fmt.Errorf("data: NewDataset: ValFraction %v must be in [0, 1)", cfg.ValFraction)
	}
	if !(cfg.NoiseFraction >= 0 && cfg.NoiseFraction < 1) {
		return fmt.Errorf("data: NewDataset: NoiseFraction %v must be in [0, 1)", cfg.NoiseFraction)
	}
	if len(docs) == 0 {
		return errors.New("data: NewDataset: no documents")
	}
	return nil
}

// indexDomains sets the sorted domain names and their empty statistics,
// and returns each name's index.
func (ds *Dataset) indexDomains(docs []Document) map[string]int {
	domainIdx := map[string]int{}
	for i := range docs {
		domainIdx[docDomain(docs[i])] = 0
	}
	ds.domains = sortedKeys(domainIdx)
	ds.stats = make([]DomainStats, len(ds.domains))
	for i, d := range ds.domains {
		domainIdx[d] = i
		ds.stats[i] = DomainStats{Name: d, ByKind: map[string]int{}}
	}
	return domainIdx
}

// packKey names a pack: the leftover tokens of one domain and kind.
type packKey struct {
	domain int
	kind   uint8
}

// pack collects the tails of documents too short for another window, with
// the document of each token, until they fill one.
type pack struct {
	toks []int32
	docs []int32
}

// cutWindows cuts every document's tokens (toks[i] of docs[i]) into
// windows of SeqLen+1 tokens overlapping by one, text documents of the
// real and duplicate kinds led by the tokenizer's end-of-text token if it
// has one. Tails shorter than a window are packed with the tails of the
// same domain and kind. It fills the per-domain document and text counts.
func (ds *Dataset) cutWindows(docs []Document, toks [][]int32, domainIdx map[string]int) error {
	T := ds.cfg.SeqLen
	W := T + 1
	var sep []int32
	if e, ok := ds.tok.(interface{ EOT() int32 }); ok {
		sep = []int32{e.EOT()}
	}
	packs := map[packKey]*pack{}
	for i := range docs {
		d := &docs[i]
		dom := domainIdx[docDomain(*d)]
		kind, _ := docKind(*d)
		ds.stats[dom].Docs++
		t := toks[i]
		if d.Tokens == nil {
			ds.stats[dom].TextBytes += int64(len(d.Text))
			ds.stats[dom].TextTokens += int64(len(t))
			if sep != nil && (kind == kindIndex[KindReal] || kind == kindIndex[KindDuplicate]) && len(t) > 0 {
				t = append(append(make([]int32, 0, len(t)+len(sep)), sep...), t...)
			}
		}
		start := 0
		for ; start+W <= len(t); start += T {
			ds.emit(t[start:start+W], dom, kind, int32(d.ID))
		}
		rest := t[start:]
		if len(rest) == 0 || (start > 0 && len(rest) == 1) {
			continue // nothing left to predict
		}
		key := packKey{dom, kind}
		p := packs[key]
		if p == nil {
			p = &pack{}
			packs[key] = p
		}
		p.toks = append(p.toks, rest...)
		for range rest {
			p.docs = append(p.docs, int32(d.ID))
		}
		s := 0
		for ; s+W <= len(p.toks); s += T {
			ds.emit(p.toks[s:s+W], dom, kind, p.docs[s])
		}
		if s > 0 {
			p.toks = append(p.toks[:0], p.toks[s:]...)
			p.docs = append(p.docs[:0], p.docs[s:]...)
		}
	}
	if len(ds.domain) == 0 {
		total := 0
		for _, t := range toks {
			total += len(t)
		}
		return fmt.Errorf("data: NewDataset: no window of SeqLen+1 = %d tokens: the %d documents hold %d tokens, and no document, nor a pack of one domain and kind, reaches %d", W, len(docs), total, W)
	}
	return nil
}

// emit appends a window of domain, kind and first document doc.
func (ds *Dataset) emit(w []int32, domain int, kind uint8, doc int32) {
	ds.tokens = append(ds.tokens, w...)
	ds.domain = append(ds.domain, int32(domain))
	ds.kind = append(ds.kind, kind)
	ds.doc = append(ds.doc, doc)
}

// countWindows fills the per-domain window counts, once split and noise
// are known.
func (ds *Dataset) countWindows() {
	for i := range ds.domain {
		s := &ds.stats[ds.domain[i]]
		s.Windows++
		s.ByKind[Kinds[ds.kind[i]]]++
		if ds.val[i] {
			s.Val++
		} else {
			s.Train++
		}
	}
}

func docDomain(d Document) string {
	if d.Domain == "" {
		return UnknownDomain
	}
	return d.Domain
}

func docKind(d Document) (uint8, bool) {
	if d.Kind == "" {
		return kindIndex[KindReal], true
	}
	k, ok := kindIndex[d.Kind]
	return k, ok
}

// tokenizeAll tokenises the documents in parallel, in a deterministic
// result, and checks pre-tokenised documents.
func tokenizeAll(docs []Document, tok Tokenizer) ([][]int32, error) {
	vocab := tok.VocabSize()
	for i := range docs {
		d := &docs[i]
		if _, ok := docKind(*d); !ok {
			return nil, fmt.Errorf("data: document %d (%s): unknown kind %q (want one of %v)", d.ID, d.Source, d.Kind, Kinds)
		}
		if d.Tokens == nil {
			continue
		}
		if d.TokenizerName != "" && d.TokenizerName != tok.Name() {
			return nil, fmt.Errorf("data: document %d (%s) holds %s tokens but the tokenizer is %s", d.ID, d.Source, d.TokenizerName, tok.Name())
		}
		for j, t := range d.Tokens {
			if t < 0 || int(t) >= vocab {
				return nil, fmt.Errorf("data: document %d (%s): token %d at index %d outside the vocabulary of %s (size %d)", d.ID, d.Source, t, j, tok.Name(), vocab)
			}
		}
	}
	out := make([][]int32, len(docs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(docs) {
					return
				}
				if docs[i].Tokens != nil {
					out[i] = docs[i].Tokens
				} else {
					out[i] = tok.Encode(docs[i].Text)
				}
			}
		})
	}
	wg.Wait()
	return out, nil
}

// split assigns validation windows per domain.
func (ds *Dataset) split() {
	n := len(ds.domain)
	ds.val = make([]bool, n)
	ds.valIDs = make([][]int, len(ds.domains))
	W := ds.cfg.SeqLen + 1
	count := make(map[uint64]int32, n)
	hashes := make([]uint64, n)
	for i := range n {
		h := hashTokens(fnvOffset, ds.tokens[i*W:(i+1)*W])
		hashes[i] = h
		count[h]++
	}
	perDomain := make([][]int, len(ds.domains))
	candidates := make([][]int, len(ds.domains))
	for i := range n {
		d := ds.domain[i]
		perDomain[d] = append(perDomain[d], i)
		k := Kinds[ds.kind[i]]
		if (k == KindReal || k == KindEntropy) && count[hashes[i]] == 1 {
			candidates[d] = append(candidates[d], i)
		}
	}
	for d := range ds.domains {
		total := len(perDomain[d])
		if ds.cfg.ValFraction == 0 || total < 2 {
			continue
		}
		nv := int(math.Round(ds.cfg.ValFraction * float64(total)))
		nv = min(max(nv, 1), total-1, len(candidates[d]))
		c := candidates[d]
		shuffle(newRNG(ds.cfg.Seed, "split", uint64(d)), len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		v := append([]int(nil), c[:nv]...)
		sort.Ints(v)
		for _, i := range v {
			ds.val[i] = true
		}
		ds.valIDs[d] = v
	}
	for i := range n {
		if !ds.val[i] {
			ds.train = append(ds.train, i)
		}
	}
}

// addNoise corrupts round(NoiseFraction × training windows) training
// windows.
func (ds *Dataset) addNoise(vocab int) {
	k := int(math.Round(ds.cfg.NoiseFraction * float64(len(ds.train))))
	if k == 0 {
		return
	}
	ids := append([]int(nil), ds.train...)
	r := newRNG(ds.cfg.Seed, "noise", 0)
	for i := range k { // partial Fisher-Yates: ids[:k] is a uniform k-subset
		j := i + int(uintn(r, uint64(len(ids)-i)))
		ids[i], ids[j] = ids[j], ids[i]
	}
	chosen := ids[:k]
	sort.Ints(chosen)
	W := ds.cfg.SeqLen + 1
	noise := kindIndex[KindNoise]
	for _, id := range chosen {
		w := ds.tokens[id*W : (id+1)*W]
		for t := range w {
			w[t] = int32(uintn(r, uint64(vocab)))
		}
		ds.kind[id] = noise
	}
}

func (ds *Dataset) fingerprint() uint64 {
	h := hashString(ds.tok.Name())
	h = hashTokens(h, []int32{int32(ds.tok.VocabSize()), int32(ds.cfg.SeqLen), int32(len(ds.domain))})
	for _, d := range ds.domains {
		h = (h ^ hashString(d)) * fnvPrime
	}
	h = hashTokens(h, ds.tokens)
	h = hashTokens(h, ds.domain)
	for i := range ds.domain {
		v := uint64(ds.kind[i])
		if ds.val[i] {
			v |= 1 << 8
		}
		h = (h ^ v) * fnvPrime
	}
	return h
}

// Tokenizer returns the dataset's tokenizer.
func (ds *Dataset) Tokenizer() Tokenizer { return ds.tok }

// Config returns the configuration the dataset was built with.
func (ds *Dataset) Config() DatasetConfig { return ds.cfg }

// SeqLen returns T; windows hold T+1 tokens.
func (ds *Dataset) SeqLen() int { return ds.cfg.SeqLen }

// Domains returns the domain names, sorted; a domain index indexes them.
func (ds *Dataset) Domains() []string { return append([]string(nil), ds.domains...) }

// DomainIndex returns the index of the named domain, or -1.
func (ds *Dataset) DomainIndex(name string) int {
	i := sort.SearchStrings(ds.domains, name)
	if i < len(ds.domains) && ds.domains[i] == name {
		return i
	}
	return -1
}

// Stats returns per-domain statistics, in Domains order.
func (ds *Dataset) Stats() []DomainStats {
	out := make([]DomainStats, len(ds.stats))
	for i, s := range ds.stats {
		out[i] = s
		out[i].ByKind = make(map[string]int, len(s.ByKind))
		for k, v := range s.ByKind {
			out[i].ByKind[k] = v
		}
	}
	return out
}

// NumSamples returns the number of windows, training and validation.
func (ds *Dataset) NumSamples() int { return len(ds.domain) }

// NumTrain returns the number of training windows.
func (ds *Dataset) NumTrain() int { return len(ds.train) }

// Fingerprint is a hash of the windows, their metadata and split; an
// IteratorState only restores on a dataset with the same fingerprint.
func (ds *Dataset) Fingerprint() uint64 { return ds.fp }

// Sample returns the metadata of window id; ok is false if id is out of
// range.
func (ds *Dataset) Sample(id int) (s Sample, ok bool) {
	if id < 0 || id >= len(ds.domain) {
		return Sample{}, false
	}
	d := ds.domain[id]
	return Sample{
		ID:         id,
		Domain:     int(d),
		DomainName: ds.domains[d],
		Kind:       Kinds[ds.kind[id]],
		Doc:        int(ds.doc[id]),
		Val:        ds.val[id],
	}, true
}

// Window returns the T+1 tokens of window id (nil if out of range). The
// slice is shared: do not modify it.
func (ds *Dataset) Window(id int) []int32 {
	if id < 0 || id >= len(ds.domain) {
		return nil
	}
	W := ds.cfg.SeqLen + 1
	return ds.tokens[id*W : (id+1)*W : (id+1)*W]
}

// TrainIDs returns the training windows' ids, increasing.
func (ds *Dataset) TrainIDs() []int { return append([]int(nil), ds.train...) }

// ValIDs returns the validation windows' ids of a domain, increasing (nil
// for a domain without any, or out of range).
func (ds *Dataset) ValIDs(domain int) []int {
	if domain < 0 || domain >= len(ds.valIDs) {
		return nil
	}
	return append([]int(nil), ds.valIDs[domain]...)
}

// Batch assembles the windows ids into a batch.
func (ds *Dataset) Batch(ids []int) (Batch, error) {
	for _, id := range ids {
		if id < 0 || id >= len(ds.domain) {
			return Batch{}, fmt.Errorf("data: Batch: sample id %d out of range [0, %d)", id, len(ds.domain))
		}
	}
	return ds.batch(ids), nil
}

func (ds *Dataset) batch(ids []int) Batch {
	T := ds.cfg.SeqLen
	b := Batch{
		Tokens:  make([]int32, len(ids)*T),
		Targets: make([]int32, len(ids)*T),
		IDs:     append([]int(nil), ids...),
		Domains: make([]int32, len(ids)),
	}
	for r, id := range ids {
		w := ds.Window(id)
		copy(b.Tokens[r*T:], w[:T])
		copy(b.Targets[r*T:], w[1:])
		b.Domains[r] = ds.domain[id]
	}
	return b
}

// ValBatches returns a domain's validation windows in batches of at most
// batchSize, in id order (nil for a bad domain or batchSize < 1).
func (ds *Dataset) ValBatches(domain, batchSize int) []Batch {
	if domain < 0 || domain >= len(ds.valIDs) || batchSize < 1 {
		return nil
	}
	ids := ds.valIDs[domain]
	var out []Batch
	for s := 0; s < len(ids); s += batchSize {
		out = append(out, ds.batch(ids[s:min(s+batchSize, len(ids))]))
	}
	return out
}

// Iterator serves training batches in a seeded shuffled order: epoch e
// visits every training window once, in a permutation drawn from the
// dataset seed and e; batches run on across epoch ends. Its position is an
// IteratorState, so a resumed run continues with exactly the same order.
// An Iterator is not safe for concurrent use.
type Iterator struct {
	ds    *Dataset
	seed  uint64
	epoch int
	pos   int
	perm  []int32
}

// IteratorState is an Iterator's position, serialisable with encoding/json.
type IteratorState struct {
	// Seed is the seed of the order.
	Seed uint64 `json:"seed"`
	// Epoch is the current epoch, from 0.
	Epoch int `json:"epoch"`
	// Pos is the number of windows of the epoch already served.
	Pos int `json:"pos"`
	// Fingerprint is the dataset's Fingerprint.
	Fingerprint uint64 `json:"fingerprint"`
}

// NewIterator returns an iterator at the start of epoch 0, ordered by the
// dataset's seed.
func (ds *Dataset) NewIterator() *Iterator {
	it := &Iterator{ds: ds, seed: ds.cfg.Seed}
	it.setEpoch(0)
	return it
}

func (it *Iterator) setEpoch(e int) {
	n := len(it.ds.train)
	if cap(it.perm) < n {
		it.perm = make([]int32, n)
	}
	it.perm = it.perm[:n]
	for i := range it.perm {
		it.perm[i] = int32(i)
	}
	p := it.perm
	shuffle(newRNG(it.seed, "epoch", uint64(e)), n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	it.epoch, it.pos = e, 0
}

// Epoch returns the current epoch, from 0.
func (it *Iterator) Epoch() int { return it.epoch }

// NextIDs returns the next b training sample ids (nil if b < 1).
func (it *Iterator) NextIDs(b int) []int {
	if b < 1 {
		return nil
	}
	ids := make([]int, b)
	for i := range ids {
		if it.pos == len(it.perm) {
			it.setEpoch(it.epoch + 1)
		}
		ids[i] = it.ds.train[it.perm[it.pos]]
		it.pos++
	}
	return ids
}

// Next returns the next batch of b training windows (an empty batch if
// b < 1).
func (it *Iterator) Next(b int) Batch {
	return it.ds.batch(it.NextIDs(b))
}

// State returns the iterator's position.
func (it *Iterator) State() IteratorState {
	return IteratorState{Seed: it.seed, Epoch: it.epoch, Pos: it.pos, Fingerprint: it.ds.fp}
}

// Restore moves the iterator to s. It fails, leaving the iterator as it
// was, if s belongs to a dataset with another fingerprint or is out of
// range.
func (it *Iterator) Restore(s IteratorState) error {
	if s.Fingerprint != it.ds.fp {
		return fmt.Errorf("data: iterator state is for dataset %016x, not this one (%016x): the corpus, tokenizer, SeqLen, split or noise differ", s.Fingerprint, it.ds.fp)
	}
	if s.Epoch < 0 || s.Pos < 0 || s.Pos > len(it.ds.train) {
		return fmt.Errorf("data: iterator state epoch %d, position %d out of range (training windows: %d)", s.Epoch, s.Pos, len(it.ds.train))
	}
	it.seed = s.Seed
	it.setEpoch(s.Epoch)
	it.pos = s.Pos
	return nil
}
