package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sandbox-broker/broker/internal/eventbridgefake"
	"github.com/sandbox-broker/broker/internal/sqsfake"
)

// The stand-ins answer as one AWS account in one region.
const (
	standInRegion  = "us-east-1"
	standInAccount = "123456789012"
	// standInRestAPIID is the id of the stack's REST API, as the fake API Gateway knows it:
	// the API the events/ samples name (their method ARN), so the authorizer's usage key for
	// a sample is the key the usage-plans job makes.
	standInRestAPIID = "abcdef1234"
)

// awsCall is one AWS request a function made, as IAM sees it: the action and the ARN of
// the resource it acts on.
type awsCall struct {
	Action   string // e.g. dynamodb:Query
	Resource string
}

// standIn is every AWS endpoint of one function (AWS_ENDPOINT_URL points the SDK at it):
// DynamoDB calls go through to DynamoDB Local, Secrets Manager's GetSecretValue and
// Lambda's Invoke are answered here, API Gateway's calls by the fake API Gateway. It records each call, so the IAM check sees what the
// function really sent, retries included, without any test-only code in the bootstrap. A
// request for any other service is recorded under its service and refused.
type standIn struct {
	server  *httptest.Server
	dynamo  *httputil.ReverseProxy
	secrets map[string]string // ARN → value
	apigw   http.Handler      // API Gateway's management API: the fake
	// events and sqs are the fake EventBridge and SQS (the domain events' bus and
	// dead-letter queue).
	events *eventbridgefake.Server
	sqs    *sqsfake.Server

	mu    sync.Mutex
	calls []awsCall
}

func newStandIn(t *testing.T, dynamoDBLocal string, secrets map[string]string, apigw http.Handler) *standIn {
	target, err := url.Parse(dynamoDBLocal)
	if err != nil {
		t.Fatal(err)
	}
	s := &standIn{dynamo: httputil.NewSingleHostReverseProxy(target), secrets: secrets, apigw: apigw,
		events: eventbridgefake.Start(t), sqs: sqsfake.New()}
	// The bootstraps talk to "AWS" here, so they check the CRC32 of each DynamoDB answer,
	// which DynamoDB Local does not always send right: the proxy sends the true one.
	s.dynamo.ModifyResponse = func(r *http.Response) error {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.Header.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
		r.Header.Del("Content-Encoding")
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	s.server = httptest.NewServer(s)
	t.Cleanup(s.server.Close)
	return s
}

func (s *standIn) URL() string { return s.server.URL }

func (s *standIn) record(calls ...awsCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, calls...)
}

// Calls are the distinct calls, sorted.
func (s *standIn) Calls() []awsCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[awsCall]bool{}
	var out []awsCall
	for _, c := range s.calls {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Action+out[i].Resource < out[j].Action+out[j].Resource
	})
	return out
}

var (
	signedService = regexp.MustCompile(`Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request`)
	invokePath    = regexp.MustCompile(`^/2015-03-31/functions/([^/]+)/invocations$`)
)

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(target, "DynamoDB_20120810."):
		s.record(dynamoDBCalls(strings.TrimPrefix(target, "DynamoDB_20120810."), body)...)
		s.dynamo.ServeHTTP(w, r)
	case strings.HasPrefix(target, "DynamoDBStreams_20120810."):
		var in struct{ StreamArn, ShardIterator string }
		_ = json.Unmarshal(body, &in)
		s.record(awsCall{"dynamodb:" + strings.TrimPrefix(target, "DynamoDBStreams_20120810."), in.StreamArn})
		s.dynamo.ServeHTTP(w, r)
	case target == "AWSEvents.PutEvents":
		var in struct {
			Entries []struct{ EventBusName string }
		}
		_ = json.Unmarshal(body, &in)
		for _, e := range in.Entries {
			s.record(awsCall{"events:PutEvents", busARN(e.EventBusName)})
		}
		s.events.ServeHTTP(w, r)
	case strings.HasPrefix(target, "AmazonSQS."):
		var in struct {
			QueueURL string `json:"QueueUrl"`
		}
		_ = json.Unmarshal(body, &in)
		// A batch is authorised as its single-message action.
		action := strings.TrimSuffix(strings.TrimPrefix(target, "AmazonSQS."), "Batch")
		s.record(awsCall{"sqs:" + action, queueARN(path.Base(in.QueueURL))})
		s.sqs.ServeHTTP(w, r)
	case target == "secretsmanager.GetSecretValue":
		var in struct{ SecretId string }
		_ = json.Unmarshal(body, &in)
		s.record(awsCall{"secretsmanager:GetSecretValue", in.SecretId})
		value, ok := s.secrets[in.SecretId]
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"ResourceNotFoundException","message":"no such secret"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": in.SecretId, "Name": in.SecretId, "SecretString": value, "VersionId": "v1"})
	case invokePath.MatchString(r.URL.Path) && r.Method == http.MethodPost:
		name, _ := url.PathUnescape(invokePath.FindStringSubmatch(r.URL.Path)[1])
		s.record(awsCall{"lambda:InvokeFunction", lambdaARN(name)})
		if r.Header.Get("X-Amz-Invocation-Type") != "Event" {
			http.Error(w, `{"message":"the stand-in only queues asynchronous invokes"}`, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		service := "unknown"
		if m := signedService.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			service = m[1]
		}
		if service == "apigateway" {
			// API Gateway's IAM actions are the HTTP methods, on the resource's path.
			s.record(awsCall{"apigateway:" + r.Method, "arn:aws:apigateway:" + standInRegion + "::" + r.URL.Path})
			s.apigw.ServeHTTP(w, r)
			return
		}
		s.record(awsCall{service + ":" + target, r.Method + " " + r.URL.Path})
		http.Error(w, `{"message":"no stand-in for this service"}`, http.StatusNotImplemented)
	}
}

// dynamoDBCalls are the IAM actions of one DynamoDB request on their table or index ARN. A
// transaction is authorised per item (PutItem, UpdateItem, DeleteItem, ConditionCheckItem,
// GetItem), not as an action of its own.
func dynamoDBCalls(op string, body []byte) []awsCall {
	var in struct {
		TableName     string
		IndexName     string
		RequestItems  map[string]json.RawMessage
		TransactItems []map[string]struct{ TableName string }
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return []awsCall{{"dynamodb:" + op, fmt.Sprintf("unreadable request: %v", err)}}
	}
	switch op {
	case "TransactWriteItems", "TransactGetItems":
		perItem := map[string]string{"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
		var calls []awsCall
		for _, item := range in.TransactItems {
			for kind, v := range item {
				calls = append(calls, awsCall{"dynamodb:" + perItem[kind], tableARN(v.TableName, "")})
			}
		}
		return calls
	case "BatchWriteItem", "BatchGetItem":
		var calls []awsCall
		for table := range in.RequestItems {
			calls = append(calls, awsCall{"dynamodb:" + op, tableARN(table, "")})
		}
		return calls
	}
	return []awsCall{{"dynamodb:" + op, tableARN(in.TableName, in.IndexName)}}
}

func tableARN(table, index string) string {
	arn := "arn:aws:dynamodb:" + standInRegion + ":" + standInAccount + ":table/" + table
	if index != "" {
		arn += "/index/" + index
	}
	return arn
}

func lambdaARN(name string) string {
	return "arn:aws:lambda:" + standInRegion + ":" + standInAccount + ":function:" + name
}

// standInStream is the stream part of the table's stream ARN.
const standInStream = "/stream/2026-01-01T00:00:00.000"

func busARN(name string) string {
	return "arn:aws:events:" + standInRegion + ":" + standInAccount + ":event-bus/" + name
}

func queueURL(logicalID string) string {
	return "https://sqs." + standInRegion + ".amazonaws.com/" + standInAccount + "/" + logicalID
}

func queueARN(name string) string {
	return "arn:aws:sqs:" + standInRegion + ":" + standInAccount + ":" + name
}

func secretARN(logicalID string) string {
	return "arn:aws:secretsmanager:" + standInRegion + ":" + standInAccount + ":secret:" + logicalID + "-AbCdEf"
}
