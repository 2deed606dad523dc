package mlx

/*
#include "shim.h"
*/
import "C"

import "fmt"

// DeviceType is where arrays are computed.
type DeviceType int

const (
	CPU DeviceType = iota
	GPU
)

// Device is one compute device.
type Device struct {
	Type  DeviceType
	Index int
}

func (d Device) String() string {
	name := "cpu"
	if d.Type == GPU {
		name = "gpu"
	}
	return fmt.Sprintf("%s:%d", name, d.Index)
}

// DefaultDevice is the device new ops run on.
func DefaultDevice() Device {
	var t, i C.int
	call("default_device", nil, func() C.int { return C.yai_default_device(&t, &i) })
	return Device{Type: DeviceType(t), Index: int(i)}
}

// SetDefaultDevice chooses the device (and its default stream) for the ops that follow.
func SetDefaultDevice(d Device) {
	call("set_default_device", nil, func() C.int { return C.yai_set_default_device(C.int(d.Type), C.int(d.Index)) })
}

// GPUAvailable reports whether this build of MLX has a GPU backend with a device.
func GPUAvailable() bool { return C.yai_gpu_available() == 1 }

// Synchronize waits for all work queued on the default stream.
func Synchronize() { call("synchronize", nil, func() C.int { return C.yai_synchronize() }) }
