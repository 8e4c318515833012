package counting

import (
	"errors"
	"strings"
	"testing"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// FuzzAdd feeds arbitrary requestParameters to each API: Add never panics, and either counts the
// event with non-negative units or rejects it with a *RejectError and counts nothing.
func FuzzAdd(f *testing.F) {
	for _, s := range []string{
		`{"instanceType":"t3.micro","instancesSet":{"items":[{"imageId":"ami-1","minCount":1,"maxCount":3}]}}`,
		`{"instancesSet":{"items":[{"maxCount":"2"},{"maxCount":1e3}]}}`,
		`{"size":100,"volumeType":"gp3"}`,
		`{"functionName":"arn:aws:lambda:us-east-1:111122223333:function:f:1"}`,
		`{"functionName":"f\u00e9\"x"}`,
		`null`, `[]`, `"x"`, `{`, `{"instancesSet":{"items":[{"maxCount":-1}]}}`,
	} {
		for api := range uint8(3) {
			f.Add(api, []byte(s))
		}
	}
	cat := catalog.Default()
	names := []string{runInstances, createVolume, invoke}
	f.Fuzz(func(t *testing.T, api uint8, params []byte) {
		c := New(cat, Options{})
		ev := event(names[int(api)%len(names)], "")
		ev.RequestParameters = params
		matched, err := c.Add(ev)
		if !matched {
			t.Fatal("a monitored event was not matched")
		}
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) || re.Reason == "" {
				t.Fatalf("error %v is not a RejectError", err)
			}
			if c.Len() != 0 {
				t.Fatal("a rejected event was counted")
			}
			return
		}
		got := c.Drain()
		if len(got) != 1 || got[0].Calls != 1 || got[0].Units < 0 || got[0].Units > MaxUnitsPerEvent {
			t.Fatalf("counts = %+v", got)
		}
		for _, vs := range got[0].Extra {
			for _, v := range vs {
				if len(v.Value) > maxValueLen || v.Value == "" {
					t.Fatalf("context value of %d bytes", len(v.Value))
				}
			}
		}
		if len(got[0].Entity) > maxValueLen {
			t.Fatalf("entity of %d bytes", len(got[0].Entity))
		}
	})
}

// FuzzWalk feeds arbitrary bytes, valid JSON or not, straight to the path walker: it ends without
// panicking, and reports only fields it was asked for.
func FuzzWalk(f *testing.F) {
	for _, s := range []string{`{"a":[{"b":{"c":1}}]}`, `{"a":[{"b":"x"},null,{"b":{"c":"\\\""}}]}`, `{"a":[}`, `[{]`} {
		f.Add([]byte(s))
	}
	root := &node{}
	for i, p := range []string{"requestParameters.a[].b.c", "requestParameters.a[].b", "requestParameters.a", "requestParameters"} {
		root.add(strings.Split(p, "."), i)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		walkEvent(root, b, checkVisitor{t, len(b)})
	})
}

type checkVisitor struct {
	t *testing.T
	n int
}

func (v checkVisitor) leaf(f int, raw []byte) {
	if f < 0 || f > 3 || len(raw) > v.n {
		v.t.Fatalf("leaf(%d, %d bytes)", f, len(raw))
	}
}

func (v checkVisitor) mismatch(f int) {
	if f < 0 || f > 2 {
		v.t.Fatalf("mismatch(%d)", f)
	}
}
