package data_test

import (
	"fmt"

	"github.com/goreweight/goreweight/goreweight/trainer/data"
)

// Documents of two domains become windows of SeqLen+1 bytes, overlapping by
// one, and an Iterator draws seeded, resumable batches of them.
func ExampleNewDataset() {
	docs := []data.Document{
		{Domain: "letters", Kind: data.KindReal, Text: "abcdefghij"},
		{Domain: "digits", Kind: data.KindReal, Text: "0123456789"},
	}
	ds, err := data.NewDataset(docs, data.Byte{}, data.DatasetConfig{SeqLen: 4, Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println("domains:", ds.Domains(), "windows:", ds.NumSamples())
	for id := range ds.NumSamples() {
		s, _ := ds.Sample(id)
		fmt.Printf("window %d (%s): %q\n", id, s.DomainName, data.Byte{}.Decode(ds.Window(id)))
	}

	it := ds.NewIterator()
	b := it.Next(2)
	state := it.State() // saved in a checkpoint
	next := it.Next(2)
	fmt.Printf("batch of %d: inputs %q, targets %q\n", len(b.IDs), data.Byte{}.Decode(b.Tokens[:4]), data.Byte{}.Decode(b.Targets[:4]))

	// A restored iterator continues where the saved one was.
	again := ds.NewIterator()
	if err := again.Restore(state); err != nil {
		panic(err)
	}
	fmt.Println("resumed batch equals the original:", fmt.Sprint(again.Next(2).IDs) == fmt.Sprint(next.IDs))
	// Output:
	// domains: [digits letters] windows: 4
	// window 0 (letters): "abcde"
	// window 1 (letters): "efghi"
	// window 2 (digits): "01234"
	// window 3 (digits): "45678"
	// batch of 2: inputs "0123", targets "1234"
	// resumed batch equals the original: true
}
