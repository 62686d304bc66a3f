package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStepsReportTogether: a field error (checkFields) and a file error
// (readFiles) in one config are reported in one pass, each with its
// line, and relative paths are resolved against the config's directory
// before they are read.
func TestStepsReportTogether(t *testing.T) {
	body := strings.Replace(good, "listen: 127.0.0.1:9104", "listen: nope\ntls: {cert_file: tls.crt, key_file: tls.key}", 1)
	p := writeConfig(t, body)
	dir := filepath.Dir(p)
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load: %v, want *Errors", err)
	}
	msg := err.Error()
	for _, want := range []string{
		p + ":1: listen: bad address \"nope\"",
		p + ":2: tls.key_file: cannot read \"" + filepath.Join(dir, "tls.key") + "\"",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "tls.cert_file") {
		t.Errorf("the readable tls.crt (relative to the config) is reported:\n%s", msg)
	}
}
