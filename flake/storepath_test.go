package flake

import "testing"

// Two store path hashes in Nix's base32 alphabet.
const hashFoo = "0123456789abcdfghijklmnpqrsvwxyz"

func TestParseStorePath(t *testing.T) {
	tests := []struct {
		name, base                 string
		wantName, wantVer, wantOut string
		wantOK                     bool
	}{
		{"name and version", hashFoo + "-foo-1.0", "foo", "1.0", "", true},
		{"dash in name", hashFoo + "-bash-interactive-5.2p37", "bash-interactive", "5.2p37", "", true},
		{"output suffix leaves the version", hashFoo + "-glibc-2.40-66-bin", "glibc", "2.40-66", "bin", true},
		{"dev output", hashFoo + "-openssl-3.4.1-dev", "openssl", "3.4.1", "dev", true},
		{"other suffixes stay in the version", hashFoo + "-foo-1.0-rc", "foo", "1.0-rc", "", true},
		{"no version", hashFoo + "-source", "source", "", "", true},
		{"not a hash", "not-a-store-path-1.0", "", "", "", false},
		{"hash only", hashFoo, "", "", "", false},
		{"letters outside nix base32", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-foo-1.0", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, ok := ParseStorePath(tt.base)
			if ok != tt.wantOK || sp.Name != tt.wantName || sp.Version != tt.wantVer || sp.Output != tt.wantOut {
				t.Errorf("ParseStorePath(%q) = %q, %q, %q, %v, want %q, %q, %q, %v",
					tt.base, sp.Name, sp.Version, sp.Output, ok, tt.wantName, tt.wantVer, tt.wantOut, tt.wantOK)
			}
		})
	}
}
