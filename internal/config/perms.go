package config

import (
	"fmt"
	"os"
)

// CheckPermissions returns warnings (for the daemon to log) when the
// configuration file at path, or a credentials or key file its providers
// reference, can be read by any user (mode & 0o004), or when the
// configuration can be changed by any user (mode & 0o002). A file that cannot
// be loaded yields only the warnings about path itself.
func CheckPermissions(path string) []string {
	var out []string
	out = append(out, checkMode(path, "the configuration")...)
	c, err := Load(path)
	if err != nil {
		return out
	}
	return append(out, c.PermissionWarnings()...)
}

// PermissionWarnings checks the credentials and key files the providers
// reference (see CheckPermissions).
func (c *Config) PermissionWarnings() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range c.Providers {
		for _, f := range []struct{ path, what string }{
			{p.CredentialsFile, "provider " + p.Name + "'s credentials_file"},
			{p.KeyFile, "provider " + p.Name + "'s key_file"},
			{p.HFConfigFile, "provider " + p.Name + "'s hf_config_file"},
		} {
			if f.path == "" || seen[f.path] {
				continue
			}
			seen[f.path] = true
			out = append(out, checkMode(f.path, f.what)...)
		}
	}
	return out
}

func checkMode(path, what string) []string {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	var out []string
	m := fi.Mode().Perm()
	if m&0o004 != 0 {
		out = append(out, fmt.Sprintf("%s %s is readable by every user (mode %04o): chmod o-r %s", what, path, m, path))
	}
	if m&0o002 != 0 {
		out = append(out, fmt.Sprintf("%s %s is writable by every user (mode %04o): chmod o-w %s", what, path, m, path))
	}
	return out
}
