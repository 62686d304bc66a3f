// Package secret holds credentials in a type that never prints them.
package secret

import "fmt"

// Secret is a credential. It prints as "<redacted>" in every format so it
// cannot leak through logs, API output or error messages.
type Secret string

func (Secret) String() string               { return "<redacted>" }
func (Secret) GoString() string             { return "<redacted>" }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"<redacted>"`), nil }
func (Secret) MarshalYAML() (any, error)    { return "<redacted>", nil }
func (s Secret) Reveal() string             { return string(s) }
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("<redacted>")) }

// TLS names the certificate and key a server presents. Use it whenever a
// listener is reached over a network rather than loopback.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}
