package fakestore

import (
	"strings"

	"github.com/changelens/changelens/queryapi/store"
)

type commitKey struct{ service, sha string }

// AddCommit adds a pushed commit as the exporter stores it: one per
// (Service, SHA), the ID lower case; the first one added stays (the
// earliest push, as commit_events keeps it). Deployments naming the commit
// without a time take its Time (DeploymentRows).
func (s *Store) AddCommit(cs ...store.Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		c.SHA = strings.ToLower(c.SHA)
		c.Time = c.Time.UTC()
		k := commitKey{c.Service, c.SHA}
		if _, ok := s.commits[k]; !ok {
			s.commits[k] = c
		}
	}
}
