package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The Lambda Runtime API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), the
// protocol a custom runtime (provided.al2023) speaks with Lambda over HTTP:
//
//	GET  /2018-06-01/runtime/invocation/next            the next event (long poll); headers
//	                                                     Lambda-Runtime-Aws-Request-Id and
//	                                                     Lambda-Runtime-Deadline-Ms
//	POST /2018-06-01/runtime/invocation/{id}/response   the result
//	POST /2018-06-01/runtime/invocation/{id}/error      {"errorMessage","errorType"}
//	POST /2018-06-01/runtime/init/error                 the function cannot start
const (
	apiVersion       = "2018-06-01"
	headerRequestID  = "Lambda-Runtime-Aws-Request-Id"
	headerDeadline   = "Lambda-Runtime-Deadline-Ms"
	headerErrorType  = "Lambda-Runtime-Function-Error-Type"
	maxEventBytes    = 64 << 20 // Lambda's own limit on an event is 6 MB
	postTimeout      = 10 * time.Second
	errTypeInvalid   = "Spikewatch.InvalidEvent"
	errTypeHandler   = "Spikewatch.HandlerError"
	errTypePanic     = "Spikewatch.Panic"
	errTypeInitError = "Spikewatch.ConfigError"
)

// runtimeClient talks to the Runtime API.
type runtimeClient struct {
	base string // http://host:port/2018-06-01/runtime
	hc   *http.Client
}

func newRuntimeClient(runtimeAPI string) (*runtimeClient, error) {
	if runtimeAPI == "" {
		return nil, errors.New("lambda: no runtime API address (AWS_LAMBDA_RUNTIME_API)")
	}
	base := runtimeAPI
	if !strings.Contains(base, "://") {
		base = "http://" + base // AWS_LAMBDA_RUNTIME_API is host:port
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("lambda: runtime API address %q is not host:port", runtimeAPI)
	}
	// No overall timeout: /next blocks until Lambda has an event. Every request carries a context.
	return &runtimeClient{base: strings.TrimSuffix(base, "/") + "/" + apiVersion + "/runtime", hc: &http.Client{}}, nil
}

// invocation is one event from /next.
type invocation struct {
	requestID string
	deadline  time.Time // zero when Lambda gave none
	event     []byte
}

// next waits for the next invocation.
func (rc *runtimeClient) next(ctx context.Context) (*invocation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.base+"/invocation/next", nil)
	if err != nil {
		return nil, fmt.Errorf("next invocation: %w", err)
	}
	resp, err := rc.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("next invocation: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEventBytes+1))
	if err != nil {
		return nil, fmt.Errorf("next invocation: read event: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("next invocation: %s: %s", resp.Status, clip(body))
	}
	inv := &invocation{requestID: resp.Header.Get(headerRequestID), event: body}
	if inv.requestID == "" {
		return nil, fmt.Errorf("next invocation: no %s header", headerRequestID)
	}
	if len(body) > maxEventBytes {
		return inv, fmt.Errorf("next invocation %s: event over %d bytes", inv.requestID, maxEventBytes)
	}
	if ms := resp.Header.Get(headerDeadline); ms != "" {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			return inv, fmt.Errorf("next invocation %s: %s %q: %w", inv.requestID, headerDeadline, ms, err)
		}
		inv.deadline = time.UnixMilli(n)
	}
	return inv, nil
}

// errFatal: the Runtime API answered 500; the runtime must exit.
var errFatal = errors.New("runtime API failure")

// post sends a JSON document to the Runtime API. It is bounded by postTimeout but not cancelled
// with ctx, so that an invocation's outcome is still reported while the process stops.
func (rc *runtimeClient) post(ctx context.Context, path string, doc any, header http.Header) error {
	data, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("post %s: encode: %w", path, err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, rc.base+path, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("post %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := rc.hc.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 500:
		return fmt.Errorf("post %s: %w: %s: %s", path, errFatal, resp.Status, clip(body))
	case resp.StatusCode >= 300:
		return fmt.Errorf("post %s: %s: %s", path, resp.Status, clip(body))
	}
	return nil
}

// errorDoc is the Runtime API's error document.
type errorDoc struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

func (rc *runtimeClient) postError(ctx context.Context, path, errType string, err error) error {
	return rc.post(ctx, path, errorDoc{ErrorMessage: err.Error(), ErrorType: errType}, http.Header{headerErrorType: {errType}})
}

// ReportInitError tells Lambda that the function cannot start (its configuration is wrong). Lambda
// then fails the invocation and starts a new sandbox for the next one; SQS keeps the messages.
func ReportInitError(ctx context.Context, runtimeAPI string, initErr error) error {
	rc, err := newRuntimeClient(runtimeAPI)
	if err != nil {
		return err
	}
	if err := rc.postError(ctx, "/init/error", errTypeInitError, initErr); err != nil {
		return fmt.Errorf("lambda: report init error: %w", err)
	}
	return nil
}

// Serve is the runtime loop: it takes the next invocation from the Runtime API at runtimeAPI
// (AWS_LAMBDA_RUNTIME_API, host:port), lets h handle it within the invocation's deadline and posts
// the partial batch response, or the error when the event is not an SQS batch. It returns nil when
// ctx ends, and an error when the Runtime API fails (the process should then exit; Lambda starts a
// new one).
func Serve(ctx context.Context, runtimeAPI string, h *Handler, log *slog.Logger) error {
	if h == nil {
		return errors.New("lambda: no handler")
	}
	if log == nil {
		log = slog.Default()
	}
	rc, err := newRuntimeClient(runtimeAPI)
	if err != nil {
		return err
	}
	log.Info("lambda runtime loop started", "runtime_api", runtimeAPI)
	for {
		inv, err := rc.next(ctx)
		if err != nil && ctx.Err() != nil {
			log.Info("lambda runtime loop stopped")
			return nil
		}
		if err != nil {
			if inv == nil {
				return fmt.Errorf("lambda: %w", err)
			}
			// The invocation arrived but cannot be handled: report it and go on.
			log.Error("invocation refused", "request_id", inv.requestID, "err", err)
			if perr := rc.postError(ctx, "/invocation/"+url.PathEscape(inv.requestID)+"/error", errTypeInvalid, err); perr != nil {
				if errors.Is(perr, errFatal) {
					return fmt.Errorf("lambda: %w", perr)
				}
				log.Error("runtime API refused the error report", "request_id", inv.requestID, "err", perr)
			}
			continue
		}
		if err := invoke(ctx, rc, h, inv, log); err != nil {
			return fmt.Errorf("lambda: %w", err)
		}
	}
}

// invoke handles one invocation and reports its outcome. It returns an error only when the Runtime
// API failed for good.
func invoke(ctx context.Context, rc *runtimeClient, h *Handler, inv *invocation, log *slog.Logger) error {
	ictx, cancel := ctx, context.CancelFunc(func() {})
	if !inv.deadline.IsZero() {
		ictx, cancel = context.WithDeadline(ctx, inv.deadline)
	}
	resp, errType, err := safeHandle(ictx, h, inv.event)
	cancel()
	path := "/invocation/" + url.PathEscape(inv.requestID)
	var perr error
	if err != nil {
		log.Error("invocation failed; the whole batch is returned to the queue", "request_id", inv.requestID, "error_type", errType, "err", err)
		perr = rc.postError(ctx, path+"/error", errType, err)
	} else {
		perr = rc.post(ctx, path+"/response", resp, nil)
	}
	if perr != nil {
		if errors.Is(perr, errFatal) {
			return perr
		}
		// 4xx: this invocation's report was refused (too large, already answered); the next one
		// is unaffected. Lambda times the invocation out and SQS delivers its messages again.
		log.Error("runtime API refused the invocation's outcome", "request_id", inv.requestID, "err", perr)
	}
	return nil
}

// safeHandle calls h.Handle and turns a panic into an error, so one bad invocation does not end the
// sandbox.
func safeHandle(ctx context.Context, h *Handler, event []byte) (resp Response, errType string, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, errType, err = Response{}, errTypePanic, fmt.Errorf("panic: %v", p)
		}
	}()
	resp, err = h.Handle(ctx, event)
	if err != nil {
		errType = errTypeHandler
		if errors.Is(err, ErrInvalidEvent) {
			errType = errTypeInvalid
		}
	}
	return resp, errType, err
}

// clip shortens a response body for an error message.
func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
