package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nothingnesses/agent-images/flake"
)

// parseOverride parses NAME=REF as given to --override-input.
func parseOverride(s string) (name, ref string, err error) {
	name, ref, ok := strings.Cut(s, "=")
	if !ok || name == "" || ref == "" {
		// Not echoed: a malformed value may still hold a token.
		return "", "", errors.New("--override-input takes NAME=FLAKEREF, for example nixpkgs=path:./testdata/standin/nixpkgs; " +
			"one was given without a name, without '=' or without a reference")
	}
	return name, ref, nil
}

// parseRunners parses --runner SYSTEM=LABEL values.
func parseRunners(values []string) (map[flake.System]string, error) {
	out := map[flake.System]string{}
	for _, v := range values {
		sys, label, ok := strings.Cut(v, "=")
		if !ok || label == "" {
			return nil, fmt.Errorf("--runner %q: want SYSTEM=LABEL, for example aarch64-linux=ubuntu-24.04-arm", v)
		}
		s := flake.System(sys)
		if _, err := s.Platform(); err != nil {
			return nil, fmt.Errorf("--runner %q: %w", v, err)
		}
		out[s] = label
	}
	return out, nil
}
