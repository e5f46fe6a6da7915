package replication

import (
	"context"
	"errors"
	"net/url"
	"path"
	"time"
)

// CopyPoller follows one copy operation to its end, in the shape of azcore's runtime.Poller:
// Poll reads the operation once, Done reports whether it ended, Result reads the target and says
// what the copy left there (cached once known). The operation URL is the resume token: the
// replica row keeps it, and the poll timer, a check message and `dimirror copy` all resume the
// same operation with NewCopyPoller. Throttling is the caller's to honour: Poll returns the
// service's error, whose RetryAfter says how long to wait.
type CopyPoller struct {
	source, target   Resource
	kind             Kind
	targetID         string
	created, expires time.Time
	opURL            string
	op               Operation
	done, recordGone bool
	result           *CopyResult
}

// CopyResult is what an ended copy left.
type CopyResult struct {
	// Status is the operation's end: succeeded, failed, canceled; "" when its record was gone
	// (the service keeps operations about a day).
	Status OpStatus
	// Err is the operation's error when it did not succeed.
	Err *ServiceError
	// Verified: the target holds a copy of the source version.
	Verified bool
}

// NewCopyPoller resumes the copy operation at resumeToken (its URL on source) that copies the
// source version (created, expires) into target under targetID.
func NewCopyPoller(source, target Resource, kind Kind, targetID string, created, expires time.Time, resumeToken string) (*CopyPoller, error) {
	if source == nil || target == nil {
		return nil, errors.New("copy poller: the source and the target are required")
	}
	if resumeToken == "" {
		return nil, errors.New("copy poller: no operation to follow (empty resume token)")
	}
	return &CopyPoller{source: source, target: target, kind: kind, targetID: targetID, created: created, expires: expires, opURL: resumeToken}, nil
}

// ResumeToken is the operation URL.
func (p *CopyPoller) ResumeToken() string { return p.opURL }

// Poll reads the operation once. A record that is gone ends the poll: the target decides.
func (p *CopyPoller) Poll(ctx context.Context) (Operation, error) {
	if p.done {
		return p.op, nil
	}
	op, err := p.source.GetOperation(ctx, p.opURL)
	if err != nil {
		if classOf(err) == ClassNotFound {
			p.done, p.recordGone = true, true
			return p.op, nil
		}
		return p.op, err
	}
	p.op = op
	switch op.Status {
	case OpNotStarted, OpRunning:
	default:
		p.done = true
	}
	return op, nil
}

// Done reports whether the operation ended (or its record is gone).
func (p *CopyPoller) Done() bool { return p.done }

// Result reads the target model once the operation ended and reports the outcome; an error is a
// failure to read the target (not a failed copy), or Result called before Done.
func (p *CopyPoller) Result(ctx context.Context) (CopyResult, error) {
	if p.result != nil {
		return *p.result, nil
	}
	if !p.done {
		return CopyResult{}, errors.New("copy poller: the operation has not ended")
	}
	res := CopyResult{}
	if !p.recordGone {
		res.Status = p.op.Status
		if res.Status != OpSucceeded {
			res.Err = p.op.Err
			if res.Err == nil {
				res.Err = &ServiceError{Class: ClassRetryable, Code: "Copy" + string(res.Status), Message: "the copy operation ended " + string(res.Status)}
			}
		}
	}
	m, err := p.target.GetModel(ctx, p.kind, p.targetID)
	switch {
	case err == nil:
		res.Verified = HoldsVersion(m, p.created, p.expires)
	case classOf(err) != ClassNotFound:
		return CopyResult{}, err
	}
	p.result = &res
	return res, nil
}

// OperationID is the last path segment of an operation URL, for logs.
func OperationID(opURL string) string {
	u, err := url.Parse(opURL)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}
