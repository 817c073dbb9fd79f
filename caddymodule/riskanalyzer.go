package caddymodule

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

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

// parseRiskAnalyzer reads the global option's risk_analyzer block.
//
// Syntax:
//
//	risk_analyzer {
//	    [success_status <int...>]   # default 0
//	    [pending_status <int...>]   # default none
//	    [device_trust <duration>]   # default 720h; 0 disables
//	    [history_size <n>]          # default 50; 0 keeps none
//	}
func (a *App) parseRiskAnalyzer(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := new(RiskAnalyzerConfig)
	if err := eachOption(d, "risk_analyzer", nil, func(opt string) error {
		switch opt {
		case "success_status", "pending_status":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, s := range args {
				v, err := strconv.Atoi(s)
				if err != nil {
					return d.Errf("%s: %q is not an integer", opt, s)
				}
				list := &c.SuccessStatuses
				if opt == "pending_status" {
					list = &c.PendingStatuses
				}
				if slices.Contains(*list, v) {
					return d.Errf("%s: %d listed twice", opt, v)
				}
				*list = append(*list, v)
			}
		case "device_trust":
			dur, err := parseDuration(d)
			if err != nil {
				return err
			}
			cd := caddy.Duration(dur)
			c.DeviceTrust = &cd
		case "history_size":
			s, err := oneArg(d)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return d.Errf("history_size: %q is not a non-negative integer", s)
			}
			c.HistorySize = &n
		default:
			return d.Errf("unrecognized risk_analyzer option %q", opt)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, v := range c.PendingStatuses {
		if slices.Contains(c.SuccessStatuses, v) || (len(c.SuccessStatuses) == 0 && v == 0) {
			return d.Errf("risk_analyzer: status %d is both a success and a pending status", v)
		}
	}
	a.RiskAnalyzer = c
	return nil
}
