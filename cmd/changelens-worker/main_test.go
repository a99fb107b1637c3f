package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Bad configuration stops the worker at start with an error naming what is
// wrong — never quoting a secret.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "--clickhouse-dsn"},
		{[]string{"--clickhouse-dsn", "clickhouse://w:pw@h:9000/db", "--interval", "0s"}, nil, "--interval"},
		{[]string{"--clickhouse-dsn", "clickhouse://w:pw@h:9000/db", "extra"}, nil, "unexpected arguments"},
		{[]string{"--clickhouse-dsn", "clickhouse://w:pw@h:9000/db"}, map[string]string{"CHANGELENS_LOOKBACK": "soon"}, "CHANGELENS_LOOKBACK"},
		{[]string{"--clickhouse-dsn", "clickhouse://w:pw@h:9000/db", "--alpha", "2"}, nil, "Alpha"},
		{[]string{"--clickhouse-dsn", "clickhouse://w:pw@h:9000/db", "--cluster-name", "a-b"}, nil, "--cluster-name"},
		{[]string{"--clickhouse-dsn", "clickhouse://w:pw@h:9000/db", "--cluster-name", "c", "--replication-path", "tables'"}, nil, "--replication-path"},
	} {
		err := run(context.Background(), c.args, env(c.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "pw@") {
			t.Errorf("%v %v: %v, want an error naming %s", c.args, c.env, err, c.want)
		}
	}
	for _, c := range []struct{ file, want string }{
		{"targets: []\n", "at least one target"},
		{"targets:\n  - name: a\n    type: webhook\n    url: http://x\n    secret_url: y\n", "secret_url"},
	} {
		_, err := loadNotify(write("n.yaml", c.file), env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error naming %s", c.file, err, c.want)
		}
	}
	f, err := loadNotify(write("ok.yaml", "targets:\n  - name: slack\n    type: slack\n    url: ${SLACK_URL}\n"),
		env(map[string]string{"SLACK_URL": "https://hooks.slack.com/services/T/B/TOKEN"}))
	if err != nil || len(f.Targets) != 1 || f.Targets[0].URL != "https://hooks.slack.com/services/T/B/TOKEN" {
		t.Errorf("${VAR} from the environment: %+v %v", f, err)
	}
}
