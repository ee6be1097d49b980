package web

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
)

// formImport is Settings → Import: the uploaded files of an existing admin
// host become an airgapd.yaml, shown in the editor with the report above
// it. Nothing is written: the operator reviews, edits and saves it with
// the same "Check and save" as any other edit.
func (s *Server) formImport(w http.ResponseWriter, r *http.Request) {
	path, data, err := s.configFile()
	masked, _ := maskSecrets(data) // nil (an empty editor) when a secret cannot be hidden
	page := settingsPage{Path: path, PrevName: filepath.Base(path) + ".prev", Text: string(masked), Loaded: string(masked), Base: ConfigETag(data), CanImport: s.deps.ConfigImporter != nil}
	fail := func(code int, msg string) {
		setAuditResult(r, "refused: "+msg)
		s.render(w, r, "settings", code, pageData{Title: "Settings", Nav: "settings", Status: s.status(), Error: msg, Data: page})
	}
	setAudit(r, "config import previewed", "")
	if err != nil || s.deps.ConfigImporter == nil {
		fail(http.StatusConflict, "import needs a config file and the importer")
		return
	}
	if err := r.ParseMultipartForm(authenticatedBody); err != nil {
		fail(http.StatusBadRequest, "send the files as a form upload: "+err.Error())
		return
	}
	files := ImportFiles{Repos: map[string][]byte{}}
	for field, into := range map[string]*[]byte{"named": &files.Named, "chrony": &files.Chrony, "iptables": &files.IptablesSave, "registry": &files.RegistryConfig} {
		if *into, err = formFile(r, field); err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
	}
	for _, fh := range r.MultipartForm.File["repos"] {
		f, err := fh.Open()
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		files.Repos[filepath.Base(fh.Filename)] = b
	}
	yaml, report, err := s.deps.ConfigImporter.ImportConfig(files)
	if err != nil {
		fail(http.StatusUnprocessableEntity, "import: "+err.Error())
		return
	}
	page.Text, page.Imported = string(yaml), report
	setAuditResult(r, fmt.Sprintf("ok: %d bytes of YAML shown, nothing written", len(yaml)))
	s.render(w, r, "settings", http.StatusOK, pageData{Title: "Settings", Nav: "settings", Status: s.status(),
		Flash: "Imported: review the YAML below and the report, then Check and save. Nothing has been written yet.", Data: page})
}

// formFile is an uploaded file's bytes, or nil when none was sent.
func formFile(r *http.Request, field string) ([]byte, error) {
	f, _, err := r.FormFile(field)
	if err == http.ErrMissingFile {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}
