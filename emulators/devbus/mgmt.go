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

// handleRequest answers a request sent to $cbs or to a management node. The reply goes to
// the link whose target is the request's reply-to, once any journal write it depends on
// is durable.
func (c *conn) handleRequest(l *link, id uint32, settled bool, data []byte) {
	var req amqp.Message
	if err := req.UnmarshalBinary(data); err != nil {
		c.settleIncoming(l, id, settled, &amqpframe.Rejected{Error: &amqpframe.Error{
			Condition: amqpframe.ErrDecode, Description: "devbus: request is not an AMQP message: " + err.Error()}})
		return
	}
	if req.Properties == nil || req.Properties.ReplyTo == nil || *req.Properties.ReplyTo == "" {
		c.settleIncoming(l, id, settled, &amqpframe.Rejected{Error: &amqpframe.Error{
			Condition: amqpframe.ErrInvalidField, Description: "devbus: request without a reply-to address"}})
		return
	}
	c.settleIncoming(l, id, settled, accepted)
	replyTo, msgID := *req.Properties.ReplyTo, req.Properties.MessageID

	var rep mgmtReply
	var pt syncPoint
	statusKey, descKey := "statusCode", "statusDescription"
	if l.kind == linkCBS {
		statusKey, descKey = "status-code", "status-description"
		rep = cbs(&req)
	} else {
		rep, pt = c.management(l, &req)
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
func cbs(req *amqp.Message) mgmtReply {
	op, _ := req.ApplicationProperties["operation"].(string)
	if op != "put-token" {
		return replyError(statusNotImplemented, "devbus: $cbs supports put-token only, not %q", op)
	}
	return mgmtReply{status: statusAccepted, description: "Accepted"}
}

// management answers the Service Bus management operations.
func (c *conn) management(l *link, req *amqp.Message) (mgmtReply, syncPoint) {
	op, _ := req.ApplicationProperties["operation"].(string)
	body, _ := req.Value.(map[string]any)
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
		entries, _ := body["messages"].([]any)
		if len(entries) == 0 {
			return replyError(statusBadRequest, "devbus: schedule-message needs a non-empty messages list"), syncPoint{}
		}
		msgs := make([]*message, len(entries))
		for i, e := range entries {
			entry, _ := e.(map[string]any)
			raw, _ := entry["message"].([]byte)
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
func (c *conn) updateDisposition(q *queue, dead bool, body map[string]any) (mgmtReply, syncPoint) {
	tokens, err := uuidsField(body, "lock-tokens")
	if err != nil {
		return replyError(statusBadRequest, "devbus: %v", err), syncPoint{}
	}
	status, _ := body["disposition-status"].(string)
	var o outcome
	switch status {
	case "completed":
		o.kind = outcomeComplete
	case "abandoned":
		o.kind = outcomeAbandon
	case "suspended":
		o.kind = outcomeDeadLetter
		o.reason, _ = body["deadletter-reason"].(string)
		o.description, _ = body["deadletter-description"].(string)
	case "defered", "deferred": // the Go SDK spells it "defered"
		o.kind = outcomeDefer
	default:
		return replyError(statusBadRequest, "devbus: unknown disposition-status %q", status), syncPoint{}
	}
	if props, ok := body["properties-to-modify"].(map[string]any); ok && len(props) > 0 {
		o.props = props
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

func int64Field(body map[string]any, key string) (int64, error) {
	switch v := body[key].(type) {
	case int64:
		return v, nil
	case int32:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case int8:
		return int64(v), nil
	case uint32:
		return int64(v), nil
	case uint16:
		return int64(v), nil
	case uint8:
		return int64(v), nil
	case uint64:
		if v <= 1<<63-1 {
			return int64(v), nil
		}
	case nil:
		return 0, fmt.Errorf("%s is missing", key)
	}
	return 0, fmt.Errorf("%s is a %T, not an integer", key, body[key])
}

func int64sField(body map[string]any, key string) ([]int64, error) {
	switch v := body[key].(type) {
	case []int64:
		if len(v) == 0 {
			return nil, fmt.Errorf("%s is empty", key)
		}
		return v, nil
	case nil:
		return nil, fmt.Errorf("%s is missing", key)
	}
	return nil, fmt.Errorf("%s is a %T, not an array of longs", key, body[key])
}

func uuidsField(body map[string]any, key string) ([]amqpframe.UUID, error) {
	var out []amqpframe.UUID
	switch v := body[key].(type) {
	case []amqp.UUID:
		for _, u := range v {
			out = append(out, amqpframe.UUID(u))
		}
	case []any:
		for _, e := range v {
			u, ok := e.(amqp.UUID)
			if !ok {
				return nil, fmt.Errorf("%s holds a %T, not a uuid", key, e)
			}
			out = append(out, amqpframe.UUID(u))
		}
	case nil:
		return nil, fmt.Errorf("%s is missing", key)
	default:
		return nil, fmt.Errorf("%s is a %T, not an array of uuids", key, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is empty", key)
	}
	return out, nil
}
