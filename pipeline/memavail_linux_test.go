package pipeline

import (
	"syscall"
	"testing"
)

// TestAvailableBytes: on Linux the available memory is known, positive and at most the total.
func TestAvailableBytes(t *testing.T) {
	avail, ok := availableBytes()
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		t.Fatal(err)
	}
	if total := int64(info.Totalram) * int64(info.Unit); !ok || avail <= 0 || avail > total {
		t.Errorf("availableBytes() = %d, %v; total RAM %d", avail, ok, total)
	}
}
