// Package adopt turns the files of an existing admin host (named.conf,
// chrony.conf, iptables-save output, yum .repo files and a Docker Registry
// config.yml) into one airgapd.yaml and a report of what mapped, what mapped
// approximately and what has no equivalent, each with its source file and
// line. It is what `airgapd import` runs. It reads only, never imports a
// service package, and writes the YAML text with the config keys of
// ARCHITECTURE.md, so `airgapd check` is the judge of its output.
package adopt
