package ddblimits

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// DynamoDB's own words for each refusal. The error codes and shapes are those of the API
// reference; the messages are those DynamoDB sends (developer guide, "Error handling with
// DynamoDB"); the AWS SDKs read the code, never the message.
const (
	typePrefix = "com.amazonaws.dynamodb.v20120810#"

	msgTableKeyRange = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
	msgIndexKeyRange = "The level of configured provisioned throughput for one or more global secondary indexes of the table was exceeded. Consider increasing your provisioning level for the under-provisioned global secondary indexes with the UpdateTable API"
	// msgScaling is what an on-demand table answers while it has not scaled to the load.
	msgScaling  = "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
	msgOngoing  = "Transaction is ongoing for the item"
	msgInternal = "Internal server error"
	msgBusy     = "The service is currently unavailable or busy."
)

// Error codes, as counted in Counts and sent in __type or a cancellation reason.
const (
	CodeProvisionedThroughputExceeded = "ProvisionedThroughputExceededException"
	CodeThrottling                    = "ThrottlingException"
	CodeTransactionCanceled           = "TransactionCanceledException"
	CodeTransactionConflict           = "TransactionConflictException"
	CodeInternalServerError           = "InternalServerError"
	CodeServiceUnavailable            = "ServiceUnavailable"
	// Cancellation reasons of a TransactionCanceledException.
	ReasonNone                = "None"
	ReasonThrottlingError     = "ThrottlingError"
	ReasonTransactionConflict = "TransactionConflict"
)

// answer is an error response: its status and its JSON body.
type answer struct {
	status int
	body   any
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
	// The API model names the reasons ThrottlingReasons in a
	// ProvisionedThroughputExceededException and throttlingReasons in a
	// ThrottlingException; the SDKs read the member by its exact name.
	ThrottlingReasons          []throttlingReason `json:"ThrottlingReasons,omitempty"`
	ThrottlingExceptionReasons []throttlingReason `json:"throttlingReasons,omitempty"`
}

type throttlingReason struct {
	Reason   string `json:"reason"`
	Resource string `json:"resource"`
}

// canceledBody is a TransactionCanceledException: one reason per item of the transaction,
// in order ("None" for an item that was not the cause). Its message is "Message".
type canceledBody struct {
	Type                string              `json:"__type"`
	Message             string              `json:"Message"`
	CancellationReasons []cancellationEntry `json:"CancellationReasons"`
}

type cancellationEntry struct {
	Code    string `json:"Code"`
	Message string `json:"Message,omitempty"`
}

func plainError(status int, code, message string) answer {
	return answer{status, errorBody{Type: typePrefix + code, Message: message}}
}

// canceled cancels a transaction of n items for the reason given at each position in
// causes.
func canceled(n int, causes map[int]cancellationEntry) answer {
	reasons := make([]cancellationEntry, n)
	codes := make([]string, n)
	for i := range reasons {
		reasons[i] = cancellationEntry{Code: ReasonNone}
		if c, ok := causes[i]; ok {
			reasons[i] = c
		}
		codes[i] = reasons[i].Code
	}
	return answer{http.StatusBadRequest, canceledBody{
		Type:                typePrefix + CodeTransactionCanceled,
		Message:             "Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]",
		CancellationReasons: reasons,
	}}
}

// reason is a throttling reason (API reference, ThrottlingReason): the resource type, the
// operation and the limit, e.g. IndexWriteKeyRangeThroughputExceeded. The limit is always
// the key range's: an on-demand table's throughput is that of its partitions until it
// scales, and a throttled partition key is a throttled partition.
func (r refusal) reason() string {
	s := "Table"
	if r.index != "" {
		s = "Index"
	}
	if r.write {
		s += "Write"
	} else {
		s += "Read"
	}
	return s + "KeyRangeThroughputExceeded"
}

// throttled is the answer to a request the throughput refused. A transaction is cancelled
// with ThrottlingError on each item refused, as an on-demand table cancels it; a single
// request gets ProvisionedThroughputExceededException for a hot partition key and
// ThrottlingException when the table (or index) as a whole is over its throughput, each
// with its ThrottlingReasons. The SDKs retry both; they do not retry a cancelled
// transaction.
func throttled(t *tableSchema, r *request, refused []refusal) answer {
	if r.transactional {
		causes := map[int]cancellationEntry{}
		for _, f := range refused {
			causes[f.pos] = cancellationEntry{Code: ReasonThrottlingError, Message: msgScaling}
		}
		return canceled(len(r.writes), causes)
	}
	body := errorBody{Type: typePrefix + CodeProvisionedThroughputExceeded, Message: msgTableKeyRange}
	var reasons []throttlingReason
	for _, f := range refused {
		resource := t.arn
		if f.index != "" {
			resource += "/index/" + f.index
			body.Message = msgIndexKeyRange
		}
		if f.tableWide {
			body.Type, body.Message = typePrefix+CodeThrottling, msgScaling
		}
		reasons = append(reasons, throttlingReason{Reason: f.reason(), Resource: resource})
	}
	if body.Type == typePrefix+CodeThrottling {
		body.ThrottlingExceptionReasons = reasons
	} else {
		body.ThrottlingReasons = reasons
	}
	return answer{http.StatusBadRequest, body}
}

// writeAnswer sends a JSON 1.0 response with DynamoDB's headers: a request ID and the
// CRC32 of the body, which the SDKs check unless told not to.
func writeAnswer(w http.ResponseWriter, status int, body []byte, header http.Header) {
	h := w.Header()
	for name, values := range header {
		h[name] = values
	}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	if h.Get("X-Amzn-Requestid") == "" {
		h.Set("X-Amzn-Requestid", requestID())
	}
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (a answer) write(w http.ResponseWriter) {
	body, _ := json.Marshal(a.body) // strings and slices of them: Marshal cannot fail
	writeAnswer(w, a.status, body, nil)
}

// requestID looks like DynamoDB's: 52 characters of [A-Z0-9].
func requestID() string {
	var b [26]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// code is the error code a client reads from an answer: __type without its namespace,
// with the cancellation reasons of a cancelled transaction.
func (a answer) code() string {
	switch b := a.body.(type) {
	case errorBody:
		return strings.TrimPrefix(b.Type, typePrefix)
	case canceledBody:
		var causes []string
		for _, r := range b.CancellationReasons {
			if r.Code != ReasonNone && !slices.Contains(causes, r.Code) {
				causes = append(causes, r.Code)
			}
		}
		return CodeTransactionCanceled + " (" + strings.Join(causes, ", ") + ")"
	}
	return ""
}
