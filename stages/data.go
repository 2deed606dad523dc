package stages

import (
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/stages/stage"
)

// DataConfig configures the dataset read from the recipe's `data:` directory.
type DataConfig struct {
	Format       string `yaml:"format" default:"auto" enum:"auto,text,completions,chat,sharegpt,alpaca" doc:"record shape of the rows (JSONL, Parquet or Arrow): text, completions (prompt and completion), chat (messages), sharegpt (conversations of from/value turns) or alpaca (instruction, input, output); auto detects it from the first record"`
	Train        string `yaml:"train" default:"train.jsonl" doc:"training split inside the data directory: a JSONL, Parquet or Arrow file, a folder or a glob of file names; when the default train.jsonl is absent, the first of train.parquet, data/train-*.parquet, train-*.parquet, train/ (a DatasetDict split) and a save_to_disk folder"`
	Valid        string `yaml:"valid" default:"valid.jsonl" doc:"validation split inside the data directory, named as train is; when the default valid.jsonl is absent, the first of valid.parquet, validation.parquet, data/validation-*.parquet, validation-*.parquet and validation/"`
	BatchSize    int    `yaml:"batch_size" default:"1" min:"1" max:"1024" doc:"sequences per batch"`
	MaxSeqLength int    `yaml:"max_seq_length" default:"2048" min:"8" max:"131072" doc:"longer sequences are truncated"`
	TrainOn      string `yaml:"train_on" default:"auto" enum:"auto,assistant,last,all" doc:"the tokens the loss counts: assistant trains every assistant turn of a chat (the completion of a prompt/completion row) and masks system, user and tool turns; last trains only the last message, as mlx-lm's mask_prompt (earlier assistant turns are not trained); all trains every token; auto is assistant for chat and prompt/completion rows and all for text rows"`
	MaskPrompt   bool   `yaml:"mask_prompt" default:"false" doc:"mlx-lm's setting: true is train_on: last"`
	Shuffle      bool   `yaml:"shuffle" default:"true" doc:"shuffle the training set every epoch; false keeps the file order"`
	Seed         int    `yaml:"seed" default:"0" min:"0" doc:"seed for shuffling"`
	Pack         bool   `yaml:"pack" default:"false" doc:"pack short sequences one after another into rows of max_seq_length (block-diagonal causal attention, positions restarting per sequence) so no compute goes to padding; each sequence's loss is the one it has alone"`

	Columns DataColumns `yaml:"columns" doc:"the records' field names where they differ from the format's own, e.g. {messages: conversations, role: from, content: value}; unset names keep the format's own"`
}

// DataColumns renames the fields records are read from; an unset name keeps the format's own.
// Its fields are data.Columns', in the same order, so one converts to the other.
type DataColumns struct {
	Text        string `yaml:"text" doc:"text of text records (text)"`
	Prompt      string `yaml:"prompt" doc:"prompt of completions records (prompt)"`
	Completion  string `yaml:"completion" doc:"completion of completions records (completion)"`
	Messages    string `yaml:"messages" doc:"list of turns of chat and ShareGPT records (messages; ShareGPT: conversations or messages)"`
	Role        string `yaml:"role" doc:"speaker of each turn (role; ShareGPT: from)"`
	Content     string `yaml:"content" doc:"text of each turn (content; ShareGPT: value)"`
	Instruction string `yaml:"instruction" doc:"instruction of Alpaca records (instruction)"`
	Input       string `yaml:"input" doc:"optional input of Alpaca records (input)"`
	Output      string `yaml:"output" doc:"output of Alpaca records (output)"`
	System      string `yaml:"system" doc:"optional system prompt of Alpaca and ShareGPT records (system)"`
}

// Masking is the train_on setting in force: mask_prompt: true is last.
func (c *DataConfig) Masking() string {
	if c.MaskPrompt && c.TrainOn == "auto" {
		return "last"
	}
	return c.TrainOn
}

// Data tokenizes and batches the dataset; its batch shape drives the memory estimate.
var Data = Define(Def[DataConfig]{
	Name:    "data",
	Summary: "tokenize the dataset and batch it (padded to a multiple of 32, or packed)",
	Doc: "Reads train and validation records (text, prompt/completion or chat messages) from JSONL, " +
		"Parquet or datasets' save_to_disk Arrow files, " +
		"tokenizes them with the model's tokenizer and yields batches padded to a multiple of 32 " +
		"tokens, in a fresh seeded order every epoch (or in file order with shuffle: false); with " +
		"pack: true short sequences share rows of max_seq_length instead. " +
		"Runs once, at setup.",
	Events: []stage.Event{stage.Setup},
	Once:   true,
	CheckRecipe: func(c *DataConfig, r Recipe) []Problem {
		if c.MaskPrompt && c.TrainOn != "auto" && c.TrainOn != "last" {
			return []Problem{Errorf("with.mask_prompt", "mask_prompt: true is train_on: last, but train_on says %s; keep one of the two", c.TrainOn)}
		}
		if w := r.World(); c.BatchSize%w != 0 {
			return []Problem{Errorf("with.batch_size", "batch_size: %d does not divide by the %d ranks of distributed.ranks; each rank takes batch_size/ranks rows (try %d)",
				c.BatchSize, w, max(w, c.BatchSize/w*w))}
		}
		return nil
	},
	Workload: func(c *DataConfig, w *memplan.Workload) {
		w.BatchSize, w.MaxSeqLength, w.Pack = c.BatchSize, c.MaxSeqLength, c.Pack
	},
})
