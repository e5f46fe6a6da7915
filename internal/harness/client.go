package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dimirror/dimirror/handlers"
)

// Client is the training pipeline's side of the webhook: POST /api/replications with the API key.
type Client struct {
	// Bases lists the instances' base URLs to try, in order; a request goes to the first that
	// answers.
	Bases  func() []string
	APIKey string
	HTTP   *http.Client
}

// NewClient is a Client with a per-request timeout.
func NewClient(apiKey string, bases func() []string) *Client {
	return &Client{Bases: bases, APIKey: apiKey, HTTP: &http.Client{Timeout: 2 * time.Minute}}
}

// Accepted is a webhook answer and when it arrived.
type Accepted struct {
	Status int
	Answer handlers.ReplicationAnswer
	Sent   time.Time
	At     time.Time // when the answer arrived
}

// Replicate asks for one source in every target. Like a well-behaved caller it tries another
// instance (or the same one again) after a connection failure or a 503, until ctx ends; the
// request is idempotent, so repeating it is safe. Any other answer than 200/202 is an error.
func (c *Client) Replicate(ctx context.Context, kind, sourceID string) (Accepted, error) {
	body, err := json.Marshal(map[string]string{"kind": kind, "sourceId": sourceID})
	if err != nil {
		return Accepted{}, err
	}
	wait := 50 * time.Millisecond
	var last error
	for {
		for _, base := range c.Bases() {
			acc, err := c.post(ctx, base, body)
			if err == nil {
				return acc, nil
			}
			var perm *permanentError
			if errors.As(err, &perm) {
				return acc, err
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return Accepted{}, fmt.Errorf("replicate %s %s: %w (last: %v)", kind, sourceID, ctx.Err(), last)
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

func (c *Client) post(ctx context.Context, base string, body []byte) (Accepted, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/replications", bytes.NewReader(body))
	if err != nil {
		return Accepted{}, &permanentError{err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-functions-key", c.APIKey)
	acc := Accepted{Sent: time.Now()}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return acc, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	acc.At, acc.Status = time.Now(), resp.StatusCode
	if err != nil {
		return acc, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted:
		if err := json.Unmarshal(b, &acc.Answer); err != nil {
			return acc, &permanentError{fmt.Sprintf("answer %d is not a replication answer: %v", resp.StatusCode, err)}
		}
		return acc, nil
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return acc, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return acc, &permanentError{fmt.Sprintf("HTTP %d: %s", resp.StatusCode, b)}
}
