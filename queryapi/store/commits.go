package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/analysis"
)

// Commit is a pushed commit as commit_events holds it (schema v11): one per
// service and commit ID, its earliest push's row.
type Commit struct {
	Service string
	SHA     string // the full ID, lower case
	Time    time.Time
}

// Commit IDs a deployment may name: git's hexadecimal object IDs (SHA-1, 40
// digits; SHA-256, 64), or an abbreviation of at least MinCommitAbbrev
// digits — GitHub's and git's usual short ID is 7.
const (
	MinCommitAbbrev = 7
	maxCommitID     = 64
)

// commitPrefix is the lower-case form of a deployment's commit ID and its
// first MinCommitAbbrev digits, the key commit_events is searched by; ok is
// false for anything that cannot be a commit ID or its abbreviation.
func commitPrefix(sha string) (id, prefix string, ok bool) {
	if len(sha) < MinCommitAbbrev || len(sha) > maxCommitID {
		return "", "", false
	}
	id = strings.ToLower(sha)
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", "", false
		}
	}
	return id, id[:MinCommitAbbrev], true
}

// needsCommitTime reports whether r names its commit without its time.
func needsCommitTime(r *analysis.Row) bool {
	if r.CommitSHA == "" || !r.CommitTime.IsZero() {
		return false
	}
	_, _, ok := commitPrefix(r.CommitSHA)
	return ok
}

// FillCommitTimes gives every row that names its commit (CommitSHA) but not
// its time the time of that commit among commits: the commit of the row's
// service whose ID is the row's, or, when the row names an abbreviation
// (at least MinCommitAbbrev hexadecimal digits, any case), the one commit of
// the service whose ID begins with it — an abbreviation two commits of the
// service share names neither, as in git. A time the row already has (its
// deploy span's or webhook's) is kept. The store and testkit/fakestore
// apply the same rule.
func FillCommitTimes(rows []analysis.Row, commits []Commit) {
	if len(commits) == 0 {
		return
	}
	type key struct{ service, prefix string }
	byPrefix := make(map[key][]Commit, len(commits))
	for _, c := range commits {
		if len(c.SHA) < MinCommitAbbrev {
			continue
		}
		k := key{c.Service, c.SHA[:MinCommitAbbrev]}
		byPrefix[k] = append(byPrefix[k], c)
	}
	for i := range rows {
		r := &rows[i]
		if !needsCommitTime(r) {
			continue
		}
		id, prefix, _ := commitPrefix(r.CommitSHA)
		cands := byPrefix[key{r.Service, prefix}]
		var match *Commit
		distinct := 0
		for j := range cands {
			c := &cands[j]
			if c.SHA == id {
				match, distinct = c, 1
				break
			}
			if strings.HasPrefix(c.SHA, id) {
				if match == nil || match.SHA != c.SHA {
					distinct++
				}
				match = c
			}
		}
		if distinct == 1 && !match.Time.IsZero() {
			r.CommitTime = match.Time
		}
	}
}

// fillCommitTimes reads the commits of rows that name their commit but not
// its time from commit_events (sql/commits.sql) and fills their times
// (FillCommitTimes). A database before schema v11 has none.
func (s *Store) fillCommitTimes(ctx context.Context, rows []analysis.Row) error {
	var (
		services []any // a GroupSet: service IN (…) narrows the primary key
		prefixes []string
	)
	seenService, seenPrefix := map[string]bool{}, map[string]bool{}
	for i := range rows {
		r := &rows[i]
		if !needsCommitTime(r) {
			continue
		}
		_, prefix, _ := commitPrefix(r.CommitSHA)
		if !seenService[r.Service] {
			seenService[r.Service] = true
			services = append(services, r.Service)
		}
		if !seenPrefix[prefix] {
			seenPrefix[prefix] = true
			prefixes = append(prefixes, prefix)
		}
	}
	if len(prefixes) == 0 {
		return nil
	}
	var commits []Commit
	err := s.query(ctx, "commits", nil, func(rs driver.Rows) error {
		var (
			c  Commit
			ns uint64
		)
		if err := rs.Scan(&c.Service, &c.SHA, &ns); err != nil {
			return err
		}
		if ns > 0 {
			c.Time = time.Unix(0, int64(ns)).UTC()
		}
		commits = append(commits, c)
		return nil
	}, clickhouse.Named("commit_services", clickhouse.GroupSet{Value: services}), clickhouse.Named("commit_prefixes", prefixes))
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == errUnknownTable {
		return nil
	}
	if err != nil {
		return err
	}
	FillCommitTimes(rows, commits)
	return nil
}
