package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/internal/statustable"
	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/replication"
	"github.com/dimirror/dimirror/shared/resources"
)

func init() {
	register(command{name: "copy", summary: "copy a model or classifier into targets now, without the queue, and wait",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return runCopy(ctx, args, stdout, stderr, processEnv())
		}})
}

const copyHelp = `Usage: dimirror copy --id ID [flags]

Copies one model or classifier from the source resource into target resources directly:
authorizeCopy on each target, copyTo on the source, then it polls every copy until it ends.
No queue and no table are involved, so it works while the functions are down; the copies
carry the same tags as the pipeline's, so dimirror later recognises them as up to date.

A target that already holds this version of the source is reported "up-to-date" and left
alone. A target holding another model under the id fails, unless --replace. A copy operation
that fails for a reason a new attempt may fix (an internal error, an expired authorization)
is retried with a new authorization, up to --attempts times.

On a terminal the progress of every target is shown live (state, percent, elapsed); otherwise
one line per change. --json prints only the result, as JSON.

Flags:
%s
Examples:
  dimirror copy --id invoice-v1
  dimirror copy --kind model --id invoice-v1 --to westus2,eastus
  dimirror copy --kind classifier --id router-v1 --to eastus --target-id router-v1-dr
  dimirror copy --id invoice-v1 --json --settings local.settings.json

Exit codes: 0 every target succeeded or was up to date, 1 a target failed (or the copy was
interrupted), 2 usage error, 4 invalid settings.

` + settingsHelp + "\n"

// copyRequest is a parsed copy invocation.
type copyRequest struct {
	kind     replication.Kind
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
	to := fs.String("to", "", "comma-separated target `names` (default: every configured target)")
	fs.StringVar(&r.targetID, "target-id", "", "the `id` in the targets (default: the source id)")
	fs.BoolVar(&r.replace, "replace", false, "delete a different model that holds the id in a target, then copy")
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
	case !replication.ValidID(r.id) && !isV21ID(r.id):
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

// isV21ID accepts v2.1 model ids, which are UUIDs.
func isV21ID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", c):
			return false
		}
	}
	return true
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

// Job states, as shown.
const (
	jobWaiting   = "waiting"
	jobChecking  = "checking"
	jobAuthorize = "authorizing"
	jobCopying   = "copying"
	jobVerifying = "verifying"
	jobRetrying  = "retrying"
	jobReplacing = "replacing"
	jobSucceeded = "succeeded"
	jobUpToDate  = "up-to-date"
	jobFailed    = "failed"
)

// copyJob is the copy into one target.
type copyJob struct {
	target   string
	client   *docintel.Client // the target
	from     *docintel.Client // the source client that copies into this target (degrade header)
	v21      bool             // the service picks the target id
	targetID string

	state    string
	percent  int
	attempt  int
	opURL    string
	nextAt   time.Time // when a retrying job starts its next attempt
	ended    time.Duration
	errCode  string
	errMsg   string
	pollErrs int // consecutive failed polls
}

func (j *copyJob) terminal() bool {
	return j.state == jobSucceeded || j.state == jobUpToDate || j.state == jobFailed
}

func (j *copyJob) ok() bool { return j.state == jobSucceeded || j.state == jobUpToDate }

// copier runs the copies round by round: every round takes each unfinished target one step
// further, in the order the targets were given, then waits. One goroutine and a fixed order
// keep the progress display (and its tests) deterministic; the service does the copying in
// parallel anyway.
type copier struct {
	kind       replication.Kind
	sourceID   string
	sourceName string
	source     *docintel.Client
	jobs       []*copyJob
	replace    bool
	attempts   int
	interval   time.Duration
	callTO     time.Duration // each call's deadline: the run's --timeout is far longer
	env        cliEnv
	view       copyView

	start time.Time
	src   *docintel.Model
}

const (
	pollInterval = time.Second
	maxPollErrs  = 10 // consecutive transient poll failures before a target is given up
)

func newCopier(cfg *config.Config, req copyRequest, env cliEnv) (*copier, error) {
	names := req.to
	if len(names) == 0 {
		names = targetNames(cfg.Targets)
	}
	creds := app.NewCredentials(nil)
	source, err := creds.DocIntel(cfg.Source.Endpoint, cfg.Source.Key, docintel.Options{CallTimeout: cfg.CallTimeout, APIVersion: cfg.Source.APIVersion})
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	c := &copier{kind: req.kind, sourceID: req.id, sourceName: endpointHost(cfg.Source.Endpoint), source: source,
		replace: req.replace, attempts: req.attempts, interval: pollInterval, callTO: cfg.CallTimeout, env: env}
	var degrade *docintel.Client
	for _, name := range names {
		t, ok := cfg.Target(name)
		if !ok {
			return nil, badUsage{fmt.Sprintf("--to: %q is not a configured target (targets: %s)", name, strings.Join(targetNames(cfg.Targets), ", "))}
		}
		client, err := creds.DocIntel(t.Endpoint, t.Key, docintel.Options{CallTimeout: cfg.CallTimeout, APIVersion: t.APIVersion, ResourceID: t.ResourceID, Region: t.Region})
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", name, err)
		}
		j := &copyJob{target: name, client: client, from: source, v21: t.APIVersion == docintel.V2_1, targetID: req.targetID, state: jobWaiting}
		if t.Degrade {
			if degrade == nil {
				if degrade, err = creds.DocIntel(cfg.Source.Endpoint, cfg.Source.Key, docintel.Options{CallTimeout: cfg.CallTimeout, APIVersion: cfg.Source.APIVersion, Degrade: true}); err != nil {
					return nil, fmt.Errorf("source: %w", err)
				}
			}
			j.from = degrade
		}
		c.jobs = append(c.jobs, j)
	}
	return c, nil
}

func endpointHost(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return endpoint
	}
	return u.Host
}

func (c *copier) dkind() docintel.Kind {
	if c.kind == replication.KindClassifier {
		return docintel.KindClassifier
	}
	return docintel.KindModel
}

func (c *copier) elapsed() time.Duration { return c.env.now().Sub(c.start) }

// call bounds one call to a resource by DIMIRROR_CALL_TIMEOUT (retries included).
func call[T any](c *copier, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, c.callTO)
	defer cancel()
	return f(cctx)
}

func callErr(c *copier, ctx context.Context, f func(context.Context) error) error {
	_, err := call(c, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

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
	src, err := call(c, ctx, func(ctx context.Context) (*docintel.Model, error) {
		return c.source.GetModel(ctx, c.dkind(), c.sourceID)
	})
	if err != nil {
		code, msg := describeErr(ctx, err)
		if docintel.IsModelNotFound(err) {
			code, msg = "SourceNotFound", fmt.Sprintf("the source has no %s %q", c.kind, c.sourceID)
		}
		for _, j := range c.jobs {
			j.fail(c.elapsed(), "SourceUnavailable", "the source could not be read")
		}
		res.Error = &resultError{Code: code, Message: msg}
		c.view.end(c, res.Error)
		return c.result(res)
	}
	c.src = src
	for {
		for _, j := range c.jobs {
			if ctx.Err() != nil {
				break
			}
			switch {
			case j.state == jobWaiting, j.state == jobRetrying && !c.env.now().Before(j.nextAt):
				c.begin(ctx, j)
			case j.state == jobCopying:
				c.poll(ctx, j)
			case j.state == jobVerifying:
				c.verify(ctx, j)
			}
		}
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
		done := true
		for _, j := range c.jobs {
			done = done && j.terminal()
		}
		if done {
			break
		}
		c.view.update(c)
		_ = c.env.sleep(ctx, c.interval) // an interrupted sleep ends the next round
	}
	c.view.end(c, nil)
	return c.result(res)
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

func (j *copyJob) fail(at time.Duration, code, msg string) {
	j.state, j.ended, j.errCode, j.errMsg = jobFailed, at, code, msg
}

func (j *copyJob) finish(at time.Duration, state string) {
	j.state, j.ended, j.percent, j.errCode, j.errMsg = state, at, 100, "", ""
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
	if errors.As(resources.Classify(err), &se) {
		return se.Code, se.Message
	}
	return "Unavailable", err.Error()
}

// transient reports a failure worth another try: the service's (429, 5xx, network), or one
// call running out of its own deadline while the run goes on.
func transient(ctx context.Context, err error) bool {
	return docintel.IsTransient(err) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)
}

// retryOrFail schedules another attempt when one is left and the failure allows it.
func (c *copier) retryOrFail(j *copyJob, retryable bool, code, msg string) {
	if retryable && j.attempt < c.attempts {
		j.state, j.errCode, j.errMsg = jobRetrying, code, msg
		j.nextAt = c.env.now().Add(time.Duration(1<<j.attempt) * time.Second)
		c.view.update(c)
		return
	}
	j.fail(c.elapsed(), code, msg)
	c.view.update(c)
}

func (c *copier) tags() map[string]string {
	if c.kind == replication.KindClassifier {
		return nil // classifiers keep no tags
	}
	return map[string]string{
		replication.TagSource:        fmt.Sprintf("%s/%s/%s", c.sourceName, c.kind, c.sourceID),
		replication.TagSourceCreated: c.src.Created.UTC().Format(time.RFC3339),
	}
}

// holdsSource reports whether a target model is a copy of this version of the source, by the
// same evidence the pipeline uses: dimirror's tag, else the preserved expiry, else creation time.
func (c *copier) holdsSource(m *docintel.Model) bool {
	if v, ok := m.Tags[replication.TagSourceCreated]; ok {
		return v == c.src.Created.UTC().Format(time.RFC3339)
	}
	if !c.src.Expires.IsZero() && !m.Expires.IsZero() {
		return m.Expires.Equal(c.src.Expires)
	}
	return m.Created.Equal(c.src.Created)
}

// begin runs one attempt's synchronous part: check the target, authorize, copyTo.
func (c *copier) begin(ctx context.Context, j *copyJob) {
	j.attempt++
	j.opURL, j.percent, j.pollErrs = "", 0, 0
	k := c.dkind()
	if !j.v21 { // v2.1 targets pick the id themselves: nothing to check
		j.state = jobChecking
		c.view.update(c)
		m, err := call(c, ctx, func(ctx context.Context) (*docintel.Model, error) { return j.client.GetModel(ctx, k, j.targetID) })
		switch {
		case err == nil && c.holdsSource(m):
			j.finish(c.elapsed(), jobUpToDate)
			c.view.update(c)
			return
		case err == nil && !c.replace:
			j.fail(c.elapsed(), "TargetExists", fmt.Sprintf("%s already holds another %s %q; pass --replace to overwrite it, or --target-id to copy under another id", j.target, c.kind, j.targetID))
			c.view.update(c)
			return
		case err == nil:
			j.state = jobReplacing
			c.view.update(c)
			if err := callErr(c, ctx, func(ctx context.Context) error { return j.client.DeleteModel(ctx, k, j.targetID) }); err != nil {
				code, msg := describeErr(ctx, err)
				c.retryOrFail(j, transient(ctx, err), code, "deleting the old model: "+msg)
				return
			}
		case !docintel.IsModelNotFound(err):
			code, msg := describeErr(ctx, err)
			c.retryOrFail(j, transient(ctx, err), code, msg)
			return
		}
	}
	j.state = jobAuthorize
	c.view.update(c)
	areq := docintel.AuthorizeRequest{TargetID: j.targetID, Description: c.src.Description, Tags: c.tags()}
	authorize := func(ctx context.Context) (*docintel.Authorization, error) {
		return j.client.AuthorizeCopy(ctx, k, areq)
	}
	auth, err := call(c, ctx, authorize)
	if docintel.IsModelExists(err) {
		// The id is reserved by an authorization no copy used (the model itself was absent a
		// moment ago): deleting frees the reservation.
		derr := callErr(c, ctx, func(ctx context.Context) error { return j.client.DeleteModel(ctx, k, j.targetID) })
		if derr == nil || docintel.IsModelNotFound(derr) {
			auth, err = call(c, ctx, authorize)
		}
	}
	if err != nil {
		code, msg := describeErr(ctx, err)
		c.retryOrFail(j, transient(ctx, err), code, msg)
		return
	}
	j.targetID = auth.TargetID
	opURL, err := call(c, ctx, func(ctx context.Context) (string, error) { return j.from.CopyTo(ctx, k, c.sourceID, auth) })
	if err != nil {
		code, msg := describeErr(ctx, err)
		c.retryOrFail(j, transient(ctx, err) || docintel.IsAuthorizationInvalid(err), code, msg)
		return
	}
	j.opURL, j.state, j.errCode, j.errMsg = opURL, jobCopying, "", ""
	c.view.update(c)
}

// poll reads the copy operation once.
func (c *copier) poll(ctx context.Context, j *copyJob) {
	op, err := call(c, ctx, func(ctx context.Context) (*docintel.Operation, error) { return j.from.GetOperation(ctx, j.opURL) })
	if err != nil {
		code, msg := describeErr(ctx, err)
		if transient(ctx, err) && j.pollErrs < maxPollErrs {
			j.pollErrs++
			return // the operation goes on; read it again next round
		}
		j.fail(c.elapsed(), code, "reading the copy operation: "+msg)
		c.view.update(c)
		return
	}
	j.pollErrs = 0
	switch {
	case op.Status.Succeeded():
		j.state, j.percent = jobVerifying, 100
		c.view.update(c)
		c.verify(ctx, j)
	case op.Status == docintel.StatusFailed, op.Status == docintel.StatusCanceled, op.Status == docintel.StatusSkipped:
		code, msg := "CopyFailed", "the copy operation ended "+string(op.Status)
		retryable := op.Status != docintel.StatusSkipped
		if op.Error != nil {
			se := resourcesOpError(op.Error)
			code, msg = se.Code, se.Message
			retryable = se.Class == replication.ClassRetryable || se.Class == replication.ClassAuthorization
		}
		c.retryOrFail(j, retryable, code, msg)
	default:
		if op.PercentCompleted != j.percent {
			j.percent = op.PercentCompleted
			c.view.update(c)
		}
	}
}

// resourcesOpError classifies a failed operation's error as the pipeline does.
func resourcesOpError(e *docintel.Error) *replication.ServiceError {
	se := &replication.ServiceError{Code: e.Code, Message: e.Message, Class: replication.ClassRetryable}
	if e.InnerCode != "" {
		se.Code = e.InnerCode
		if e.InnerMessage != "" {
			se.Message = e.InnerMessage
		}
	}
	switch {
	case docintel.IsAuthorizationInvalid(e):
		se.Class = replication.ClassAuthorization
	case docintel.IsDowngradeRefused(e), docintel.IsForbidden(e), docintel.IsQuotaExhausted(e):
		se.Class = replication.ClassPermanent
	}
	return se
}

// verify checks that the target now holds the copy.
func (c *copier) verify(ctx context.Context, j *copyJob) {
	m, err := call(c, ctx, func(ctx context.Context) (*docintel.Model, error) {
		return j.client.GetModel(ctx, c.dkind(), j.targetID)
	})
	switch {
	case err == nil && (m.Status == "" || m.Status == docintel.StatusReady):
		j.finish(c.elapsed(), jobSucceeded)
	case err == nil || transient(ctx, err):
		return // not ready yet (v2.1 creates it a little later), or a hiccup: next round
	default:
		code, msg := describeErr(ctx, err)
		j.fail(c.elapsed(), code, "the copy succeeded but the target model cannot be read: "+msg)
	}
	c.view.update(c)
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
	case jobCopying, jobVerifying, jobSucceeded, jobUpToDate:
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
			line = fmt.Sprintf("attempt %d failed (%s: %s); retrying", j.attempt, j.errCode, j.errMsg)
		case jobFailed:
			line = fmt.Sprintf("failed: %s: %s", j.errCode, j.errMsg)
		case jobSucceeded:
			line = "succeeded: the target holds " + j.targetID
		case jobUpToDate:
			line = "up-to-date: the target already holds this version"
		case jobReplacing:
			line = fmt.Sprintf("replacing the other %s %q it holds (--replace)", c.kind, j.targetID)
		default:
			continue // waiting, checking, authorizing, verifying: too brief to log
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
		case j.state == jobRetrying || j.state == jobFailed:
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
