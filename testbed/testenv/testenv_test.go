package testenv

import (
	"net/http"
	"testing"
)

func TestStartRegistry(t *testing.T) {
	addr := StartRegistry(t)
	resp, err := http.Get("http://" + addr + "/v2/_catalog")
	if err != nil {
		t.Fatalf("GET /v2/_catalog: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/_catalog = %d, want 200", resp.StatusCode)
	}
}
