package chtest

import (
	"os"
	"path/filepath"
	"text/template"
)

// Users configured in every server the harness starts.
const (
	// AdminUser is ClickHouse's built-in "default" user: no password, full rights.
	AdminUser = "default"

	// WriterUser / WriterPassword: a password-protected user with full rights,
	// for tests of configured credentials.
	WriterUser     = "changelens"
	WriterPassword = "changelens-secret"

	// ReadOnlyUser / ReadOnlyPassword: a user with the "readonly" profile
	// (readonly = 2: SELECTs and changing per-query settings such as
	// max_execution_time are allowed; INSERT, ALTER, CREATE, DROP are not).
	// This is the user the query API is meant to run as.
	ReadOnlyUser     = "changelens_ro"
	ReadOnlyPassword = "changelens-ro-secret"

	// ClusterName is a single-shard, single-replica cluster that points at the
	// server itself (remote_servers). Distributed tables work with it; ON CLUSTER
	// DDL does not (that needs ZooKeeper, which the harness does not run).
	ClusterName = "chtest_single"
)

var configTmpl = template.Must(template.New("config.xml").Parse(`<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{{.Dir}}/log/clickhouse-server.log</log>
        <errorlog>{{.Dir}}/log/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <path>{{.Dir}}/data/</path>
    <tmp_path>{{.Dir}}/tmp/</tmp_path>
    <user_files_path>{{.Dir}}/user_files/</user_files_path>
    <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
    <users_config>{{.Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <max_connections>1024</max_connections>
    <max_concurrent_queries>200</max_concurrent_queries>
    <keep_alive_timeout>3</keep_alive_timeout>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <!-- Tests stop servers with clients connected: do not wait long for them. -->
    <shutdown_wait_unfinished>1</shutdown_wait_unfinished>
    <default_session_timeout>60</default_session_timeout>
    <remote_servers>
        <{{.Cluster}}>
            <shard>
                <replica>
                    <host>127.0.0.1</host>
                    <port>{{.TCPPort}}</port>
                </replica>
            </shard>
        </{{.Cluster}}>
    </remote_servers>
</yandex>
`))

var usersTmpl = template.Must(template.New("users.xml").Parse(`<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <!-- An idle connection's handler notices shutdown after this many
                 seconds (default 10): keeps Stop fast with clients connected. -->
            <poll_interval>1</poll_interval>
        </default>
        <readonly>
            <readonly>2</readonly>
            <poll_interval>1</poll_interval>
            <max_memory_usage>2000000000</max_memory_usage>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <{{.WriterUser}}>
            <password>{{.WriterPassword}}</password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{{.WriterUser}}>
        <{{.ReadOnlyUser}}>
            <password>{{.ReadOnlyPassword}}</password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>readonly</profile>
            <quota>default</quota>
        </{{.ReadOnlyUser}}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`))

type configData struct {
	Dir              string
	TCPPort          int
	HTTPPort         int
	Cluster          string
	WriterUser       string
	WriterPassword   string
	ReadOnlyUser     string
	ReadOnlyPassword string
}

// writeConfig writes config.xml and users.xml into dir and creates the
// directories the server writes to.
func writeConfig(dir string, tcpPort, httpPort int) error {
	for _, sub := range []string{"log", "data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	d := configData{
		Dir: dir, TCPPort: tcpPort, HTTPPort: httpPort, Cluster: ClusterName,
		WriterUser: WriterUser, WriterPassword: WriterPassword,
		ReadOnlyUser: ReadOnlyUser, ReadOnlyPassword: ReadOnlyPassword,
	}
	for name, tmpl := range map[string]*template.Template{"config.xml": configTmpl, "users.xml": usersTmpl} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := tmpl.Execute(f, d); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
