package changelenswebhookreceiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/changelens/changelens/internal/eventspan"
)

// ghPush is the part of a push delivery the mapping reads (GitHub's webhook
// payload, "push" event).
type ghPush struct {
	Ref        string            `json:"ref"`
	Deleted    bool              `json:"deleted"`
	Commits    []ghPushCommit    `json:"commits"`
	HeadCommit *ghPushCommit     `json:"head_commit"`
	Repository *ghPushRepository `json:"repository"`
}

type ghPushCommit struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
}

type ghPushRepository struct {
	ghRepository
	// PushedAt is the push's time: Unix seconds in push deliveries (an
	// RFC 3339 string in other events' repository objects).
	PushedAt json.RawMessage `json:"pushed_at"`
}

// parsePush maps an authenticated push delivery: each pushed commit (of
// commits and head_commit, once per ID) becomes a commit event of the
// repository's service, from which the query side takes the commit time of
// the deployments naming the commit (GitHub's deployment.sha).
func (g *gitHub) parsePush(req *http.Request, body []byte) (delivery, error) {
	payload, err := formPayload(req.Header.Get("Content-Type"), body)
	if err != nil {
		return delivery{}, err
	}
	var ev ghPush
	if err := json.Unmarshal(payload, &ev); err != nil {
		return delivery{}, malformed("body", "not a JSON push event: "+err.Error())
	}
	if ev.Deleted {
		return ignore(http.StatusAccepted, "push deletes "+ev.Ref), nil
	}
	r := ev.Repository
	if r == nil || r.FullName == "" || r.Name == "" {
		return delivery{}, malformed("repository.full_name", "required")
	}
	service := g.serviceOfRepository(&r.ghRepository)
	pushed, ok := pushedAt(r.PushedAt)
	if !ok && ev.HeadCommit != nil {
		pushed, _ = parseTime(ev.HeadCommit.Timestamp)
	}
	all := ev.Commits
	if ev.HeadCommit != nil {
		all = append(all, *ev.HeadCommit)
	}
	var del delivery
	seen := make(map[string]bool, len(all))
	for _, c := range all {
		sha := strings.ToLower(strings.TrimSpace(c.ID))
		if sha != "" && seen[sha] {
			continue
		}
		seen[sha] = true
		// A commit without an ID or a readable time costs itself, not the
		// push: the delivery is frozen, a refusal could never be
		// redelivered right.
		at, ok := parseTime(c.Timestamp)
		if sha == "" || !ok {
			del.skipped++
			continue
		}
		del.commits = append(del.commits, eventspan.Commit{
			Service: service, Repository: r.FullName, SHA: sha,
			Time: at.UnixNano(), Pushed: unixNano(pushed), Ref: ev.Ref,
		})
	}
	if len(del.commits) == 0 {
		if len(all) == 0 {
			return ignore(http.StatusAccepted, "push of "+ev.Ref+" carries no commits"), nil
		}
		return delivery{status: http.StatusAccepted, note: "push of " + ev.Ref + " carries no commit with an id and a timestamp",
			skipped: del.skipped}, nil
	}
	return del, nil
}

// pushedAt reads repository.pushed_at: Unix seconds, or an RFC 3339 time.
func pushedAt(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' { // absent or null
		return time.Time{}, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, false
		}
		return parseTime(s)
	}
	sec, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0).UTC(), true
}
