package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"strings"
	"text/template"

	"github.com/go-chi/chi/v5"
)

// NodeBootstrap is what /bootstrap/node.sh is rendered from: how a node
// reaches the admin host, and which services to point it at.
type NodeBootstrap struct {
	AdminName       string   // advertise.name
	AdminAddr       string   // the first of advertise.addresses
	SearchDomain    string   // the first local DNS zone, or ""
	DNS, NTP        bool     // serve names / time to the nodes
	Gateway         bool     // a default route via the admin host
	MirrorURL       string   // http://ADDR:PORT of the mirror listener, "" when off
	Repos           []string // repos served, each as /repos/NAME.repo
	AptRepos        []string // APT repos served, each as /apt/NAME.sources
	Registry        string   // ADDR:PORT of the registry, "" when off
	RegistryMirrors []string // upstreams containerd should reach through it
	PyPIURL         string   // the PyPI simple index (/pypi/simple/), "" when off
	// GoProxyURL is the Go module proxy (MirrorURL/goproxy), "" when off;
	// GoSumDB the GOSUMDB key of the checksum database it proxies, or "".
	GoProxyURL, GoSumDB string
	// ReportFrom are the networks whose nodes may POST their checklist to
	// /bootstrap/report: dns.allow_query (loopback only when empty).
	ReportFrom []string
	// PairAddrs, on an HA pair (AdminAddr is then the VIP), are both admin
	// hosts' own addresses: the nodes' nameserver and chrony server lines,
	// so names and time survive a host whose VIP has not moved yet.
	PairAddrs []string
}

// Bootstrapper provides the data node.sh is rendered from, from the
// running config.
type Bootstrapper interface {
	NodeBootstrap() NodeBootstrap
}

//go:embed node.sh.tmpl
var nodeScriptText string

// nodeScript is parsed once per server; template data only, no state.
func parseNodeScript() *template.Template {
	return template.Must(template.New("node.sh").Funcs(template.FuncMap{
		"sq":   shellQuote,
		"join": strings.Join,
	}).Parse(nodeScriptText))
}

// shellQuote makes s one single-quoted POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// caFingerprint is the SHA-256 of the CA certificate's DER bytes, as
// `openssl x509 -noout -fingerprint -sha256` shows it (without colons).
func caFingerprint(caPEM []byte) string {
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return ""
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// bootstrapRoutes serves what a node fetches before it trusts anything.
func (s *Server) bootstrapRoutes(r chi.Router) {
	r.Get("/bootstrap/node.sh", s.handleNodeScript)
	r.Post("/bootstrap/report", s.handleReport)
	if s.deps.RegistryNodeFiles != nil {
		r.Handle("/bootstrap/registry/*", http.StripPrefix("/bootstrap/registry", s.deps.RegistryNodeFiles))
	}
}

// handleNodeScript renders node.sh for the node asking: the base URL is
// the one the node used, which is known to reach this host.
func (s *Server) handleNodeScript(w http.ResponseWriter, r *http.Request) {
	b := s.deps.Bootstrapper
	ca := s.deps.Instance.CACertPEM()
	if b == nil || ca == nil {
		http.Error(w, "node bootstrap needs the appliance CA and the running config", http.StatusNotFound)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	data := struct {
		NodeBootstrap
		BaseURL  string
		CASHA256 string
	}{b.NodeBootstrap(), scheme + "://" + r.Host, caFingerprint(ca)}
	var out bytes.Buffer
	if err := s.nodeScript.Execute(&out, data); err != nil {
		s.log.Error("render node.sh", "err", err)
		http.Error(w, "cannot render node.sh: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/x-shellscript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(out.Bytes())
}
