package schema

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/yai-dev/yai/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite recipe.v1.json")

// The checked-in schema is what the registry generates now.
func TestSchemaIsCurrent(t *testing.T) {
	got, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("recipe.v1.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("recipe.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("recipe.v1.json is stale; run go test ./schema -update (-file +generated):\n%s", diff)
	}
}

// checkWithJSONSchema validates each document with the Python jsonschema package and returns,
// per document, the first error message ("" when valid).
func checkWithJSONSchema(t *testing.T, docs map[string]any) map[string]string {
	t.Helper()
	dir := t.TempDir()
	in, _ := json.Marshal(docs)
	os.WriteFile(filepath.Join(dir, "docs.json"), in, 0o644)
	script := `
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
out = {}
for name, doc in json.load(open(sys.argv[2])).items():
    errs = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    out[name] = errs[0].message if errs else ""
print(json.dumps(out))
`
	cmd := exec.Command(testenv.Python(t), "-c", script, "recipe.v1.json", filepath.Join(dir, "docs.json"))
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jsonschema: %v\n%s", err, outb)
	}
	var out map[string]string
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("jsonschema output %q: %v", outb, err)
	}
	return out
}

func yamlToJSON(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Every shipped recipe validates against the schema, and broken variants are rejected.
func TestSchemaWithPythonJSONSchema(t *testing.T) {
	files, _ := filepath.Glob("../recipes/*.yaml")
	if len(files) < 5 {
		t.Fatalf("found %d shipped recipes", len(files))
	}
	docs := map[string]any{}
	var seed string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "# yaml-language-server: $schema=../schema/recipe.v1.json\n") {
			t.Errorf("%s does not start with the schema comment", f)
		}
		docs[filepath.Base(f)] = yamlToJSON(t, string(b))
		if strings.HasSuffix(f, "llama-3.1-8b-7gb.yaml") {
			seed = string(b)
		}
	}
	broken := map[string][2]string{
		"broken: missing version":     {"version: 1\n", ""},
		"broken: version 2":           {"version: 1", "version: 2"},
		"broken: unknown top key":     {"steps: 1000", "stpes: 1000"},
		"broken: bad size unit":       {"limit: 7GB", "limit: 7GX"},
		"broken: unknown stage kind":  {"kind: clear-cache", "kind: clear-cahce"},
		"broken: unknown setting":     {"rank: 16", "rnak: 16"},
		"broken: rank out of range":   {"rank: 16", "rank: 0"},
		"broken: wrong type":          {"layers: 4", "layers: four"},
		"broken: bad guard action":    {"action: checkpoint-and-stop", "action: explode"},
		"broken: event not for kind":  {"    kind: load-4bit", "    kind: load-4bit\n    on: after-step"},
		"broken: unknown stage key":   {"    kind: load-4bit", "    kind: load-4bit\n    evry: 3"},
		"broken: buffer not a number": {"buffer: 0.2", "buffer: lots"},
		"broken: every below minimum": {"every: 100", "every: 0"},
		"broken: stage without an id": {"  - id: load\n", "  -\n"},
	}
	for name, edit := range broken {
		if !strings.Contains(seed, edit[0]) {
			t.Fatalf("%s: %q not in the seed recipe", name, edit[0])
		}
		docs[name] = yamlToJSON(t, strings.Replace(seed, edit[0], edit[1], 1))
	}
	got := checkWithJSONSchema(t, docs)
	for name := range docs {
		msg, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not checked", name)
		case strings.HasPrefix(name, "broken") && msg == "":
			t.Errorf("%s: accepted by the schema", name)
		case !strings.HasPrefix(name, "broken") && msg != "":
			t.Errorf("%s: rejected by the schema: %s", name, msg)
		}
	}
}
