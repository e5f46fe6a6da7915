// Package dimirror holds the files the Functions host reads (host.json and one function.json
// per function), embedded so `dimirror run` schedules its timers and mounts its routes from the
// very same definitions the host uses.
package dimirror

import "embed"

// Functions is host.json and functions/<name>/function.json.
//
//go:embed host.json functions
var Functions embed.FS
