package ddblimits

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Proxy is a running proxy in front of DynamoDB Local.
type Proxy struct {
	// URL is where clients send their requests: http://127.0.0.1:<port>.
	URL string

	cfg        Config
	now        func() time.Time
	up         *upstream
	schemas    schemas
	throughput *throughput
	holds      *holds
	counts     *counter

	rngMu sync.Mutex
	rng   *rand.Rand

	server *http.Server
	served chan struct{}
}

// Start serves a proxy to the DynamoDB Local at upstream on a free loopback port. The
// upstream must be on loopback: the proxy forwards requests signed for its own address,
// which only DynamoDB Local accepts, and AWS applies its limits itself.
func Start(upstream string, cfg Config) (*Proxy, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if u, err := url.Parse(upstream); err != nil || !(u.Hostname() == "localhost" || net.ParseIP(u.Hostname()).IsLoopback()) {
		return nil, fmt.Errorf("ddblimits: %q is not a DynamoDB Local on loopback", upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ddblimits: listen: %w", err)
	}
	p := newProxy(upstream, cfg)
	p.URL = "http://" + ln.Addr().String()
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	p.served = make(chan struct{})
	go func() {
		defer close(p.served)
		_ = p.server.Serve(ln) // http.ErrServerClosed after Stop
	}()
	return p, nil
}

func newProxy(upstream string, cfg Config) *Proxy {
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Proxy{
		cfg:        cfg,
		now:        now,
		up:         newUpstream(upstream),
		schemas:    schemas{tables: map[string]*tableSchema{}},
		throughput: cfg.newThroughput(),
		holds:      &holds{held: map[itemID]bool{}},
		counts:     newCounter(),
		rng:        rand.New(rand.NewPCG(seed, seed>>1|1)),
	}
}

// Stop stops serving; requests in flight finish first.
func (p *Proxy) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.server.Shutdown(ctx)
	<-p.served
	p.up.client.CloseIdleConnections()
}

// Counts returns what the proxy has done so far.
func (p *Proxy) Counts() Counts { return p.counts.snapshot() }

func (p *Proxy) chance(rate float64) bool {
	if rate <= 0 {
		return false
	}
	p.rngMu.Lock()
	defer p.rngMu.Unlock()
	return p.rng.Float64() < rate
}

// ServeHTTP answers one DynamoDB request: it may refuse it as AWS would (a fault, a
// transaction conflict, throttling), else forwards it to DynamoDB Local, bills what it
// consumed and passes the answer back, or loses that answer to an injected 500.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, "ddblimits: read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	p.counts.update(func(c *Counts) {
		c.Requests++
		if attempt(r.Header) > 1 {
			c.Retries++
		}
	})
	if p.chance(p.cfg.UnavailableRate) {
		p.refuse(w, Injected, plainError(http.StatusServiceUnavailable, CodeServiceUnavailable, msgBusy), "")
		return
	}
	ns := namespace(r.Header)
	if table := definitionChange(op, body); table != "" {
		p.schemas.forget(ns, table)
	}
	var adm *admission
	if req := parseRequest(op, body); req != nil && (p.cfg.limitsThroughput() || p.cfg.Conflicts) {
		var refused *answer
		var kind, detail string
		adm, refused, kind, detail = p.admit(r.Context(), r.Header, ns, req)
		if refused != nil {
			p.refuse(w, kind, *refused, detail)
			return
		}
		if adm != nil && adm.askedCapacity {
			body = withConsumedCapacity(body)
		}
	}
	if p.chance(p.cfg.LatencyRate) {
		p.counts.update(func(c *Counts) { c.Delayed++ })
		select {
		case <-time.After(p.cfg.Latency):
		case <-r.Context().Done():
		}
	}
	forwarded := p.now()
	rep, err := p.up.forward(r.Context(), r, body)
	if adm != nil && len(adm.held) > 0 {
		p.waitUntil(r.Context(), forwarded.Add(p.cfg.transactionTime()))
	}
	if adm != nil {
		rep.body = p.settle(context.WithoutCancel(r.Context()), r.Header, adm, rep, err == nil)
	}
	if err != nil {
		http.Error(w, "ddblimits: DynamoDB Local: "+err.Error(), http.StatusBadGateway)
		return
	}
	if p.chance(p.cfg.InternalErrorRate) {
		p.refuse(w, Injected, plainError(http.StatusInternalServerError, CodeInternalServerError, msgInternal), "")
		return
	}
	writeAnswer(w, rep.status, rep.body, rep.header)
}

// waitUntil waits for the proxy's clock to reach deadline (a test's clock moves when the
// test moves it), or for the client to give up.
func (p *Proxy) waitUntil(ctx context.Context, deadline time.Time) {
	for {
		left := deadline.Sub(p.now())
		if left <= 0 {
			return
		}
		select {
		case <-time.After(min(left, 5*time.Millisecond)):
		case <-ctx.Done():
			return
		}
	}
}

func (p *Proxy) refuse(w http.ResponseWriter, kind string, a answer, detail string) {
	p.counts.refused(Refusal{Kind: kind, Code: a.code(), Detail: detail})
	a.write(w)
}

// admission is a request the proxy let through: what it holds and drew, to settle once
// DynamoDB Local has answered.
type admission struct {
	req *request
	ns  string
	// tables are the schemas of the request's tables; the request's writes carry their keys.
	tables map[string]*tableSchema
	// held are the items a transaction holds.
	held []itemID
	// before are the items the writes touch as they were at admission (nil: no item).
	before []item
	// drawn is what admission drew from the throughput: the cost estimated from before.
	drawn []charge
	// askedCapacity: the proxy asked DynamoDB Local for the read's consumed capacity, which
	// the client did not ask for; the proxy takes it out of the answer.
	askedCapacity bool
}

// admit decides whether AWS would let the request through. It returns the admission, or
// the answer refusing the request, with its kind and detail; a nil admission with no
// answer forwards the request without limits (a table the proxy cannot describe: DynamoDB
// Local answers it).
func (p *Proxy) admit(ctx context.Context, auth http.Header, ns string, req *request) (adm *admission, refused *answer, kind, detail string) {
	adm = &admission{req: req, ns: ns, tables: map[string]*tableSchema{}}
	tables := []string{}
	for _, w := range req.writes {
		tables = append(tables, w.table)
	}
	if req.read != nil {
		tables = append(tables, req.read.table)
	}
	for _, name := range tables {
		t, err := p.schemas.get(ctx, p.up, auth, ns, name)
		if err != nil {
			return nil, nil, "", ""
		}
		adm.tables[name] = t
	}
	ids := make([]itemID, len(req.writes))
	for i := range req.writes {
		w := &req.writes[i]
		t := adm.tables[w.table]
		if w.kind == "Put" {
			w.key = t.key(w.put)
		}
		ids[i] = newItemID(ns, w.table, t, w.key)
	}
	now := p.now()
	if p.cfg.Conflicts && len(ids) > 0 {
		if a := p.conflict(req, ids); a != nil {
			return nil, a, Conflict, ""
		}
		if req.transactional {
			adm.held = ids
		}
	}
	if !p.cfg.limitsThroughput() {
		return adm, nil, "", ""
	}
	if req.read != nil {
		adm.drawn = []charge{readCharge(adm.tables[req.read.table], req.read, 0)}
		adm.askedCapacity = !req.read.capacityReturned
	} else {
		adm.before = p.images(ctx, auth, ns, adm.tables, req.writes, nil)
		adm.drawn = p.writeCost(adm, adm.estimate())
	}
	if refusedBy := p.throughput.take(adm.drawn, now); len(refusedBy) > 0 {
		p.holds.release(adm.held)
		a := throttled(adm.tables[tables[0]], req, refusedBy)
		return nil, &a, Throttle, throttleDetail(refusedBy)
	}
	return adm, nil, "", ""
}

// conflict refuses a write that touches an item a transaction in flight holds: a
// transaction is cancelled with TransactionConflict on those items, a single-item write
// gets TransactionConflictException. A transaction that goes through holds its items.
func (p *Proxy) conflict(req *request, ids []itemID) *answer {
	if !req.transactional {
		if len(p.holds.busy(ids)) == 0 {
			return nil
		}
		a := plainError(http.StatusBadRequest, CodeTransactionConflict, msgOngoing)
		return &a
	}
	busy := p.holds.hold(ids)
	if len(busy) == 0 {
		return nil
	}
	causes := map[int]cancellationEntry{}
	for _, i := range busy {
		causes[i] = cancellationEntry{Code: ReasonTransactionConflict, Message: msgOngoing}
	}
	a := canceled(len(req.writes), causes)
	return &a
}

// estimate is each write's item as admission expects it after the write: a Put's item,
// nothing after a Delete, and an Update's or ConditionCheck's item as it was (its size
// is what the proxy knows before the write).
func (adm *admission) estimate() []item {
	after := make([]item, len(adm.req.writes))
	for i, w := range adm.req.writes {
		switch w.kind {
		case "Put":
			after[i] = w.put
		case "Delete":
		default:
			after[i] = adm.before[i]
		}
	}
	return after
}

func (p *Proxy) writeCost(adm *admission, after []item) []charge {
	var out []charge
	for i, w := range adm.req.writes {
		out = append(out, writeCharges(adm.tables[w.table], w, i, adm.before[i], after[i], adm.req.transactional)...)
	}
	return out
}

// settle bills the request with what it cost, frees a transaction's items, and returns
// the answer's body (without the consumed capacity the proxy asked for).
func (p *Proxy) settle(ctx context.Context, auth http.Header, adm *admission, rep reply, reached bool) []byte {
	p.holds.release(adm.held)
	if !p.cfg.limitsThroughput() {
		return rep.body
	}
	var cost []charge
	switch {
	case !reached:
	case adm.req.read != nil && rep.status == http.StatusOK:
		var out struct {
			ConsumedCapacity struct{ CapacityUnits float64 }
		}
		_ = json.Unmarshal(rep.body, &out)
		cost = []charge{readCharge(adm.tables[adm.req.read.table], adm.req.read, out.ConsumedCapacity.CapacityUnits)}
	case adm.req.read != nil:
	case rep.status == http.StatusOK:
		cost = p.writeCost(adm, p.after(ctx, auth, adm))
	case rep.status == http.StatusBadRequest && (rep.errorCode() == "ConditionalCheckFailedException" || rep.errorCode() == CodeTransactionCanceled):
		// Nothing changed, and DynamoDB bills the writes all the same.
		cost = p.writeCost(adm, adm.before)
	}
	p.throughput.settle(adm.drawn, cost, p.now())
	p.counts.consumed(cost)
	if adm.askedCapacity && rep.status == http.StatusOK {
		return withoutConsumedCapacity(rep.body)
	}
	return rep.body
}

// after reads the items the writes of a request that succeeded left: a Put's item, none
// after a Delete, an Update's read back from DynamoDB Local.
func (p *Proxy) after(ctx context.Context, auth http.Header, adm *admission) []item {
	after := adm.estimate()
	var updates []int
	for i, w := range adm.req.writes {
		if w.kind == "Update" {
			updates = append(updates, i)
		}
	}
	if len(updates) > 0 {
		read := p.images(ctx, auth, adm.ns, adm.tables, adm.req.writes, updates)
		for _, i := range updates {
			after[i] = read[i]
		}
	}
	return after
}

// images reads, in one strongly consistent BatchGetItem, the items of the writes at the
// positions given (all when nil); nil for an item that does not exist. An item the read
// misses (DynamoDB Local failing) counts as absent: the bill is then a lower bound.
func (p *Proxy) images(ctx context.Context, auth http.Header, ns string, tables map[string]*tableSchema, writes []write, positions []int) []item {
	if positions == nil {
		for i := range writes {
			positions = append(positions, i)
		}
	}
	type keysAndAttributes struct {
		Keys           []item
		ConsistentRead bool
	}
	in := struct{ RequestItems map[string]*keysAndAttributes }{map[string]*keysAndAttributes{}}
	at := map[itemID]int{}
	for _, i := range positions {
		w := writes[i]
		ka := in.RequestItems[w.table]
		if ka == nil {
			ka = &keysAndAttributes{ConsistentRead: true}
			in.RequestItems[w.table] = ka
		}
		ka.Keys = append(ka.Keys, w.key)
		at[newItemID(ns, w.table, tables[w.table], w.key)] = i
	}
	images := make([]item, len(writes))
	var out struct{ Responses map[string][]item }
	if err := p.up.call(ctx, auth, "BatchGetItem", in, &out); err != nil {
		return images
	}
	for table, items := range out.Responses {
		for _, it := range items {
			if i, ok := at[newItemID(ns, table, tables[table], tables[table].key(it))]; ok {
				images[i] = it
			}
		}
	}
	return images
}

// definitionChange is the table whose definition the request creates, changes or drops.
func definitionChange(op string, body []byte) string {
	switch op {
	case "CreateTable", "UpdateTable", "DeleteTable":
		var in struct{ TableName string }
		_ = json.Unmarshal(body, &in)
		return in.TableName
	}
	return ""
}

// withConsumedCapacity asks DynamoDB Local for a read's consumed capacity when the client
// did not: DynamoDB Local applies DynamoDB's rules for reads, whatever the projection.
func withConsumedCapacity(body []byte) []byte {
	var in map[string]json.RawMessage
	if json.Unmarshal(body, &in) != nil {
		return body
	}
	in["ReturnConsumedCapacity"] = json.RawMessage(`"TOTAL"`)
	out, err := json.Marshal(in)
	if err != nil {
		return body
	}
	return out
}

func withoutConsumedCapacity(body []byte) []byte {
	var out map[string]json.RawMessage
	if json.Unmarshal(body, &out) != nil {
		return body
	}
	delete(out, "ConsumedCapacity")
	b, err := json.Marshal(out)
	if err != nil {
		return body
	}
	return b
}
