package store

import (
	"bytes"
	"fmt"
	"testing"
)

// machineValue is about the size of a persisted machine.
var machineValue = bytes.Repeat([]byte("m"), 400)

// BenchmarkWriteBatch1000 writes 1,000 machines in one synchronous
// transaction, as a reconcile pass that saw them all change does.
func BenchmarkWriteBatch1000(b *testing.B) {
	s := openT(b, b.TempDir())
	defer s.Close()
	ops := make([]Op, 1000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range ops {
			ops[j] = Op{Key: fmt.Sprintf("m/i-%08d%08d", i, j), Value: machineValue}
		}
		if err := s.Write(ops...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenScan10k is the store's share of ohfpd's start-up: open a
// state directory holding 10,000 machines and read them all.
func BenchmarkOpenScan10k(b *testing.B) {
	dir := b.TempDir()
	s := openT(b, dir)
	var ops []Op
	for i := range 10000 {
		ops = append(ops, Op{Key: fmt.Sprintf("m/i-%017x", i), Value: machineValue})
		if len(ops) == 1000 {
			if err := s.Write(ops...); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, err := Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if err := s.Scan("m/", func(string, []byte) error { n++; return nil }); err != nil || n != 10000 {
			b.Fatal(n, err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen12k opens (with its table checks) a store holding 11,600
// machine records and their requests, as ohfpd does at start.
func BenchmarkOpen12k(b *testing.B) {
	dir := b.TempDir()
	s := openT(b, dir)
	val := bytes.Repeat([]byte("m"), 400)
	var ops []Op
	for i := range 11600 {
		ops = append(ops, Op{Key: fmt.Sprintf("m/i-%017d", i), Value: val}, Op{Key: fmt.Sprintf("r/req-%08d", i/4), Value: val})
		if len(ops) >= 1000 {
			if err := s.Write(ops...); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	s.Write(ops...)
	s.Close()
	for b.Loop() {
		s := openT(b, dir)
		s.Close()
	}
}
