//go:build !linux

package lowprio

// setNice does nothing where threads have no nice value of their own.
func setNice(int) error { return nil }
