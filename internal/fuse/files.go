package fuse

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/mlx"
)

// maxShardBytes is mlx-lm's MAX_FILE_SIZE_GB.
const maxShardBytes = 5 << 30

const indexFile = "model.safetensors.index.json"

// writeWeights writes tensors into dir in name order, in files of at most shardBytes (a
// larger tensor gets a file of its own), named as mlx-lm's save names them, plus the index.
func writeWeights(dir string, tensors map[string]*mlx.Array, shardBytes int) ([]string, error) {
	if shardBytes <= 0 {
		shardBytes = maxShardBytes
	}
	names := make([]string, 0, len(tensors))
	total := 0
	for n, t := range tensors {
		names = append(names, n)
		total += t.Nbytes()
	}
	sort.Strings(names)
	var shards [][]string
	size := 0
	for _, n := range names {
		b := tensors[n].Nbytes()
		if len(shards) == 0 || size+b > shardBytes {
			shards = append(shards, nil)
			size = 0
		}
		shards[len(shards)-1] = append(shards[len(shards)-1], n)
		size += b
	}
	weightMap := map[string]string{}
	var files []string
	for i, shard := range shards {
		file := "model.safetensors"
		if len(shards) > 1 {
			file = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		}
		part := make(map[string]*mlx.Array, len(shard))
		for _, n := range shard {
			part[n] = tensors[n]
			weightMap[n] = file
		}
		if err := mlx.SaveSafetensors(filepath.Join(dir, file), part, map[string]string{"format": "mlx"}); err != nil {
			return nil, err
		}
		files = append(files, file)
	}
	index, err := json.MarshalIndent(map[string]any{
		"metadata":   map[string]any{"total_size": total},
		"weight_map": weightMap,
	}, "", "    ")
	if err != nil {
		return nil, err
	}
	return files, atomicfile.Write(filepath.Join(dir, indexFile), append(index, '\n'), 0o644)
}

// writeConfig copies config.json, marking the layers fused into float as not quantized
// (mlx-lm's per-layer `false`) in quantization and quantization_config, and the layers
// re-quantized with other settings with their own (mlx-lm's per-layer object).
func writeConfig(modelDir, dir string, plain []string, requant map[string]mlx.Quantization) error {
	path := filepath.Join(modelDir, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, key := range []string{"quantization", "quantization_config"} {
		q, ok := cfg[key].(map[string]any)
		if !ok {
			continue
		}
		for _, layer := range plain {
			q[layer] = false
		}
		for layer, lq := range requant {
			per := map[string]any{"group_size": lq.GroupSize, "bits": lq.Bits}
			if lq.Mode != "" && lq.Mode != "affine" {
				per["mode"] = lq.Mode
			}
			q[layer] = per
		}
	}
	out, err := json.MarshalIndent(cfg, "", "    ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "config.json"), append(out, '\n'), 0o644)
}

// copyTokenizerFiles copies every other file of the model directory (tokenizer, chat
// template, generation config, readme): all but the weights, their index and config.json.
func copyTokenizerFiles(modelDir, dir string) error {
	entries, err := os.ReadDir(modelDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".safetensors") ||
			name == indexFile || name == "config.json" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(modelDir, name))
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
