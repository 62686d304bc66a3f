package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

// minPasswordLen keeps console passwords out of the range a rate-limited
// guesser could still cover.
const minPasswordLen = 8

func newPasswdCmd() *cobra.Command {
	var cost int
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Read a console password twice and print its bcrypt hash for console.users[].password_hash",
		Long: `passwd reads a password twice (from the terminal without echo, or two lines
of standard input) and prints a bcrypt hash of it. Put the hash in the config:

  console:
    users:
      - {name: alice, role: operator, password_hash: "<hash>"}

Roles: viewer (reads), operator (also starts jobs and silences), admin (also
resumes halted remediation).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPasswordTwice(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			hash, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
			if err != nil {
				return fmt.Errorf("hash password: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(hash))
			return nil
		},
	}
	cmd.Flags().IntVar(&cost, "cost", bcrypt.DefaultCost, fmt.Sprintf("bcrypt cost (%d-%d); each step doubles the time of a login", bcrypt.MinCost, bcrypt.MaxCost))
	return cmd
}

// readPasswordTwice prompts on a terminal without echo; from a pipe it
// reads two lines, so scripts can feed it.
func readPasswordTwice(in io.Reader, prompt io.Writer) (string, error) {
	var first, second string
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(p string) (string, error) {
			fmt.Fprint(prompt, p)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(prompt)
			return string(b), err
		}
		var err error
		if first, err = read("Password: "); err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if second, err = read("Password again: "); err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
	} else {
		sc := bufio.NewScanner(in)
		lines := []string{}
		for len(lines) < 2 && sc.Scan() {
			lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
		}
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("read password from standard input: %w", err)
		}
		if len(lines) < 2 {
			return "", errors.New("read password from standard input: want the password on two lines (typed twice)")
		}
		first, second = lines[0], lines[1]
	}
	if first != second {
		return "", errors.New("the two passwords differ")
	}
	if len([]rune(first)) < minPasswordLen {
		return "", fmt.Errorf("password too short: use at least %d characters", minPasswordLen)
	}
	return first, nil
}
