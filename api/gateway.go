package api

import "time"

// GatewayStatus is the gateway's state for the UI, API and metrics.
type GatewayStatus struct {
	State     string `json:"state"`
	Summary   string `json:"summary"`
	Mode      string `json:"mode"`
	Backend   string `json:"backend"`    // nf_tables | legacy; empty when iptables could not be read
	IPForward string `json:"ip_forward"` // "1", "0"; empty when unknown
	Firewalld string `json:"firewalld"`
	// Rules are airgapd's rules in the kernel with their counters, as
	// `iptables -t nat -L -n -v` shows them.
	Rules   []GatewayRule   `json:"rules"`
	Sysctls []GatewaySysctl `json:"sysctls,omitempty"`
	Routes  []string        `json:"routes,omitempty"`
	// Pending is what apply would change now: the plan in plan mode, what
	// could not be applied in apply mode.
	Pending       []string       `json:"pending,omitempty"`
	Notes         []string       `json:"notes,omitempty"`
	Drift         []GatewayDrift `json:"drift,omitempty"`
	LastReconcile time.Time      `json:"last_reconcile"`
	LastError     string         `json:"last_error,omitempty"`
}

// GatewayRule is one of airgapd's rules as the kernel holds it.
type GatewayRule struct {
	Table   string `json:"table"`
	Chain   string `json:"chain"`
	Rule    string `json:"rule"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// GatewaySysctl is one sysctl airgapd manages.
type GatewaySysctl struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Have string `json:"have"`
}

// GatewayDrift is one repair of changes someone else made.
type GatewayDrift struct {
	Time    time.Time `json:"time"`
	Changes []string  `json:"changes"`
}
