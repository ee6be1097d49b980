package registry

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
)

// NodeOptions say how nodes reach this registry, for the files that point
// their container runtime at it.
type NodeOptions struct {
	// Host is host:port as nodes use it: advertise.name (or an advertised
	// address) and registry.listen's port.
	Host string
	// PlainHTTP is set when registry.tls is off.
	PlainHTTP bool
	// CAPath is where nodes keep airgapd's CA; empty means the path the
	// bootstrap installs it at on Rocky/RHEL.
	CAPath string
	// Upstreams are the registries nodes reach through this one
	// (registry.mirrors); containerd sends their name as ns=.
	Upstreams []Mirror
}

// DefaultNodeCAPath is where nodes keep the appliance CA (then
// `update-ca-trust`).
const DefaultNodeCAPath = "/etc/pki/ca-trust/source/anchors/airgapd-ca.crt"

// NodeOptions returns the options for this registry as nodes reach it at
// advertise (advertise.name, or an address when there is no name).
func (r *Registry) NodeOptions(advertise string) NodeOptions {
	cfg := r.cfg.Load()
	_, port, _ := net.SplitHostPort(cfg.Listen)
	return NodeOptions{
		Host:      net.JoinHostPort(advertise, port),
		PlainHTTP: cfg.TLS.Mode == conf.TLSOff,
		Upstreams: cfg.Mirrors,
	}
}

func (o NodeOptions) scheme() string {
	if o.PlainHTTP {
		return "http"
	}
	return "https"
}

func (o NodeOptions) caPath() string {
	if o.CAPath != "" {
		return o.CAPath
	}
	return DefaultNodeCAPath
}

// upstreamURL is where containerd would go for name without a mirror.
func upstreamURL(m Mirror) string {
	if m.URL != "" {
		return strings.TrimRight(m.URL, "/")
	}
	if m.Name == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + m.Name
}

// HostsTOML is containerd's /etc/containerd/certs.d/NS/hosts.toml for one
// namespace: an upstream from Upstreams, or Host itself (this registry,
// pull and push). For an upstream, `server` is this registry, with its
// capabilities and CA beside it and an empty [host] table: containerd
// never dials the upstream itself, so a node behind the gap does not wait
// out a 30 s dial timeout per pull, and a miss is asked once (a [host]
// entry repeating `server` makes containerd ask twice). containerd 1.6
// refuses a file with no [host] table at all ("invalid `host` tree") and
// falls back to the upstream, hence the empty one. containerd adds ?ns=NS
// to each request, which is what keeps the upstreams apart here. The
// format is the same for containerd 1.6/1.7 and 2.x; only the config.toml
// line that enables the folder differs (ContainerdConfig).
func HostsTOML(ns string, o NodeOptions) (string, error) {
	self := o.scheme() + "://" + o.Host
	var b strings.Builder
	fmt.Fprintf(&b, "# /etc/containerd/certs.d/%s/hosts.toml, written by airgapd\n", ns)
	if ns == o.Host {
		fmt.Fprintf(&b, "server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n", self, self)
		if !o.PlainHTTP {
			fmt.Fprintf(&b, "  ca = %q\n", o.caPath())
		}
		return b.String(), nil
	}
	i := slices.IndexFunc(o.Upstreams, func(m Mirror) bool { return m.Name == ns })
	if i < 0 {
		return "", fmt.Errorf("%q is neither this registry (%s) nor one of registry.mirrors", ns, o.Host)
	}
	fmt.Fprintf(&b, "# %s (%s) is reached through airgapd only.\n", ns, upstreamURL(o.Upstreams[i]))
	fmt.Fprintf(&b, "server = %q\ncapabilities = [\"pull\", \"resolve\"]\n", self)
	if !o.PlainHTTP {
		fmt.Fprintf(&b, "ca = %q\n", o.caPath())
	}
	b.WriteString("\n# No other hosts; containerd 1.6 needs the table, even empty.\n[host]\n")
	return b.String(), nil
}

// ContainerdConfig is the config.toml part that makes containerd's CRI
// plugin read certs.d: version 2 is containerd 1.6 and 1.7's config
// (`version = 2`), version 3 is containerd 2.x's.
func ContainerdConfig(version int) (string, error) {
	switch version {
	case 2:
		return "# containerd 1.6/1.7, /etc/containerd/config.toml (version = 2)\n" +
			"[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n", nil
	case 3:
		return "# containerd 2.x, /etc/containerd/config.toml (version = 3)\n" +
			"[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d'\n", nil
	}
	return "", fmt.Errorf("containerd config version %d: want 2 (containerd 1.6/1.7) or 3 (2.x)", version)
}

// RegistriesConf is /etc/containers/registries.conf.d/50-airgapd.conf for
// CRI-O and podman (containers-registries.conf v2): this registry, and each
// upstream mirrored through it. CRI-O sends no ns=, so a mirror's location
// carries the upstream's name as the first path element
// (HOST/docker.io/library/nginx), which the pull-through serves like
// ?ns=docker.io. They trust the CA through the system store
// (update-ca-trust), or /etc/containers/certs.d/HOST/ca.crt.
func RegistriesConf(o NodeOptions) string {
	var b strings.Builder
	b.WriteString("# /etc/containers/registries.conf.d/50-airgapd.conf, written by airgapd\n")
	fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = %t\n", o.Host, o.PlainHTTP)
	for _, m := range o.Upstreams {
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\n\n[[registry.mirror]]\nlocation = %q\ninsecure = %t\n",
			m.Name, m.Name, o.Host+"/"+m.Name, o.PlainHTTP)
	}
	return b.String()
}

// NodeFiles are every file above, by the path a node keeps it at.
func NodeFiles(o NodeOptions) map[string]string {
	out := map[string]string{}
	for _, ns := range append([]string{o.Host}, mirrorNames(o.Upstreams)...) {
		s, err := HostsTOML(ns, o)
		if err == nil {
			out["/etc/containerd/certs.d/"+ns+"/hosts.toml"] = s
		}
	}
	out["/etc/containers/registries.conf.d/50-airgapd.conf"] = RegistriesConf(o)
	return out
}

func mirrorNames(ms []Mirror) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// NodeConfigHandler serves the node files for the bootstrap issue to mount
// (web owns the route). Paths, relative to where it is mounted:
//
//	containerd/certs.d/NS/hosts.toml   NS = an upstream, or HOST (this registry)
//	containerd/config-v2.toml          containerd 1.6/1.7's config_path line
//	containerd/config-v3.toml          containerd 2.x's
//	containers/registries.conf         CRI-O and podman
//
// options is called on every request, so a reload shows at once.
func NodeConfigHandler(options func() NodeOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		o := options()
		p := req.URL.Path
		if i := strings.Index(p, "containerd/"); i >= 0 {
			p = p[i:]
		} else if i := strings.Index(p, "containers/"); i >= 0 {
			p = p[i:]
		}
		var body string
		var err error
		switch {
		case p == "containerd/config-v2.toml":
			body, err = ContainerdConfig(2)
		case p == "containerd/config-v3.toml":
			body, err = ContainerdConfig(3)
		case p == "containers/registries.conf":
			body = RegistriesConf(o)
		case strings.HasPrefix(p, "containerd/certs.d/") && strings.HasSuffix(p, "/hosts.toml"):
			ns := strings.TrimSuffix(strings.TrimPrefix(p, "containerd/certs.d/"), "/hosts.toml")
			if body, err = HostsTOML(ns, o); err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
		default:
			http.NotFound(w, req)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/toml; charset=utf-8")
		fmt.Fprint(w, body)
	})
}
