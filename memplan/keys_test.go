package memplan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// attach-lora without keys adapts the family's default: on Llama, q_proj and v_proj.
func TestUnsetKeysAreTheFamilysDefault(t *testing.T) {
	info := llama8B(t)
	budget := func(keys []string) Budget {
		w := seedWorkload()
		w.Keys = keys
		return *Decide(Inputs{Model: info, Workload: w, Device: Device{Backend: "cpu"}}).Budget
	}
	unset, explicit := budget(nil), budget([]string{"self_attn.q_proj", "self_attn.v_proj"})
	if unset.Modules != 8 || unset.LoRA == 0 {
		t.Errorf("unset keys: %d modules, %d LoRA bytes; want q_proj and v_proj of 4 blocks", unset.Modules, unset.LoRA)
	}
	if diff := cmp.Diff(explicit, unset); diff != "" {
		t.Errorf("unset keys budget differs from q_proj, v_proj (-explicit +unset):\n%s", diff)
	}
}
