// Package fuse merges LoRA adapters into a model's weights and writes the result as a
// complete mlx-community model directory that yai and mlx-lm both load.
//
// Each adapted layer is fused as mlx-lm's LoRALinear.fuse does: dequantize the base weight,
// add (scale · lora_bᵀ) @ lora_aᵀ in the weight's dtype, and quantize again with the layer's
// own bits, group size and mode, or keep the sum in float (Options.Dequantize, recorded per
// layer in config.json). Every other tensor is written unchanged.
package fuse
