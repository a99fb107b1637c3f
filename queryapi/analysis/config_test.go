package analysis

import (
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.BeforeWindow != 30*time.Minute || c.AfterGap != 2*time.Minute || c.AfterWindow != 30*time.Minute ||
		c.MinRequests != 50 || c.LatencyRatio != 1.2 || c.Alpha != 0.01 || c.ErrorRateMinDelta != 0.01 ||
		c.ErrorRateMinRatio != 1.5 || c.MinExpectedCount != 5 || c.ReappearAfter != 10*time.Minute || c.MergeWindow != time.Hour {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"before":   func(c *Config) { c.BeforeWindow = time.Second },
		"after":    func(c *Config) { c.AfterWindow = 0 },
		"delay":    func(c *Config) { c.AfterGap = -time.Second },
		"merge":    func(c *Config) { c.MergeWindow = -1 },
		"reappear": func(c *Config) { c.ReappearAfter = 299 * time.Second },
		"alpha":    func(c *Config) { c.Alpha = 1 },
		"ratio":    func(c *Config) { c.LatencyRatio = 0.5 },
	} {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}
