// Package inference derives a unit's deployments from the versions its
// traffic shows. It is a pure function of the stored observations — every
// collector's, merged — so the answer cannot depend on how many collectors
// there are, which of them saw which span, in which order or how late, or on
// a replay of the same data. See docs/deployments.md for the rule and its
// limits.
package inference

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Episode is a maximal stretch of time during which one unit served one
// version with no gap of ReappearAfter or more between two of its entry
// spans. First and Last are the start times (unix ns) of its earliest and
// latest entry span.
type Episode struct {
	Version     string
	First, Last int64
}

// VersionChange is a deployment inferred from traffic: the unit began
// serving Version (report.Deployment is the API's deployment, whatever its
// source).
type VersionChange struct {
	ID              string
	Version         string
	PreviousVersion string
	// At is when the new version took over: the start of its first entry
	// span, or — for a rollout abandoned while the previous version kept
	// serving — the start of the abandoned version's last entry span.
	At time.Time
	// RanBefore says the unit served Version earlier (a rollback candidate).
	RanBefore bool
}

// History is what a unit's traffic shows: the version it served when its
// observations begin and the deployments since, in time order.
type History struct {
	Baseline    string
	Since       time.Time // the first observation
	Deployments []VersionChange
}

// VersionBefore is the version the unit served just before t: the latest
// deployment before t, else the baseline; "" before the first observation.
// Deployments are in time order (Infer's): a timeline asks this for every
// CI deployment of a year against a year of inferred ones.
func (h History) VersionBefore(t time.Time) string {
	if i := sort.Search(len(h.Deployments), func(i int) bool { return !h.Deployments[i].At.Before(t) }); i > 0 {
		return h.Deployments[i-1].Version
	}
	if h.Since.Before(t) {
		return h.Baseline
	}
	return ""
}

// Infer returns the history of one unit given all its episodes (any order).
//
//   - Baseline: the versions the unit served when its observations begin
//     (episodes starting within reappearAfter of the first one) are not
//     deployments; the earliest of them (then the smallest name) is current.
//   - An episode of a version other than the current one is a deployment of
//     that version at the episode's first span, replacing the current one.
//     Within one episode a version's spans interleave freely with others':
//     that is a rolling update, not a sequence of deployments.
//   - Abandoned rollout: when the current version's episode ends at L and
//     another version serves without a gap from before L until at least
//     L + reappearAfter (and nothing else is deployed meanwhile), that
//     version is deployed again at L. Preferred is the version the current
//     one replaced, else the one whose episode began last.
func Infer(service, environment string, episodes []Episode, reappearAfter time.Duration) History {
	if len(episodes) == 0 {
		return History{}
	}
	re := int64(reappearAfter)
	eps := slices.Clone(episodes)
	slices.SortFunc(eps, func(a, b Episode) int {
		return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Version, b.Version))
	})
	var (
		out      []VersionChange
		current  = eps[0].Version
		replaced string                // the version current replaced
		lastEnd  = map[string]int64{}  // end of each version's latest episode so far
		seen     = map[string]bool{}   // versions served so far
		ordinal  = map[[2]string]int{} // deployments so far per (version, previous)
		started  []Episode             // episodes processed so far
		prefix   = unitPrefix(service, environment)
		baseline = eps[0].First + re
	)
	deploy := func(v string, at int64) {
		k := [2]string{v, current}
		n := ordinal[k]
		ordinal[k] = n + 1
		out = append(out, VersionChange{
			ID:              prefix + versionHash(v, current, n),
			Version:         v,
			PreviousVersion: current,
			At:              time.Unix(0, at).UTC(),
			RanBefore:       seen[v],
		})
		replaced, current = current, v
	}
	// abandon applies the abandoned-rollout rule for every check time
	// (current's end + reappearAfter) not after upTo.
	abandon := func(upTo int64) {
		for {
			l, ok := lastEnd[current]
			if !ok || l > upTo-re {
				return
			}
			var (
				best  string
				bestF int64
				found bool
			)
			for _, e := range started {
				if e.Version == current || e.First > l || e.Last < l+re {
					continue
				}
				switch {
				case e.Version == replaced:
					best, found, bestF = e.Version, true, maxInt64
				case !found || e.First > bestF || (e.First == bestF && e.Version < best):
					best, found, bestF = e.Version, true, e.First
				}
			}
			if !found {
				return
			}
			deploy(best, l)
		}
	}
	for _, e := range eps {
		abandon(e.First)
		if e.Version != current && e.First >= baseline {
			deploy(e.Version, e.First)
		}
		seen[e.Version] = true
		lastEnd[e.Version] = max(lastEnd[e.Version], e.Last)
		started = append(started, e)
	}
	abandon(maxInt64)
	return History{Baseline: eps[0].Version, Since: time.Unix(0, eps[0].First).UTC(), Deployments: out}
}

const maxInt64 = int64(^uint64(0) >> 1)

// ID prefixes: an inferred deployment's ID is 32 hex digits, the first 16
// naming its unit (UnitPrefix) so that an ID alone finds its unit.
const prefixLen = 16

// UnitPrefix is the first half of the IDs of one unit's inferred deployments.
func UnitPrefix(service, environment string) string { return unitPrefix(service, environment) }

func unitPrefix(service, environment string) string {
	return hash64("unit", service, environment)
}

// IDPrefix returns the unit part of an inferred deployment ID, and whether
// id has the shape of one.
func IDPrefix(id string) (string, bool) {
	if len(id) != 2*prefixLen {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id[:prefixLen], true
}

// versionHash identifies the n-th change (from 0) from previous to version in
// the unit's history: stable under late data that moves its time, and
// distinct when a unit flips between two versions more than once.
func versionHash(version, previous string, n int) string {
	return hash64("inferred", version, previous, strconv.Itoa(n))
}

func hash64(fields ...string) string {
	h := fnv.New64a()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h.Sum64())
	return hex.EncodeToString(b[:])
}
