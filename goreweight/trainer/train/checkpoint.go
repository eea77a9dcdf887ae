package train

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/data"
	"github.com/goreweight/goreweight/goreweight/trainer/gpt"
	"github.com/goreweight/goreweight/goreweight/trainer/nn"
	"github.com/goreweight/goreweight/goreweight/trainer/optim"
	"github.com/goreweight/goreweight/goreweight/trainer/tensorfile"
)

// A checkpoint is a zip archive (readable with any unzip tool), written
// atomically, its entries stored uncompressed:
//
//	meta.json          checkpointMeta: format, strategy, step, config,
//	                   reweighter state, data iterator state, RNG state,
//	                   timing
//	model.safetensors  the GPT's parameters (gpt.Model.SaveParams)
//	adamw.safetensors  the AdamW step count and moments (optim.AdamW.SaveState)
//
// Every zip entry carries a CRC-32 and each safetensors file its own
// checksum, so a damaged file is detected on load. Python reads the
// tensors with safetensors.numpy.load(zipfile.ZipFile(path).read(
// "model.safetensors")). Format 1 (model.bin, adamw.bin) is not read.
const (
	checkpointName    = "checkpoint.zip"
	checkpointFormat  = 2
	checkpointMetaEnt = "meta.json"
	checkpointModel   = "model.safetensors"
	checkpointAdamW   = "adamw.safetensors"
)

// ErrCheckpoint is wrapped by every error about a checkpoint's content
// (damaged, of another format, strategy or configuration). It Is
// tensorfile.ErrFormat. Errors reading the file wrap fs errors instead.
var ErrCheckpoint = tensorfile.NewErrFormat("train: invalid checkpoint")

// checkpointErr wraps err, about the checkpoint at path, in ErrCheckpoint.
func checkpointErr(path string, err error) error {
	return fmt.Errorf("%w %s: %w", ErrCheckpoint, path, err)
}

// checkpointMeta is meta.json of a checkpoint.
type checkpointMeta struct {
	Format   int    `json:"format"`
	Strategy string `json:"strategy"`
	// Step is the number of optimiser steps taken.
	Step   int    `json:"step"`
	Config Config `json:"config"`
	// Reweighter is the core Reweighter's State.
	Reweighter json.RawMessage `json:"reweighter"`
	// Deferred is the core Deferred's State in deferred scope (its
	// running loss range and step; no open step: checkpoints are written
	// between optimiser steps), absent otherwise.
	Deferred json.RawMessage `json:"deferred,omitempty"`
	// Iterator is the data iterator's position (with the dataset's
	// fingerprint).
	Iterator data.IteratorState `json:"iterator"`
	// RNG is the random state of the run. The trainer draws no random
	// numbers of its own: the initialisation, split, noise and batch order
	// are pure functions of the seed and the iterator position.
	RNG rngState `json:"rng"`
	// Reference describes the reference model of the run, if any; a
	// resumed run checks that it did not change.
	Reference *ReferenceInfo `json:"reference,omitempty"`
	// TrainS is the training time so far (for tokens/s), WallS the wall
	// time of the strategy's run so far, over all sessions.
	TrainS float64 `json:"train_s"`
	WallS  float64 `json:"wall_s"`
	// Backend, Threads and GoVersion describe the machine that wrote it.
	Backend   string `json:"backend"`
	Threads   int    `json:"threads"`
	GoVersion string `json:"go_version"`
}

type rngState struct {
	Seed uint64 `json:"seed"`
	Note string `json:"note"`
}

const rngNote = "no trainer-level RNG: initialisation, split, noise and batch order derive from seed and the iterator state"

// trainState is what a checkpoint saves and restores.
type trainState struct {
	model *gpt.Model
	opt   *optim.AdamW
	rw    *goreweight.Reweighter
	def   *goreweight.Deferred // deferred scope only, else nil
	it    *data.Iterator
}

// checkpointWriteHook, when set (by tests), is called in the middle of
// every checkpoint write, after the parameters and before the AdamW state.
var checkpointWriteHook func()

// saveCheckpoint writes the checkpoint atomically to path.
func saveCheckpoint(path string, meta checkpointMeta, st trainState) error {
	rws, err := st.rw.State()
	if err != nil {
		return err
	}
	meta.Format = checkpointFormat
	meta.Reweighter = rws
	if st.def != nil {
		if st.def.Open() {
			return fmt.Errorf("train: checkpoint at step %d: the deferred weights' step %d is still open (checkpoints are written between optimiser steps)", meta.Step, st.def.Step())
		}
		if meta.Deferred, err = st.def.State(); err != nil {
			return err
		}
	}
	meta.Iterator = st.it.State()
	meta.RNG = rngState{Seed: meta.Config.Seed, Note: rngNote}
	meta.Backend = nn.Backend()
	meta.Threads = nn.Threads()
	meta.GoVersion = runtime.Version()
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, func(w io.Writer) error {
		z := zip.NewWriter(w)
		for _, e := range []struct {
			name  string
			write func(io.Writer) error
		}{
			{checkpointMetaEnt, func(w io.Writer) error { _, err := w.Write(mb); return err }},
			{checkpointModel, st.model.SaveParams},
			{checkpointAdamW, st.opt.SaveState},
		} {
			f, err := z.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
			if err != nil {
				return err
			}
			if err := e.write(f); err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
			if e.name == checkpointModel && checkpointWriteHook != nil {
				checkpointWriteHook()
			}
		}
		return z.Close()
	})
}

// readCheckpointMeta reads meta.json of the checkpoint in b.
func readCheckpointMeta(z *zip.Reader, path string) (checkpointMeta, error) {
	var meta checkpointMeta
	b, err := readEntry(z, checkpointMetaEnt)
	if err != nil {
		return meta, checkpointErr(path, err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, checkpointErr(path, fmt.Errorf("%s: %w", checkpointMetaEnt, err))
	}
	if meta.Format != checkpointFormat {
		return meta, checkpointErr(path, fmt.Errorf("format %d, this build reads format %d", meta.Format, checkpointFormat))
	}
	return meta, nil
}

// readEntry reads the stored (uncompressed) entry name of z. Checkpoints
// store their entries, so a compressed one is refused: this bounds what
// is read by the size of the file, whatever a damaged header claims.
func readEntry(z *zip.Reader, name string) ([]byte, error) {
	for _, f := range z.File {
		if f.Name != name {
			continue
		}
		if f.Method != zip.Store {
			return nil, fmt.Errorf("entry %s is compressed (method %d); checkpoints store their entries", name, f.Method)
		}
		r, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("entry %s: %w", name, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("entry %s: %w", name, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("entry %s: %w", name, fs.ErrNotExist)
}

// loadCheckpoint restores st from the checkpoint file content b. The
// checkpoint must belong to strategy and to a run with the same
// reweighting configuration; on error st may be partly restored and must
// be discarded.
func loadCheckpoint(b []byte, path, strategy string, want goreweight.Config, st trainState) (checkpointMeta, error) {
	z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return checkpointMeta{}, checkpointErr(path, fmt.Errorf("damaged or not a checkpoint: %w", err))
	}
	meta, err := readCheckpointMeta(z, path)
	if err != nil {
		return meta, err
	}
	fail := func(err error) (checkpointMeta, error) {
		return meta, checkpointErr(path, err)
	}
	if meta.Strategy != strategy {
		return fail(fmt.Errorf("it is for strategy %q, not %q", meta.Strategy, strategy))
	}
	mb, err := readEntry(z, checkpointModel)
	if err != nil {
		return fail(err)
	}
	if err := st.model.LoadParams(bytes.NewReader(mb)); err != nil {
		return fail(err)
	}
	ab, err := readEntry(z, checkpointAdamW)
	if err != nil {
		return fail(err)
	}
	if err := st.opt.LoadState(bytes.NewReader(ab)); err != nil {
		return fail(err)
	}
	rw, err := goreweight.Restore(meta.Reweighter)
	if err != nil {
		return fail(err)
	}
	gotJSON, _ := json.Marshal(rw.Config())
	ref, err := goreweight.New(want)
	if err != nil {
		return fail(err)
	}
	wantJSON, _ := json.Marshal(ref.Config())
	if !bytes.Equal(gotJSON, wantJSON) {
		return fail(fmt.Errorf("reweighter configuration %s differs from this run's %s", gotJSON, wantJSON))
	}
	if rw.Step() != int64(meta.Step) || st.opt.Steps() != int64(meta.Step) {
		return fail(fmt.Errorf("inconsistent steps: checkpoint %d, reweighter %d, AdamW %d", meta.Step, rw.Step(), st.opt.Steps()))
	}
	if err := st.rw.LoadState(meta.Reweighter); err != nil {
		return fail(err)
	}
	if err := loadDeferred(meta, want, st.def); err != nil {
		return fail(err)
	}
	if err := st.it.Restore(meta.Iterator); err != nil {
		return fail(err)
	}
	return meta, nil
}

// loadDeferred restores def (nil: the run is not in deferred scope) from
// the checkpoint's deferred state, which must be there exactly when def
// is, with the run's configuration, at the checkpoint's step and between
// steps.
func loadDeferred(meta checkpointMeta, want goreweight.Config, def *goreweight.Deferred) error {
	switch {
	case def == nil && meta.Deferred == nil:
		return nil
	case def == nil:
		return fmt.Errorf("it holds the state of deferred-scope weights, but this run is not in deferred scope")
	case meta.Deferred == nil:
		return fmt.Errorf("it holds no deferred-scope state (the running loss range), which this run in deferred scope needs")
	}
	d, err := goreweight.RestoreDeferred(meta.Deferred)
	if err != nil {
		return err
	}
	gotJSON, _ := json.Marshal(d.Config())
	ref, err := goreweight.NewDeferred(goreweight.DeferredConfig{Config: want, RangeMomentum: def.Config().RangeMomentum})
	if err != nil {
		return err
	}
	wantJSON, _ := json.Marshal(ref.Config())
	if !bytes.Equal(gotJSON, wantJSON) {
		return fmt.Errorf("deferred configuration %s differs from this run's %s", gotJSON, wantJSON)
	}
	if d.Step() != int64(meta.Step) || d.Open() {
		return fmt.Errorf("inconsistent deferred state: step %d (open %v), checkpoint step %d", d.Step(), d.Open(), meta.Step)
	}
	return def.LoadState(meta.Deferred)
}

// SavedModel is the model of a checkpoint with what it was trained with.
type SavedModel struct {
	// Model holds the parameters of the checkpoint.
	Model *gpt.Model
	// Strategy and Step are the checkpoint's strategy and optimiser steps.
	Strategy string
	Step     int
	// Config is the run's configuration (Tokenizer names the tokenizer).
	Config Config
}

// CheckpointPath returns the path of a strategy's checkpoint in a run
// directory.
func CheckpointPath(runDir, strategy string) string {
	return filepath.Join(runDir, strategy, checkpointName)
}

// LoadModel reads the model of the checkpoint file at path (see
// CheckpointPath), checking the archive and the parameter file's checksum;
// the optimiser state is not read.
func LoadModel(path string) (*SavedModel, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, checkpointErr(path, fmt.Errorf("damaged or not a checkpoint: %w", err))
	}
	meta, err := readCheckpointMeta(z, path)
	if err != nil {
		return nil, err
	}
	mb, err := readEntry(z, checkpointModel)
	if err != nil {
		return nil, checkpointErr(path, err)
	}
	m, err := gpt.Load(bytes.NewReader(mb))
	if err != nil {
		return nil, checkpointErr(path, err)
	}
	return &SavedModel{Model: m, Strategy: meta.Strategy, Step: meta.Step, Config: meta.Config}, nil
}
