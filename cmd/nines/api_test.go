package main

import (
	"context"
	"net"
	"strings"
	"testing"
)

// TestAPIClientNamesADownAppliance: a CLI command run while nines is not
// running says so, with the address it tried.
func TestAPIClientNamesADownAppliance(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &apiClient{base: "http://" + addr, token: "0123456789abcdef"}
	err = c.call(context.Background(), "GET", "/api/v1/jobs", nil, 200, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing listens at http://"+addr+": is the appliance running") {
		t.Fatalf("call to a closed port: %v", err)
	}
	if strings.Contains(err.Error(), c.token) {
		t.Errorf("the error shows the token: %v", err)
	}
}
