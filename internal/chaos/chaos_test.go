package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/testenv"
)

var (
	full     = flag.Bool("chaos.full", false, "run the full suite (at least 500 replications; make chaos)")
	seedFlag = flag.Uint64("chaos.seed", 0, "the run's seed; 0 picks one from the clock (printed, to replay a run)")
	binary   = flag.String("chaos.dimirror", "", "the dimirror binary to run (default: build it)")
	keep     = flag.Bool("chaos.keep", false, "keep the logs and didev's data after a passing run")
	faultsF  = flag.String("chaos.faults", "", "didev faults instead of the default set, in didev's -fault syntax (e.g. add reset-after=0.03)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

// TestChaos is the fault-injection suite: the short variant by default, the full one with
// -chaos.full. A failing run prints its seed; -chaos.seed replays the same faults and kill
// points (the interleaving of two processes is not replayable exactly).
func TestChaos(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()) % 1_000_000
	}
	cfg := Short(seed)
	if *full {
		cfg = Full(seed)
	}
	if *faultsF != "" {
		f, err := didev.ParseFaults(*faultsF)
		if err != nil {
			t.Fatalf("-chaos.faults: %v", err)
		}
		cfg.Faults = f
	}
	cfg.Binary = *binary
	// The logs and didev's data stay for a failed run (and with -chaos.keep).
	dir, err := os.MkdirTemp("", "dimirror-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.WorkDir = dir
	t.Cleanup(func() {
		if !t.Failed() && !*keep {
			os.RemoveAll(dir)
		}
	})
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Settle+5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	// The one-line summary goes to stdout as well, so `make chaos` shows it without -v.
	fmt.Println(rep.Summary())
	if err != nil {
		t.Fatalf("seed %d: the run could not be carried out: %v (work dir %s)", seed, err, cfg.WorkDir)
	}
	for _, v := range rep.Violations {
		t.Errorf("seed %d: %s", seed, v)
	}
	if rep.Kills != cfg.Kills {
		t.Errorf("seed %d: %d kills, want %d", seed, rep.Kills, cfg.Kills)
	}
	if rep.Faults["429"]+rep.Faults["500"]+rep.Faults["reset"]+rep.Faults["lost-answer"]+rep.Faults["copy-fail"]+rep.Faults["expired-auth"] == 0 {
		t.Errorf("seed %d: no service fault was injected: %v", seed, rep.Faults)
	}
	if *full { // hundreds of replications: every kind of fault configured must have struck
		for kind, rate := range map[string]float64{"429": cfg.Faults.HTTP429, "500": cfg.Faults.HTTP500,
			"reset": cfg.Faults.Reset, "lost-answer": cfg.Faults.ResetAfter, "copy-fail": cfg.Faults.CopyFail, "expired-auth": cfg.Faults.ExpireAuth} {
			if rate > 0 && rep.Faults[kind] == 0 {
				t.Errorf("seed %d: %s faults were configured (%g) but none struck", seed, kind, rate)
			}
		}
	}
	if t.Failed() || *keep {
		t.Logf("logs and didev's data: %s (replay with -chaos.seed=%d)", cfg.WorkDir, seed)
	}
}
