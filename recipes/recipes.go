// Package recipes embeds the recipes shipped with yai, so `yai recipes` and `yai init` work from
// the binary alone.
package recipes

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed *.yaml data
var files embed.FS

// FS holds the shipped recipes (NAME.yaml) and the data they ship with (data/…).
func FS() fs.FS { return files }

// Recipe names one shipped recipe.
type Recipe struct {
	Name        string // file name without .yaml
	File        string // NAME.yaml
	Description string
	Data        string // shipped data directory the recipe uses (data/…), or ""
}

// List returns the shipped recipes, sorted by name.
func List() []Recipe {
	entries, _ := fs.Glob(files, "*.yaml")
	var out []Recipe
	for _, f := range entries {
		src, _ := files.ReadFile(f)
		var head struct {
			Description string `yaml:"description"`
			Data        string `yaml:"data"`
		}
		_ = yaml.Unmarshal(src, &head)
		r := Recipe{Name: strings.TrimSuffix(f, ".yaml"), File: f, Description: head.Description}
		if p := path.Clean(head.Data); strings.HasPrefix(p, "data/") {
			if _, err := fs.Stat(files, p); err == nil {
				r.Data = p
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns a shipped recipe by name (with or without .yaml).
func Get(name string) (Recipe, bool) {
	name = strings.TrimSuffix(name, ".yaml")
	for _, r := range List() {
		if r.Name == name {
			return r, true
		}
	}
	return Recipe{}, false
}
