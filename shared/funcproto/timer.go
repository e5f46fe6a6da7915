package funcproto

import (
	"encoding/json"
	"fmt"
	"time"
)

// TimerInfo is a timer trigger's binding.
type TimerInfo struct {
	// IsPastDue is true when the invocation runs later than scheduled (e.g. after a restart).
	IsPastDue bool
	// Last, Next and LastUpdated come from ScheduleStatus; all are zero when the host sent
	// none (first run, or useMonitor false).
	Last, Next, LastUpdated time.Time
}

// Timer decodes the timer trigger binding called name. IsPastDue must be present: it is what
// tells a timer binding apart from other JSON objects.
func (r *Request) Timer(name string) (*TimerInfo, error) {
	raw, err := r.binding(name)
	if err != nil {
		return nil, err
	}
	if kindOf(raw) == "string" { // tolerate a serialised object
		s, err := UnwrapString(raw)
		if err != nil {
			return nil, fmt.Errorf("funcproto: timer binding %q: %w", name, err)
		}
		if kindOf(json.RawMessage(s)) != "object" {
			return nil, fmt.Errorf("funcproto: timer binding %q must be a JSON object, got string", name)
		}
		raw = json.RawMessage(s)
	}
	fields, err := objectField(fmt.Sprintf("timer binding %q", name), raw, false)
	if err != nil {
		return nil, err
	}
	fail := func(field string, err error) error {
		return fmt.Errorf("funcproto: timer binding %q: %s: %w", name, field, err)
	}

	t := &TimerInfo{}
	switch k := kindOf(fields["IsPastDue"]); k {
	case "":
		return nil, fail("IsPastDue", fmt.Errorf("missing; is this a timer trigger?"))
	case "boolean":
		if err := json.Unmarshal(fields["IsPastDue"], &t.IsPastDue); err != nil {
			return nil, fail("IsPastDue", err)
		}
	default:
		return nil, fail("IsPastDue", fmt.Errorf("want a boolean, got %s", k))
	}

	status := fields["ScheduleStatus"]
	if isNull(status) {
		return t, nil
	}
	sf, err := objectField(fmt.Sprintf("timer binding %q: ScheduleStatus", name), status, false)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *time.Time
	}{{"Last", &t.Last}, {"Next", &t.Next}, {"LastUpdated", &t.LastUpdated}} {
		if isNull(sf[f.key]) {
			continue
		}
		if *f.dst, err = parseTime(sf[f.key]); err != nil {
			return nil, fail("ScheduleStatus."+f.key, err)
		}
	}
	return t, nil
}
