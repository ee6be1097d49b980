// Command airgapd is the one binary on the admin host of an air-gapped
// Kubernetes network: DNS, NTP, NAT gateway, RPM mirror, OCI registry and
// an admin UI. main stays thin: flags and subcommands here, the work in
// package server.
package main

import (
	"errors"
	"fmt"
	"os"
)

// version is set at build time: -ldflags "-X main.version=…".
var version = "dev"

func main() {
	err := newRootCmd().Execute()
	var exit exitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		os.Exit(int(exit))
	default:
		fmt.Fprintln(os.Stderr, "airgapd:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a code after the command already printed
// what went wrong.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
