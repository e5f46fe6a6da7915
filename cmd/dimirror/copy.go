package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/internal/memstore"
	"github.com/dimirror/dimirror/internal/statustable"
	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/replication"
)

func init() {
	register(command{name: "copy", summary: "copy a model or classifier into targets now, without the queue, and wait",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return runCopy(ctx, args, stdout, stderr, processEnv())
		}})
}

const copyHelp = `Usage: dimirror copy --id ID [flags]

Copies one model or classifier from a source resource into target resources now, by the
pipeline's own steps (authorizeCopy on each target, copyTo on the source, then every copy is
followed until it ends and the target is verified), with the same clients and pacing as the
functions. Its state is kept in memory: no queue and no table are involved, so it works while
the functions are down. The copies carry the same tags as the pipeline's, so dimirror later
recognises them as up to date.

A target that already holds this version of the source is reported "up-to-date" and left
alone. A target holding another model under the id fails; with --replace (or
DIMIRROR_REPLACE=true) dimirror's own copy of an older version of the source is replaced, but
a model dimirror did not make never is. A copy that fails for a reason a new attempt may fix
(an internal error, an expired authorization) is retried with a new authorization after 2s,
doubling, up to --attempts times. A target that is throttled or at its model limit waits
("waiting") without using up an attempt, until --timeout.

With DIMIRROR_RESOURCES and DIMIRROR_RULES, --source names the resource that holds the item
(required when several resources are sources) and --to defaults to that source's rules; a
target that is the item's origin is refused, as the webhook refuses it.

On a terminal the progress of every target is shown live (state, percent, elapsed); otherwise
one line per change. --json prints only the result, as JSON.

Flags:
%s
Examples:
  dimirror copy --id invoice-v1
  dimirror copy --kind model --id invoice-v1 --to westus2,eastus
  dimirror copy --kind classifier --id router-v1 --to eastus --target-id router-v1-dr
  dimirror copy --id invoice-v1 --json --settings local.settings.json
  dimirror copy --source westus2 --id receipt-v3 --to eastus

Exit codes: 0 every target succeeded or was up to date, 1 a target failed (or the copy was
interrupted), 2 usage error, 4 invalid settings.

` + settingsHelp + "\n"

// copyRequest is a parsed copy invocation.
type copyRequest struct {
	kind     replication.Kind
	source   string
	id       string
	targetID string
	to       []string
	replace  bool
	attempts int
	timeout  time.Duration
	json     bool
	settings string
}

func parseCopyFlags(args []string, stdout, stderr io.Writer) (copyRequest, int, bool) {
	var r copyRequest
	fs := flag.NewFlagSet("dimirror copy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kind := fs.String("kind", "model", "what to copy: `model` or classifier")
	fs.StringVar(&r.id, "id", "", "the source model or classifier `id` (required)")
	fs.StringVar(&r.source, "source", "", "the resource `name` that holds the item (default: the only source)")
	to := fs.String("to", "", "comma-separated target `names` (default: every target of the source's rules)")
	fs.StringVar(&r.targetID, "target-id", "", "the `id` in the targets (default: the source id)")
	fs.BoolVar(&r.replace, "replace", false, "replace dimirror's copy of an older version of the source in a target (never a model dimirror did not make)")
	fs.IntVar(&r.attempts, "attempts", 3, "copy attempts per target before it is given up")
	fs.DurationVar(&r.timeout, "timeout", 30*time.Minute, "give up on copies not finished after this `duration`")
	fs.BoolVar(&r.json, "json", false, "print only the result, as JSON")
	settings := addSettingsFlag(fs)
	usageErr := func(format string, a ...any) (copyRequest, int, bool) {
		return r, usageError(stderr, fs.Name(), format, a...), false
	}
	if code, ok := parseFlags(fs, args, copyHelp, " (use --id to name the model)", stdout, stderr); !ok {
		return r, code, false
	}
	r.settings = *settings
	k, err := replication.ParseKind(*kind)
	if err != nil || *kind == "" {
		return usageErr("--kind %q: use model or classifier", *kind)
	}
	r.kind = k
	switch {
	case r.id == "":
		return usageErr("--id is required: the id of the source %s to copy", r.kind)
	case !replication.ValidID(r.id): // v2.1's UUID model ids are valid ids too
		return usageErr("--id %q is not a valid id (letters, digits, '.', '_', '~', '-'; 2-64 characters)", r.id)
	case r.targetID != "" && !replication.ValidID(r.targetID):
		return usageErr("--target-id %q is not a valid id (letters, digits, '.', '_', '~', '-'; 2-64 characters)", r.targetID)
	case r.attempts < 1 || r.attempts > 10:
		return usageErr("--attempts %d: use 1 to 10", r.attempts)
	case r.timeout <= 0:
		return usageErr("--timeout must be positive")
	}
	if r.targetID == "" {
		r.targetID = r.id
	}
	seen := map[string]bool{}
	for _, t := range strings.Split(*to, ",") {
		if t = strings.TrimSpace(t); t != "" && !seen[t] {
			seen[t] = true
			r.to = append(r.to, t)
		}
	}
	return r, exitOK, true
}

func runCopy(ctx context.Context, args []string, stdout, stderr io.Writer, env cliEnv) int {
	req, code, ok := parseCopyFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	cfg, err := loadSettings(req.settings, env.lookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "dimirror copy: %v\n", err)
		return exitSettings
	}
	c, err := newCopier(cfg, req, env)
	if err != nil {
		fmt.Fprintf(stderr, "dimirror copy: %v\n", err)
		var ue badUsage
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitSettings
	}
	switch {
	case req.json:
		c.view = quietView{}
	case env.terminal(stdout):
		c.view = &liveView{w: stdout}
	default:
		c.view = &plainView{w: stdout}
	}
	ctx, cancel := context.WithTimeout(ctx, req.timeout)
	defer cancel()
	res := c.run(ctx)
	if req.json {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "dimirror copy: %v\n", err)
			return exitFailure
		}
	}
	if !res.Succeeded {
		return exitFailure
	}
	return exitOK
}

type badUsage struct{ msg string }

func (e badUsage) Error() string { return e.msg }

// Job states, as shown: the replica's status in the words of an operator watching one copy.
const (
	jobWaiting   = "waiting" // not requested yet, or a step could not run (throttled, target full)
	jobAuthorize = "authorizing"
	jobCopying   = "copying"
	jobRetrying  = "retrying"
	jobSucceeded = "succeeded"
	jobUpToDate  = "up-to-date"
	jobFailed    = "failed"
)

// copyJob is what the views show of the replica in one target.
type copyJob struct {
	target   string
	targetID string
	state    string
	percent  int
	attempt  int
	opURL    string
	ended    time.Duration // since the command started, once the job is terminal
	errCode  string
	errMsg   string
}

func (j *copyJob) terminal() bool {
	return j.state == jobSucceeded || j.state == jobUpToDate || j.state == jobFailed
}

func (j *copyJob) ok() bool { return j.state == jobSucceeded || j.state == jobUpToDate }

// show takes the job's state from its replica.
func (j *copyJob) show(r *replication.Replica, start time.Time) {
	j.targetID, j.percent, j.attempt, j.opURL = r.TargetID, r.Percent, r.Attempt, r.OperationURL
	j.errCode, j.errMsg = r.ErrorCode, r.ErrorMessage
	switch r.Status {
	case replication.StatusSucceeded, replication.StatusFailed:
		j.state, j.ended = jobFailed, r.CompletedAt.Sub(start)
		if r.Status == replication.StatusSucceeded {
			j.state = jobSucceeded
			if r.UpToDate() {
				j.state = jobUpToDate
			}
		}
	case replication.StatusCopying:
		j.state = jobCopying
	default: // pending, authorized
		switch {
		case r.ErrorCode != "" && r.Status == replication.StatusPending && r.Attempt > 1:
			j.state = jobRetrying // an attempt failed; the next one is due after its backoff
		case r.ErrorCode != "":
			j.state = jobWaiting
		default:
			j.state = jobAuthorize
		}
	}
}

func (j *copyJob) fail(at time.Duration, code, msg string) {
	j.state, j.ended, j.errCode, j.errMsg = jobFailed, at, code, msg
}

// copier runs the engine's own steps for one source item, with its state in memory: Request
// authorizes every target and queues the copies, the inline queue hands each message to the
// engine's Handle, and a poll pass every second follows the copies, verifies the targets and
// starts the retries the engine scheduled. One goroutine drives it and the command's clock
// times it, so the progress display (and its tests) are deterministic.
type copier struct {
	kind     replication.Kind
	source   string
	sourceID string
	targetID string
	eng      *replication.Engine
	queue    *inlineQueue
	jobs     []*copyJob
	interval time.Duration
	env      cliEnv
	view     copyView

	start time.Time
}

// pollInterval is the time between poll passes: the engine's due times (retries, checks)
// are met within it.
const pollInterval = time.Second

// cliRetryBase is the backoff before an operator's copy tries again, doubling per attempt: the
// operator is watching, so it is seconds rather than the pipeline's DIMIRROR_RETRY_BASE.
const cliRetryBase = 2 * time.Second

func newCopier(cfg *config.Config, req copyRequest, env cliEnv) (*copier, error) {
	sources := cfg.SourceNames()
	source := req.source
	switch {
	case source == "" && len(sources) == 1:
		source = sources[0]
	case source == "":
		return nil, badUsage{fmt.Sprintf("--source is required: several resources are sources (%s); name the one that holds the item", strings.Join(sources, ", "))}
	case !slices.Contains(sources, source):
		return nil, badUsage{fmt.Sprintf("--source %q is not the source of any rule (sources: %s)", source, strings.Join(sources, ", "))}
	}
	var ruleTargets []string
	for _, r := range cfg.Rules {
		if r.From == source {
			ruleTargets = append(ruleTargets, r.To)
		}
	}
	names := req.to
	if len(names) == 0 {
		names = ruleTargets
	}
	for _, name := range names {
		if _, ok := cfg.Target(name); !ok {
			return nil, badUsage{fmt.Sprintf("--to: %q is not a configured target (targets: %s)", name, strings.Join(targetNames(cfg.Targets), ", "))}
		}
		if !slices.Contains(ruleTargets, name) {
			return nil, badUsage{fmt.Sprintf("--to: no rule copies %s into %q (%s's rules copy into %s)", source, name, source, strings.Join(ruleTargets, ", "))}
		}
	}
	clients, err := app.NewClients(cfg, app.NewCredentials(nil), nil)
	if err != nil {
		return nil, err
	}
	q := &inlineQueue{now: env.now}
	ec := clients.Engine
	ec.Store, ec.Queue, ec.Now = memstore.New(), q, env.now
	ec.Policy = copyPolicy(cfg, req)
	eng, err := replication.NewEngine(ec)
	if err != nil {
		return nil, err
	}
	c := &copier{kind: req.kind, source: source, sourceID: req.id, targetID: req.targetID, eng: eng, queue: q, interval: pollInterval, env: env}
	for _, name := range names {
		c.jobs = append(c.jobs, &copyJob{target: name, targetID: req.targetID, state: jobWaiting})
	}
	return c, nil
}

// copyPolicy is the functions' policy from the settings, with the command's flags on top and
// a backoff an operator can wait for.
func copyPolicy(cfg *config.Config, req copyRequest) replication.Policy {
	p := app.EnginePolicy(cfg)
	p.MaxAttempts = req.attempts
	p.Replace = p.Replace || req.replace
	p.RetryBase = cliRetryBase
	p.RetryMax = max(min(p.RetryMax, time.Minute), cliRetryBase)
	return p
}

func (c *copier) elapsed() time.Duration { return c.env.now().Sub(c.start) }

// copyResult is the outcome, as --json prints it.
type copyResult struct {
	Kind           string         `json:"kind"`
	SourceID       string         `json:"sourceId"`
	Succeeded      bool           `json:"succeeded"`
	ElapsedSeconds float64        `json:"elapsedSeconds"`
	Error          *resultError   `json:"error,omitempty"`
	Targets        []targetResult `json:"targets"`
}

type targetResult struct {
	Target         string       `json:"target"`
	TargetID       string       `json:"targetId"`
	Status         string       `json:"status"`
	Attempts       int          `json:"attempts"`
	Percent        int          `json:"percentCompleted"`
	ElapsedSeconds float64      `json:"elapsedSeconds"`
	OperationID    string       `json:"operationId,omitempty"`
	Error          *resultError `json:"error,omitempty"`
}

type resultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (c *copier) run(ctx context.Context) copyResult {
	c.start = c.env.now()
	c.view.begin(c)
	res := copyResult{Kind: string(c.kind), SourceID: c.sourceID, Targets: []targetResult{}}
	if _, err := c.eng.Request(ctx, replication.Request{Source: c.source, Kind: c.kind, SourceID: c.sourceID, TargetID: c.targetID, Targets: c.names()}); err != nil {
		code, msg := describeErr(ctx, err)
		if errors.Is(err, replication.ErrSourceNotFound) {
			code, msg = "SourceNotFound", fmt.Sprintf("the source has no %s %q", c.kind, c.sourceID)
		}
		var fe *replication.FieldError
		if errors.As(err, &fe) {
			code, msg = "InvalidRequest", fe.Error() // e.g. a target that is the item's origin
		}
		jobCode, jobMsg := "SourceUnavailable", "the source could not be read"
		if errors.As(err, &fe) {
			jobCode, jobMsg = code, msg
		}
		for _, j := range c.jobs {
			j.fail(c.elapsed(), jobCode, jobMsg)
		}
		res.Error = &resultError{Code: code, Message: msg}
		c.view.end(c, res.Error)
		return c.result(res)
	}
	for {
		c.queue.deliver(ctx, c.eng.Handle)
		c.refresh(ctx)
		if ctx.Err() != nil {
			code, msg := "Canceled", "interrupted; a copy operation already started goes on in the service"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				code, msg = "Timeout", "the copy did not finish in time (--timeout); a copy operation already started goes on in the service"
			}
			for _, j := range c.jobs {
				if !j.terminal() {
					j.fail(c.elapsed(), code, msg)
				}
			}
		}
		if c.done() {
			break
		}
		c.view.update(c)
		_ = c.env.sleep(ctx, c.interval) // an interrupted sleep ends the next round
		c.queue.deliver(ctx, c.eng.Handle)
		// Per-replica failures are on the replicas; a pass that fails as a whole (its context
		// ended) is seen in the next round.
		_, _ = c.eng.Poll(ctx)
	}
	c.view.end(c, nil)
	return c.result(res)
}

func (c *copier) done() bool {
	for _, j := range c.jobs {
		if !j.terminal() {
			return false
		}
	}
	return true
}

// refresh reads every job's replica. The store is in memory: it is read even after ctx ended,
// to show where each copy got to.
func (c *copier) refresh(ctx context.Context) {
	rctx := context.WithoutCancel(ctx)
	for _, j := range c.jobs {
		if j.terminal() {
			continue
		}
		r, err := c.eng.Get(rctx, replication.Key{Kind: c.kind, SourceID: c.sourceID, Target: j.target})
		if err != nil {
			continue // not requested: the job keeps its state
		}
		j.show(r, c.start)
	}
}

func (c *copier) result(res copyResult) copyResult {
	res.Succeeded = res.Error == nil
	res.ElapsedSeconds = seconds(c.elapsed())
	for _, j := range c.jobs {
		tr := targetResult{Target: j.target, TargetID: j.targetID, Status: j.state, Attempts: j.attempt,
			Percent: j.percent, ElapsedSeconds: seconds(j.ended)}
		if j.opURL != "" {
			tr.OperationID = replication.OperationID(j.opURL)
		}
		if j.errCode != "" {
			tr.Error = &resultError{Code: j.errCode, Message: j.errMsg}
		}
		res.Succeeded = res.Succeeded && j.ok()
		res.Targets = append(res.Targets, tr)
	}
	return res
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(100*time.Millisecond)) / float64(time.Second)
}

// describeErr is an error's code and message for the display: the service's code when there is
// one. Client errors never hold keys or access tokens.
func describeErr(ctx context.Context, err error) (string, string) {
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return "Timeout", "the copy did not finish in time (--timeout)"
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return "Canceled", "interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		return "Timeout", "no answer within DIMIRROR_CALL_TIMEOUT"
	}
	var se *replication.ServiceError
	if errors.As(err, &se) {
		return se.Code, se.Message
	}
	var fe *replication.FieldError
	if errors.As(err, &fe) {
		return "InvalidRequest", fe.Error()
	}
	return "Unavailable", err.Error()
}

// inlineQueue is the copy queue of a one-off copy: the command hands every message to the
// engine itself, a sent one at the next delivery, a scheduled one once the command's clock
// reaches its time, so the command owns the timers and tests drive them with its clock. Like
// Service Bus it drops a second message with the same MessageId and delivers a message whose
// handling failed again, a second later, up to maxDeliveries times.
type inlineQueue struct {
	now func() time.Time

	mu   sync.Mutex
	msgs []queued
	seen map[string]bool
}

type queued struct {
	msg        *replication.CopyMessage
	at         time.Time
	deliveries int
}

// maxDeliveries is Service Bus's default MaxDeliveryCount: past it the message is dropped, as
// a dead-lettered one is, and the engine's poll pass renews the replica's authorization.
const maxDeliveries = 10

func (q *inlineQueue) SendCopy(ctx context.Context, m *replication.CopyMessage) error {
	return q.Schedule(ctx, m, 0)
}

func (q *inlineQueue) Schedule(_ context.Context, m *replication.CopyMessage, after time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seen == nil {
		q.seen = map[string]bool{}
	}
	id := m.MessageID()
	if q.seen[id] {
		return nil
	}
	q.seen[id] = true
	c := *m
	q.msgs = append(q.msgs, queued{msg: &c, at: q.now().Add(after)})
	return nil
}

// next removes the first message that is due.
func (q *inlineQueue) next() (queued, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for i, m := range q.msgs {
		if !now.Before(m.at) {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			return m, true
		}
	}
	return queued{}, false
}

// deliver hands every due message to handle, in the order they were queued, including those
// that handling queues due at once, until none is due or ctx ends.
func (q *inlineQueue) deliver(ctx context.Context, handle func(context.Context, *replication.CopyMessage, int) error) {
	for ctx.Err() == nil {
		m, ok := q.next()
		if !ok {
			return
		}
		m.deliveries++
		if err := handle(ctx, m.msg, m.deliveries); err != nil && m.deliveries < maxDeliveries {
			m.at = q.now().Add(time.Second)
			q.mu.Lock()
			q.msgs = append(q.msgs, m)
			q.mu.Unlock()
		}
	}
}

// copyView shows the progress.
type copyView interface {
	begin(c *copier)
	update(c *copier)
	end(c *copier, err *resultError)
}

type quietView struct{}

func (quietView) begin(*copier)             {}
func (quietView) update(*copier)            {}
func (quietView) end(*copier, *resultError) {}

func (c *copier) title() string {
	return fmt.Sprintf("copy %s %s to %s", c.kind, c.sourceID, strings.Join(c.names(), ", "))
}

func (c *copier) names() []string {
	n := make([]string, len(c.jobs))
	for i, j := range c.jobs {
		n[i] = j.target
	}
	return n
}

func (c *copier) summary() string {
	copied, current := 0, 0
	for _, j := range c.jobs {
		switch j.state {
		case jobSucceeded:
			copied++
		case jobUpToDate:
			current++
		}
	}
	if ok := copied + current; ok < len(c.jobs) {
		return fmt.Sprintf("failed: %d of %d targets do not hold %s %s (%s)", len(c.jobs)-ok, len(c.jobs), c.kind, c.sourceID, statustable.Duration(c.elapsed()))
	}
	return fmt.Sprintf("done: %d of %d targets hold %s %s (%d copied, %d already up to date) in %s",
		len(c.jobs), len(c.jobs), c.kind, c.sourceID, copied, current, statustable.Duration(c.elapsed()))
}

func (j *copyJob) progress() string {
	switch j.state {
	case jobCopying, jobSucceeded, jobUpToDate:
		return fmt.Sprintf("%d%%", j.percent)
	}
	return "-"
}

// plainView writes one line per change, for logs and pipes.
type plainView struct {
	w    io.Writer
	last map[string]string
}

func (v *plainView) begin(c *copier) {
	v.last = map[string]string{}
	fmt.Fprintln(v.w, c.title())
}

func (v *plainView) update(c *copier) {
	for _, j := range c.jobs {
		var line string
		switch j.state {
		case jobCopying:
			line = fmt.Sprintf("copying %d%% (attempt %d)", j.percent, j.attempt)
		case jobRetrying:
			// the replica already counts the next attempt
			line = fmt.Sprintf("attempt %d failed (%s: %s); retrying", j.attempt-1, j.errCode, j.errMsg)
		case jobWaiting:
			if j.errCode == "" {
				continue // not requested yet
			}
			line = fmt.Sprintf("waiting: %s: %s", j.errCode, j.errMsg)
		case jobFailed:
			line = fmt.Sprintf("failed: %s: %s", j.errCode, j.errMsg)
		case jobSucceeded:
			line = "succeeded: the target holds " + j.targetID
		case jobUpToDate:
			line = "up-to-date: the target already holds this version"
		default:
			continue // authorizing: too brief to log
		}
		if v.last[j.target] == line {
			continue
		}
		v.last[j.target] = line
		fmt.Fprintf(v.w, "%7s  %s: %s\n", statustable.Duration(c.elapsed()), j.target, line)
	}
}

func (v *plainView) end(c *copier, err *resultError) {
	if err != nil {
		fmt.Fprintf(v.w, "failed: %s: %s\n", err.Code, err.Message)
		return
	}
	v.update(c)
	fmt.Fprintln(v.w, c.summary())
}

// liveView redraws a table in place on a terminal.
type liveView struct {
	w     io.Writer
	drawn int // lines of the table drawn last time
}

// liveNote bounds the NOTE column: a wrapped line would break the redraw.
const liveNote = 48

func (v *liveView) begin(c *copier) {
	fmt.Fprintf(v.w, "%s\n\n", c.title())
	v.draw(c)
}

func (v *liveView) update(c *copier) { v.draw(c) }

func (v *liveView) draw(c *copier) {
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn) // back to the table's first line
	}
	width := len("TARGET")
	for _, j := range c.jobs {
		width = max(width, len(j.target))
	}
	line := func(format string, a ...any) {
		b.WriteString("\r\x1b[K")
		b.WriteString(strings.TrimRight(fmt.Sprintf(format, a...), " "))
		b.WriteByte('\n')
	}
	line("  %-*s  %-11s  %8s  %8s  %s", width, "TARGET", "STATE", "PROGRESS", "ELAPSED", "NOTE")
	for _, j := range c.jobs {
		elapsed := c.elapsed()
		if j.terminal() {
			elapsed = j.ended
		}
		note := ""
		switch {
		case j.errCode != "": // failed, retrying, or waiting on a throttled or full resource
			note = j.errCode
		case j.attempt > 1 && !j.terminal():
			note = fmt.Sprintf("attempt %d", j.attempt)
		}
		if len(note) > liveNote {
			note = note[:liveNote-1] + "…"
		}
		line("  %-*s  %-11s  %8s  %8s  %s", width, j.target, j.state, j.progress(), statustable.Duration(elapsed), note)
	}
	v.drawn = len(c.jobs) + 1
	fmt.Fprint(v.w, b.String())
}

func (v *liveView) end(c *copier, err *resultError) {
	v.draw(c)
	fmt.Fprintln(v.w)
	if err != nil {
		fmt.Fprintf(v.w, "failed: %s: %s\n", err.Code, err.Message)
		return
	}
	for _, j := range c.jobs {
		if j.state == jobFailed {
			fmt.Fprintf(v.w, "%s: %s: %s\n", j.target, j.errCode, j.errMsg)
		}
	}
	fmt.Fprintln(v.w, c.summary())
}
