package main

import (
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/flake"
)

func TestParseOverrideDoesNotEcho(t *testing.T) {
	_, _, err := parseOverride("llm-agents:git+https://u:TOKEN-1234@h/r")
	if err == nil || strings.Contains(err.Error(), "TOKEN-1234") || !strings.Contains(err.Error(), "NAME=FLAKEREF") {
		t.Errorf("parseOverride(no '=') = %v, want an error naming the form and not the value", err)
	}
}

func TestParseRunners(t *testing.T) {
	got, err := parseRunners([]string{"aarch64-linux=my-arm"})
	if err != nil || got[flake.Aarch64Linux] != "my-arm" || len(got) != 1 {
		t.Errorf("parseRunners(aarch64-linux=my-arm) = %v, %v, want my-arm for aarch64-linux", got, err)
	}
	for _, bad := range []string{"aarch64-linux", "aarch64-linux=", "riscv-linux=x"} {
		if _, err := parseRunners([]string{bad}); err == nil || !strings.Contains(err.Error(), "--runner") {
			t.Errorf("parseRunners(%q) = %v, want an error naming --runner", bad, err)
		}
	}
}
