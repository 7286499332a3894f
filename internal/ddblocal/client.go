package ddblocal

import (
	"net/http"
	"sync"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// MaxConns caps the connections of this process to one DynamoDB Local. DynamoDB Local
// accepts with a listen backlog of 50 and serves one request per connection at a time: a
// burst that dials hundreds of connections overflows the backlog, and each overflow costs
// a 1 s SYN retry. Everything in a process that talks to one DynamoDB Local stays below
// it: its clients (HTTPClient), the proxy of internal/ddblimits, the benchmark's counting
// client and the warm-up's workers (package warmup).
const MaxConns = 48

// httpClients hold one HTTP client per DynamoDB Local endpoint for the whole process.
var (
	httpClientsMu sync.Mutex
	httpClients   = map[string]*awshttp.BuildableClient{}
)

// HTTPClient is the HTTP client of every DynamoDB client of the DynamoDB Local at endpoint
// in this process: one pool of at most MaxConns connections, shared, so calls beyond it
// wait for a free connection instead of overflowing the backlog. pool.NewClient uses it
// for a loopback endpoint: the local stack's function instances each build their own
// DynamoDB client, as in Lambda, but share this process's connections. It is safe for
// concurrent use.
func HTTPClient(endpoint string) *awshttp.BuildableClient {
	httpClientsMu.Lock()
	defer httpClientsMu.Unlock()
	c, ok := httpClients[endpoint]
	if !ok {
		c = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxConnsPerHost = MaxConns
			tr.MaxIdleConns = MaxConns
			tr.MaxIdleConnsPerHost = MaxConns
		})
		httpClients[endpoint] = c
	}
	return c
}
