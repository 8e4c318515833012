// Package cloudtrail decodes CloudTrail events from every shape they are delivered in: S3 log files
// ({"Records":[...]}, gzip or plain), JSON arrays, one event per line, EventBridge events
// ("AWS API Call via CloudTrail") and CloudWatch Logs subscription payloads. Bad input never stops a
// read: each event that cannot be used is reported as a Rejection with a Reason that callers count.
package cloudtrail

import (
	"encoding/json"
	"time"
)

// Event is the part of a CloudTrail record that Spikewatch uses.
type Event struct {
	EventVersion       string          `json:"eventVersion"`
	EventID            string          `json:"eventID"`
	EventTime          time.Time       `json:"-"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AWSRegion          string          `json:"awsRegion"`
	RecipientAccountID string          `json:"recipientAccountId"`
	SourceIPAddress    string          `json:"sourceIPAddress"`
	UserAgent          string          `json:"userAgent"`
	ErrorCode          string          `json:"errorCode"`
	ErrorMessage       string          `json:"errorMessage"`
	EventType          string          `json:"eventType"`
	ReadOnly           bool            `json:"readOnly"`
	ManagementEvent    bool            `json:"managementEvent"`
	UserIdentity       UserIdentity    `json:"userIdentity"`
	RequestParameters  json.RawMessage `json:"requestParameters"`
}

// UserIdentity is the caller of an event.
type UserIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	AccessKeyID string `json:"accessKeyId"`
	InvokedBy   string `json:"invokedBy"`
	// IssuerARN is userIdentity.sessionContext.sessionIssuer.arn (the role behind an assumed-role session).
	IssuerARN string `json:"-"`
}

// Principal returns the best name of the caller: its ARN, the session issuer's ARN, the service
// that invoked on its behalf, or its type.
func (u UserIdentity) Principal() string {
	switch {
	case u.ARN != "":
		return u.ARN
	case u.IssuerARN != "":
		return u.IssuerARN
	case u.InvokedBy != "":
		return u.InvokedBy
	default:
		return u.Type
	}
}
