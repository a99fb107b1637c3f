package inference

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 12, 10, 0, 0, 0, time.UTC)

func at(min float64) int64 { return t0.Add(time.Duration(min * float64(time.Minute))).UnixNano() }

func ep(v string, first, last float64) Episode {
	return Episode{Version: v, First: at(first), Last: at(last)}
}

const re = 10 * time.Minute

type want struct {
	version, previous string
	at                float64
	ranBefore         bool
}

func check(t *testing.T, got []VersionChange, want []want) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d deployments %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Version != w.version || g.PreviousVersion != w.previous || !g.At.Equal(time.Unix(0, at(w.at)).UTC()) || g.RanBefore != w.ranBefore {
			t.Errorf("deployment %d = %s←%s at %s ran before %v, want %s←%s at %s ran before %v", i,
				g.Version, g.PreviousVersion, g.At, g.RanBefore, w.version, w.previous, time.Unix(0, at(w.at)).UTC(), w.ranBefore)
		}
	}
}

func TestInferRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		eps  []Episode
		want []want
	}{
		{"baseline only", []Episode{ep("1", 0, 600)}, nil},
		{"versions already running together are the baseline",
			[]Episode{ep("1", 0, 600), ep("2", 3, 600)}, nil},
		{"rolling update: one deployment at the first span",
			[]Episode{ep("1", 0, 120.5), ep("2", 100.25, 600)},
			[]want{{"2", "1", 100.25, false}}},
		{"idle unit coming back with the same version",
			[]Episode{ep("1", 0, 60), ep("1", 600, 700)}, nil},
		{"idle unit coming back with a new version",
			[]Episode{ep("1", 0, 60), ep("2", 600, 700)},
			[]want{{"2", "1", 600, false}}},
		{"rollback after the version was gone",
			[]Episode{ep("1", 0, 100.5), ep("2", 100, 200.5), ep("1", 200, 300)},
			[]want{{"2", "1", 100, false}, {"1", "2", 200, true}}},
		{"abandoned canary: the stable version is deployed again when the canary stops",
			[]Episode{ep("1", 0, 300), ep("2", 100, 130)},
			[]want{{"2", "1", 100, false}, {"1", "2", 130, true}}},
		{"canary still serving: no rollback yet",
			[]Episode{ep("1", 0, 135), ep("2", 100, 130)},
			[]want{{"2", "1", 100, false}}},
		{"a new version within reappear_after of the canary's end wins over the rollback",
			[]Episode{ep("1", 0, 300), ep("2", 100, 130), ep("3", 135, 300)},
			[]want{{"2", "1", 100, false}, {"3", "2", 135, false}}},
		{"flapping twice between two versions",
			[]Episode{ep("1", 0, 10), ep("2", 20, 30), ep("1", 40, 50), ep("2", 60, 70)},
			[]want{{"2", "1", 20, false}, {"1", "2", 40, true}, {"2", "1", 60, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Infer("payments", "prod", tc.eps, re).Deployments
			check(t, got, tc.want)
			ids := map[string]bool{}
			for _, d := range got {
				if ids[d.ID] {
					t.Errorf("ID %s given twice", d.ID)
				}
				ids[d.ID] = true
				if p, ok := IDPrefix(d.ID); !ok || p != UnitPrefix("payments", "prod") {
					t.Errorf("ID %s does not name its unit (prefix %q, %v)", d.ID, p, ok)
				}
			}
		})
	}
}

func TestInferIdentity(t *testing.T) {
	eps := []Episode{ep("1", 0, 100.5), ep("2", 100, 200.5), ep("1", 200, 300), ep("2", 400, 500)}
	base := Infer("search", "prod", eps, re).Deployments
	if len(base) != 3 {
		t.Fatalf("got %d deployments, want 3", len(base))
	}
	// Any input order: the same deployments.
	rev := slices.Clone(eps)
	slices.Reverse(rev)
	if got := Infer("search", "prod", rev, re).Deployments; !slices.Equal(got, base) {
		t.Errorf("reversed input: %+v, want %+v", got, base)
	}
	// Late spans that move a version's first span earlier keep its ID.
	late := slices.Clone(eps)
	late[1].First = at(99)
	got := Infer("search", "prod", late, re).Deployments
	for i := range got {
		if got[i].ID != base[i].ID {
			t.Errorf("deployment %d: ID %s after late data, was %s", i, got[i].ID, base[i].ID)
		}
	}
	if !got[0].At.Equal(time.Unix(0, at(99)).UTC()) {
		t.Errorf("first deployment at %s, want the late span's time", got[0].At)
	}
	// Another unit: other IDs.
	for i, d := range Infer("search", "staging", eps, re).Deployments {
		if d.ID == base[i].ID {
			t.Errorf("deployment %d of another unit has the same ID %s", i, d.ID)
		}
	}
}

func TestIDPrefix(t *testing.T) {
	for _, id := range []string{"", "abc", "zz" + UnitPrefix("a", "b") + "00000000000000", UnitPrefix("a", "b") + "0123456789abcdeg"} {
		if _, ok := IDPrefix(id); ok {
			t.Errorf("IDPrefix(%q) accepted", id)
		}
	}
	if p, ok := IDPrefix(UnitPrefix("a", "b") + "0123456789abcdef"); !ok || p != UnitPrefix("a", "b") {
		t.Errorf("IDPrefix rejected a well-formed ID")
	}
}

func TestVersionBefore(t *testing.T) {
	h := Infer("cart", "prod", []Episode{ep("1", 0, 100.5), ep("2", 100, 200.5), ep("1", 200, 300)}, re)
	for _, c := range []struct {
		min  float64
		want string
	}{{-1, ""}, {0, ""}, {50, "1"}, {100, "1"}, {100.5, "2"}, {200, "2"}, {250, "1"}} {
		if got := h.VersionBefore(time.Unix(0, at(c.min))); got != c.want {
			t.Errorf("VersionBefore(+%vm) = %q, want %q", c.min, got, c.want)
		}
	}
	// Two changes at the same instant: the later of them is the version
	// served after it.
	t0 := time.Unix(1000, 0)
	h = History{Baseline: "a", Since: t0, Deployments: []VersionChange{{Version: "b", At: t0.Add(time.Minute)},
		{Version: "c", At: t0.Add(2 * time.Minute)}, {Version: "d", At: t0.Add(2 * time.Minute)}, {Version: "e", At: t0.Add(3 * time.Minute)}}}
	for _, c := range []struct {
		after time.Duration
		want  string
	}{{-time.Second, ""}, {0, ""}, {time.Second, "a"}, {time.Minute, "a"}, {time.Minute + 1, "b"}, {2 * time.Minute, "b"},
		{2*time.Minute + 1, "d"}, {3 * time.Minute, "d"}, {time.Hour, "e"}} {
		if got := h.VersionBefore(t0.Add(c.after)); got != c.want {
			t.Errorf("VersionBefore(+%v) = %q, want %q", c.after, got, c.want)
		}
	}
}
