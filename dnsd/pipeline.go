package dnsd

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// Query is one request travelling down the pipeline. Handlers read it and
// may annotate it; the listener reads the annotations for the query log and
// metrics.
type Query struct {
	Msg    *dns.Msg
	Client netip.Addr
	TCP    bool
	// Recursion is set by the ACL: the client may get answers from the cache
	// and upstream, not only from local zones.
	Recursion bool
	// Source says who answered: local, cache, stale, upstream, refused, error.
	Source string
	// chased counts the sub-queries a CNAME chain took so far, across local
	// zones and upstreams, so that no loop between them runs forever.
	chased int
}

// Question returns the query's only question; the listener rejects
// messages without exactly one before the pipeline sees them.
func (q *Query) Question() dns.Question { return q.Msg.Question[0] }

// Handler answers a query. A nil reply with a nil error means "no answer":
// the listener sends SERVFAIL.
type Handler interface {
	Resolve(ctx context.Context, q *Query) (*dns.Msg, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, q *Query) (*dns.Msg, error)

// Resolve implements Handler.
func (f HandlerFunc) Resolve(ctx context.Context, q *Query) (*dns.Msg, error) { return f(ctx, q) }

// Middleware wraps the next handler in the chain, as CoreDNS plugins do.
type Middleware func(next Handler) Handler

// chain builds ACL → local zones → cache → upstream from the outside in.
func chain(last Handler, mws ...Middleware) Handler {
	h := last
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// reply starts a response to req with rcode.
func reply(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	return m
}
