package sandbox

import (
	"fmt"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
)

// ConsoleUser is the web console's admin user in the sandbox's nines.yaml.
const ConsoleUser = "admin"

// ConsolePasswordPath is the file holding ConsoleUser's password (0600);
// nines.yaml holds only its bcrypt hash.
func (s *Sandbox) ConsolePasswordPath() string { return filepath.Join(s.dir, "console-password") }

// renderConsole is nines.yaml's console section: ConsoleUser as admin,
// with the hash of the password in ConsolePasswordPath (made on first use).
func (s *Sandbox) renderConsole() (string, error) {
	pass, err := ensureSecret(s.ConsolePasswordPath(), passwordBytes)
	if err != nil {
		return "", fmt.Errorf("console password: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash console password: %w", err)
	}
	// A bcrypt hash is [$./A-Za-z0-9]: safe in a double-quoted scalar.
	return fmt.Sprintf("console:\n  users:\n    - {name: %s, role: admin, password_hash: %q}\n", ConsoleUser, hash), nil
}
