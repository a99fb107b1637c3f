package analysis

import (
	"math"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.BeforeWindow != 30*time.Minute || c.AfterGap != 2*time.Minute || c.AfterWindow != 30*time.Minute ||
		c.MinRequests != 50 || c.Alpha != 0.005 || c.LatencyFloor != 0.05 || c.ErrorRateFloorRatio != 1.5 ||
		c.ErrorRateFloorDelta != 0.001 || c.MaxOperations != 50 || c.Power != 0.8 || c.DispersionLags != 2 ||
		c.CompareAlpha != 0.01 || c.LatencyRatio != 1.2 || c.ErrorRateMinDelta != 0.01 ||
		c.ErrorRateMinRatio != 1.5 || c.MinExpectedCount != 5 || c.ReappearAfter != 10*time.Minute || c.MergeWindow != time.Hour ||
		c.ErrorKindAlpha != 0.005 || c.ErrorKindFloor != 0.0005 || c.ErrorKindMinMinutes != 2 {
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
		"alpha0":   func(c *Config) { c.Alpha = 0 },
		"compare":  func(c *Config) { c.CompareAlpha = 1 },
		"ratio":    func(c *Config) { c.LatencyRatio = 0.5 },
		"floor":    func(c *Config) { c.LatencyFloor = -0.1 },
		"errratio": func(c *Config) { c.ErrorRateFloorRatio = 0.9 },
		"errdelta": func(c *Config) { c.ErrorRateFloorDelta = 1 },
		"maxops":   func(c *Config) { c.MaxOperations = 0 },
		"power":    func(c *Config) { c.Power = 1 },
		"lags":     func(c *Config) { c.DispersionLags = -1 },
		"kalpha":   func(c *Config) { c.ErrorKindAlpha = 0 },
		"kfloor":   func(c *Config) { c.ErrorKindFloor = -0.001 },
		"kfloor1":  func(c *Config) { c.ErrorKindFloor = math.NaN() },
		"kminutes": func(c *Config) { c.ErrorKindMinMinutes = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}
