package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		machines int
		mib      int64
	}{
		{0, 64}, {10000, 64}, {10256, 65}, {50000, 64 + 156}, {100000, 64 + 351},
	} {
		if got := memoryLimit(tc.machines) >> 20; got != tc.mib {
			t.Errorf("memoryLimit(%d) = %d MiB, want %d", tc.machines, got, tc.mib)
		}
	}
}
