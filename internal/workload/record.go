package workload

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// record is a CloudTrail record, its fields in the order CloudTrail writes them.
type record struct {
	EventVersion        string      `json:"eventVersion"`
	UserIdentity        identity    `json:"userIdentity"`
	EventTime           string      `json:"eventTime"`
	EventSource         string      `json:"eventSource"`
	EventName           string      `json:"eventName"`
	AWSRegion           string      `json:"awsRegion"`
	SourceIPAddress     string      `json:"sourceIPAddress"`
	UserAgent           string      `json:"userAgent"`
	ErrorCode           string      `json:"errorCode,omitempty"`
	ErrorMessage        string      `json:"errorMessage,omitempty"`
	RequestParameters   any         `json:"requestParameters"`
	ResponseElements    any         `json:"responseElements"`
	AdditionalEventData any         `json:"additionalEventData,omitempty"`
	RequestID           string      `json:"requestID,omitempty"`
	EventID             string      `json:"eventID"`
	ReadOnly            bool        `json:"readOnly"`
	Resources           []resource  `json:"resources,omitempty"`
	EventType           string      `json:"eventType"`
	ManagementEvent     bool        `json:"managementEvent"`
	RecipientAccountID  string      `json:"recipientAccountId"`
	SharedEventID       string      `json:"sharedEventID,omitempty"`
	EventCategory       string      `json:"eventCategory"`
	TLSDetails          *tlsDetails `json:"tlsDetails,omitempty"`
}

type identity struct {
	Type           string          `json:"type"`
	PrincipalID    string          `json:"principalId,omitempty"`
	ARN            string          `json:"arn,omitempty"`
	AccountID      string          `json:"accountId,omitempty"`
	AccessKeyID    string          `json:"accessKeyId,omitempty"`
	UserName       string          `json:"userName,omitempty"`
	SessionContext *sessionContext `json:"sessionContext,omitempty"`
	InvokedBy      string          `json:"invokedBy,omitempty"`
}

type sessionContext struct {
	SessionIssuer       issuer   `json:"sessionIssuer"`
	WebIDFederationData struct{} `json:"webIdFederationData"`
	Attributes          struct {
		CreationDate     string `json:"creationDate"`
		MFAAuthenticated string `json:"mfaAuthenticated"`
	} `json:"attributes"`
}

type issuer struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
}

type resource struct {
	AccountID string `json:"accountId,omitempty"`
	Type      string `json:"type"`
	ARN       string `json:"ARN"`
}

type tlsDetails struct {
	TLSVersion               string `json:"tlsVersion"`
	CipherSuite              string `json:"cipherSuite"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader"`
}

// obj is a JSON object for the small, varied request and response bodies (keys come out sorted).
type obj = map[string]any

// batch collects the records of one account, region and window: their JSON in one buffer.
type batch struct {
	a      *account
	region string
	ri     int // index of region in generator.regions
	r      *rand.Rand
	buf    bytes.Buffer
	enc    *json.Encoder
	recs   []recRef
	// per incident: injected calls of its API and their units
	incEvents, incUnits []int64
}

type recRef struct {
	t        int64 // unix seconds
	off, end int
}

// batches are recycled: their buffers are the bulk of the allocations.
var batchPool = sync.Pool{New: func() any {
	b := new(batch)
	b.enc = json.NewEncoder(&b.buf)
	b.enc.SetEscapeHTML(false)
	return b
}}

func newBatch(a *account, region string, ri, incidents int) *batch {
	b := batchPool.Get().(*batch)
	b.a, b.region, b.ri = a, region, ri
	b.buf.Reset()
	b.recs = b.recs[:0]
	b.incEvents = append(b.incEvents[:0], make([]int64, incidents)...)
	b.incUnits = append(b.incUnits[:0], make([]int64, incidents)...)
	return b
}

func (b *batch) release() {
	b.a, b.r = nil, nil
	batchPool.Put(b)
}

// principalSession is a caller with the session (or key) it uses for one call.
type principalSession struct {
	p       *principal
	session string
	ip, ua  string
}

func (b *batch) as(p *principal) principalSession {
	s := principalSession{p: p, ua: pick(b.r, p.agents)}
	if len(p.sessions) > 0 {
		s.session = pick(b.r, p.sessions)
	}
	if len(p.ips) > 0 {
		s.ip = pick(b.r, p.ips)
	}
	if s.ip == "" {
		s.ip = p.invokedBy
		if p.kind == kindService {
			s.ip = p.name
		}
	}
	return s
}

// call starts a record of a call by s at time t (unix seconds).
func (b *batch) call(t int64, s principalSession, source, name string, readOnly bool) *record {
	acct := b.a.ID
	rec := &record{
		EventVersion:       "1.09",
		UserIdentity:       b.identity(t, s),
		EventTime:          time.Unix(t, 0).UTC().Format(time.RFC3339),
		EventSource:        source,
		EventName:          name,
		AWSRegion:          b.region,
		SourceIPAddress:    s.ip,
		UserAgent:          s.ua,
		RequestID:          uuid(b.r),
		EventID:            uuid(b.r),
		ReadOnly:           readOnly,
		EventType:          "AwsApiCall",
		ManagementEvent:    true,
		RecipientAccountID: acct,
		EventCategory:      "Management",
	}
	if s.p.kind != kindService && s.p.invokedBy == "" {
		host := source[:len(source)-len(".amazonaws.com")] + "." + b.region + ".amazonaws.com"
		rec.TLSDetails = &tlsDetails{"TLSv1.3", "TLS_AES_128_GCM_SHA256", host}
	}
	return rec
}

func (b *batch) identity(t int64, s principalSession) identity {
	p, acct := s.p, b.a.ID
	switch p.kind {
	case kindService:
		return identity{Type: "AWSService", InvokedBy: p.name}
	case kindUser:
		return identity{Type: "IAMUser", PrincipalID: p.id, ARN: "arn:aws:iam::" + acct + ":user/" + p.name,
			AccountID: acct, AccessKeyID: p.key, UserName: p.name}
	}
	// An assumed-role session lasts the hour: its key and creation date stay the same within it.
	hour := t - t%3600
	hourStr := time.Unix(hour, 0).UTC().Format(time.RFC3339)
	id := identity{
		Type:        "AssumedRole",
		PrincipalID: p.id + ":" + s.session,
		ARN:         "arn:aws:sts::" + acct + ":assumed-role/" + p.name + "/" + s.session,
		AccountID:   acct,
		AccessKeyID: "ASIA" + hashString(upperID, 16, acct, p.name, s.session, hourStr),
		InvokedBy:   p.invokedBy,
	}
	sc := &sessionContext{SessionIssuer: issuer{"Role", p.id, "arn:aws:iam::" + acct + ":role/" + p.path + p.name, acct, p.name}}
	sc.Attributes.CreationDate = hourStr
	sc.Attributes.MFAAuthenticated = "false"
	if p.mfa {
		sc.Attributes.MFAAuthenticated = "true"
	}
	id.SessionContext = sc
	return id
}

// emit encodes rec into the batch.
func (b *batch) emit(t int64, rec *record) {
	off := b.buf.Len()
	if err := b.enc.Encode(rec); err != nil {
		panic(err) // records hold only strings, numbers, maps and slices
	}
	b.recs = append(b.recs, recRef{t: t, off: off, end: b.buf.Len() - 1}) // drop the encoder's newline
}

func (b *batch) sort() {
	slices.SortStableFunc(b.recs, func(x, y recRef) int { return int(x.t - y.t) })
}

func (b *batch) record(i int) []byte {
	r := b.recs[i]
	return b.buf.Bytes()[r.off:r.end]
}
