//go:build !linux

package gateway

import (
	"errors"
	"fmt"
)

// errUnsupported says what is missing off Linux.
var errUnsupported = fmt.Errorf("the gateway needs Linux (iptables, /proc/sys): %w", errors.ErrUnsupported)

// NewTables returns a Tables whose every call fails: iptables is Linux's.
func NewTables() Tables { return unsupportedTables{} }

// NewKernel returns a Kernel whose every call fails.
func NewKernel(dropinDir string) Kernel { return unsupportedKernel{} }

type unsupportedTables struct{}

func (unsupportedTables) Backend() (string, error)                   { return "", errUnsupported }
func (unsupportedTables) ListChains(string) ([]string, error)        { return nil, errUnsupported }
func (unsupportedTables) List(string, string) ([]string, error)      { return nil, errUnsupported }
func (unsupportedTables) NewChain(string, string) error              { return errUnsupported }
func (unsupportedTables) ClearChain(string, string) error            { return errUnsupported }
func (unsupportedTables) DeleteChain(string, string) error           { return errUnsupported }
func (unsupportedTables) Insert(string, string, int, []string) error { return errUnsupported }
func (unsupportedTables) Append(string, string, []string) error      { return errUnsupported }
func (unsupportedTables) Delete(string, string, []string) error      { return errUnsupported }
func (unsupportedTables) DeleteAt(string, string, int) error         { return errUnsupported }

type unsupportedKernel struct{}

func (unsupportedKernel) ReadSysctl(string) (string, error) { return "", errUnsupported }
func (unsupportedKernel) WriteSysctl(string, string) error  { return errUnsupported }
func (unsupportedKernel) Routes() ([]KernelRoute, error)    { return nil, errUnsupported }
func (unsupportedKernel) ReplaceRoute(KernelRoute) error    { return errUnsupported }
func (unsupportedKernel) DeleteRoute(KernelRoute) error     { return errUnsupported }
func (unsupportedKernel) ReadDropin() ([]byte, error)       { return nil, errUnsupported }
func (unsupportedKernel) WriteDropin([]byte) error          { return errUnsupported }
func (unsupportedKernel) RemoveDropin() error               { return errUnsupported }
func (unsupportedKernel) DropinPath() string                { return "/etc/sysctl.d/90-airgapd.conf" }
func (unsupportedKernel) Firewalld() Firewalld              { return Firewalld{} }
