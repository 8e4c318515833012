package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spikewatch/spikewatch/internal/notify"
)

func TestSubject(t *testing.T) {
	long := strings.Repeat("x", 150)
	for _, tc := range []struct{ in, want string }{
		{"Spike: ec2:RunInstances", "Spike: ec2:RunInstances"},
		{"  two\nlines\r\n\tand tab ", "two lines and tab"},
		{"café ☕", "caf? ?"},
		{"bell\x07", "bell?"},
		{"", ""},
		{long, strings.Repeat("x", 97) + "..."},
	} {
		got := notify.Subject(tc.in)
		if got != tc.want {
			t.Errorf("Subject(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if len(got) > notify.MaxSubject {
			t.Errorf("Subject(%q) too long: %d", tc.in, len(got))
		}
	}
}

func TestFilterPolicy(t *testing.T) {
	for _, tc := range []struct {
		ids  []string
		want string
	}{
		{nil, ""},
		{[]string{"111111111111"}, `{"account_id":["111111111111"]}`},
		{[]string{"111111111111", "222222222222", "111111111111"}, `{"account_id":["111111111111","222222222222"]}`},
	} {
		if got := notify.FilterPolicy(tc.ids...); got != tc.want {
			t.Errorf("FilterPolicy(%v) = %s, want %s", tc.ids, got, tc.want)
		}
	}
}

func TestWebhook(t *testing.T) {
	const secret = "s3cret"
	alert := []byte(`{"account_id":"111111111111","api":"ec2:RunInstances"}`)
	for _, tc := range []struct {
		name    string
		secret  string
		status  int
		answer  string
		wantErr string // substring; "" for success
	}{
		{name: "signed", secret: secret, status: http.StatusNoContent},
		{name: "unsigned", status: http.StatusOK},
		{name: "rejected", secret: secret, status: http.StatusForbidden, answer: "bad signature", wantErr: "403"},
		{name: "server error, huge answer", secret: secret, status: http.StatusBadGateway,
			answer: strings.Repeat("e", 1<<20), wantErr: "502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotBody []byte
			var gotSig, gotType string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotBody, _ = io.ReadAll(r.Body)
				gotSig, gotType = r.Header.Get("X-Spikewatch-Signature"), r.Header.Get("Content-Type")
				if r.Method != http.MethodPost {
					t.Errorf("method %s", r.Method)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.answer)
			}))
			defer srv.Close()

			wh := &notify.Webhook{URL: srv.URL + "/hook/token", Secret: tc.secret}
			err := wh.Publish(context.Background(), notify.Message{JSON: alert, AccountID: "111111111111"})
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, tc.wantErr)
				}
				if len(err.Error()) > 400 || strings.Contains(err.Error(), "token") {
					t.Errorf("error too long or leaks the URL path: %.300s", err)
				}
			}
			if string(gotBody) != string(alert) || gotType != "application/json" {
				t.Errorf("body %q type %q", gotBody, gotType)
			}
			if tc.secret == "" {
				if gotSig != "" {
					t.Errorf("unsigned webhook sent signature %q", gotSig)
				}
				return
			}
			// the receiver's check, computed independently of notify.Sign
			mac := hmac.New(sha256.New, []byte(tc.secret))
			mac.Write(gotBody)
			want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
			if !hmac.Equal([]byte(gotSig), []byte(want)) {
				t.Errorf("signature %q, want %q", gotSig, want)
			}
			if !notify.Verify(tc.secret, gotBody, gotSig) || notify.Verify("other", gotBody, gotSig) {
				t.Error("Verify disagrees")
			}
		})
	}
}

func TestWebhookWithoutJSON(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	defer srv.Close()
	m := notify.Message{Subject: "s", AccountID: "111111111111", API: "lambda:Invoke", Severity: "low"}
	if err := (&notify.Webhook{URL: srv.URL}).Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	want := `{"subject":"s","account_id":"111111111111","api":"lambda:Invoke","severity":"low"}`
	if got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func TestWebhookContextCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := (&notify.Webhook{URL: srv.URL}).Publish(ctx, notify.Message{JSON: []byte(`{}`)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

type failing struct{ err error }

func (f failing) Publish(context.Context, notify.Message) error { return f.err }

func TestMulti(t *testing.T) {
	var a, b notify.Recorder
	errX, errY := errors.New("x down"), errors.New("y down")
	multi := notify.Multi{&a, failing{errX}, nil, &b, failing{errY}}
	err := multi.Publish(context.Background(), notify.Message{Subject: "hi"})
	if !errors.Is(err, errX) || !errors.Is(err, errY) {
		t.Errorf("err = %v, want both failures", err)
	}
	if len(a.Messages()) != 1 || len(b.Messages()) != 1 {
		t.Errorf("a got %d, b got %d; want 1 each despite failures", len(a.Messages()), len(b.Messages()))
	}
	if err := (notify.Multi{&a}).Publish(context.Background(), notify.Message{}); err != nil {
		t.Errorf("all ok: err = %v", err)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	var r notify.Recorder
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			_ = r.Publish(context.Background(), notify.Message{JSON: []byte{byte('0' + i%10)}})
			_ = r.Messages()
		})
	}
	wg.Wait()
	msgs := r.Messages()
	if len(msgs) != 50 {
		t.Fatalf("%d messages", len(msgs))
	}
	msgs[0].Subject = "changed"
	if r.Messages()[0].Subject == "changed" {
		t.Error("Messages does not return a copy")
	}
	r.Err = errors.New("boom")
	if err := r.Publish(context.Background(), notify.Message{}); err == nil || len(r.Messages()) != 51 {
		t.Errorf("Err: got %v with %d messages", err, len(r.Messages()))
	}
}
