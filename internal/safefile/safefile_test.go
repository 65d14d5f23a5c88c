package safefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateRefusesALink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "out.tar")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if f, err := Create(link); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		f.Close()
		t.Errorf("Create(link) = %v, want refused", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target now holds %q", b)
	}
	f, err := Create(filepath.Join(dir, "plain"))
	if err != nil {
		t.Fatalf("Create(plain) = %v", err)
	}
	f.Close()
}

func TestDirRefusesALink(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "work")); err != nil {
		t.Fatal(err)
	}
	if err := Dir(filepath.Join(dir, "work")); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("Dir(link) = %v, want refused", err)
	}
	if err := Dir(filepath.Join(dir, "new", "layers")); err != nil {
		t.Errorf("Dir(new) = %v", err)
	}
}
