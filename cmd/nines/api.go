package main

import (
	"github.com/nines-project/nines/appliance/apiclient"
)

// apiClient is the running appliance's API client for the config at
// cfgPath: its listen address (or apiURL when given), its TLS certificate
// and its first token.
func apiClient(cfgPath, apiURL string) (*apiclient.Client, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	return apiclient.FromConfig(cfg, apiURL)
}
