package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/handlers"
)

// RiskAnalyzerConfig configures the risk-analyzer family.
type RiskAnalyzerConfig struct {
	// SuccessStatuses are the authenticationStatus values that make a
	// session "authenticated". Default: [0].
	SuccessStatuses []int `json:"success_statuses,omitempty"`

	// PendingStatuses are the values that make it "pending verification";
	// any other value makes it "failed". Default: none.
	PendingStatuses []int `json:"pending_statuses,omitempty"`

	// DeviceTrust is how long a device registered with registerDevice
	// stays trusted for its user; 0 disables registration. Default: 720h.
	DeviceTrust *caddy.Duration `json:"device_trust,omitempty"`

	// HistorySize bounds the logins kept per user by analyzePatterns; 0
	// keeps none. Default: 50.
	HistorySize *int `json:"history_size,omitempty"`
}

// riskAnalyzer builds the family's handler from the app's config.
func (a *App) riskAnalyzer() (*handlers.RiskAnalyzer, error) {
	c := a.RiskAnalyzer
	if c == nil {
		c = new(RiskAnalyzerConfig)
	}
	ra := &handlers.RiskAnalyzer{
		Env:         a.env,
		Auth:        a.basic,
		Success:     map[int]bool{},
		Pending:     map[int]bool{},
		DeviceTrust: 720 * time.Hour,
		HistorySize: 50,
	}
	success := c.SuccessStatuses
	if len(success) == 0 {
		success = []int{0}
	}
	for _, v := range success {
		ra.Success[v] = true
	}
	for _, v := range c.PendingStatuses {
		if ra.Success[v] {
			return nil, fmt.Errorf("risk_analyzer: status %d is both a success and a pending status", v)
		}
		ra.Pending[v] = true
	}
	if c.DeviceTrust != nil {
		if *c.DeviceTrust < 0 {
			return nil, fmt.Errorf("risk_analyzer: device_trust must not be negative")
		}
		ra.DeviceTrust = time.Duration(*c.DeviceTrust)
	}
	if c.HistorySize != nil {
		if *c.HistorySize < 0 {
			return nil, fmt.Errorf("risk_analyzer: history_size must not be negative")
		}
		ra.HistorySize = *c.HistorySize
	}
	return ra, nil
}
