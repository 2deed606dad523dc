"""Reference side of TestAssistantMasks and TestToolRowsRenderAsTransformers: transformers
renders the chat and marks the assistant's tokens. Run with the venv python.

    assistant_reference.py DIR   stdin: JSON list of cases {"messages", "tools", "header", "eot"};
                                 stdout: one result per case {"text", "ids", "mask", "turns"}:
                                 "mask" is apply_chat_template's return_assistant_tokens_mask
                                 (templates with {% generation %}), "turns" a per-message one
                                 (null without "header"): each assistant turn runs from the end
                                 of its "header" (found in order) to the end of the first "eot"
                                 after its content, mapped to tokens as transformers maps the
                                 generation marks (char_to_token of both ends).
"""

import json
import sys

from transformers import PreTrainedTokenizerFast


def token_mask(enc, n, spans):
    mask = [0] * n
    for start, end in spans:
        first, last = enc.char_to_token(start), enc.char_to_token(end - 1)
        if first is None:
            break
        for i in range(first, last + 1 if last is not None else n):
            mask[i] = 1
    return mask


def main():
    tok = PreTrainedTokenizerFast.from_pretrained(sys.argv[1])
    out = []
    for case in json.load(sys.stdin):
        kwargs = {"tools": case.get("tools")}
        text = tok.apply_chat_template(case["messages"], tokenize=False, **kwargs)
        result = {"text": text}
        if "{% generation %}" in tok.chat_template or "{%- generation %}" in tok.chat_template:
            enc = tok.apply_chat_template(case["messages"], tokenize=True, return_dict=True,
                                          return_assistant_tokens_mask=True, **kwargs)
            result["ids"], result["mask"] = enc["input_ids"], enc["assistant_masks"]
        enc = tok(text, add_special_tokens=False)
        result.setdefault("ids", enc["input_ids"])
        header, eot = case.get("header"), case.get("eot")
        if header:
            spans, at = [], 0
            for m in case["messages"]:
                if m["role"] != "assistant":
                    continue
                start = text.index(header, at) + len(header)
                content = (m.get("content") or "").split("</think>")[-1].strip()
                after = text.index(content, start) + len(content) if content else start
                end = text.index(eot, after) + len(eot)
                spans.append((start, end))
                at = end
            result["turns"] = token_mask(enc, len(enc["input_ids"]), spans)
        out.append(result)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
