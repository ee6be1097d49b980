package web

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/airgapd/airgapd/api"
)

// The Settings page: the config file in an editor, secrets hidden
// (secrets.go). "Check and save" first shows the diff against the file
// as it is now; "Save these changes" then validates, writes and reloads.
// "Restore the previous version" shows its diff the same way. An edit
// made on a file that has changed since the page loaded (by hand, by
// another session) is not saved: the page shows what changed outside and
// keeps the edit in the editor.

type settingsPage struct {
	Path     string
	PrevName string // FILE.prev by its real name
	Text     string
	// Base is the ConfigETag of the file the form was filled from: a save
	// made on an older file is refused instead of undoing the newer edit.
	Base string
	// Loaded is the text (secrets masked) the page was loaded with, to
	// show what changed outside the UI.
	Loaded string
	// CanImport: the import form is offered; Imported is an import's
	// report, shown above the YAML it made (in the editor, not yet saved).
	CanImport bool
	Imported  string
	Lines     []settingsLine
	Problems  []api.ConfigProblem
	HasPrev   bool
	ReadOnly  string
	// Diff is the change a save would make (Confirm: the page asks to
	// save it) or a restore would make (Restore).
	Diff    []diffLine
	Confirm bool
	Restore bool
	NoDiff  bool
	// Outside is what changed in the file since the page was loaded.
	Outside []diffLine
}

type settingsLine struct {
	N       int
	Text    string
	Problem string
}

// diffLine is one line of a unified diff; Kind is add, del, hunk or "".
type diffLine struct {
	Kind string
	Text string
}

// unifiedDiff is a's change into b, three lines of context.
func unifiedDiff(aName, bName string, a, b []byte) []diffLine {
	s, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)),
		FromFile: aName, ToFile: bName, Context: 3,
	})
	var out []diffLine
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if l == "" {
			continue
		}
		k := ""
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			k = "file"
		case strings.HasPrefix(l, "@@"):
			k = "hunk"
		case strings.HasPrefix(l, "+"):
			k = "add"
		case strings.HasPrefix(l, "-"):
			k = "del"
		}
		out = append(out, diffLine{Kind: k, Text: strings.TrimRight(l, "\n")})
	}
	return out
}

func (s *Server) settingsData(path string) settingsPage {
	p := settingsPage{Path: path, PrevName: filepath.Base(path) + ".prev", CanImport: s.deps.ConfigImporter != nil}
	if _, err := s.deps.ConfigEditor.PreviousConfig(); err == nil {
		p.HasPrev = true
	}
	return p
}

func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, code int, flash, errMsg string, p settingsPage) {
	s.render(w, r, "settings", code, pageData{Title: "Settings", Nav: "settings", Status: s.status(), Flash: flash, Error: errMsg, Data: p})
}

func (s *Server) pageSettings(w http.ResponseWriter, r *http.Request) {
	path, data, err := s.configFile()
	if err != nil {
		s.renderSettings(w, r, http.StatusOK, "", "", settingsPage{ReadOnly: err.Error()})
		return
	}
	p := s.settingsData(path)
	masked, err := maskSecrets(data)
	if err != nil {
		p.ReadOnly = err.Error()
	}
	p.Text, p.Loaded, p.Base = string(masked), string(masked), ConfigETag(data)
	if r.URL.Query().Get("restore") != "" {
		p.Restore = true
		prev, err := s.deps.ConfigEditor.PreviousConfig()
		if err != nil {
			s.renderSettings(w, r, http.StatusNotFound, "", "no previous version to restore: "+err.Error(), p)
			return
		}
		mprev, err := maskSecrets(prev)
		if err != nil {
			s.renderSettings(w, r, http.StatusConflict, "", err.Error(), p)
			return
		}
		p.Diff = unifiedDiff(filepath.Base(path)+" (now)", p.PrevName, masked, mprev)
		p.NoDiff = len(p.Diff) == 0
	}
	flash := ""
	if r.URL.Query().Get("done") == "saved" {
		flash = fmt.Sprintf("Config saved and reloaded. The version before is kept as %s.", p.PrevName)
	}
	s.renderSettings(w, r, http.StatusOK, flash, "", p)
}

func (s *Server) formSettings(w http.ResponseWriter, r *http.Request) {
	path, cur, err := s.configFile()
	if err != nil {
		s.renderSettings(w, r, http.StatusConflict, "", err.Error(), settingsPage{ReadOnly: err.Error()})
		return
	}
	text := strings.ReplaceAll(r.PostFormValue("config"), "\r\n", "\n")
	p := s.settingsData(path)
	p.Text, p.Base, p.Loaded = text, r.PostFormValue("base"), r.PostFormValue("loaded")
	mcur, merr := maskSecrets(cur)
	if merr != nil {
		s.renderSettings(w, r, http.StatusConflict, "", merr.Error(), p)
		return
	}
	if p.Base != ConfigETag(cur) {
		// Changed outside since the page loaded: show what changed, and
		// keep the edit; a second save is made on the file as it is now.
		setAudit(r, "config edited", path)
		setAuditResult(r, "refused: "+ErrStaleConfig.Error())
		p.Outside = unifiedDiff(filepath.Base(path)+" (when this page loaded)", filepath.Base(path)+" (now)", []byte(p.Loaded), mcur)
		p.Base, p.Loaded = ConfigETag(cur), string(mcur)
		p.Diff, p.Confirm = unifiedDiff(filepath.Base(path)+" (now)", filepath.Base(path)+" (your edit)", mcur, []byte(text)), true
		s.renderSettings(w, r, http.StatusConflict, "", "The config file changed outside this page since it was loaded (a hand edit or another session): its changes are shown below. Your edit is kept in the editor; saving it now replaces those changes.", p)
		return
	}
	real, err := unmaskSecrets([]byte(text), cur)
	if err != nil {
		s.renderSettings(w, r, http.StatusUnprocessableEntity, "", err.Error(), p)
		return
	}
	if string(real) == string(cur) {
		s.renderSettings(w, r, http.StatusOK, "No changes to save: the editor holds the file as it is.", "", p)
		return
	}
	if r.PostFormValue("confirm") == "" {
		p.Diff, p.Confirm = unifiedDiff(filepath.Base(path)+" (now)", filepath.Base(path)+" (your edit)", mcur, []byte(text)), true
		s.renderSettings(w, r, http.StatusOK, "", "", p)
		return
	}
	setAudit(r, "config edited", fmt.Sprintf("%s, %d bytes", path, len(real)))
	if err := s.applyOn(r, p.Base, real); err != nil {
		setAuditResult(r, "refused: "+err.Error())
		var ce *ConfigError
		if errors.As(err, &ce) {
			p.Problems = ce.Problems
			p.Lines = annotate(text, ce.Problems)
		}
		s.renderSettings(w, r, http.StatusUnprocessableEntity, "", err.Error(), p)
		return
	}
	http.Redirect(w, r, "/settings?done=saved", http.StatusSeeOther)
}

// annotate pairs each line of text with the problems found on it.
func annotate(text string, ps []api.ConfigProblem) []settingsLine {
	byLine := map[int][]string{}
	for _, p := range ps {
		if p.Line > 0 {
			msg := p.Msg
			if p.Path != "" {
				msg = p.Path + ": " + msg
			}
			if p.Hint != "" {
				msg += " (" + p.Hint + ")"
			}
			byLine[p.Line] = append(byLine[p.Line], msg)
		}
	}
	var out []settingsLine
	for i, l := range strings.Split(text, "\n") {
		out = append(out, settingsLine{N: i + 1, Text: l, Problem: strings.Join(byLine[i+1], "; ")})
	}
	return out
}

// formRestore puts FILE.prev back, on the file version the diff was shown
// for (base): a file changed since is refused.
func (s *Server) formRestore(w http.ResponseWriter, r *http.Request) {
	if s.deps.ConfigEditor == nil {
		http.Error(w, "no config editor", http.StatusNotFound)
		return
	}
	path, _, _ := s.configFile()
	prevName := filepath.Base(path) + ".prev"
	prev, err := s.deps.ConfigEditor.PreviousConfig()
	setAudit(r, "config restored", "from "+prevName)
	if err == nil {
		err = s.applyOn(r, r.PostFormValue("base"), prev)
	}
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
		p := s.settingsData(path)
		p.ReadOnly = "The restore was not made: " + err.Error() + " Reload the page to see the file as it is now."
		s.renderSettings(w, r, http.StatusConflict, "", err.Error(), p)
		return
	}
	http.Redirect(w, r, "/settings?done=restored", http.StatusSeeOther)
}
