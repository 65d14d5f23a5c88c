package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/cosign/v2/pkg/cosign"
)

func TestKeygen(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "pw")
	prefix := filepath.Join(t.TempDir(), "release")
	if _, err := run(t, "keygen", "--prefix", prefix); err != nil {
		t.Fatalf("keygen = %v", err)
	}
	priv, err := os.ReadFile(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cosign.LoadPrivateKey(priv, []byte("pw"), nil); err != nil {
		t.Errorf("the written key does not load with COSIGN_PASSWORD: %v", err)
	}
	if fi, _ := os.Stat(prefix + ".key"); fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode = %v, want 0600", fi.Mode().Perm())
	}
	if _, err := run(t, "keygen", "--prefix", prefix); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second keygen = %v, want a refusal to overwrite", err)
	}
}
