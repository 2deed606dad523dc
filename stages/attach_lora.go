package stages

import "reflect"

// AttachLoRAConfig configures the LoRA adapters added to the loaded model.
type AttachLoRAConfig struct {
	Rank    int      `yaml:"rank" default:"16" min:"1" max:"512" doc:"LoRA rank r: adapters are (in, r) and (r, out)"`
	Alpha   float64  `yaml:"alpha" default:"32" min:"0" doc:"LoRA alpha; the update is scaled by alpha/rank"`
	Layers  int      `yaml:"layers" default:"16" min:"1" doc:"adapt only the last N transformer blocks"`
	Keys    []string `yaml:"keys" default:"self_attn.q_proj,self_attn.v_proj" doc:"modules to adapt inside each block, e.g. self_attn.q_proj (a bare q_proj is matched by suffix)"`
	Dropout float64  `yaml:"dropout" default:"0" min:"0" max:"0.99" doc:"dropout on the adapter input while training"`
}

// Scale is the absolute factor applied to the adapter output (mlx-lm's `scale`).
func (c AttachLoRAConfig) Scale() float64 { return c.Alpha / float64(c.Rank) }

func init() {
	Register(Kind{
		Name:    "attach-lora",
		Summary: "add trainable LoRA adapters to the last N blocks; freeze the rest",
		Doc: "Wraps the named linear modules of the last `layers` blocks with LoRA adapters " +
			"(lora_a uniform ±1/√in, lora_b zeros, float32) and freezes every other parameter. " +
			"Runs once, at setup, after load-4bit.",
		Config: reflect.TypeFor[AttachLoRAConfig](),
		Events: []Event{Setup},
		Once:   true,
	})
}
