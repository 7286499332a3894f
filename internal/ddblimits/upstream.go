package ddblimits

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sandbox-broker/broker/internal/ddblocal"
)

// targetPrefix starts every X-Amz-Target of DynamoDB's JSON 1.0 protocol; the operation
// follows it.
const targetPrefix = "DynamoDB_20120810."

// maxBody bounds a request or response body the proxy reads (DynamoDB's largest requests
// are batches of 16 MB).
const maxBody = 32 << 20

// upstream is DynamoDB Local behind the proxy.
type upstream struct {
	url    string
	client *http.Client
	// send is client sending again what DynamoDB Local refused with its lock-wait timeout:
	// the proxy stands for AWS, which never answers that (ddblocal.RetryLockTimeouts).
	send aws.HTTPClient
}

func newUpstream(url string) *upstream {
	client := &http.Client{Transport: &http.Transport{
		// The proxy's clients cap their connections below DynamoDB Local's listen backlog;
		// so does the proxy, whose own reads add to theirs.
		MaxConnsPerHost:     ddblocal.MaxConns,
		MaxIdleConnsPerHost: ddblocal.MaxConns,
	}}
	return &upstream{url: strings.TrimSuffix(url, "/"), client: client, send: ddblocal.RetryLockTimeouts(client)}
}

// reply is DynamoDB Local's answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// errorCode is the error code of a non-200 reply: its __type without the namespace.
func (r reply) errorCode() string {
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Type[strings.LastIndex(e.Type, "#")+1:]
}

// forward sends a client's request on (its body possibly changed) and reads the answer.
func (u *upstream) forward(ctx context.Context, r *http.Request, body []byte) (reply, error) {
	out, err := http.NewRequestWithContext(ctx, r.Method, u.url+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for name, values := range r.Header {
		switch http.CanonicalHeaderKey(name) {
		case "Content-Length", "Accept-Encoding", "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		default:
			out.Header[name] = values
		}
	}
	resp, err := u.send.Do(out)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return reply{}, err
	}
	header := http.Header{}
	for name, values := range resp.Header {
		switch http.CanonicalHeaderKey(name) {
		case "Content-Length", "X-Amz-Crc32", "Connection", "Date", "Server":
		default:
			header[name] = values
		}
	}
	return reply{resp.StatusCode, header, respBody}, nil
}

// call is the proxy's own request to DynamoDB Local, made with the credentials of the
// client request it serves (DynamoDB Local keeps each access key's tables apart).
func (u *upstream) call(ctx context.Context, auth http.Header, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	for _, name := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v := auth.Get(name); v != "" {
			req.Header.Set(name, v)
		}
	}
	resp, err := u.send.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ddblimits: %s: %d %s", op, resp.StatusCode, reply{body: respBody}.errorCode())
	}
	return json.Unmarshal(respBody, out)
}

var credentialScope = regexp.MustCompile(`Credential=([^/,\s]+)/[^/]+/([^/]+)/`)

// namespace is the access key and region a request is signed for: DynamoDB Local's
// namespace of tables (unless it runs with -sharedDb, where it is one for all).
func namespace(h http.Header) string {
	m := credentialScope.FindStringSubmatch(h.Get("Authorization"))
	if m == nil {
		return ""
	}
	return m[1] + "/" + m[2]
}

// attempt is the attempt number an AWS SDK writes in Amz-Sdk-Request ("attempt=2; max=4"),
// 1 when absent.
func attempt(h http.Header) int {
	for _, part := range strings.Split(h.Get("Amz-Sdk-Request"), ";") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(part), "attempt=%d", &n); err == nil {
			return n
		}
	}
	return 1
}
