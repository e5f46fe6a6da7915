package config

// Lookup is the effective value of a setting that function.json files refer to as %NAME%
// (defaults applied), so `dimirror run` expands them exactly as the Functions host would with
// the app settings. Only non-secret settings are answered.
func (c *Config) Lookup(name string) (string, bool) {
	switch name {
	case "DIMIRROR_QUEUE":
		return c.Queue, true
	case "DIMIRROR_POLL_SCHEDULE":
		return c.PollSchedule, true
	case "DIMIRROR_WATCH_SCHEDULE":
		return c.WatchSchedule, true
	case "DIMIRROR_SWEEP_SCHEDULE":
		return c.SweepSchedule, true
	case "DIMIRROR_TABLE":
		return c.Table.Name, true
	}
	return "", false
}
