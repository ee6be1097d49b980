package web

import (
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/humanize"
)

// The status pages: the overview and each service's page, rendered from
// the typed status report.

type overviewCard struct {
	Service api.ServiceStatus
	Label   string
	Figure  string
	Spark   template.HTML
}

func (s *Server) pageOverview(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	qps, _ := s.hist.dns()
	var cards []overviewCard
	for _, sv := range st.Services {
		c := overviewCard{Service: sv, Label: strings.ToUpper(sv.Name)}
		switch sv.Name {
		case "dns":
			v := valueOf(sv.DNS)
			if sv.Running() {
				c.Figure = fmt.Sprintf("%s q/s · cache %s", formatFloat(v.QPS), formatPercent(v.Cache.HitRatio*100))
				c.Spark = sparkSVG(qps)
			}
		case "ntp":
			v := valueOf(sv.NTP)
			if sv.Running() {
				c.Figure = fmt.Sprintf("stratum %d · offset %s", v.Stratum, formatSeconds(v.Offset))
				var ps []point
				for _, h := range v.History {
					ps = append(ps, point{At: h.At, V: h.Offset})
				}
				c.Spark = sparkSVG(ps)
			}
		case "gateway":
			v := valueOf(sv.Gateway)
			if sv.Running() {
				c.Figure = fmt.Sprintf("%s mode · %d rules · ip_forward=%s", v.Mode, len(v.Rules), v.IPForward)
			}
		case "mirror":
			v := valueOf(sv.Mirror)
			if sv.Running() {
				c.Figure = humanize.Count(len(v.Repos), "repo")
			}
		case "pypi":
			if sv.Running() {
				c.Figure = valueOf(sv.PyPI).Summary
			}
		case "goproxy":
			if v := valueOf(sv.GoProxy); sv.Running() {
				c.Figure = fmt.Sprintf("%d modules · %s", v.Modules, humanize.Bytes(v.Bytes))
			}
		case "registry":
			v := valueOf(sv.Registry)
			if sv.Running() {
				c.Figure = humanize.Count(len(v.Repositories), "repository") + " · " + humanize.Bytes(v.Bytes)
			}
		}
		cards = append(cards, c)
	}
	s.render(w, r, "overview", http.StatusOK, pageData{Title: "Overview", Nav: "overview", Status: st, Node: s.nodeLine(r), Data: cards})
}

// serviceTitles are the service pages' titles.
var serviceTitles = map[string]string{"ntp": "NTP", "gateway": "Gateway", "mirror": "Mirror", "pypi": "PyPI", "goproxy": "Go proxy", "registry": "Registry", "charts": "Charts"}

// pageService renders a service page; a service that does not run gets a
// plain sentence saying so.
func (s *Server) pageService(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.renderService(w, r, name, http.StatusOK, "", "", nil)
	}
}

// renderService renders a service page with a flash or an error and the
// result of the action just taken, if any.
func (s *Server) renderService(w http.ResponseWriter, r *http.Request, name string, code int, flash, errMsg string, action any) {
	st := s.status()
	sv := st.Service(name)
	d := pageData{Title: serviceTitles[name], Nav: name, Status: st, Service: sv, Flash: flash, Error: errMsg, Action: action}
	if sv.Running() {
		switch name {
		case "ntp":
			v := valueOf(sv.NTP)
			var ps []point
			for _, h := range v.History {
				ps = append(ps, point{At: h.At, V: h.Offset, Mark: h.Operator})
			}
			d.Data = struct {
				api.NTPStatus
				Plot     template.HTML
				Now      string
				Settable bool
			}{v, plotSVG("Served offset from the system clock", ps, formatSeconds), s.now().Local().Format("2006-01-02 15:04:05"), s.deps.NTPClock != nil}
		case "gateway":
			v := valueOf(sv.Gateway)
			d.Data = v
		case "mirror":
			v := valueOf(sv.Mirror)
			canSync := s.deps.MirrorSyncer != nil
			d.Data = struct {
				api.MirrorStatus
				CanSync   bool
				CanImport bool
				Jobs      []jobView
				Apt       *api.AptStatus // the APT repos beside, when apt: runs
			}{v, canSync, s.deps.BundleImporter != nil, s.jobViews(""), st.Service(api.ServiceApt).Apt}
		case "pypi":
			d.Data = s.pypiPage(r, valueOf(sv.PyPI))
		case "goproxy":
			d.Data = s.goproxyPage(r, valueOf(sv.GoProxy))
		case "registry":
			v := valueOf(sv.Registry)
			filter := strings.TrimSpace(r.URL.Query().Get("q"))
			if f := strings.ToLower(filter); f != "" {
				kept := v.Repositories[:0:0]
				for _, repo := range v.Repositories {
					if strings.Contains(strings.ToLower(repo.Name+" "+strings.Join(repo.Tags, " ")), f) {
						kept = append(kept, repo)
					}
				}
				v.Repositories = kept
			}
			d.Data = struct {
				api.RegistryStatus
				CanGC  bool
				Filter string
			}{v, s.deps.RegistryAdmin != nil, filter}
		case "charts":
			d.Data = valueOf(sv.Charts)
		}
	}
	s.render(w, r, name, code, d)
}

type dnsPage struct {
	api.DNSStatus
	Records  []zoneRecords
	Editable bool
	EditNote string
	Filter   string
	// RecordFilter keeps the local records that contain it (?rq=).
	RecordFilter string
	QPSPlot      template.HTML
	HitPlot      template.HTML
}

type zoneRecords struct {
	Zone    string
	Serial  uint32
	Records []string
}

func (s *Server) pageDNS(w http.ResponseWriter, r *http.Request) {
	s.renderDNS(w, r, http.StatusOK, "")
}

func (s *Server) renderDNS(w http.ResponseWriter, r *http.Request, code int, errMsg string) {
	st := s.status()
	sv := st.Service(api.ServiceDNS)
	d := pageData{Title: "DNS", Nav: "dns", Status: st, Service: sv, Error: errMsg}
	if sv.Running() {
		p := dnsPage{Filter: r.URL.Query().Get("q"), RecordFilter: strings.TrimSpace(r.URL.Query().Get("rq"))}
		p.DNSStatus = valueOf(sv.DNS)
		qps, hit := s.hist.dns()
		p.QPSPlot = plotSVG("Queries per second", qps, formatFloat)
		p.HitPlot = plotSVG("Cache hit ratio", hit, formatPercent)
		if p.Filter != "" {
			f := strings.ToLower(p.Filter)
			recent := p.Recent[:0:0]
			for _, e := range p.Recent {
				if strings.Contains(strings.ToLower(e.Name+" "+e.Client+" "+e.Type+" "+e.Rcode+" "+e.Source), f) {
					recent = append(recent, e)
				}
			}
			p.Recent = recent
		}
		serials := map[string]uint32{}
		for _, z := range p.Zones {
			serials[strings.TrimSuffix(strings.ToLower(z.Name), ".")] = z.Serial
		}
		if _, data, err := s.configFile(); err == nil {
			p.Editable = true
			recs, err := ZoneRecords(data)
			if err != nil {
				p.EditNote = err.Error()
			}
			for zone, rs := range recs {
				if f := strings.ToLower(p.RecordFilter); f != "" {
					kept := rs[:0:0]
					for _, rec := range rs {
						if strings.Contains(strings.ToLower(rec+" "+zone), f) {
							kept = append(kept, rec)
						}
					}
					rs = kept
				}
				p.Records = append(p.Records, zoneRecords{Zone: zone, Serial: serials[strings.TrimSuffix(strings.ToLower(zone), ".")], Records: rs})
			}
			sort.Slice(p.Records, func(i, j int) bool { return p.Records[i].Zone < p.Records[j].Zone })
		} else {
			p.EditNote = err.Error()
		}
		d.Data = p
	}
	s.render(w, r, "dns", code, d)
}
