package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswdPrintsAHashOfThePassword(t *testing.T) {
	cmd := newPasswdCmd()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader("correct horse\ncorrect horse\n"))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"--cost", "4"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("nines passwd: %v", err)
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")); err != nil {
		t.Errorf("printed %q, not a bcrypt hash of the password: %v", hash, err)
	}
	if strings.Contains(out.String()+errOut.String(), "correct horse") {
		t.Errorf("the password was echoed:\n%s%s", out.String(), errOut.String())
	}
}

func TestPasswdRefuses(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"different", "first-password\nsecond-password\n", "differ"},
		{"short", "short\nshort\n", "at least 8"},
		{"once", "only-once-given\n", "two lines"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newPasswdCmd()
			cmd.SilenceUsage = true // as under the root command
			var out bytes.Buffer
			cmd.SetIn(strings.NewReader(tt.in))
			cmd.SetOut(&out)
			cmd.SetErr(&bytes.Buffer{})
			cmd.SetArgs(nil)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on failure", out.String())
			}
		})
	}
}
