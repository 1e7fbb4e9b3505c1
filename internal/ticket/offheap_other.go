//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package ticket

// allocate returns n zeroed Ts on the Go heap where anonymous mappings are
// not at hand (see the mmap version for why they are preferred).
func allocate[T any](n int) ([]T, func(), error) {
	return make([]T, n), func() {}, nil
}
