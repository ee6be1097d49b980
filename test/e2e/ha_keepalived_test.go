package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// keepalived is one keepalived process group in a namespace.
type keepalived struct {
	pid    int
	exited chan struct{}
	log    *logBuffer
}

func (k *keepalived) kill() {
	syscall.Kill(-k.pid, syscall.SIGKILL)
	<-k.exited
}

// startKeepalived runs keepalived in ns from what `airgapd ha keepalived`
// prints for in's config, in its own process group (keepalived forks its
// VRRP child), killed by group at cleanup.
func (l *haLab) startKeepalived(ns string, in *instance) *keepalived {
	t := l.t
	dir := t.TempDir()
	conf, err := run(t, 30*time.Second, airgapdBin, "ha", "keepalived", "--config", in.config)
	if err != nil {
		t.Fatalf("ha keepalived: %v\n%s", err, conf)
	}
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	k := &keepalived{exited: make(chan struct{}), log: newLogBuffer()}
	cmd := netnsCommand(ns, "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp", "-f", cf,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	cmd.Stdout, cmd.Stderr = k.log, k.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k.pid = cmd.Process.Pid
	go func() { cmd.Wait(); close(k.exited) }()
	t.Cleanup(func() {
		select {
		case <-k.exited:
		default:
			k.kill()
		}
		// The VRRP child may outlive the parent a moment: the group goes.
		syscall.Kill(-k.pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("keepalived in %s:\n%s\n%s", ns, conf, k.log.String())
		}
	})
	return k
}
