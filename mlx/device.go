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

// DeviceInfo is what MLX reports about a device.
type DeviceInfo struct {
	Name         string // e.g. "NVIDIA H100 80GB HBM3"; may be empty on the CPU
	Architecture string // e.g. "sm_90", "applegpu_g15s"
	// ComputeCapability is the CUDA compute capability (major, minor); zero elsewhere.
	ComputeCapability [2]int
}

// DefaultDeviceInfo describes the default device.
func DefaultDeviceInfo() DeviceInfo {
	var name, arch [256]C.char
	var major, minor C.int
	call("device_info", nil, func() C.int {
		return C.yai_device_info(&name[0], C.int(len(name)), &arch[0], C.int(len(arch)), &major, &minor)
	})
	return DeviceInfo{Name: C.GoString(&name[0]), Architecture: C.GoString(&arch[0]), ComputeCapability: [2]int{int(major), int(minor)}}
}

// GPUAvailable reports whether this build of MLX has a GPU backend with a device.
func GPUAvailable() bool { return C.yai_gpu_available() == 1 }

// Synchronize waits for all work queued on the default stream.
func Synchronize() { call("synchronize", nil, func() C.int { return C.yai_synchronize() }) }

// Stream is a queue of work on one device. Ops run on the default stream of the default
// device; streams are per MLX thread, which is why every call runs on that one thread.
type Stream struct {
	Device Device
	Index  int
}

// NewStream creates a stream on d.
func NewStream(d Device) Stream {
	var i C.int
	call("new_stream", nil, func() C.int { return C.yai_new_stream(C.int(d.Type), C.int(d.Index), &i) })
	return Stream{Device: d, Index: int(i)}
}

// DefaultStream is the stream ops on d run on.
func DefaultStream(d Device) Stream {
	var i C.int
	call("default_stream", nil, func() C.int { return C.yai_default_stream(C.int(d.Type), C.int(d.Index), &i) })
	return Stream{Device: d, Index: int(i)}
}

// SetDefaultStream makes s the stream for ops on its device.
func SetDefaultStream(s Stream) {
	call("set_default_stream", nil, func() C.int {
		return C.yai_set_default_stream(C.int(s.Device.Type), C.int(s.Device.Index), C.int(s.Index))
	})
}
