// Package durable writes small state files so that a crash leaves the old
// content or the new, never a torn or empty file: the job log's jobs, the
// agent's fencing tokens.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with b: a temporary file in the same directory,
// fsynced, renamed over path, then the directory fsynced so the rename
// itself survives a power loss. The directory must exist.
func WriteFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}
