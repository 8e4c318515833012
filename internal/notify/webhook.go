package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the request body keyed with the
// webhook secret.
const SignatureHeader = "X-Spikewatch-Signature"

// maxResponse bounds how much of a webhook's answer is read.
const maxResponse = 64 << 10

var defaultWebhookClient = &http.Client{Timeout: 15 * time.Second}

// Webhook POSTs the structured form of each message (Message.JSON) to URL, signed with Secret
// when it is set. Client defaults to one with a 15s timeout.
type Webhook struct {
	URL    string
	Secret string
	Client *http.Client
}

// Publish implements Publisher. A non-2xx answer is an error that gives the status and the start
// of the answer.
func (w *Webhook) Publish(ctx context.Context, m Message) error {
	b, err := body(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("notify: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "spikewatch")
	if w.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.Secret, b))
	}
	client := w.Client
	if client == nil {
		client = defaultWebhookClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("notify: webhook post: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := strings.TrimSpace(string(answer))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		// only the host: webhook URLs often carry a token in the path
		return fmt.Errorf("notify: webhook %s: status %s: %q", req.URL.Host, resp.Status, snippet)
	}
	return nil
}

// Sign returns the SignatureHeader value for body: "sha256=" + hex(HMAC-SHA256(secret, body)).
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature (a SignatureHeader value) is body's signature under secret,
// in constant time. For receivers.
func Verify(secret string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}
