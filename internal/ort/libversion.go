//go:build !windows

package ort

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

// OrtApiBase is ONNX Runtime's ABI-stable entry point: two function pointers that every release keeps.
typedef struct {
	const void* (*GetApi)(uint32_t version);
	const char* (*GetVersionString)(void);
} rflow_api_base;

typedef const rflow_api_base* (*rflow_get_api_base)(void);

// rflow_probe opens the library and reads its version and whether it serves API `want`, without
// initialising anything. The handle stays open: the onnxruntime_go wrapper dlopens the same file next.
static const char* rflow_probe(const char* path, uint32_t want, int* has_api, const char** err) {
	void* h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) { *err = dlerror(); return NULL; }
	rflow_get_api_base get = (rflow_get_api_base)dlsym(h, "OrtGetApiBase");
	if (get == NULL) { *err = "the file has no OrtGetApiBase symbol"; return NULL; }
	const rflow_api_base* base = get();
	*has_api = base->GetApi(want) != NULL;
	return base->GetVersionString();
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// probeLibrary returns the library's version string and whether it provides the C API version the
// onnxruntime_go wrapper is built against.
func probeLibrary(path string) (version string, hasAPI bool, err error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var has C.int
	var cerr *C.char
	v := C.rflow_probe(cpath, C.uint32_t(apiVersion), &has, &cerr)
	if v == nil {
		return "", false, fmt.Errorf("cannot load %s: %s", path, C.GoString(cerr))
	}
	return C.GoString(v), has != 0, nil
}
