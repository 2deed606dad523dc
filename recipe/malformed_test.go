package recipe

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/modeldir"
)

var printMalformed = flag.Bool("print-malformed", false, "print each malformed case's first diagnostic")

// malformedRecipe is the valid recipe every malformed case starts from: a small header model
// in ./model and completions in ./data.
const malformedRecipe = `version: 1
name: table
model: ./model
data: ./data
steps: 10
memory:
  limit: 2GB
stages:
  - id: load
    kind: load-4bit
  - id: lora
    kind: attach-lora
    after: [load]
    with: {rank: 4, layers: 2, keys: [q_proj]}
  - id: data
    kind: data
    after: [load]
    with: {batch_size: 2, max_seq_length: 256}
  - id: train
    kind: step
  - id: clear
    kind: clear-cache
    when: step % 3 == 0
`

var malformedModel = modeldir.Config{ModelType: "llama", NumHiddenLayers: 2, HiddenSize: 64, IntermediateSize: 128,
	NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 1024, TieWordEmbeddings: true}

const completionRows = `{"prompt": "What is the colour of the hen?", "completion": "Green."}
{"prompt": "Who has a dog?", "completion": "Ben."}
{"prompt": "Who has an owl?", "completion": "Lena."}
{"prompt": "What is blue?", "completion": "The dog."}
`

// writeMalformedBase writes the recipe's model and data into dir.
func writeMalformedBase(t *testing.T, dir string) {
	testenv.WriteHeaderModel(t, filepath.Join(dir, "model"), malformedModel)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	writeFile(t, filepath.Join(dir, "data", "train.jsonl"), completionRows)
	writeFile(t, filepath.Join(dir, "data", "valid.jsonl"), completionRows)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// editRecipe replaces old by new in the base recipe (once; old must be there).
func editRecipe(old, new string) string {
	if !strings.Contains(malformedRecipe, old) {
		panic("malformed case edits missing text: " + old)
	}
	return strings.Replace(malformedRecipe, old, new, 1)
}

// editTensors rewrites the model's safetensors header through fix, keeping the file's size
// equal to what the new offsets need unless fix says otherwise (size < 0 keeps it exact).
func editTensors(t *testing.T, dir string, fix func(ts map[string]modeldir.TensorInfo) (size int64)) {
	t.Helper()
	path := filepath.Join(dir, "model", "model.safetensors")
	ts, err := modeldir.ReadSafetensorsHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	size := fix(ts)
	end := int64(0)
	for _, x := range ts {
		end = max(end, x.DataOffsets[1])
	}
	if err := modeldir.WriteSafetensorsHeader(path, ts); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if size < 0 {
		size = st.Size() + end
	} else {
		size += st.Size()
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// editConfig rewrites one key of the model's config.json.
func editConfig(t *testing.T, dir, key string, value any) {
	t.Helper()
	path := filepath.Join(dir, "model", "config.json")
	var cfg map[string]any
	b, _ := os.ReadFile(path)
	json.Unmarshal(b, &cfg)
	if value == nil {
		delete(cfg, key)
	} else {
		cfg[key] = value
	}
	b, _ = json.Marshal(cfg)
	writeFile(t, path, string(b))
}

type malformedCase struct {
	name  string
	src   string                         // the recipe; "" keeps the base
	sets  []string                       // --set overrides
	setup func(t *testing.T, dir string) // breaks the model or data
	want  string                         // the first diagnostic, with the case's directory as $D
	valid bool                           // warnings only: validate accepts it (exit 0)
}

func rows(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func trainRows(content string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "data", "train.jsonl"), content) }
}

var malformedCases = []malformedCase{
	// YAML syntax and bytes: the fault's own line and column.
	{name: "unclosed bracket", src: editRecipe("after: [load]\n    with: {rank", "after: [load\n    with: {rank"),
		want: `$D/r.yaml:13:12: error: YAML syntax: '[' is never closed (expected ',' or ']')`},
	{name: "unclosed brace", src: editRecipe("with: {batch_size: 2, max_seq_length: 256}", "with: {batch_size: 2, max_seq_length: 256"),
		want: `$D/r.yaml:18:11: error: YAML syntax: '{' is never closed (expected ',' or '}')`},
	{name: "mismatched bracket", src: editRecipe("keys: [q_proj]}", "keys: [q_proj}}"),
		want: `$D/r.yaml:14:45: error: YAML syntax: '}' closes nothing, or a bracket of the other kind`},
	{name: "tab indentation", src: editRecipe("  limit: 2GB", "\tlimit: 2GB"),
		want: `$D/r.yaml:7:1: error: YAML syntax: found a character that cannot start any token (a tab, @ or ` + "`" + `)`},
	{name: "tab after spaces", src: editRecipe("    kind: step\n", "    kind: step\n  \t  every: 2\n"),
		want: `$D/r.yaml:21:3: error: YAML syntax: found a tab character that violates indentation`},
	{name: "NUL byte", src: editRecipe("name: table", "name: ta\x00ble"),
		want: `$D/r.yaml:2:9: error: NUL byte: a recipe is text`},
	{name: "invalid UTF-8", src: editRecipe("    when: step % 3 == 0", "    when: step % 3 == 0 # caf\xe9"),
		want: `$D/r.yaml:23:30: error: invalid UTF-8 (byte 0xe9): a recipe is UTF-8 text`},
	{name: "invalid UTF-8 after multibyte", src: editRecipe("name: table", "name: héé\xff"),
		want: `$D/r.yaml:2:10: error: invalid UTF-8 (byte 0xff): a recipe is UTF-8 text`},
	{name: "control character", src: editRecipe("name: table", "name: ta\x07ble"),
		want: `$D/r.yaml:2:9: error: control character U+0007 is not allowed in YAML`},
	{name: "unclosed double quote", src: editRecipe("    when: step % 3 == 0", `    when: "step % 3 == 0`),
		want: `$D/r.yaml:23:11: error: YAML syntax: a quoted string is never closed (found the end of the file)`},
	{name: "unclosed single quote", src: editRecipe("name: table", "name: 'table"),
		want: `$D/r.yaml:2:7: error: YAML syntax: a quoted string is never closed (found the end of the file)`},
	{name: "unquoted ternary trigger", src: editRecipe("when: step % 3 == 0", "when: step % (limit < 10*GB ? 5 : 10) == 0"),
		want: `$D/r.yaml:23:37: error: YAML syntax: mapping values are not allowed in this context`},
	{name: "key indented too far", src: editRecipe("    kind: step", "      kind: step"),
		want: `$D/r.yaml:20:11: error: YAML syntax: mapping values are not allowed in this context`},
	{name: "key indented too little", src: editRecipe("    kind: step", "   kind: step"),
		want: `$D/r.yaml:20:4: error: YAML syntax: did not find expected '-' indicator`},
	{name: "reserved @", src: editRecipe("name: table", "name: @table"),
		want: `$D/r.yaml:2:7: error: YAML syntax: found a character that cannot start any token (a tab, @ or ` + "`" + `)`},
	{name: "second document", src: malformedRecipe + "---\nversion: 1\n",
		want: `$D/r.yaml:24:1: error: a recipe file holds one YAML document; a second one starts here`},
	{name: "empty second document", src: malformedRecipe + "---\n",
		want: `$D/r.yaml:24:1: error: a recipe file holds one YAML document; a second one starts here`},
	{name: "empty file", src: "\n",
		want: `$D/r.yaml:1:1: error: empty recipe: start it with "version: 1"`},
	{name: "only comments", src: "# nothing yet\n",
		want: `$D/r.yaml:1:1: error: empty recipe: start it with "version: 1"`},
	{name: "top-level list", src: "- version: 1\n",
		want: `$D/r.yaml:1:1: error: a recipe is a mapping of keys (version, name, model, …), got a list`},
	{name: "file too large", src: malformedRecipe + "# " + strings.Repeat("x", MaxRecipeBytes) + "\n",
		want: `$D/r.yaml:1:1: error: recipe is 2097560 bytes; a recipe file may hold at most 2097152 (2 MiB)`},
	{name: "YAML nesting too deep", src: "version: 1\nx: " + strings.Repeat("[", 20000) + "\n",
		want: `$D/r.yaml:2:1: error: YAML syntax: exceeded max depth of 10000`},

	// Recipe corners.
	{name: "limit zero", src: editRecipe("limit: 2GB", "limit: 0"),
		want: `$D/r.yaml:7:10: error: limit: 0 leaves the run without a budget; give a size such as 7GB, or auto`},
	{name: "limit zero with unit", src: editRecipe("limit: 2GB", "limit: 0GB"),
		want: `$D/r.yaml:7:10: error: limit: 0 leaves the run without a budget; give a size such as 7GB, or auto`},
	{name: "no stages", src: strings.SplitAfter(malformedRecipe, "  limit: 2GB\n")[0] + "stages: []\n",
		want: `$D/r.yaml:8:9: error: stages: the list is empty; a recipe needs at least a step stage to train`},
	{name: "empty id", src: editRecipe("id: train", `id: ""`),
		want: `$D/r.yaml:19:9: error: id: a stage id cannot be empty`},
	{name: "blank id", src: editRecipe("id: clear", `id: "  "`),
		want: `$D/r.yaml:21:9: error: id: a stage id cannot be empty`},
	{name: "empty name", src: editRecipe("name: table", `name: ""`),
		want: `$D/r.yaml:2:7: error: name: the name cannot be empty (it names the run directories)`},
	{name: "name too long", src: editRecipe("name: table", "name: "+strings.Repeat("n", 300)),
		want: `$D/r.yaml:2:7: error: name: the name is 300 bytes; at most 200 fit in a run directory's name`},
	{name: "name with slash", src: editRecipe("name: table", "name: runs/table"),
		want: `$D/r.yaml:2:7: error: name: the name cannot hold '/' (it names the run directories)`},
	{name: "name dot dot", src: editRecipe("name: table", "name: '..'"),
		want: `$D/r.yaml:2:7: error: name: the name cannot be . or .. (it names the run directories)`},
	{name: "missing version", src: strings.TrimPrefix(malformedRecipe, "version: 1\n"),
		want: `$D/r.yaml:1:1: error: missing version: start the recipe with "version: 1"`},
	{name: "unknown version", src: editRecipe("version: 1", "version: 2"),
		want: `$D/r.yaml:1:10: error: unsupported recipe version 2 (this yai reads version 1)`},
	{name: "unknown top-level key", src: editRecipe("steps: 10", "step: 10"),
		want: `$D/r.yaml:5:1: error: unknown key "step" (did you mean "steps"?)`},
	{name: "unknown kind", src: editRecipe("kind: clear-cache", "kind: clear-cahce"),
		want: `$D/r.yaml:22:11: error: unknown stage kind "clear-cahce" (did you mean "clear-cache"?)`},
	{name: "duplicate id", src: editRecipe("id: clear", "id: train"),
		want: `$D/r.yaml:21:9: error: duplicate stage id "train" (first used at line 19)`},
	{name: "after unknown stage", src: editRecipe("after: [load]\n    with: {rank", "after: [laod]\n    with: {rank"),
		want: `$D/r.yaml:13:13: error: stage "lora" runs after unknown stage "laod" (did you mean "load"?)`},
	{name: "dependency cycle", src: editRecipe("  - id: load\n    kind: load-4bit", "  - id: load\n    kind: load-4bit\n    after: [lora]"),
		want: `$D/r.yaml:11:12: error: dependency cycle: load -> lora -> load`},
	{name: "trigger unknown name", src: editRecipe("when: step % 3 == 0", "when: mlx.actve > 0.7*limit"),
		want: `$D/r.yaml:23:11: error: trigger: unknown name "mlx.actve" (did you mean "mlx.active"?)`},
	{name: "trigger not boolean", src: editRecipe("when: step % 3 == 0", "when: step % 3"),
		want: `$D/r.yaml:23:11: error: trigger must be true or false, but "step % 3" is an integer`},
	{name: "trigger a million parentheses", src: editRecipe("when: step % 3 == 0", "when: "+strings.Repeat("(", 1_000_000)+"true"+strings.Repeat(")", 1_000_000)),
		want: `$D/r.yaml:23:11: error: trigger: 2000004 bytes long; at most 1024`},
	{name: "trigger nested too deep", src: editRecipe("when: step % 3 == 0", "when: "+strings.Repeat("(", 40)+"true"+strings.Repeat(")", 40)),
		want: `$D/r.yaml:23:43: error: trigger: brackets nested more than 32 deep`},
	{name: "every zero", src: editRecipe("when: step % 3 == 0", "every: 0"),
		want: `$D/r.yaml:23:12: error: every: 0 is below the minimum 1`},
	{name: "steps zero", src: editRecipe("steps: 10", "steps: 0"),
		want: `$D/r.yaml:5:8: error: steps: 0 is below the minimum 1`},
	{name: "limit not a size", src: editRecipe("limit: 2GB", "limit: lots"),
		want: `$D/r.yaml:7:10: error: limit: bad size "lots": expected a number followed by a unit (B, KB, MB, GB, KiB, MiB, GiB)`},

	// --set overrides: the override is blamed, never the file.
	{name: "set empty value", sets: []string{"memory.limit="},
		want: `--set memory.limit=: error: memory.limit has no value: give one after '=', or drop the --set to keep the recipe's value`},
	{name: "set blank value", sets: []string{"name= "},
		want: `--set name= : error: name has no value: give one after '=', or drop the --set to keep the recipe's value`},
	{name: "set without equals", sets: []string{"memory.limit"},
		want: `--set memory.limit: error: expected path=value, e.g. memory.limit=6GB`},
	{name: "set unknown stage", sets: []string{"stages.trian.with.lr=1e-4"},
		want: `--set stages.trian.with.lr=1e-4: error: stages has no stage with id "trian" (did you mean "train"?)`},
	{name: "set limit zero", sets: []string{"memory.limit=0"},
		want: `--set memory.limit=0: error: limit: 0 leaves the run without a budget; give a size such as 7GB, or auto`},
	{name: "set invalid YAML", sets: []string{"stages.lora.with.keys=[q_proj"},
		want: `--set stages.lora.with.keys=[q_proj: error: value is not valid YAML: line 1: did not find expected ',' or ']'`},
	{name: "set out of range", sets: []string{"stages.data.with.batch_size=0"},
		want: `--set stages.data.with.batch_size=0: error: batch_size: 0 is below the minimum 1`},

	// Data: every row as the run reads it, at file:line:column.
	{name: "data directory missing", src: editRecipe("data: ./data", "data: ./nodata"),
		want: `$D/r.yaml:4:7: error: data: $D/nodata does not exist`},
	{name: "no data key", src: editRecipe("data: ./data\n", ""),
		want: `$D/r.yaml:15:11: error: the data stage needs data: the directory holding train.jsonl and valid.jsonl`},
	{name: "train file missing", setup: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "data", "train.jsonl")) },
		want: `$D/r.yaml:4:7: error: no train split in $D/data: looked for train.jsonl, train.parquet, data/train-*.parquet, train-*.parquet, train/ (a DatasetDict split folder), a Dataset.save_to_disk folder (state.json)`},
	{name: "named valid file missing", src: editRecipe("max_seq_length: 256}", "max_seq_length: 256, valid: dev.jsonl}"),
		want: `$D/r.yaml:18:55: error: dev.jsonl: no such file in the data directory $D/data`},
	{name: "data BOM", setup: trainRows("\uFEFF" + completionRows),
		want: `$D/data/train.jsonl:1:1: error: the file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without one`},
	{name: "data invalid UTF-8", setup: trainRows(completionRows + `{"prompt": "caf` + "\xe9" + `?", "completion": "no"}` + "\n"),
		want: `$D/data/train.jsonl:5:16: error: invalid UTF-8 (byte 0xe9): rows are UTF-8 text`},
	{name: "data bad JSON", setup: trainRows(completionRows + `{"prompt": "x", "completion": "y"` + "\n"),
		want: `$D/data/train.jsonl:5:33: error: invalid JSON: unexpected end of JSON input`},
	{name: "data empty line", setup: trainRows("\n" + completionRows),
		want: `$D/data/train.jsonl:1:1: error: empty line`},
	{name: "data missing key", setup: trainRows(completionRows + `{"prompt": "x"}` + "\n"),
		want: `$D/data/train.jsonl:5:1: error: missing key "completion"`},
	{name: "data mistyped key", setup: trainRows(completionRows + `{"prompt": ["x"], "completion": "y"}` + "\n"),
		want: `$D/data/train.jsonl:5:1: error: "prompt" must be a string, found an array`},
	{name: "data not an object", setup: trainRows("[1, 2]\n"),
		want: `$D/data/train.jsonl:1:1: error: expected a JSON object, found an array`},
	{name: "data unknown role", src: editRecipe("with: {batch_size: 2,", "with: {format: chat, batch_size: 2,"),
		setup: trainRows(rows(`{"messages": [{"role": "user", "content": "hi"}, {"role": "asistant", "content": "yo"}]}`, `{"messages": [{"role": "user", "content": "hi"}]}`)),
		want:  `$D/data/train.jsonl:1:1: error: messages[1].role: unknown role "asistant" (roles: system, user, assistant, tool, ipython, developer)`},
	{name: "data text rows under format chat", src: editRecipe("with: {batch_size: 2,", "with: {format: chat, mask_prompt: true, batch_size: 2,"),
		setup: trainRows(rows(`{"text": "a"}`, `{"text": "b"}`)),
		want:  `$D/data/train.jsonl:1:1: error: the row is text, but the data stage says format: chat, which expects {"messages": [...]}`},
	{name: "data unknown format", setup: trainRows(rows(`{"input": "a"}`, `{"input": "b"}`)),
		want: `$D/data/train.jsonl:1:1: error: unsupported row format: expected "text", "prompt" and "completion", "messages", "conversations" (ShareGPT), or "instruction" and "output" (Alpaca)`},
	{name: "data fewer rows than a batch", src: editRecipe("batch_size: 2", "batch_size: 8"),
		want: `$D/r.yaml:4:7: error: train.jsonl: 4 rows, fewer than batch_size 8: no batch can be made`},
	{name: "data empty file", setup: trainRows(""),
		want: `$D/data/train.jsonl: error: no rows`},
	{name: "data row longer than max_seq_length", src: editRecipe("max_seq_length: 256", "max_seq_length: 128"),
		setup: trainRows(completionRows + `{"prompt": "` + strings.Repeat("a long prompt ", 20) + `", "completion": "y"}` + "\n"),
		want:  `$D/data/train.jsonl:5:1: warning: row has 273 tokens, more than max_seq_length 128: it will be truncated`, valid: true},
	{name: "data every target masked", src: editRecipe("max_seq_length: 256", "max_seq_length: 16, mask_prompt: true"),
		setup: trainRows(rows(`{"prompt": "`+strings.Repeat("a long prompt ", 20)+`", "completion": "y"}`, `{"prompt": "`+strings.Repeat("another prompt ", 20)+`", "completion": "z"}`)),
		want:  `$D/r.yaml:4:7: error: train.jsonl: every row's targets are masked: the loss has nothing to train on`},

	// Model files: named by file and tensor.
	{name: "model without weights", setup: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "model", "model.safetensors")) },
		want: `$D/model: error: no safetensors files (model.safetensors, or shards named by model.safetensors.index.json)`},
	{name: "model truncated", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(map[string]modeldir.TensorInfo) int64 { return 1000 })
	}, want: `$D/model/model.safetensors: error: tensor model.embed_tokens.weight: data ends at byte 32768, past the end of the file (it holds 1000 bytes of data; 50 tensors lie beyond): the file is truncated or its offsets are wrong`},
	{name: "model offset past end", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			x := ts["model.norm.weight"]
			x.DataOffsets = [2]int64{1 << 30, 1<<30 + 128}
			ts["model.norm.weight"] = x
			return 104192
		})
	}, want: `$D/model/model.safetensors: error: tensor model.norm.weight: data ends at byte 1073741952, past the end of the file (it holds 104192 bytes of data; 1 tensors lie beyond): the file is truncated or its offsets are wrong`},
	{name: "model offsets disagree with shape", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			x := ts["model.norm.weight"]
			x.Shape = []int64{32}
			ts["model.norm.weight"] = x
			return -1
		})
	}, want: `$D/model/model.safetensors: error: tensor model.norm.weight: data offsets [36864 36992] hold 128 bytes, but BF16 [32] needs 64`},
	{name: "model wrong shape", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			x := ts["model.layers.1.post_attention_layernorm.weight"]
			x.Shape = []int64{32, 2}
			ts["model.layers.1.post_attention_layernorm.weight"] = x
			return -1
		})
	}, want: `$D/model/model.safetensors: error: tensor model.layers.1.post_attention_layernorm.weight: shape [32 2], expected [64] (from config.json: hidden_size)`},
	{name: "model wrong dtype", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			x := ts["model.norm.weight"]
			x.Dtype, x.Shape = "I16", []int64{64}
			ts["model.norm.weight"] = x
			return -1
		})
	}, want: `$D/model/model.safetensors: error: tensor model.norm.weight: dtype I16, expected F16, BF16 or F32`},
	{name: "model quantized weight without scales", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			delete(ts, "model.layers.0.mlp.up_proj.scales")
			return -1
		})
	}, want: `$D/model/model.safetensors: error: tensor model.layers.0.mlp.up_proj.scales: missing: model.layers.0.mlp.up_proj.weight is packed (U32) but has no scales`},
	{name: "model missing biases", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			delete(ts, "model.layers.1.mlp.down_proj.biases")
			return -1
		})
	}, want: `$D/model/model.safetensors: error: tensor model.layers.1.mlp.down_proj.biases: missing (the model needs it: llama, shape [64 2])`},
	{name: "model missing norm", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			delete(ts, "model.layers.0.input_layernorm.weight")
			return -1
		})
	}, want: `$D/model/model.safetensors: error: tensor model.layers.0.input_layernorm.weight: missing (the model needs it: llama, shape [64])`},
	{name: "model unexpected tensor", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			ts["model.layers.2.input_layernorm.weight"] = modeldir.TensorInfo{Dtype: "BF16", Shape: []int64{64}, DataOffsets: [2]int64{104192, 104320}}
			return -1
		})
	}, want: `$D/model/model.safetensors: error: tensor model.layers.2.input_layernorm.weight: unexpected tensor: the model has no such weight (config.json: llama, 2 layers)`},
	{name: "model vocab disagrees with config", setup: func(t *testing.T, dir string) { editConfig(t, dir, "vocab_size", 2048) },
		want: `$D/model/model.safetensors: error: tensor model.embed_tokens.biases: shape [1024 1], expected [2048 1] (from config.json: vocab_size, groups of 64)`},
	{name: "model head_dim disagrees with config", setup: func(t *testing.T, dir string) { editConfig(t, dir, "head_dim", 32) },
		want: `$D/model/model.safetensors: error: tensor model.layers.0.self_attn.k_proj.biases: shape [32 1], expected [64 1] (from config.json: num_key_value_heads × head_dim, groups of 64)`},
	{name: "model config missing", setup: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "model", "config.json")) },
		want: `$D/r.yaml:3:8: error: model directory $D/model has no readable config.json: open $D/model/config.json: no such file or directory`},
	{name: "model not safetensors", setup: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, "model", "model.safetensors"), string(binary.LittleEndian.AppendUint64(nil, 1<<40)))
	}, want: `$D/model/model.safetensors: error: not a safetensors file (header length 1099511627776, file size 8)`},
	{name: "model header not JSON", setup: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, "model", "model.safetensors"), string(binary.LittleEndian.AppendUint64(nil, 4))+"{x:1")
	}, want: `$D/model/model.safetensors: error: bad safetensors header: invalid character 'x' looking for beginning of object key string`},
	{name: "model unknown dtype", setup: func(t *testing.T, dir string) {
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			x := ts["model.norm.weight"]
			x.Dtype = "Q4"
			ts["model.norm.weight"] = x
			return -1
		})
	}, want: `$D/model/model.safetensors: error: tensor model.norm.weight: unknown dtype "Q4"`},
	{name: "model index names a missing shard", setup: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, "model", "model.safetensors.index.json"), `{"weight_map": {"model.norm.weight": "model-00002.safetensors"}}`)
	}, want: `$D/model/model-00002.safetensors: error: open $D/model/model-00002.safetensors: no such file or directory`},
	{name: "model index misses tensors", setup: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, "model", "model.safetensors.index.json"), `{"weight_map": {"model.norm.weight": "model.safetensors"}}`)
	}, want: `$D/model/model.safetensors.index.json: error: tensor model.embed_tokens.biases: stored in model.safetensors but missing from the index's weight_map`},
	{name: "tokenizer not JSON", setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "model", "tokenizer.json"), "{") },
		want: `$D/model/tokenizer.json:1:1: error: unexpected end of JSON input`},
	{name: "tokenizer larger than the vocabulary", setup: func(t *testing.T, dir string) {
		editConfig(t, dir, "vocab_size", 512)
		editTensors(t, dir, func(ts map[string]modeldir.TensorInfo) int64 {
			for _, n := range []string{"weight", "scales", "biases"} {
				x := ts["model.embed_tokens."+n]
				x.Shape[0] = 512
				x.DataOffsets[1] = x.DataOffsets[0] + x.Elements()*map[string]int64{"U32": 4, "BF16": 2}[x.Dtype]
				ts["model.embed_tokens."+n] = x
			}
			return -1
		})
	}, want: `$D/model/tokenizer.json: error: the tokenizer has 1000 ids, more than config.json's vocab_size 512: ids past it have no embedding`},
}

// Every malformed input gets its exact first diagnostic, and validate's verdict (exit 1 for
// errors, 0 for warnings only) with it.
func TestMalformedInputs(t *testing.T) {
	if len(malformedCases) < 60 {
		t.Fatalf("%d malformed cases; the table must keep at least 60", len(malformedCases))
	}
	for _, c := range malformedCases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeMalformedBase(t, dir)
			src := c.src
			if src == "" {
				src = malformedRecipe
			}
			path := filepath.Join(dir, "r.yaml")
			writeFile(t, path, src)
			if c.setup != nil {
				c.setup(t, dir)
			}
			p, ds := Validate(path, c.sets, ValidateOptions{})
			if len(ds) == 0 {
				t.Fatalf("no diagnostic; want %s", c.want)
			}
			got := strings.ReplaceAll(ds[0].String(), dir, "$D")
			if *printMalformed {
				fmt.Printf("%-40s %s\n", c.name, got)
			}
			if got != c.want {
				t.Errorf("first diagnostic\n got: %s\nwant: %s\nall:\n%s", got, c.want, ds.Format())
			}
			if c.valid != (p != nil) {
				t.Errorf("valid = %v, want %v:\n%s", p != nil, c.valid, ds.Format())
			}
		})
	}
}

// The base of the table is itself valid, so each case fails for its own fault only.
func TestMalformedBaseIsValid(t *testing.T) {
	dir := t.TempDir()
	writeMalformedBase(t, dir)
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, malformedRecipe)
	if p, ds := Validate(path, nil, ValidateOptions{}); p == nil || len(ds) > 0 {
		t.Fatalf("base recipe:\n%s", ds.Format())
	}
}
