package smoke

import (
	"bytes"
	"debug/elf"
	"os"
	"strings"
	"testing"
)

func interpOf(t *testing.T, b []byte) string {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return strings.TrimRight(string(b[p.Off:p.Off+p.Filesz]), "\x00")
		}
	}
	return ""
}

func TestPatchInterpreter(t *testing.T) {
	dynamic, err := os.ReadFile("/bin/true")
	if err != nil || interpOf(t, dynamic) == "" {
		t.Skipf("needs a dynamically linked /bin/true on the host: %v", err)
	}
	static := busybox(t, hostArch)
	tests := []struct {
		name    string
		in      []byte
		interp  string
		machine elf.Machine
		wantErr string
	}{
		{name: "shorter path", in: dynamic, interp: "/lib/ld.so"},
		{name: "same length", in: dynamic, interp: strings.Repeat("x", len(interpOf(t, dynamic)))},
		{name: "too long", in: dynamic, interp: "/" + strings.Repeat("x", 200), wantErr: "does not fit"},
		{name: "static binary", in: static, interp: "/lib/ld.so", wantErr: "statically linked"},
		{name: "other architecture", in: dynamic, interp: "/lib/ld.so", machine: elf.EM_S390, wantErr: "built for EM_"},
		{name: "not ELF", in: []byte("#!/bin/sh\n"), interp: "/lib/ld.so", wantErr: "not ELF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, old, err := patchInterpreter(tc.in, tc.interp, tc.machine)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("patchInterpreter(%s) error = %v, want %q", tc.name, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("patchInterpreter(%s) error = %v", tc.name, err)
			}
			if got := interpOf(t, out); got != tc.interp {
				t.Errorf("patchInterpreter(%s) interpreter = %q, want %q", tc.name, got, tc.interp)
			}
			if old != interpOf(t, tc.in) {
				t.Errorf("patchInterpreter(%s) old = %q, want %q", tc.name, old, interpOf(t, tc.in))
			}
			if len(out) != len(tc.in) {
				t.Errorf("patchInterpreter(%s) changed the size: %d, want %d", tc.name, len(out), len(tc.in))
			}
		})
	}
}
