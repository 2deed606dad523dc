package stages

import "reflect"

// Load4BitConfig configures loading the recipe's 4-bit model (mlx-community format).
type Load4BitConfig struct {
	ComputeDtype string `yaml:"compute_dtype" default:"bfloat16" enum:"bfloat16,float16,float32" doc:"dtype of activations and of the non-quantized weights"`
	Strict       bool   `yaml:"strict" default:"true" doc:"fail if a tensor in the model files is not used by the model"`
}

func init() {
	Register(Kind{
		Name:    "load-4bit",
		Summary: "load the recipe's 4-bit model (weights stay quantized)",
		Doc: "Reads config.json and the safetensors shards of the model named by the recipe's `model:` " +
			"and builds the network with quantized linear layers. Runs once, at setup.",
		Config: reflect.TypeFor[Load4BitConfig](),
		Events: []Event{Setup},
		Once:   true,
	})
}
