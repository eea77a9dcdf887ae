// The resume policy: which keys a resumed run may change.

package train

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// resumable lists the keys a resumed run may change: they do not change
// what is computed.
var resumable = []string{"threads", "ckpt_every", "quiet", "resume", "out"}

// ResumeConfig returns the configuration of the run in dir (its
// config.json) with the keys given by the caller applied: set is the
// caller's configuration and keys the keys the caller set explicitly.
// Threads, CkptEvery and Quiet may change, and Seeds may grow: a list that
// starts with the run's seeds adds seeds to a finished (or unfinished)
// comparison, which then equals a run started with the longer list. Any
// other key that differs from the saved run is an error, because the
// resumed run would no longer equal an uninterrupted one.
func ResumeConfig(dir string, set Config, keys []string) (Config, error) {
	b, err := os.ReadFile(configPath(dir))
	if err != nil {
		return Config{}, fmt.Errorf("train: resume %s: %w (is it the --out directory of an earlier run?)", dir, err)
	}
	// Keys added since a run was written take the value that reproduces
	// it: no accumulation, micro scope, sequence granularity.
	saved, _, err := Config{Accum: 1, Scope: ScopeMicro, Granularity: GranularitySequence}.ParseJSON(b)
	if err != nil {
		return Config{}, fmt.Errorf("train: resume %s: %w", dir, err)
	}
	sv, nv := reflect.ValueOf(&saved).Elem(), reflect.ValueOf(set)
	t := sv.Type()
	for i := range t.NumField() {
		name := jsonName(t.Field(i))
		if !slices.Contains(keys, name) {
			continue
		}
		if slices.Contains(resumable, name) {
			if name != "resume" && name != "out" {
				sv.Field(i).Set(nv.Field(i))
			}
			continue
		}
		if name == "seeds" && extendsSeeds(saved.Seeds, set.Seeds) {
			saved.Seeds = append(SeedList(nil), set.Seeds...)
			continue
		}
		if !reflect.DeepEqual(sv.Field(i).Interface(), nv.Field(i).Interface()) {
			hint := ""
			if name == "seeds" {
				hint = "; seeds may only grow, keeping the run's seeds first and in order"
			}
			return Config{}, fmt.Errorf("train: resume %s: %s = %v differs from the run's %v; only %s may change when resuming%s (start a new run with another out directory instead)",
				dir, name, nv.Field(i).Interface(), sv.Field(i).Interface(), strings.Join(resumable[:3], ", "), hint)
		}
	}
	if slices.Contains(keys, "out") && set.Out != "" && filepath.Clean(set.Out) != filepath.Clean(dir) {
		return Config{}, fmt.Errorf("train: resume %s: out = %q: a resumed run writes into the directory it resumes; leave out unset", dir, set.Out)
	}
	saved.Resume = dir
	saved.Out = dir
	return saved, nil
}

// extendsSeeds reports whether seeds is saved followed by at least one more
// seed: a multi-seed run may be resumed with more seeds, never fewer or
// reordered ones (the seed directories and the pairing are per seed, so the
// longer run equals one started with the longer list).
func extendsSeeds(saved, seeds SeedList) bool {
	return len(saved) > 0 && len(seeds) > len(saved) && slices.Equal(saved, seeds[:len(saved)])
}

// savedSeeds returns the seeds in the config.json of the run in dir, nil
// when it cannot be read (ResumeConfig reports that).
func savedSeeds(dir string) SeedList {
	b, err := os.ReadFile(configPath(dir))
	if err != nil {
		return nil
	}
	saved, _, err := Config{Accum: 1, Scope: ScopeMicro, Granularity: GranularitySequence}.ParseJSON(b)
	if err != nil {
		return nil
	}
	return saved.Seeds
}
