package didev

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults are failures injected into the service routes (never into /_didev/*) at the given
// rates (0 to 1). Rolls come from one generator seeded with Seed, so a run with the same requests
// in the same order sees the same faults.
type Faults struct {
	CopyFail    float64       `json:"copyFail,omitempty"`    // an accepted copy operation ends failed (InternalServerError)
	HTTP500     float64       `json:"http500,omitempty"`     // answer 500 InternalServerError without handling the request
	HTTP429     float64       `json:"http429,omitempty"`     // answer the APIM 429 without handling the request
	Reset       float64       `json:"reset,omitempty"`       // reset the connection without handling the request
	ResetAfter  float64       `json:"resetAfter,omitempty"`  // handle the request, then reset instead of answering
	Latency     time.Duration `json:"latency,omitempty"`     // added before handling, with probability LatencyRate
	LatencyRate float64       `json:"latencyRate,omitempty"` // 0 with Latency set means every request
	ExpireAuth  float64       `json:"expireAuth,omitempty"`  // authorizations are issued already expired
	Seed        uint64        `json:"seed,omitempty"`        // 0 = 1
}

// ParseFaults parses the -fault syntax: a comma list of copy-fail=P, http-500=P, http-429=P,
// reset=P, reset-after=P, latency=DURATION[@P], expire-auth=P and seed=N, P in [0,1].
// "" and "off" mean no faults.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "off") {
		return f, nil
	}
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		k, v, ok := strings.Cut(item, "=")
		if !ok || v == "" {
			return Faults{}, fmt.Errorf("fault %q: want NAME=VALUE (names: copy-fail, http-500, http-429, reset, reset-after, latency, expire-auth, seed)", item)
		}
		if seen[k] {
			return Faults{}, fmt.Errorf("fault %q: %s given twice", item, k)
		}
		seen[k] = true
		var err error
		switch k {
		case "copy-fail":
			f.CopyFail, err = parseRate(v)
		case "http-500":
			f.HTTP500, err = parseRate(v)
		case "http-429":
			f.HTTP429, err = parseRate(v)
		case "reset":
			f.Reset, err = parseRate(v)
		case "reset-after":
			f.ResetAfter, err = parseRate(v)
		case "expire-auth":
			f.ExpireAuth, err = parseRate(v)
		case "latency":
			d, p, hasP := strings.Cut(v, "@")
			f.Latency, err = time.ParseDuration(d)
			if err == nil && (f.Latency <= 0 || f.Latency > time.Minute) {
				err = errors.New("latency must be between 0 and 1m, e.g. 200ms")
			}
			if err == nil && hasP {
				f.LatencyRate, err = parseRate(p)
			} else if err == nil {
				f.LatencyRate = 1
			}
		case "seed":
			f.Seed, err = strconv.ParseUint(v, 10, 64)
			if err != nil {
				err = errors.New("seed must be a non-negative integer")
			}
		default:
			return Faults{}, fmt.Errorf("fault %q: unknown fault %q (copy-fail, http-500, http-429, reset, reset-after, latency, expire-auth, seed)", item, k)
		}
		if err != nil {
			return Faults{}, fmt.Errorf("fault %q: %w", item, err)
		}
	}
	return f, f.validate()
}

func parseRate(s string) (float64, error) {
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || p < 0 || p > 1 || p != p {
		return 0, fmt.Errorf("rate %q must be a number from 0 to 1", s)
	}
	return p, nil
}

func (f Faults) validate() error {
	for name, p := range map[string]float64{
		"copy-fail": f.CopyFail, "http-500": f.HTTP500, "http-429": f.HTTP429, "reset": f.Reset,
		"reset-after": f.ResetAfter, "expire-auth": f.ExpireAuth, "latency rate": f.LatencyRate,
	} {
		if p < 0 || p > 1 || p != p {
			return fmt.Errorf("fault %s rate %v must be from 0 to 1", name, p)
		}
	}
	if f.Latency < 0 || f.Latency > time.Minute {
		return fmt.Errorf("fault latency %s must be between 0 and 1m", f.Latency)
	}
	return nil
}

// String renders f in the -fault syntax (parsable by ParseFaults).
func (f Faults) String() string {
	var parts []string
	add := func(name string, p float64) {
		if p > 0 {
			parts = append(parts, name+"="+strconv.FormatFloat(p, 'g', -1, 64))
		}
	}
	add("copy-fail", f.CopyFail)
	add("http-500", f.HTTP500)
	add("http-429", f.HTTP429)
	add("reset", f.Reset)
	add("reset-after", f.ResetAfter)
	if f.Latency > 0 {
		parts = append(parts, "latency="+f.Latency.String()+"@"+strconv.FormatFloat(f.latencyRate(), 'g', -1, 64))
	}
	add("expire-auth", f.ExpireAuth)
	if f.Seed != 0 {
		parts = append(parts, "seed="+strconv.FormatUint(f.Seed, 10))
	}
	if len(parts) == 0 {
		return "off"
	}
	return strings.Join(parts, ",")
}

func (f Faults) latencyRate() float64 {
	if f.Latency > 0 && f.LatencyRate == 0 {
		return 1
	}
	return f.LatencyRate
}

// faultDice rolls the injected faults; safe for concurrent use.
type faultDice struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func newFaultDice(f Faults) *faultDice {
	d := &faultDice{}
	d.set(f)
	return d
}

func (d *faultDice) set(f Faults) {
	seed := f.Seed
	if seed == 0 {
		seed = 1
	}
	d.mu.Lock()
	d.f = f
	d.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d.mu.Unlock()
}

func (d *faultDice) get() Faults {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f
}

// requestFaults is what happens to one request before and after it is handled.
type requestFaults struct {
	latency    time.Duration
	reset      bool
	http429    bool
	http500    bool
	resetAfter bool
}

// roll decides a request's faults. Every rate draws exactly one number, set or not, so the
// sequence for a seed does not depend on which faults are enabled.
func (d *faultDice) roll() requestFaults {
	d.mu.Lock()
	defer d.mu.Unlock()
	var rf requestFaults
	r := [5]float64{d.rng.Float64(), d.rng.Float64(), d.rng.Float64(), d.rng.Float64(), d.rng.Float64()}
	if d.f.Latency > 0 && r[0] < d.f.latencyRate() {
		rf.latency = d.f.Latency
	}
	switch {
	case r[1] < d.f.Reset:
		rf.reset = true
	case r[2] < d.f.HTTP429:
		rf.http429 = true
	case r[3] < d.f.HTTP500:
		rf.http500 = true
	case r[4] < d.f.ResetAfter:
		rf.resetAfter = true
	}
	return rf
}

// chance draws once against p (copy-fail, expire-auth).
func (d *faultDice) chance(pick func(Faults) float64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := d.rng.Float64()
	return x < pick(d.f)
}
