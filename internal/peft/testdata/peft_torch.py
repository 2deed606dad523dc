"""The real check of a PEFT export (long test tier): Hugging Face transformers loads the float
base model from an MLX model directory (HF-compatible), peft loads the adapter onto it, and
this prints the logits of each prompt as JSON. `write` makes and saves an adapter with peft
itself (random lora_B, so it changes the logits) and prints its logits, for the import.

    peft_torch.py logits MODEL_DIR ADAPTER_DIR PROMPTS_JSON
    peft_torch.py write MODEL_DIR OUT_DIR PROMPTS_JSON
"""
import json
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM


def logits(model, prompts):
    out = []
    with torch.no_grad():
        for p in prompts:
            out.append(model(torch.tensor([p])).logits[0].float().flatten().tolist())
    return out


def main():
    cmd, model_dir, adapter_dir, prompts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    base.eval()
    if cmd == "logits":
        model = PeftModel.from_pretrained(base, adapter_dir)
    else:
        cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "o_proj", "up_proj"],
                         init_lora_weights=False, task_type="CAUSAL_LM")
        model = get_peft_model(base, cfg)
        model.save_pretrained(adapter_dir)
    model.eval()
    print(json.dumps(logits(model, prompts)))


if __name__ == "__main__":
    main()
