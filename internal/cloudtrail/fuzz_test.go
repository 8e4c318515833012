package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzSeeds returns the fixtures of testdata, plain, gzip and cut short.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.*json"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	var seeds [][]byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		z := gz(f, b)
		seeds = append(seeds, b, z, b[:len(b)/2], z[:len(z)/2])
	}
	ok := event(f, nil)
	return append(seeds,
		[]byte(ok+"\n"+ok[:50]+"\n42\n[1,"+ok+"]\n"),
		[]byte(eventBridge(apiCallDetailType, "123456789012", event(f, map[string]any{"recipientAccountId": nil}))),
		[]byte(sqsEvent(eventBridge(apiCallDetailType, "123456789012", ok), "x")),
		[]byte(awslogs(b64gz(f, []byte(cwlDocument(ok, "CWL CONTROL MESSAGE", "{}"))))),
		[]byte(b64gz(f, []byte(cwlDocument(ok)))),
		[]byte(`"`+b64gz(f, []byte(cwlDocument(ok)))+`"`),
		[]byte("\xef\xbb\xbf{\"Records\":[{\"eventSource\":\"aws:sqs\",\"body\":5}]}"),
	)
}

// fuzzOptions keeps limits small so that the fuzzer reaches them.
func fuzzOptions(maxEvent uint16) Options {
	return Options{MaxEventBytes: 32 + int(maxEvent)%8192, MaxInputBytes: 1 << 20}
}

// fuzzDecode checks what holds for any input: no panic, no error (the reader never fails and emit
// returns nil), usable events, known reasons, and the same outcome for the input gzip-compressed.
func fuzzDecode(t *testing.T, fn decodeFunc, data []byte, maxEvent uint16) {
	// A hang is a failure too: crash the worker so that the fuzzer keeps the input.
	watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("decode of %d bytes hangs", len(data))) })
	defer watchdog.Stop()
	opts := fuzzOptions(maxEvent)
	res := decodeAll(t, fn, bytes.NewReader(data), opts)
	if res.err != nil {
		t.Fatalf("error %v for an input that reads without error", res.err)
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		return
	}
	zres := decodeAll(t, fn, bytes.NewReader(fastGzip(data)), opts)
	if zres.err != nil || !reflect.DeepEqual(zres.events, res.events) || !reflect.DeepEqual(zres.rejections, res.rejections) {
		t.Fatalf("gzip changes the outcome:\nplain: %d events %+v\n gzip: %d events %+v err %v",
			len(res.events), res.rejections, len(zres.events), zres.rejections, zres.err)
	}
}

var fuzzGzip struct {
	sync.Mutex
	w   *gzip.Writer
	buf bytes.Buffer
}

// fastGzip compresses b with one reused writer (a new one costs more than a decode).
func fastGzip(b []byte) []byte {
	fuzzGzip.Lock()
	defer fuzzGzip.Unlock()
	fuzzGzip.buf.Reset()
	if fuzzGzip.w == nil {
		fuzzGzip.w, _ = gzip.NewWriterLevel(&fuzzGzip.buf, gzip.BestSpeed)
	}
	fuzzGzip.w.Reset(&fuzzGzip.buf)
	fuzzGzip.w.Write(b)
	fuzzGzip.w.Close()
	return bytes.Clone(fuzzGzip.buf.Bytes())
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxEvent uint16) {
		fuzzDecode(t, Decode, data, maxEvent)
	})
}

func FuzzDecodeCloudWatchLogs(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint16(4096))
	}
	f.Add([]byte(strings.Repeat("H4sI", 10)), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, maxEvent uint16) {
		fuzzDecode(t, DecodeCloudWatchLogs, data, maxEvent)
	})
}
