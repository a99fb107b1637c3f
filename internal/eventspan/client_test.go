package eventspan

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestIsClientResource(t *testing.T) {
	for _, c := range []struct {
		attrs map[string]any
		want  bool
	}{
		{map[string]any{"telemetry.sdk.language": "webjs"}, true},
		{map[string]any{"telemetry.sdk.language": "swift"}, true},
		{map[string]any{"telemetry.sdk.language": "java", "os.name": "Android"}, true},
		{map[string]any{"telemetry.sdk.language": "java", "os.name": "Linux"}, false},
		{map[string]any{"telemetry.sdk.language": "go"}, false},
		{map[string]any{"browser.platform": "Windows"}, true},
		{map[string]any{"os.name": "iOS"}, true},
		{map[string]any{"service.name": "api"}, false},
	} {
		m := pcommon.NewMap()
		_ = m.FromRaw(c.attrs)
		if got := IsClientResource(m); got != c.want {
			t.Errorf("%v: %v, want %v", c.attrs, got, c.want)
		}
	}
	m := pcommon.NewMap()
	m.PutStr("telemetry.sdk.language", "go")
	m.PutStr("os.name", "Linux")
	if n := testing.AllocsPerRun(100, func() { IsClientResource(m) }); n != 0 {
		t.Errorf("%v allocations per server resource, want none", n)
	}
}

func TestReadClient(t *testing.T) {
	s := ptrace.NewSpan()
	s.Attributes().PutStr("session.id", "s1")
	s.Attributes().PutStr("user.id", "old")
	res := pcommon.NewMap()
	res.PutStr("enduser.id", "u-res")
	if c := ReadClient(s, res); c.SessionID != "s1" || c.UserID != "old" || c.Crashed {
		t.Errorf("%+v", c)
	}
	s.Attributes().PutStr("enduser.id", "u1")
	ev := s.Events().AppendEmpty()
	ev.SetName("exception")
	if c := ReadClient(s, res); c.UserID != "u1" || c.Crashed {
		t.Errorf("a handled exception: %+v", c)
	}
	ev.Attributes().PutBool("exception.escaped", true)
	if c := ReadClient(s, res); !c.Crashed {
		t.Errorf("an escaped exception: %+v", c)
	}
	s2 := ptrace.NewSpan()
	s2.Events().AppendEmpty().SetName("device.crash")
	if c := ReadClient(s2, res); !c.Crashed || c.UserID != "u-res" || c.SessionID != "" {
		t.Errorf("a crash event: %+v", c)
	}
}
