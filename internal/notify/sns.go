package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// Message attribute names set on every SNS message; subscription filter policies match on them.
const (
	AttrAccountID = "account_id"
	AttrAPI       = "api"
	AttrSeverity  = "severity"
	AttrEntity    = "entity"
)

// MaxSubject is the longest Subject SNS accepts.
const MaxSubject = 100

// snsThrottleCodes are SNS's throttling errors, which the SDK's standard retryer does not know
// (it knows "Throttling", "ThrottledException", ..., not SNS's "Throttled").
var snsThrottleCodes = []string{"Throttled", "KMSThrottling"}

// SNS publishes to one topic.
//
// The message body is the structured form (Message.JSON) for every protocol (SQS, Lambda, HTTP(S),
// email-json), except email, which gets Message.Text when that is set (MessageStructure "json").
// Message attributes account_id, api, severity and entity (each when non-empty) let subscribers
// filter: see FilterPolicy.
type SNS struct {
	client   *sns.Client
	topicARN string
}

// NewSNS returns an SNS publisher for topicARN. cfg's endpoint, credentials and retry settings
// apply; optFns adjust the client further (e.g. o.BaseEndpoint). SNS throttling errors are retried
// by the client's retryer.
func NewSNS(cfg aws.Config, topicARN string, optFns ...func(*sns.Options)) *SNS {
	opts := append(optFns[:len(optFns):len(optFns)], func(o *sns.Options) {
		o.Retryer = retry.AddWithErrorCodes(o.Retryer, snsThrottleCodes...)
	})
	return &SNS{client: sns.NewFromConfig(cfg, opts...), topicARN: topicARN}
}

// Publish implements Publisher.
func (s *SNS) Publish(ctx context.Context, m Message) error {
	in, err := s.input(m)
	if err != nil {
		return err
	}
	if _, err := s.client.Publish(ctx, in); err != nil {
		return fmt.Errorf("notify: sns publish to %s (account %s): %w", s.topicARN, m.AccountID, err)
	}
	return nil
}

func (s *SNS) input(m Message) (*sns.PublishInput, error) {
	b, err := body(m)
	if err != nil {
		return nil, err
	}
	in := &sns.PublishInput{
		TopicArn:          aws.String(s.topicARN),
		Message:           aws.String(string(b)),
		MessageAttributes: map[string]types.MessageAttributeValue{},
	}
	if m.Text != "" {
		per, err := json.Marshal(map[string]string{"default": string(b), "email": m.Text})
		if err != nil {
			return nil, fmt.Errorf("notify: encode sns message: %w", err)
		}
		in.Message = aws.String(string(per))
		in.MessageStructure = aws.String("json")
	}
	if subj := Subject(m.Subject); subj != "" {
		in.Subject = aws.String(subj)
	}
	for name, v := range map[string]string{
		AttrAccountID: m.AccountID,
		AttrAPI:       m.API,
		AttrSeverity:  m.Severity,
		AttrEntity:    m.Entity,
	} {
		if v != "" { // SNS rejects empty attribute values
			in.MessageAttributes[name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	return in, nil
}

// Subject makes s a valid SNS subject: printable ASCII on one line (anything else becomes '?',
// line breaks and tabs a space), trimmed, at most MaxSubject characters ("..." marks a cut).
func Subject(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		default:
			b.WriteByte('?')
		}
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	if len(out) > MaxSubject {
		out = strings.TrimSpace(out[:MaxSubject-3]) + "..."
	}
	return out
}

// FilterPolicy returns the SNS subscription filter policy that delivers only the alerts of the
// given accounts, e.g. {"account_id":["111122223333"]}. With no accounts it returns "" (no
// filter: the subscriber gets every alert, as the central security team does).
//
// An account team subscribes to the central topic with it (the topic's policy must allow
// sns:Subscribe from their account; the hub stack does that for the organization):
//
//	aws sns subscribe --topic-arn arn:aws:sns:REGION:HUB_ACCOUNT:spikewatch-alerts \
//	  --protocol email --notification-endpoint team@example.com \
//	  --attributes '{"FilterPolicyScope":"MessageAttributes",
//	                 "FilterPolicy":"{\"account_id\":[\"111122223333\"]}"}'
//
// For an SQS queue use --protocol sqs and the queue ARN, and add "RawMessageDelivery":"true" to
// receive the alert JSON itself as the body, with the attributes as SQS message attributes.
func FilterPolicy(accountIDs ...string) string {
	seen := map[string]bool{}
	ids := []string{}
	for _, id := range accountIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	b, _ := json.Marshal(map[string][]string{AttrAccountID: ids}) // cannot fail
	return string(b)
}
