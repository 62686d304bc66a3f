package config

import (
	"strings"
	"testing"
)

// TestRemoteWriteRejected: each problem of a remote_write entry is named
// by line and field, and no error repeats the token or URL credentials.
func TestRemoteWriteRejected(t *testing.T) {
	for _, tt := range []struct {
		name, add string
		line      int
		field     string
		msg       string
	}{
		{"no url", "remote_write:\n  - {name: vm}\n", 16, "remote_write[0].url", "required"},
		{"ftp", "remote_write:\n  - {url: \"ftp://vm:21/w\"}\n", 16, "remote_write[0].url", "bad URL: want http(s)://host:port/path"},
		{"no host", "remote_write:\n  - {url: \"http:///api/v1/write\"}\n", 16, "remote_write[0].url", "bad URL"},
		{"same url", "remote_write:\n  - {url: \"http://vm:8428/api/v1/write\"}\n  - {url: \"http://vm:8428/api/v1/write\"}\n", 17, "remote_write[1].url", "duplicate"},
		{"same name", "remote_write:\n  - {name: a, url: \"http://vm:8428/api/v1/write\"}\n  - {name: a, url: \"http://p:9090/api/v1/write\"}\n", 17, "remote_write[1].name", `duplicate remote "a"`},
		{"bad name", "remote_write:\n  - {name: \"a b\", url: \"http://vm:8428/api/v1/write\"}\n", 16, "remote_write[0].name", "letters, digits"},
		{"token file missing", "remote_write:\n  - {url: \"http://vm:8428/api/v1/write\", bearer_token_file: nope}\n", 16, "remote_write[0].bearer_token_file", `cannot read "nope"`},
		{"token file and env", "remote_write:\n  - {url: \"http://vm:8428/api/v1/write\", bearer_token_file: api-token, bearer_token_env: X}\n", 16, "remote_write[0].bearer_token_file", "set only one"},
		{"tiny queue", "remote_write:\n  - {url: \"http://vm:8428/api/v1/write\", queue_max_bytes: 1000}\n", 16, "remote_write[0].queue_max_bytes", "below the minimum"},
		{"tls on http", "remote_write:\n  - {url: \"http://vm:8428/api/v1/write\", tls: {ca_file: api-token}}\n", 16, "remote_write[0].tls", "use https://"},
		{"ca not pem", "remote_write:\n  - {url: \"https://vm:8428/api/v1/write\", tls: {ca_file: api-token}}\n", 16, "remote_write[0].tls.ca_file", "holds no PEM certificate"},
		{"cert without key", "remote_write:\n  - {url: \"https://vm:8428/api/v1/write\", tls: {cert_file: api-token}}\n", 16, "remote_write[0].tls.key_file", "required with cert_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, good+tt.add)
			_, err := Load(p)
			errs, ok := err.(*Errors)
			if !ok {
				t.Fatalf("Load = %v, want *Errors", err)
			}
			found := false
			for _, e := range errs.List {
				found = found || e.Line == tt.line && e.Field == tt.field && strings.Contains(e.Msg, tt.msg)
			}
			if !found {
				t.Fatalf("no error at line %d field %q containing %q; got:\n%v", tt.line, tt.field, tt.msg, err)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("the error repeats the token: %v", err)
			}
		})
	}
}

func TestRemoteWriteLoads(t *testing.T) {
	p := writeConfig(t, good+"remote_write:\n  - {url: \"http://u:pw@vm:8428/api/v1/write\", bearer_token_file: api-token}\n  - {name: prom, url: \"http://p:9090/api/v1/write\", queue_max_bytes: 134217728}\n")
	cfg, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	rw := cfg.RemoteWrite
	if len(rw) != 2 {
		t.Fatalf("remote_write has %d entries, want 2", len(rw))
	}
	if rw[0].BearerToken.Reveal() != "0123456789abcdef0123456789abcdef" || rw[0].QueueMaxBytes != DefaultRemoteWriteQueueMaxBytes {
		t.Errorf("remote 0: token read %v, queue %d: want the file's token and the 1 GiB default", rw[0].BearerToken.Reveal() != "", rw[0].QueueMaxBytes)
	}
	if got := rw[0].Label(); got != "http://vm:8428/api/v1/write" {
		t.Errorf("label %q: want the URL without user info", got)
	}
	if rw[1].Label() != "prom" || rw[1].QueueMaxBytes != 134217728 {
		t.Errorf("remote 1: %q %d, want prom 134217728", rw[1].Label(), rw[1].QueueMaxBytes)
	}
}
