package train

import (
	"fmt"
	"io"

	"github.com/goreweight/goreweight/goreweight/trainer/internal/atomicfile"
)

// writeAtomic writes path atomically (atomicfile.Write), its errors
// prefixed with the package name.
func writeAtomic(path string, write func(w io.Writer) error) error {
	if err := atomicfile.Write(path, write); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// writeFileAtomic writes b to path atomically.
func writeFileAtomic(path string, b []byte) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
