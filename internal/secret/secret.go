// Package secret holds credentials in a type that never prints them.
package secret

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

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

// ClientTLS is how nines checks a server it connects to across a network
// (a database node): the private CA that signed the server's certificate
// and, when the server asks for one, nines' own certificate and key.
type ClientTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate;
	// by default it is the host of the address nines dials.
	ServerName string `yaml:"server_name"`
}

// Config reads the files c names into a tls.Config. The CA must hold at
// least one PEM certificate: an empty pool would trust nothing and fail
// every handshake with an error far from its cause.
func (c *ClientTLS) Config() (*tls.Config, error) {
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", c.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: c.ServerName, MinVersion: tls.VersionTLS12}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
