package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/adopt"
	"github.com/airgapd/airgapd/internal/atomicfile"
)

func newImportCmd() *cobra.Command {
	var (
		src                 adopt.Sources
		iptablesFile, out   string
		fromHost, overwrite bool
	)
	cmd := &cobra.Command{
		Use:   "import [--named FILE] [--chrony FILE] [--iptables-save FILE | --from-host] [--yum-repos DIR] [--registry-config FILE] [--out FILE]",
		Short: "Turn an existing admin host's named.conf, chrony.conf, NAT rules, yum repos and registry config into one airgapd.yaml",
		Long: `Read the files an admin host runs today and write one airgapd.yaml, with a
comment on each imported entry naming its source file and line, plus a
report of what mapped, what mapped approximately and what has no
equivalent (each with its source line). Nothing on the host is changed:
--from-host reads the usual paths (/etc/named.conf or /etc/bind/named.conf,
/etc/chrony.conf or /etc/chrony/chrony.conf, /etc/yum.repos.d,
/etc/docker/registry/config.yml) and runs iptables-save, read-only.
Zone files, local repo folders and the registry's storage directory are
reused in place. Without --out the YAML goes to stdout and the report to
stderr. Review the result, then: airgapd check --config FILE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if iptablesFile != "" && fromHost {
				return errors.New("give --iptables-save FILE or --from-host, not both")
			}
			if iptablesFile != "" {
				b, err := adopt.ReadIptablesSave(iptablesFile)
				if err != nil {
					return err
				}
				src.IptablesSave, src.IptablesSource = b, iptablesFile
			}
			if fromHost {
				var err error
				if src, err = adopt.FromHost(src, runIptablesSave); err != nil {
					return err
				}
			}
			res, err := adopt.Import(src)
			if err != nil {
				return err
			}
			if out == "" {
				if _, err := cmd.OutOrStdout().Write(res.YAML); err != nil {
					return err
				}
				_, err = res.Report.WriteTo(cmd.ErrOrStderr())
				return err
			}
			if _, err := os.Stat(out); err == nil && !overwrite {
				return fmt.Errorf("%s exists; give --force to replace it", out)
			}
			if err := atomicfile.WriteFile(out, res.YAML, 0o600); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			if _, err := res.Report.WriteTo(cmd.OutOrStdout()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; check it with: airgapd check --config %s\n", out, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&src.Named, "named", "", "named.conf to import (includes are followed)")
	f.StringVar(&src.Chrony, "chrony", "", "chrony.conf to import")
	f.StringVar(&iptablesFile, "iptables-save", "", "iptables-save output to import")
	f.BoolVar(&fromHost, "from-host", false, "read this host's usual files and iptables-save, read-only")
	f.StringVar(&src.YumRepos, "yum-repos", "", "folder of .repo files to import (e.g. /etc/yum.repos.d)")
	f.StringArrayVar(&src.Reposync, "reposync", nil, "folder of reposync output served by nginx (e.g. /var/www/html/repos): each repo under it (a folder with repodata/) is indexed in place as a local repo; repeatable (--from-host looks in nginx's roots)")
	f.StringVar(&src.RegistryConfig, "registry-config", "", "Docker Registry config.yml to import")
	f.StringVarP(&out, "out", "o", "", "write airgapd.yaml here instead of stdout (mode 0600)")
	f.BoolVar(&overwrite, "force", false, "replace --out if it exists")
	return cmd
}

// runIptablesSave reads the current rules; iptables-save only reads.
func runIptablesSave() ([]byte, error) {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return nil, fmt.Errorf("run iptables-save: %w", err)
	}
	return out, nil
}
