//go:build linux || darwin || freebsd || netbsd || openbsd

package ticket

import (
	"fmt"
	"syscall"
	"unsafe"
)

// allocate returns n zeroed Ts outside the Go heap, from an anonymous
// mapping, and the function that gives them back. T must hold no pointers.
//
// The memory store's tables are sized by max_memory once and for all and
// hold no pointers, so the garbage collector has nothing to do with them.
// On the Go heap it would still count them: the collector lets the heap
// grow to twice what is live before it runs, so a store of 200 MiB would
// let a busy server's request garbage take another 200 MiB of RSS before a
// collection. Mapped here, they cost their size in RSS (as their pages are
// touched) and nothing more.
func allocate[T any](n int) ([]T, func(), error) {
	size := n * int(unsafe.Sizeof(*new(T)))
	if size == 0 {
		return nil, func() {}, nil
	}
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("ticket: mapping %d bytes: %w", size, err)
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(mem))), n), func() { _ = syscall.Munmap(mem) }, nil
}
