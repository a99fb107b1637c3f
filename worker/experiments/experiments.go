// Package experiments applies the experiment definitions a team keeps in
// git (a directory of YAML files) to the experiments table (schema v16):
// the worker holds the writer credential, the API only reads. Each file is
// validated on its own — a bad file is reported, naming the file and the
// field, and every other file is still applied — and a definition whose
// canonical form did not change writes nothing.
package experiments

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/changelens/changelens/queryapi/experimentspec"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/worker/writer"
)

// Reader reads the stored definitions (store.Store).
type Reader interface {
	Experiments(ctx context.Context, id string) ([]store.StoredExperiment, error)
}

// Writer stores definitions (writer.Writer).
type Writer interface {
	StoreExperiments(ctx context.Context, es []writer.Experiment, now time.Time) error
}

// Result says what one application did.
type Result struct {
	Applied, Unchanged int
	// Invalid: one error per file that was not applied, "file: field:
	// problem".
	Invalid []error
}

// Load reads and validates every *.yaml, *.yml and *.json file of dir (not
// its subdirectories), in name order. A second file with an id already
// defined is invalid: which one wins must not depend on the order.
func Load(dir string) (specs []experimentspec.Spec, files []string, invalid []error, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	byID := map[string]string{}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			invalid = append(invalid, fmt.Errorf("%s: %w", name, err))
			continue
		}
		s, err := experimentspec.Parse(b)
		if err == nil {
			err = s.Validate()
		}
		if err != nil {
			invalid = append(invalid, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if prev, dup := byID[s.ID]; dup {
			invalid = append(invalid, fmt.Errorf("%s: id: %q is already defined in %s", name, s.ID, prev))
			continue
		}
		byID[s.ID] = name
		specs = append(specs, s)
		files = append(files, name)
	}
	return specs, files, invalid, nil
}

// Apply loads dir and stores each valid definition whose canonical form
// differs from the stored one.
func Apply(ctx context.Context, dir string, r Reader, w Writer, now time.Time) (Result, error) {
	specs, files, invalid, err := Load(dir)
	if err != nil {
		return Result{}, err
	}
	res := Result{Invalid: invalid}
	stored, err := r.Experiments(ctx, "")
	if err != nil {
		return res, err
	}
	hashes := make(map[string]string, len(stored))
	for _, e := range stored {
		hashes[e.ID] = e.Hash
	}
	var out []writer.Experiment
	for i, s := range specs {
		js, hash := s.Canonical()
		if hashes[s.ID] == hash {
			res.Unchanged++
			continue
		}
		out = append(out, writer.Experiment{ID: s.ID, Service: s.Unit.Service, Environment: s.Unit.Environment,
			Definition: js, Hash: hash, Source: files[i]})
	}
	if err := w.StoreExperiments(ctx, out, now); err != nil {
		return res, err
	}
	res.Applied = len(out)
	return res, nil
}
