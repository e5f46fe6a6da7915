package devbus

import (
	"errors"
	"fmt"

	"github.com/Azure/go-amqp"

	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
)

// Management status codes (HTTP's, as Service Bus uses them).
const (
	statusOK             = 200
	statusAccepted       = 202
	statusNoContent      = 204
	statusBadRequest     = 400
	statusNotFound       = 404
	statusGone           = 410 // lock lost
	statusInternal       = 500
	statusNotImplemented = 501
)

// mgmtReply is the answer to a $cbs or management request.
type mgmtReply struct {
	status      int
	description string
	value       any
}

func replyError(status int, format string, args ...any) mgmtReply {
	return mgmtReply{status: status, description: fmt.Sprintf(format, args...)}
}

// request is a $cbs or management request as devbus reads it.
type request struct {
	messageID any // echoed as the reply's correlation-id
	replyTo   string
	props     amqpframe.Map // application properties
	body      amqpframe.Map // the amqp-value map; nil when the body is something else
}

// parseRequest decodes a request with devbus's own codec, which reads every AMQP type:
// the .NET client may put chars and decimals among the properties to modify, which
// go-amqp cannot decode, and a request devbus cannot read goes unanswered (the SDKs send
// requests pre-settled, so they never see the rejection, only their own timeout).
func parseRequest(data []byte) (request, error) {
	var r request
	sections, err := amqpframe.SplitMessage(data)
	if err != nil {
		return r, err
	}
	for _, s := range sections {
		switch s.Code {
		case amqpframe.SectionProperties:
			l := s.Value.([]any)
			if len(l) > 0 {
				r.messageID = l[0]
			}
			if len(l) > 4 {
				r.replyTo, _ = l[4].(string)
			}
		case amqpframe.SectionApplicationProperties:
			r.props, _ = s.Value.(amqpframe.Map)
		case amqpframe.SectionValue:
			v, _, err := amqpframe.DecodeValue(s.Raw)
			if err != nil {
				return r, err
			}
			r.body, _ = v.(amqpframe.Described).Value.(amqpframe.Map)
		}
	}
	return r, nil
}

// field returns the value under key, which clients write as a string (.NET, Go,
// JavaScript) or, by the AMQP conventions for annotations, as a symbol.
func field(m amqpframe.Map, key string) any {
	if v, ok := m.Get(key); ok {
		return v
	}
	v, _ := m.Get(amqpframe.Symbol(key))
	return v
}

// stringField is a string or symbol value, "" when absent or of another type.
func stringField(m amqpframe.Map, key string) string {
	return keyString(field(m, key))
}

// handleRequest answers a request sent to $cbs or to a management node. The reply goes to
// the link whose target is the request's reply-to, once any journal write it depends on
// is durable.
func (c *conn) handleRequest(l *link, id uint32, settled bool, data []byte) {
	req, err := parseRequest(data)
	if err != nil {
		c.settleIncoming(l, id, settled, &amqpframe.Rejected{Error: &amqpframe.Error{
			Condition: amqpframe.ErrDecode, Description: "devbus: request is not an AMQP message: " + err.Error()}})
		return
	}
	if req.replyTo == "" {
		c.settleIncoming(l, id, settled, &amqpframe.Rejected{Error: &amqpframe.Error{
			Condition: amqpframe.ErrInvalidField, Description: "devbus: request without a reply-to address"}})
		return
	}
	c.settleIncoming(l, id, settled, accepted)
	replyTo, msgID := req.replyTo, req.messageID
	if u, ok := msgID.(amqpframe.UUID); ok {
		msgID = amqp.UUID(u) // the reply is encoded by go-amqp
	}

	var rep mgmtReply
	var pt syncPoint
	statusKey, descKey := "statusCode", "statusDescription"
	if l.kind == linkCBS {
		statusKey, descKey = "status-code", "status-description"
		rep = cbs(req)
	} else {
		rep, pt = c.management(l, req)
	}
	c.afterSync = append(c.afterSync, afterSync{pt: pt, fn: func(err error) {
		if err != nil { // only management requests write to a journal, so l.q is set
			c.log.Error("devbus: journal sync failed", "queue", l.q.name, "err", err)
			rep = replyError(statusInternal, "devbus could not store the change")
		}
		resp := &amqp.Message{
			Properties: &amqp.MessageProperties{CorrelationID: msgID},
			ApplicationProperties: map[string]any{
				statusKey: int32(rep.status),
				descKey:   rep.description,
			},
			Value: rep.value,
		}
		// Service Bus names the error of a failed management request too; the .NET
		// client picks the exception it throws by it (lock lost, message not found, ...).
		if cond := errorCondition(rep.status); cond != "" && l.kind == linkMgmt {
			resp.ApplicationProperties["errorCondition"] = amqp.Symbol(cond)
		}
		payload, merr := resp.MarshalBinary()
		if merr != nil {
			c.log.Error("devbus: encoding a management reply", "err", merr)
			return
		}
		c.queueReply(replyTo, payload)
	}})
}

// queueReply hands a reply to its reply link, or keeps it until the link attaches (a
// client may send its request before its reply link is ready).
func (c *conn) queueReply(replyTo string, payload []byte) {
	if l := c.replyLinks[replyTo]; l != nil && !l.detached {
		l.replies = append(l.replies, payload)
		c.needPump = true
		return
	}
	pending, ok := c.pendingReplies[replyTo]
	if (!ok && len(c.pendingReplies) >= pendingReplyMax) || len(pending) >= pendingReplyMax {
		c.log.Warn("devbus: dropping a reply: too many replies waiting for their link", "address", replyTo)
		return
	}
	c.pendingReplies[replyTo] = append(c.pendingReplies[replyTo], payload)
}

// cbs answers claims-based-security requests. Tokens are accepted without looking at
// them; devbus has no authorization.
func cbs(req request) mgmtReply {
	op := stringField(req.props, "operation")
	if op != "put-token" {
		return replyError(statusNotImplemented, "devbus: $cbs supports put-token only, not %q", op)
	}
	return mgmtReply{status: statusAccepted, description: "Accepted"}
}

// management answers the Service Bus management operations.
func (c *conn) management(l *link, req request) (mgmtReply, syncPoint) {
	op := stringField(req.props, "operation")
	body := req.body
	if op == "" {
		return replyError(statusBadRequest, "devbus: management request without an operation"), syncPoint{}
	}
	q, dead := l.q, l.dead
	switch op {
	case "com.microsoft:peek-message":
		from, err1 := int64Field(body, "from-sequence-number")
		count, err2 := int64Field(body, "message-count")
		if err := errors.Join(err1, err2); err != nil {
			return replyError(statusBadRequest, "devbus: %v", err), syncPoint{}
		}
		if count <= 0 {
			return replyError(statusBadRequest, "devbus: message-count must be positive"), syncPoint{}
		}
		msgs := q.peek(dead, from, int(min(count, 5000)))
		if len(msgs) == 0 {
			return mgmtReply{status: statusNoContent, description: "No messages"}, syncPoint{}
		}
		list := make([]any, len(msgs))
		for i, m := range msgs {
			list[i] = map[string]any{"message": m}
		}
		return ok(map[string]any{"messages": list}), syncPoint{}

	case "com.microsoft:schedule-message":
		if dead {
			return replyError(statusBadRequest, "devbus: messages cannot be scheduled on a dead-letter queue"), syncPoint{}
		}
		entries, _ := field(body, "messages").([]any)
		if len(entries) == 0 {
			return replyError(statusBadRequest, "devbus: schedule-message needs a non-empty messages list"), syncPoint{}
		}
		msgs := make([]*message, len(entries))
		for i, e := range entries {
			entry, _ := e.(amqpframe.Map)
			raw, _ := field(entry, "message").([]byte)
			if raw == nil {
				return replyError(statusBadRequest, "devbus: messages[%d] has no binary message", i), syncPoint{}
			}
			m, err := parseMessage(raw)
			if err != nil {
				return replyError(statusBadRequest, "devbus: messages[%d]: %v", i, err), syncPoint{}
			}
			msgs[i] = m
		}
		seqs, pt, err := q.schedule(msgs)
		if err != nil {
			return replyError(statusInternal, "devbus: %v", err), syncPoint{}
		}
		return ok(map[string]any{"sequence-numbers": seqs}), pt

	case "com.microsoft:cancel-scheduled-message":
		seqs, err := int64sField(body, "sequence-numbers")
		if err != nil {
			return replyError(statusBadRequest, "devbus: %v", err), syncPoint{}
		}
		if dead {
			return replyError(statusNotFound, "devbus: a dead-letter queue has no scheduled messages"), syncPoint{}
		}
		pt, err := q.cancelScheduled(seqs)
		if err != nil {
			return statusFor(err), syncPoint{}
		}
		return ok(map[string]any{}), pt

	case "com.microsoft:renew-lock":
		tokens, err := uuidsField(body, "lock-tokens")
		if err != nil {
			return replyError(statusBadRequest, "devbus: %v", err), syncPoint{}
		}
		until, err := q.renew(dead, tokens)
		if err != nil {
			return statusFor(err), syncPoint{}
		}
		return ok(map[string]any{"expirations": until}), syncPoint{}

	case "com.microsoft:update-disposition":
		return c.updateDisposition(q, dead, body)

	case "com.microsoft:receive-by-sequence-number":
		seqs, err := int64sField(body, "sequence-numbers")
		if err != nil {
			return replyError(statusBadRequest, "devbus: %v", err), syncPoint{}
		}
		mode, _ := int64Field(body, "receiver-settle-mode")
		ds, err := q.receiveDeferred(dead, seqs, mode == 1)
		if err != nil {
			return statusFor(err), syncPoint{}
		}
		list := make([]any, len(ds))
		for i, d := range ds {
			entry := map[string]any{"message": d.payload}
			if d.token != (amqpframe.UUID{}) {
				entry["lock-token"] = amqp.UUID(d.token)
			}
			list[i] = entry
		}
		return ok(map[string]any{"messages": list}), syncPoint{}
	}
	return replyError(statusNotImplemented, "devbus does not implement the management operation %q", op), syncPoint{}
}

// updateDisposition settles messages by lock token, which the SDKs do when the receiving
// link is gone or the message was received by sequence number.
func (c *conn) updateDisposition(q *queue, dead bool, body amqpframe.Map) (mgmtReply, syncPoint) {
	tokens, err := uuidsField(body, "lock-tokens")
	if err != nil {
		return replyError(statusBadRequest, "devbus: %v", err), syncPoint{}
	}
	status := stringField(body, "disposition-status")
	var o outcome
	switch status {
	case "completed":
		o.kind = outcomeComplete
	case "abandoned":
		o.kind = outcomeAbandon
	case "suspended":
		o.kind = outcomeDeadLetter
		o.reason = stringField(body, "deadletter-reason")
		o.description = stringField(body, "deadletter-description")
	case "defered", "deferred": // the Go SDK spells it "defered"
		o.kind = outcomeDefer
	default:
		return replyError(statusBadRequest, "devbus: unknown disposition-status %q", status), syncPoint{}
	}
	if props, ok := field(body, "properties-to-modify").(amqpframe.Map); ok {
		for _, e := range props {
			if k := keyString(e.Key); k != "" {
				if o.props == nil {
					o.props = map[string]any{}
				}
				o.props[k] = e.Value
			}
		}
	}
	for _, t := range tokens {
		if err := q.settle(dead, t, o); err != nil {
			return statusFor(err), syncPoint{}
		}
	}
	return ok(map[string]any{}), syncPoint{}
}

// errorCondition is the AMQP error condition Service Bus gives with a management status
// code; "" for success.
func errorCondition(status int) amqpframe.Symbol {
	switch {
	case status < 300:
		return ""
	case status == statusGone:
		return condLockLost
	case status == statusNotFound:
		return condMessageNotFound
	case status == statusBadRequest:
		return condArgumentError
	case status == statusNotImplemented:
		return amqpframe.ErrNotImplemented
	}
	return amqpframe.ErrInternal
}

func ok(v any) mgmtReply { return mgmtReply{status: statusOK, description: "OK", value: v} }

func statusFor(err error) mgmtReply {
	switch {
	case errors.Is(err, errLockLost):
		return replyError(statusGone, "devbus: MessageLockLost: %v", err)
	case errors.Is(err, errNotFound):
		return replyError(statusNotFound, "devbus: MessageNotFound: %v", err)
	}
	return replyError(statusInternal, "devbus: %v", err)
}

func int64Field(body amqpframe.Map, key string) (int64, error) {
	v := field(body, key)
	if v == nil {
		return 0, fmt.Errorf("%s is missing", key)
	}
	n, ok := toInt64(v)
	if !ok {
		return 0, fmt.Errorf("%s is a %T, not an integer", key, v)
	}
	return n, nil
}

// toInt64 reads any AMQP integer that fits an int64.
func toInt64(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint64:
		if v <= 1<<63-1 {
			return int64(v), true
		}
	}
	return 0, false
}

// elements returns the elements of an AMQP array or list.
func elements(v any) ([]any, bool) {
	switch v := v.(type) {
	case amqpframe.Array:
		return v.Values, true
	case []any:
		return v, true
	}
	return nil, false
}

func int64sField(body amqpframe.Map, key string) ([]int64, error) {
	v := field(body, key)
	if v == nil {
		return nil, fmt.Errorf("%s is missing", key)
	}
	elems, ok := elements(v)
	if !ok {
		return nil, fmt.Errorf("%s is a %T, not an array of longs", key, v)
	}
	if len(elems) == 0 {
		return nil, fmt.Errorf("%s is empty", key)
	}
	out := make([]int64, len(elems))
	for i, e := range elems {
		if out[i], ok = toInt64(e); !ok {
			return nil, fmt.Errorf("%s holds a %T, not a long", key, e)
		}
	}
	return out, nil
}

func uuidsField(body amqpframe.Map, key string) ([]amqpframe.UUID, error) {
	v := field(body, key)
	if v == nil {
		return nil, fmt.Errorf("%s is missing", key)
	}
	elems, ok := elements(v)
	if !ok {
		return nil, fmt.Errorf("%s is a %T, not an array of uuids", key, v)
	}
	if len(elems) == 0 {
		return nil, fmt.Errorf("%s is empty", key)
	}
	out := make([]amqpframe.UUID, len(elems))
	for i, e := range elems {
		if out[i], ok = e.(amqpframe.UUID); !ok {
			return nil, fmt.Errorf("%s holds a %T, not a uuid", key, e)
		}
	}
	return out, nil
}
