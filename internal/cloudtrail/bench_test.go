package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// benchGzipFiles returns the gzip files of the shared data, or a generated S3 log file when the
// shared data is missing, and their total size once decompressed.
func benchGzipFiles(b *testing.B) (files [][]byte, plain int64) {
	b.Helper()
	if dir, err := findSharedData(); err == nil {
		for _, path := range sharedFiles(b, dir) {
			if !strings.HasSuffix(path, ".gz") {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			files = append(files, data)
		}
	} else {
		b.Logf("shared data not found (%v): using a generated S3 log file", err)
		recs := make([]string, 2000)
		for i := range recs {
			recs[i] = event(b, map[string]any{"eventID": fmt.Sprint(i), "eventName": fmt.Sprintf("Describe%d", i%50)})
		}
		files = append(files, gz(b, []byte(`{"Records":[`+strings.Join(recs, ",")+`]}`)))
	}
	for _, f := range files {
		zr, err := gzip.NewReader(bytes.NewReader(f))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			b.Fatal(err)
		}
		plain += n
	}
	return files, plain
}

func compressedSize(files [][]byte) (n int64) {
	for _, f := range files {
		n += int64(len(f))
	}
	return n
}

// BenchmarkDecodeGzipFiles decodes every gzip file of the shared data. MB/s is of compressed bytes;
// plain-MB/s of decompressed JSON; records/s counts events and rejections.
func BenchmarkDecodeGzipFiles(b *testing.B) {
	files, plain := benchGzipFiles(b)
	b.SetBytes(compressedSize(files))
	b.ReportAllocs()
	var events, records int
	emit := func(*Event) error { events++; return nil }
	reject := func(Rejection) { records++ }
	for b.Loop() {
		for _, f := range files {
			if err := Decode(bytes.NewReader(f), Options{}, emit, reject); err != nil {
				b.Fatal(err)
			}
		}
	}
	records += events
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(events)/sec, "events/s")
	b.ReportMetric(float64(records)/sec, "records/s")
	b.ReportMetric(float64(plain)*float64(b.N)/1e6/sec, "plain-MB/s")
}

// BenchmarkGunzipOnly decompresses the same files into io.Discard: the floor for the benchmark above.
func BenchmarkGunzipOnly(b *testing.B) {
	files, plain := benchGzipFiles(b)
	b.SetBytes(compressedSize(files))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range files {
			zr, err := gzip.NewReader(bytes.NewReader(f))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, zr); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(plain)*float64(b.N)/1e6/b.Elapsed().Seconds(), "plain-MB/s")
}
