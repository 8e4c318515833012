// Package wire converts counts between the counting package and the spikewatch.v1 protocol, and
// validates what arrives from the network before anything is written.
package wire

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/counting"
	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
	"github.com/spikewatch/spikewatch/internal/search"
)

// Limits on what one batch may carry.
const (
	MaxBatchCounts = 5000
	MaxTopValues   = 20
	MaxValueLen    = 512
	MaxUnitIDLen   = 256
	MaxExtraFields = 8
	// MaxPerMinute bounds calls, units and errors of one count (a sanity limit, far above any real minute).
	MaxPerMinute = int64(1) << 40
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid batch")

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// ValidRegion reports whether s looks like an AWS region name (us-east-1, us-gov-west-1).
func ValidRegion(s string) bool { return regionRE.MatchString(s) }

// ToProto converts counts for the wire.
func ToProto(cs []counting.Count) []*pb.Count {
	out := make([]*pb.Count, len(cs))
	for i, c := range cs {
		p := &pb.Count{
			Minute:     timestamppb.New(c.Minute),
			AccountId:  c.AccountID,
			Region:     c.Region,
			Api:        c.API,
			Entity:     c.Entity,
			Calls:      c.Calls,
			Units:      c.Units,
			Errors:     c.Errors,
			Principals: topToProto(c.Principals),
			SourceIps:  topToProto(c.SourceIPs),
			UserAgents: topToProto(c.UserAgents),
			ErrorCodes: topToProto(c.ErrorCodes),
		}
		if len(c.Extra) > 0 {
			p.Extra = make(map[string]*pb.TopValues, len(c.Extra))
			for k, v := range c.Extra {
				p.Extra[k] = &pb.TopValues{Values: topToProto(v)}
			}
		}
		out[i] = p
	}
	return out
}

func topToProto(vs []counting.TopValue) []*pb.TopValue {
	if len(vs) == 0 {
		return nil
	}
	out := make([]*pb.TopValue, len(vs))
	for i, v := range vs {
		out[i] = &pb.TopValue{Value: v.Value, Count: v.Count}
	}
	return out
}

// Allowed says whether an identity may write an account's counts.
type Allowed func(account string) bool

// ToDocs validates a batch and turns it into count documents. Every count must be well formed,
// name an API of the catalog and an account the identity may write; otherwise the whole batch is
// refused with an error wrapping ErrInvalid (or ErrForbidden) and nothing is written.
func ToDocs(b *pb.CountBatch, cat *catalog.Catalog, allowed Allowed, agentID string) ([]search.CountDoc, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	if b.UnitId == "" || len(b.UnitId) > MaxUnitIDLen || !utf8.ValidString(b.UnitId) {
		return nil, fmt.Errorf("%w: unit_id must be 1-%d bytes of UTF-8", ErrInvalid, MaxUnitIDLen)
	}
	if len(b.Counts) > MaxBatchCounts {
		return nil, fmt.Errorf("%w: %d counts, at most %d per batch", ErrInvalid, len(b.Counts), MaxBatchCounts)
	}
	docs := make([]search.CountDoc, 0, len(b.Counts))
	seen := make(map[string]bool, len(b.Counts))
	for i, c := range b.Counts {
		d, err := toDoc(c, cat)
		if err != nil {
			return nil, fmt.Errorf("count %d: %w", i, err)
		}
		if !allowed(d.AccountID) {
			return nil, fmt.Errorf("count %d: account %s: %w", i, d.AccountID, ErrForbidden)
		}
		d.Unit, d.Agent = b.UnitId, agentID
		d.ID = search.CountDocID(b.UnitId, d.Timestamp, d.AccountID, d.Region, d.API, d.Entity)
		if seen[d.ID] {
			return nil, fmt.Errorf("%w: count %d repeats the key of an earlier count in unit %s", ErrInvalid, i, b.UnitId)
		}
		seen[d.ID] = true
		docs = append(docs, d)
	}
	return docs, nil
}

// ErrForbidden: a count names an account the identity may not write.
var ErrForbidden = errors.New("account not allowed for this identity")

func toDoc(c *pb.Count, cat *catalog.Catalog) (search.CountDoc, error) {
	var d search.CountDoc
	if c == nil || c.Minute == nil {
		return d, fmt.Errorf("%w: no minute", ErrInvalid)
	}
	if err := c.Minute.CheckValid(); err != nil {
		return d, fmt.Errorf("%w: minute: %w", ErrInvalid, err)
	}
	m := c.Minute.AsTime().UTC()
	if !m.Equal(m.Truncate(time.Minute)) {
		return d, fmt.Errorf("%w: minute %s is not on a minute boundary", ErrInvalid, m.Format(time.RFC3339Nano))
	}
	if m.Year() < 2005 || m.After(time.Now().Add(24*time.Hour)) {
		return d, fmt.Errorf("%w: minute %s out of range", ErrInvalid, m.Format(time.RFC3339))
	}
	if !accountRE.MatchString(c.AccountId) {
		return d, fmt.Errorf("%w: account_id %q is not 12 digits", ErrInvalid, clip(c.AccountId))
	}
	if !regionRE.MatchString(c.Region) {
		return d, fmt.Errorf("%w: region %q", ErrInvalid, clip(c.Region))
	}
	api, ok := cat.ByID(c.Api)
	if !ok {
		return d, fmt.Errorf("%w: api %q is not in the catalog", ErrInvalid, clip(c.Api))
	}
	if api.Entity == nil && c.Entity != "" {
		return d, fmt.Errorf("%w: api %s has no entity, got %q", ErrInvalid, api.ID, clip(c.Entity))
	}
	if len(c.Entity) > MaxValueLen || !utf8.ValidString(c.Entity) {
		return d, fmt.Errorf("%w: entity too long or not UTF-8", ErrInvalid)
	}
	for _, v := range []int64{c.Calls, c.Units, c.Errors} {
		if v < 0 || v > MaxPerMinute {
			return d, fmt.Errorf("%w: calls, units and errors must be in [0, 2^40]", ErrInvalid)
		}
	}
	if c.Calls == 0 || c.Errors > c.Calls {
		return d, fmt.Errorf("%w: calls must be > 0 and >= errors", ErrInvalid)
	}
	d = search.CountDoc{
		Timestamp: m, AccountID: c.AccountId, Region: c.Region, API: c.Api, Entity: c.Entity,
		Calls: c.Calls, Units: c.Units, Errors: c.Errors,
	}
	var err error
	if d.Principals, err = topFromProto(c.Principals); err != nil {
		return d, fmt.Errorf("principals: %w", err)
	}
	if d.SourceIPs, err = topFromProto(c.SourceIps); err != nil {
		return d, fmt.Errorf("source_ips: %w", err)
	}
	if d.UserAgents, err = topFromProto(c.UserAgents); err != nil {
		return d, fmt.Errorf("user_agents: %w", err)
	}
	if d.ErrorCodes, err = topFromProto(c.ErrorCodes); err != nil {
		return d, fmt.Errorf("error_codes: %w", err)
	}
	if len(c.Extra) > MaxExtraFields {
		return d, fmt.Errorf("%w: %d extra fields, at most %d", ErrInvalid, len(c.Extra), MaxExtraFields)
	}
	if len(c.Extra) > 0 {
		keys := make([]string, 0, len(c.Extra))
		for k := range c.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d.Extra = make(map[string][]search.TopValue, len(keys))
		for _, k := range keys {
			if len(k) > 64 {
				return d, fmt.Errorf("%w: extra field name too long", ErrInvalid)
			}
			if d.Extra[k], err = topFromProto(c.Extra[k].GetValues()); err != nil {
				return d, fmt.Errorf("extra %s: %w", k, err)
			}
		}
	}
	return d, nil
}

func topFromProto(vs []*pb.TopValue) ([]search.TopValue, error) {
	if len(vs) > MaxTopValues {
		return nil, fmt.Errorf("%w: %d top values, at most %d", ErrInvalid, len(vs), MaxTopValues)
	}
	if len(vs) == 0 {
		return nil, nil
	}
	out := make([]search.TopValue, len(vs))
	for i, v := range vs {
		if v == nil || len(v.Value) > MaxValueLen || !utf8.ValidString(v.Value) || v.Count < 0 {
			return nil, fmt.Errorf("%w: bad top value", ErrInvalid)
		}
		out[i] = search.TopValue{Value: v.Value, Count: v.Count}
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
