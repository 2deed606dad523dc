package model

import (
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// The model's description lives in modeldir, which needs no libmlx, so that the dry run and
// the loader read config.json the same way.
type (
	Config       = modeldir.Config
	RopeScaling  = modeldir.RopeScaling
	Quantization = modeldir.Quantization
)

// ReadConfig reads dir/config.json with mlx-lm's defaults applied.
func ReadConfig(dir string) (*Config, error) { return modeldir.ReadConfig(dir) }

// ParseConfig decodes the contents of a config.json.
func ParseConfig(data []byte) (*Config, error) { return modeldir.ParseConfig(data) }

// quant converts a config.json packing to the one MLX's quantized ops take.
func quant(q modeldir.Quant) mlx.Quantization { return mlx.Quantization(q) }
