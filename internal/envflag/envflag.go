// Package envflag gives every flag of a command an environment fallback:
// CHANGELENS_ + the flag's name in upper case with '-' → '_'. A flag given
// on the command line wins.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Name is the environment variable of flag name.
func Name(flag string) string {
	return "CHANGELENS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Apply sets, after fs.Parse, every flag not given on the command line
// (except those in skip) from its environment variable when that is set.
func Apply(fs *flag.FlagSet, getenv func(string) string, skip ...string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range skip {
		given[s] = true
	}
	var errs error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := Name(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = errors.Join(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errs
}

// Parse parses args (no positional arguments allowed), then applies the
// environment fallbacks (Apply) to the flags not given.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string, skip ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return Apply(fs, getenv, skip...)
}
