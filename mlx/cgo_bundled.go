//go:build !mlx_external

package mlx

// libmlx and its headers come from the pinned wheel that `go tool task setup` unpacks into
// .mlx/ at the module root. The rpath lets binaries find libmlx without LD_LIBRARY_PATH.
// To build against an MLX install of your own, use -tags mlx_external and set CGO_CXXFLAGS
// and CGO_LDFLAGS (see README).

/*
#cgo CXXFLAGS: -I${SRCDIR}/../.mlx/mlx/include
#cgo LDFLAGS: -L${SRCDIR}/../.mlx/mlx/lib -lmlx -Wl,-rpath,${SRCDIR}/../.mlx/mlx/lib
*/
import "C"
