package server

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/airgapd/airgapd/adopt"
	"github.com/airgapd/airgapd/web"
)

var _ web.ConfigImporter = (*Server)(nil)

// ImportConfig implements web.ConfigImporter with adopt, as `airgapd
// import` does: the uploaded files go to a temporary folder (adopt reads
// files, and names them in the comments and the report), which goes
// again when the YAML is made. Nothing of the running config changes.
func (s *Server) ImportConfig(files web.ImportFiles) ([]byte, string, error) {
	dir, err := os.MkdirTemp("", "airgapd-import-")
	if err != nil {
		return nil, "", fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)
	src := adopt.Sources{IptablesSave: files.IptablesSave, IptablesSource: "iptables-save (uploaded)"}
	put := func(name string, b []byte) (string, error) {
		if b == nil {
			return "", nil
		}
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, b, 0o600)
	}
	if src.Named, err = put("named.conf", files.Named); err != nil {
		return nil, "", err
	}
	if src.Chrony, err = put("chrony.conf", files.Chrony); err != nil {
		return nil, "", err
	}
	if src.RegistryConfig, err = put("config.yml", files.RegistryConfig); err != nil {
		return nil, "", err
	}
	if len(files.Repos) > 0 {
		src.YumRepos = filepath.Join(dir, "yum.repos.d")
		if err := os.Mkdir(src.YumRepos, 0o700); err != nil {
			return nil, "", err
		}
		for name, b := range files.Repos {
			if _, err := put(filepath.Join("yum.repos.d", filepath.Base(name)), b); err != nil {
				return nil, "", err
			}
		}
	}
	res, err := adopt.Import(src)
	if err != nil {
		return nil, "", strippedErr(err, dir)
	}
	var report bytes.Buffer
	res.Report.WriteTo(&report)
	// The temporary folder means nothing to the operator: the file names
	// they uploaded do.
	clean := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(dir+string(filepath.Separator)), nil) }
	return clean(res.YAML), string(clean(report.Bytes())), nil
}

func strippedErr(err error, dir string) error {
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
}
