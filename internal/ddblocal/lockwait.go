package ddblocal

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// DynamoDB Local runs a table's requests behind a lock that a request waits at most 10 s
// for; one that waits longer is answered, before it did anything, with 500
// InternalServerError and this message (DynamoDB Local's own words, typo included):
//
//	This action timed out because it too long waiting for a lock. This request will succeed in actual DynamoDB API
//
// On a loaded machine a burst's queue outlasts the wait. DynamoDB has no such lock and
// never gives this answer: it is the stand-in's artefact, so only the clients of DynamoDB
// Local send such a request again (RetryLockTimeouts). IsLockTimeout recognises the answer
// by the two parts of the message that say what it is.
var lockTimeoutMarks = [][]byte{[]byte("waiting for a lock"), []byte("will succeed in actual DynamoDB")}

// lockRetries bounds the sends of one request beyond its first: each may have waited the
// lock's 10 s. The pause before each grows from lockBackoff to lockMaxBackoff, drawn at
// random, so the requests of a burst refused together do not queue again together.
const (
	lockRetries    = 10
	lockBackoff    = 50 * time.Millisecond
	lockMaxBackoff = time.Second
)

// IsLockTimeout reports whether an answer of DynamoDB Local is its lock-wait timeout.
func IsLockTimeout(status int, body []byte) bool {
	if status != http.StatusInternalServerError {
		return false
	}
	for _, mark := range lockTimeoutMarks {
		if !bytes.Contains(body, mark) {
			return false
		}
	}
	return true
}

// RetryLockTimeouts returns next, sending each request again, after a pause, while
// DynamoDB Local answers it with its lock-wait timeout: up to lockRetries times, and no
// longer than the request's context. The SDK above sees one attempt, whatever the sends
// under it, and retries every other answer (another 500 included) as it always does.
// Nothing of a refused request was carried out, so sending it again is safe whatever it
// does. pool.NewClient wraps every client of DynamoDB Local in it, and so does the proxy of
// internal/ddblimits, which must not pass the artefact on to a client that stands for
// one of AWS.
func RetryLockTimeouts(next aws.HTTPClient) aws.HTTPClient { return lockRetrier{next} }

type lockRetrier struct{ next aws.HTTPClient }

func (c lockRetrier) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	for retry := 0; ; retry++ {
		send := req.Clone(req.Context())
		if req.Body != nil {
			send.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := c.next.Do(send)
		if err != nil || resp.StatusCode != http.StatusInternalServerError || retry == lockRetries {
			return resp, err
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(answer))
		if !IsLockTimeout(resp.StatusCode, answer) {
			return resp, nil
		}
		pause := time.NewTimer(rand.N(min(lockBackoff<<retry, lockMaxBackoff)) + time.Millisecond)
		select {
		case <-pause.C:
		case <-req.Context().Done():
			pause.Stop()
			return resp, nil
		}
	}
}
