package dnsd

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/airgapd/airgapd/internal/conf"
)

// acl is BIND's allow-query / allow-recursion: outside allowQuery a client
// is REFUSED; inside it but outside allowRecursion it gets answers from
// local zones only.
type acl struct {
	allowQuery     []netip.Prefix
	allowRecursion []netip.Prefix
}

func newACL(c Config) (acl, error) {
	q, err := parsePrefixes(c.AllowQuery)
	if err != nil {
		return acl{}, err
	}
	r, err := parsePrefixes(c.AllowRecursion)
	if err != nil {
		return acl{}, err
	}
	return acl{allowQuery: q, allowRecursion: r}, nil
}

func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := conf.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// middleware refuses clients outside allow_query and marks who may recurse.
func (a acl) middleware(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, q *Query) (*dns.Msg, error) {
		if !contains(a.allowQuery, q.Client) {
			q.Source = "refused"
			return reply(q.Msg, dns.RcodeRefused), nil
		}
		q.Recursion = contains(a.allowRecursion, q.Client)
		return next.Resolve(ctx, q)
	})
}

// refuseRecursion ends the chain for clients that may not recurse: what
// local zones did not answer is REFUSED, as BIND does.
func refuseRecursion(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, q *Query) (*dns.Msg, error) {
		if !q.Recursion {
			q.Source = "refused"
			return reply(q.Msg, dns.RcodeRefused), nil
		}
		return next.Resolve(ctx, q)
	})
}
