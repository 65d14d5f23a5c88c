package testenv

import (
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
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

// TestProcessCPU: what /proc says this process used agrees with what the
// kernel's rusage says, across a stretch of work.
func TestProcessCPU(t *testing.T) {
	usage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start := usage()
	for x := 0; usage()-start < 300*time.Millisecond; x++ {
		_ = x * x
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in ticks of 10 ms.
	if got, want := after-before, usage()-start; got < want-50*time.Millisecond || got > want+50*time.Millisecond {
		t.Errorf("ProcessCPU grew by %v over work that rusage measured at %v", got, want)
	}
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Error("ProcessCPU(a pid that does not exist) = nil error")
	}
}
