package docintel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	secretKey    = "KEY-4f1c9a7e8b2d6c5a-secret"
	secretToken  = "ACCESS-TOKEN-9d8c7b6a5f4e-secret"
	secretBearer = "BEARER-5e4d3c2b1a09-secret"
)

var allSecrets = []string{secretKey, secretToken, secretBearer}

// authJSON is a v3/v4 copy authorization holding secretToken.
const authJSON = `{"targetResourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/t","targetResourceRegion":"westus2","targetModelId":"target1","targetModelLocation":"https://t.example/documentintelligence/documentModels/target1","accessToken":"` + secretToken + `","expirationDateTime":"2030-01-01T00:00:00Z"}`

func v3Auth() *Authorization {
	return &Authorization{Kind: KindModel, APIVersion: V2024_11_30, TargetID: "target1", Body: json.RawMessage(authJSON)}
}

func jsonAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("apim-request-id", "req-secret")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

type secretCase struct {
	name    string
	version APIVersion
	bearer  bool
	handler http.HandlerFunc
	// run makes the call and returns everything it returned besides the error.
	run func(ctx context.Context, c *Client, url string) ([]any, error)
	// wantRedacted: the service echoed a secret, so the error must show the redaction marker.
	wantRedacted bool
	wantErr      func(error) bool
	extra        func(t *testing.T, err error)
}

func secretCases() []secretCase {
	info := func(ctx context.Context, c *Client, _ string) ([]any, error) {
		r, err := c.Info(ctx)
		return []any{r}, err
	}
	authorize := func(ctx context.Context, c *Client, _ string) ([]any, error) {
		a, err := c.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{TargetID: "target1"})
		return []any{a}, err
	}
	copyTo := func(auth *Authorization) func(ctx context.Context, c *Client, _ string) ([]any, error) {
		return func(ctx context.Context, c *Client, _ string) ([]any, error) {
			loc, err := c.CopyTo(ctx, KindModel, sourceFor(c), auth)
			return []any{loc, auth}, err
		}
	}
	getOp := func(ctx context.Context, c *Client, url string) ([]any, error) {
		op, err := c.GetOperation(ctx, url+"/documentintelligence/operations/op1?api-version=2024-11-30")
		return []any{op}, err
	}
	return []secretCase{
		{name: "401 echoing the key", handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 401, `{"error":{"code":"401","message":"Access denied for key `+r.Header.Get(keyHeader)+`."}}`)
		}, run: info, wantRedacted: true, wantErr: IsUnauthorized},
		{name: "plain-text 500 echoing the key", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			fmt.Fprintf(w, "upstream said: bad key %s\n", r.Header.Get(keyHeader))
		}, run: info, wantRedacted: true, wantErr: IsTransient},
		{name: "key echoed at the end of a long message (no prefix survives the cut)", handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 400, `{"error":{"code":"InvalidRequest","message":"`+strings.Repeat("x", maxMessageLen-8)+r.Header.Get(keyHeader)+`"}}`)
		}, run: info, wantErr: IsBadRequest, extra: func(t *testing.T, err error) {
			if strings.Contains(err.Error(), secretKey[:8]) {
				t.Errorf("a prefix of the key survived truncation: %v", err)
			}
		}},
		{name: "authorizeCopy 200 with a body that is not JSON", handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 200, `accessToken=`+secretToken)
		}, run: authorize, wantErr: func(err error) bool { return err != nil }},
		{name: "authorizeCopy 200 lacking fields", handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 200, `{"accessToken":"`+secretToken+`"}`)
		}, run: authorize, wantErr: func(err error) bool { return err != nil }},
		{name: "authorizeCopy 500 plain text holding a token", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			fmt.Fprint(w, authJSON)
		}, run: authorize, wantErr: IsTransient},
		{name: "authorizeCopy success: the authorization printed every way", handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 200, authJSON)
		}, run: authorize},
		{name: "copyTo expired, service echoing the token", handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 400, `{"error":{"code":"InvalidRequest","message":"Invalid request.","innererror":{"code":"AuthorizationExpired","message":"The copy authorization `+secretToken+` has expired."}}}`)
		}, run: copyTo(v3Auth()), wantRedacted: true, wantErr: IsAuthorizationInvalid},
		{name: "copyTo plain-text 502 echoing the token", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			fmt.Fprint(w, "bad gateway for token "+secretToken)
		}, run: copyTo(v3Auth()), wantRedacted: true, wantErr: IsTransient},
		{name: "copyTo with a classifier authorization", run: func(ctx context.Context, c *Client, _ string) ([]any, error) {
			a := v3Auth()
			a.Kind = KindClassifier
			loc, err := c.CopyTo(ctx, KindModel, "m1", a)
			return []any{loc, a}, err
		}, wantErr: func(err error) bool { return errors.Is(err, ErrInvalidArgument) }},
		{name: "copyTo with a malformed body", run: copyTo(&Authorization{Kind: KindModel, Body: json.RawMessage(`{"accessToken":"` + secretToken + `",`)}),
			wantErr: func(err error) bool { return errors.Is(err, ErrInvalidArgument) }},
		{name: "v2.1 copy 1002 echoing the token", version: V2_1, handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 400, `{"error":{"code":"1002","message":"Copy request is invalid. Authorization `+secretToken+` has expired."}}`)
		}, run: copyTo(&Authorization{Kind: KindModel, APIVersion: V2_1, Body: json.RawMessage(`{"targetResourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/t","targetResourceRegion":"westus2","copyAuthorization":{"modelId":"` + v21ModelID + `","accessToken":"` + secretToken + `","expirationDateTimeTicks":1}}`)}),
			wantRedacted: true, wantErr: IsAuthorizationInvalid},
		{name: "failed operation whose error echoes the key", handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 200, `{"operationId":"op1","kind":"documentModelCopyTo","status":"failed","createdDateTime":"2030-01-01T00:00:00Z","lastUpdatedDateTime":"2030-01-01T00:00:00Z","resourceLocation":"https://t/documentModels/target1","error":{"code":"Forbidden","message":"Forbidden `+r.Header.Get(keyHeader)+`","innererror":{"code":"AuthorizationFailed","message":"bad claims"}}}`)
		}, run: func(ctx context.Context, c *Client, url string) ([]any, error) {
			vals, err := getOp(ctx, c, url)
			if err == nil {
				op := vals[0].(*Operation)
				if op.Error == nil || !strings.Contains(op.Error.Message, redacted) || !IsAuthorizationInvalid(op.Error) {
					return vals, fmt.Errorf("operation error %v: want redacted and IsAuthorizationInvalid", op.Error)
				}
			}
			return vals, err
		}},
		{name: "401 echoing the bearer token", bearer: true, handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 401, `{"error":{"code":"401","message":"token `+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+` rejected"}}`)
		}, run: info, wantRedacted: true, wantErr: IsUnauthorized},
		{name: "connection dropped", handler: func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, run: copyTo(v3Auth()), wantErr: IsTransient},
		{name: "nextLink to another host", handler: func(w http.ResponseWriter, r *http.Request) {
			jsonAnswer(w, 200, `{"value":[{"modelId":"m1"}],"nextLink":"https://evil.example/documentintelligence/documentModels?`+secretKey+`"}`)
		}, run: func(ctx context.Context, c *Client, _ string) ([]any, error) {
			var got []any
			for m, err := range c.Models(ctx, KindModel) {
				if err != nil {
					return got, err
				}
				got = append(got, m)
			}
			return got, nil
		}, wantErr: func(err error) bool { return errors.Is(err, ErrInvalidArgument) }},
		{name: "operation URL on another host", run: func(ctx context.Context, c *Client, _ string) ([]any, error) {
			op, err := c.GetOperation(ctx, "https://evil.example/documentintelligence/operations/1")
			return []any{op}, err
		}, wantErr: func(err error) bool { return errors.Is(err, ErrInvalidArgument) }},
	}
}

func sourceFor(c *Client) string {
	if c.APIVersion() == V2_1 {
		return v21ModelID
	}
	return "m1"
}

// TestSecretsNeverPrinted runs every error path with a known key, bearer token and copy access
// token, and looks for them in err.Error(), every fmt verb of the error and of the returned
// values, slog JSON output of both, and the client's own debug log.
func TestSecretsNeverPrinted(t *testing.T) {
	for _, tc := range secretCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			if h == nil {
				h = func(w http.ResponseWriter, r *http.Request) { t.Errorf("unexpected request %s", r.URL) }
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			var clientLog bytes.Buffer
			opts := Options{APIVersion: tc.version, Retry: fastRetry, Logger: slog.New(slog.NewJSONHandler(&clientLog, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			if tc.bearer {
				opts.Credential = &fakeCredential{token: secretBearer}
			} else {
				opts.Key = secretKey
			}
			c, err := New(srv.URL, opts)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := tc.run(context.Background(), c, srv.URL)
			switch {
			case tc.wantErr != nil && (err == nil || !tc.wantErr(err)):
				t.Errorf("err = %v: predicate false", err)
			case tc.wantErr == nil && err != nil:
				t.Errorf("err = %v, want none", err)
			}
			if tc.extra != nil {
				tc.extra(t, err)
			}
			if tc.wantRedacted && (err == nil || !strings.Contains(err.Error(), redacted)) {
				t.Errorf("err = %v: want the echoed secret replaced by %s", err, redacted)
			}
			vals = append(vals, opts, c, *c)
			var out strings.Builder
			if err != nil {
				fmt.Fprintf(&out, "%s\n%v\n%+v\n%#v\n%s\n%q\n", err.Error(), err, err, err, err, err)
				var e *Error
				if errors.As(err, &e) {
					fmt.Fprintf(&out, "%v\n%+v\n%#v\n", *e, *e, *e)
				}
			}
			for _, v := range vals {
				fmt.Fprintf(&out, "%v\n%+v\n%#v\n%s\n%q\n%x\n", v, v, v, v, v, v)
			}
			var slogOut bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&slogOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
			logger.Error("call failed", "err", err)
			for _, v := range vals {
				logger.Info("value", "v", v)
			}
			for what, text := range map[string]string{"fmt": out.String(), "slog": slogOut.String(), "client log": clientLog.String()} {
				for _, s := range allSecrets {
					if strings.Contains(text, s) {
						t.Errorf("%s output contains the secret %q:\n%s", what, s, text)
					}
				}
			}
		})
	}
}

func TestNewKeepsKeyOutOfErrors(t *testing.T) {
	for _, key := range []string{secretKey + "\n", "\t" + secretKey, secretKey + " x"} {
		_, err := New("https://r.cognitiveservices.azure.com", Options{Key: key})
		if !errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), secretKey) {
			t.Errorf("New with a malformed key: err = %v", err)
		}
	}
}

func TestAuthorizationRedaction(t *testing.T) {
	a := Authorization{Kind: KindModel, APIVersion: V2024_11_30, TargetID: "target1", Body: json.RawMessage(authJSON)}
	for _, v := range []any{a, &a, []*Authorization{&a}, map[string]Authorization{"a": a}, struct{ A Authorization }{a}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			s := fmt.Sprintf(verb, v)
			// Every verb must go through the redacting String: %d or %x would otherwise print
			// Body's bytes as numbers.
			if strings.Contains(s, secretToken) || !strings.Contains(s, "Body:"+redacted) {
				t.Errorf("%s of %T is not the redacted form: %s", verb, v, s)
			}
		}
	}
	if s := fmt.Sprint(a); !strings.Contains(s, "TargetID:target1") || !strings.Contains(s, "Body:"+redacted) {
		t.Errorf("String() = %s: want the target id and a redacted body", s)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("auth", "auth", a, "ptr", &a)
	if strings.Contains(buf.String(), secretToken) || !strings.Contains(buf.String(), `"targetId":"target1"`) {
		t.Errorf("slog output: %s", buf.String())
	}
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("auth", "auth", a)
	if strings.Contains(text.String(), secretToken) {
		t.Errorf("slog text output: %s", text.String())
	}
}
