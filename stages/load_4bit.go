package stages

import "github.com/yai-dev/yai/modeldir"

// Load4BitConfig configures loading the recipe's 4-bit model (mlx-community format). It has no
// settings yet: the model computes in its checkpoint's dtype, as mlx-lm does, and a tensor
// the model does not use is always an error.
type Load4BitConfig struct{}

// Load4Bit loads the recipe's model.
var Load4Bit = Define(Def[Load4BitConfig]{
	Name:    "load-4bit",
	Summary: "load the recipe's 4-bit model (weights stay quantized)",
	Doc: "Reads config.json and the safetensors shards of the model named by the recipe's `model:` " +
		"and builds the network with quantized linear layers (a layer is quantized when its scales " +
		"are present). Activations use the checkpoint's dtype. Runs once, at setup.",
	Events: []Event{Setup},
	Once:   true,
	CheckModel: func(c *Load4BitConfig, m *modeldir.Info) []Problem {
		if m.Config.Quantization == nil {
			return []Problem{Warnf("kind", "the model has no quantization in config.json; load-4bit expects a quantized model")}
		}
		return nil
	},
})
