package devup

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// quietKeys are on every line of dimirror's log and say nothing at a terminal.
var quietKeys = map[string]bool{"time": true, "level": true, "msg": true, "app": true, "mode": true, "version": true}

// FormatLogLine turns one of dimirror's JSON log lines into a short line for a terminal:
// "15:04:05 INFO  message key=value ...", keys in their order, nested values as compact JSON.
// Anything that is not a JSON object is returned as it is.
func FormatLogLine(line []byte) string {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return string(bytes.TrimRight(line, "\r\n"))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return string(trimmed)
	}
	var when, level, msg string
	var rest strings.Builder
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return string(trimmed)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return string(trimmed)
		}
		val := plain(raw)
		switch key {
		case "time":
			if t, err := time.Parse(time.RFC3339Nano, val); err == nil {
				when = t.Local().Format("15:04:05")
			}
		case "level":
			level = val
		case "msg":
			msg = val
		}
		if quietKeys[key] {
			continue
		}
		rest.WriteByte(' ')
		rest.WriteString(key)
		rest.WriteByte('=')
		if strings.ContainsAny(val, " \t\"") && raw[0] == '"' {
			val = string(raw)
		}
		rest.WriteString(val)
	}
	var b strings.Builder
	if when != "" {
		b.WriteString(when)
		b.WriteByte(' ')
	}
	b.WriteString(padRight(level, 5))
	b.WriteByte(' ')
	b.WriteString(msg)
	b.WriteString(rest.String())
	return b.String()
}

// plain is a JSON value as text: strings unquoted, anything else compact.
func plain(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}
