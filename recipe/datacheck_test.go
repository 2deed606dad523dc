package recipe

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The data check's tokenization is cached in the cache directory, never beside the data, and
// a second validate recalls it: changing a row changes the key, so the change is seen.
func TestDataCheckCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("YAI_CACHE_DIR", cache)
	dir := t.TempDir()
	writeMalformedBase(t, dir)
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, malformedRecipe)
	p, ds := Validate(path, nil, ValidateOptions{})
	if p == nil || p.Widest == 0 {
		t.Fatalf("widest %v:\n%s", p, ds.Format())
	}
	records, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	if len(records) < 3 { // the tokenizer, train.jsonl and valid.jsonl
		t.Errorf("%d cache records, want the tokenizer's and one per data file", len(records))
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "data"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) != 2 || names[0] != "train.jsonl" || names[1] != "valid.jsonl" {
		t.Errorf("the data directory holds %v; the check must write nothing there", names)
	}

	p2, _ := Validate(path, nil, ValidateOptions{})
	if p2 == nil || p2.Widest != p.Widest {
		t.Fatalf("second validate: widest %d, first %d", p2.Widest, p.Widest)
	}
	writeFile(t, filepath.Join(dir, "data", "train.jsonl"), completionRows+`{"prompt": "x"}`+"\n")
	if p3, ds := Validate(path, nil, ValidateOptions{}); p3 != nil || len(ds) == 0 {
		t.Fatalf("a changed file was recalled from the cache: %v", ds)
	}
}

// The dry run reads the data stage's columns and format as the run does: renamed fields are
// found, a bad ShareGPT row is an error at its line, and a misspelt column is an unknown key.
func TestDataCheckColumns(t *testing.T) {
	t.Setenv("YAI_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	writeMalformedBase(t, dir)
	qa := strings.NewReplacer(`"prompt"`, `"question"`, `"completion"`, `"answer"`).Replace(completionRows)
	writeFile(t, filepath.Join(dir, "data", "train.jsonl"), qa)
	writeFile(t, filepath.Join(dir, "data", "valid.jsonl"), qa)
	path := filepath.Join(dir, "r.yaml")
	validate := func(with string) Diagnostics {
		t.Helper()
		writeFile(t, path, editRecipe("with: {batch_size: 2, max_seq_length: 256}", with))
		_, ds := Validate(path, nil, ValidateOptions{})
		return ds
	}
	if ds := validate("with: {batch_size: 2, max_seq_length: 256}"); !ds.HasErrors() || !strings.Contains(ds.Format(), "unsupported row format") {
		t.Errorf("question/answer rows read without columns:\n%s", ds.Format())
	}
	if ds := validate("with: {batch_size: 2, max_seq_length: 256, columns: {prompt: question, completion: answer}}"); ds.HasErrors() {
		t.Errorf("columns: {prompt: question, completion: answer}:\n%s", ds.Format())
	}
	if ds := validate("with: {batch_size: 2, columns: {promt: question}}"); !strings.Contains(ds.Format(), `unknown key "promt"`) {
		t.Errorf("a misspelt column:\n%s", ds.Format())
	}

	shareGPT := `{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}` + "\n"
	writeFile(t, filepath.Join(dir, "data", "train.jsonl"), shareGPT+shareGPT+`{"conversations": [{"from": "bot", "value": "Hi"}]}`+"\n")
	writeFile(t, filepath.Join(dir, "data", "valid.jsonl"), shareGPT+shareGPT)
	ds := validate("with: {batch_size: 2, format: sharegpt}")
	var found bool
	for _, d := range ds {
		if d.Range.Line == 3 && filepath.Base(d.Range.File) == "train.jsonl" && strings.Contains(d.Summary, `unknown speaker "bot"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no error at train.jsonl:3 for the unknown speaker:\n%s", ds.Format())
	}
	if ds := validate("with: {batch_size: 2, format: alpaca}"); !strings.Contains(ds.Format(), "format: alpaca") {
		t.Errorf("ShareGPT rows passed as format: alpaca:\n%s", ds.Format())
	}
}

// The dry run sums up what the loss will learn from each split, as the run's reader counts
// it: every assistant turn trains more than the last turn alone, all trains every token, and
// the memory estimate's loss runs on the most targets a batch trains.
func TestDataCheckCountsWhatTrains(t *testing.T) {
	t.Setenv("YAI_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	writeMalformedBase(t, dir)
	chat := `{"messages": [{"role": "user", "content": "Who has a dog?"}, {"role": "assistant", "content": "Ben."}, {"role": "user", "content": "And an owl?"}, {"role": "assistant", "content": "Lena has the owl."}]}` + "\n"
	writeFile(t, filepath.Join(dir, "data", "train.jsonl"), strings.Repeat(chat, 4))
	writeFile(t, filepath.Join(dir, "data", "valid.jsonl"), strings.Repeat(chat, 2))
	path := filepath.Join(dir, "r.yaml")
	plan := func(trainOn string) *Plan {
		t.Helper()
		writeFile(t, path, editRecipe("with: {batch_size: 2, max_seq_length: 256}", "with: {batch_size: 2, max_seq_length: 256, train_on: "+trainOn+"}"))
		p, ds := Validate(path, nil, ValidateOptions{})
		if p == nil || len(p.Data) != 2 {
			t.Fatalf("train_on %s: %v\n%s", trainOn, p, ds.Format())
		}
		return p
	}
	assistant, last, all, auto := plan("assistant"), plan("last"), plan("all"), plan("auto")
	a, l, w := assistant.Data[0], last.Data[0], all.Data[0]
	if a.Rows != 4 || a.Turns != 16 || a.Format != "chat" || a.TrainOn != "assistant" {
		t.Errorf("train split summed up as %+v", a)
	}
	if auto.Data[0] != a {
		t.Errorf("auto %+v, assistant %+v", auto.Data[0], a)
	}
	// last counts the second reply and the padding step after it; assistant both replies.
	if l.Trained <= 0 || a.Trained <= l.Trained {
		t.Errorf("trained tokens: assistant %d, last %d", a.Trained, l.Trained)
	}
	if w.Masked != 0 || a.Masked == 0 || a.Trained+a.Masked != w.Trained {
		t.Errorf("all trains every kept token (%d, %d masked); assistant %d trained + %d masked must make them up", w.Trained, w.Masked, a.Trained, a.Masked)
	}
	if got, want := assistant.MostTargets, int(a.Trained/2); got != want { // identical rows, two a batch
		t.Errorf("most targets in a batch %d, want %d", got, want)
	}
	if assistant.Decision.Budget.LossPositions >= all.Decision.Budget.LossPositions {
		t.Errorf("the estimate's loss positions: %d with assistant turns only, %d with every token", assistant.Decision.Budget.LossPositions, all.Decision.Budget.LossPositions)
	}
	if !strings.Contains(assistant.Describe(), "data train (train.jsonl): 4 chat rows, 16 messages; train_on assistant: ") {
		t.Errorf("the plan does not sum up the data:\n%s", assistant.Describe())
	}
}
