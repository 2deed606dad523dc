package testmodel

import (
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/modeldir"
)

// Every family yai reads has a row in Families, whose preset is of that family: the
// cross-checks cannot silently skip one.
func TestEveryFamilyHasARow(t *testing.T) {
	rows := map[string]bool{}
	for _, f := range Families {
		spec, ok := model.TinyPresets[f.Preset]
		if !ok {
			t.Errorf("%s: no preset %q", f.Name, f.Preset)
			continue
		}
		fam, err := modeldir.FamilyOf(spec.Config.ModelType)
		if err != nil || fam.Name != f.Name {
			t.Errorf("%s: preset %s is model_type %q, of family %v", f.Name, f.Preset, spec.Config.ModelType, fam)
		}
		rows[f.Name] = true
	}
	for _, typ := range modeldir.SupportedTypes() {
		fam, _ := modeldir.FamilyOf(typ)
		if !rows[fam.Name] {
			t.Errorf("family %s (model_type %s) has no row in Families", fam.Name, typ)
		}
	}
}
