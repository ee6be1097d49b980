package server

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/airgapd/airgapd/web"
)

// The parts of a reload that are not the plan and the swap: a SIGHUP's
// audit entry, and handing a socket over when a listener moves between a
// wildcard and a specific address of one port.

// sighup reloads the config file after a hand edit (SIGHUP, systemctl
// reload) and puts what happened in the audit log beside the UI's and the
// API's changes: which sections changed, or why the file was refused.
func (s *Server) sighup() {
	s.mu.Lock()
	before := s.cfg
	s.mu.Unlock()
	err := s.applyReload(nil)
	s.mu.Lock()
	after := s.cfg
	s.mu.Unlock()
	e := web.AuditEntry{Time: time.Now(), Who: "root (SIGHUP)", From: "local", Action: "config reloaded", Result: "ok"}
	if err != nil {
		e.Result = "refused: " + err.Error()
		e.Detail = "the running config is unchanged"
	} else {
		e.Detail = changedSections(before, after)
	}
	if werr := web.AppendAudit(after.DataDir, e); werr != nil {
		s.log.Warn("cannot write the audit log", "err", werr)
	}
}

// changedSections says which parts of the config differ between a and b.
func changedSections(a, b *Config) string {
	var changed []string
	if !reflect.DeepEqual(a.Advertise, b.Advertise) {
		changed = append(changed, "advertise")
	}
	if !reflect.DeepEqual(a.Log, b.Log) {
		changed = append(changed, "log")
	}
	for _, sv := range services() {
		if a.Enabled(sv.key) != b.Enabled(sv.key) || !reflect.DeepEqual(a.sectionField(sv.key).Interface(), b.sectionField(sv.key).Interface()) {
			changed = append(changed, sv.key)
		}
	}
	if len(changed) == 0 {
		return "no change"
	}
	return "changed: " + strings.Join(changed, ", ")
}

// handOver makes room for next's sockets where they collide with sockets
// this airgapd serves on that next no longer wants (":8443" narrowed to
// "0.0.0.0:8443"): the instances on those sockets stop first, the sockets
// close, and next's open. That listener is down for a moment, as across
// a restart; the rest keep running. If next's sockets still cannot be
// opened, the stopped instances are started again on their old sockets
// and the error says why. It returns current without the stopped
// instances (plan builds them anew) and the sockets it opened.
func (s *Server) handOver(cur *Config, current []*instance, next *Config) ([]*instance, []socketKey, error) {
	wanted := map[socketKey]bool{s.controlKey: true}
	for _, l := range next.listens() {
		wanted[keyFor(l)] = true
	}
	held := map[socketKey]bool{}
	for _, l := range next.listens() {
		if _, open := s.sockets.files[keyFor(l)]; open {
			continue
		}
		if k, ok := s.sockets.ownOnPort(l.network, l.addr, nil); ok && !wanted[k] {
			held[k] = true
		}
	}
	var victims, rest []*instance
	for _, in := range current {
		on := false
		for _, k := range in.sockets {
			on = on || held[k]
		}
		if on {
			victims = append(victims, in)
		} else {
			rest = append(rest, in)
		}
	}
	deadline := time.Now().Add(stopBudget)
	for _, in := range victims {
		s.log.Info("handing the socket over: stopping the service on it", "service", in.name)
		s.stop(in, deadline)
	}
	s.sockets.close(slices.Collect(maps.Keys(held)))
	opened, err := s.sockets.open(next.listens())
	if err == nil {
		return rest, opened, nil
	}
	// Put the old listeners and services back.
	if _, rerr := s.sockets.open(cur.listens()); rerr != nil {
		return nil, nil, fmt.Errorf("%w; and the previous listeners could not be reopened (%v): restart airgapd", err, rerr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, in := range s.instances {
		if !slices.Contains(victims, in) {
			continue
		}
		for _, sv := range services() {
			if sv.key != in.name {
				continue
			}
			again, berr := s.build(sv, cur)
			if berr != nil {
				return nil, nil, fmt.Errorf("%w; and %s could not be started again (%v): restart airgapd", err, in.name, berr)
			}
			s.launch(again)
			s.instances[i] = again
		}
	}
	return nil, nil, fmt.Errorf("%w (the previous listeners are back)", err)
}
