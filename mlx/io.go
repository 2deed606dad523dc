package mlx

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"unsafe"
)

// LoadSafetensors opens a safetensors file lazily: tensors are read from disk when first
// evaluated, so loading a subset costs only that subset.
func LoadSafetensors(path string) (tensors map[string]*Array, metadata map[string]string, err error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	err = Do(func() error {
		var arrays C.yai_vec
		var names, meta *C.char
		var namesLen, metaLen C.size_t
		var nmeta C.int
		if rc := C.yai_load_safetensors(cpath, &arrays, &names, &namesLen, &meta, &metaLen, &nmeta); rc != C.YAI_OK {
			return fmt.Errorf("load %s: %s", path, C.GoString(C.yai_last_error()))
		}
		// The caller owns the tensors whatever scope is open: they are not intermediates.
		list := vec{arrays, false}.take()
		keys := unpackStrings(names, namesLen)
		kv := unpackStrings(meta, metaLen)
		tensors = make(map[string]*Array, len(list))
		for i, a := range list {
			tensors[keys[i]] = a
		}
		metadata = make(map[string]string, nmeta)
		for i := 0; i+1 < len(kv); i += 2 {
			metadata[kv[i]] = kv[i+1]
		}
		return nil
	})
	return tensors, metadata, err
}

// SaveSafetensors writes tensors and metadata atomically: to a temporary file beside path,
// then renamed over it, so a crash never leaves a half-written file.
func SaveSafetensors(path string, tensors map[string]*Array, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	arrays := make([]*Array, len(names))
	cnames := make([]*C.char, len(names))
	for i, k := range names {
		arrays[i] = tensors[k]
		cnames[i] = C.CString(k)
	}
	metaKeys := make([]string, 0, len(metadata))
	for k := range metadata {
		metaKeys = append(metaKeys, k)
	}
	sort.Strings(metaKeys)
	ckv := make([]*C.char, 0, 2*len(metaKeys))
	for _, k := range metaKeys {
		ckv = append(ckv, C.CString(k), C.CString(metadata[k]))
	}
	defer func() {
		for _, p := range append(cnames, ckv...) {
			C.free(unsafe.Pointer(p))
		}
	}()
	// MLX appends ".safetensors" to names without it, so the temporary name keeps it.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*.safetensors")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	tmp.Close()
	ctmp := C.CString(tmpName)
	defer C.free(unsafe.Pointer(ctmp))
	err = Do(func() error {
		v := newVec(arrays)
		defer v.free()
		var np, mp **C.char
		if len(cnames) > 0 {
			np = &cnames[0]
		}
		if len(ckv) > 0 {
			mp = &ckv[0]
		}
		var errNo C.int
		if rc := C.yai_save_safetensors(ctmp, np, v.h, mp, C.int(len(metaKeys)), &errNo); rc != C.YAI_OK {
			if errNo != 0 { // the system's reason: no space left, read-only file system, …
				return &os.PathError{Op: "write", Path: path, Err: syscall.Errno(errNo)}
			}
			return fmt.Errorf("save %s: %s", path, C.GoString(C.yai_last_error()))
		}
		return nil
	})
	if err == nil {
		err = syncFile(tmpName) // on the disk before the rename makes it visible
	}
	if err != nil {
		os.Remove(tmpName)
		return err
	}
	// CreateTemp makes the file private; a saved tensor file is as readable as any other.
	if err := os.Chmod(tmpName, 0o644); err != nil {
		os.Remove(tmpName)
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return err
	}
	return syncFile(filepath.Dir(path))
}

// syncFile fsyncs a file or directory.
func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return &os.PathError{Op: "sync", Path: p, Err: err}
	}
	return nil
}
