"""Generate the tokenizer fixtures the Go tests compare against.

Run with the project venv (pinned tokenizers / transformers):

    .venv/bin/python tokenizer/testdata/gen_fixtures.py

It trains four small tokenizers on the corpus embedded below and writes, per tokenizer,
a directory with tokenizer.json + tokenizer_config.json, plus expected.json holding the ids
HF `tokenizers` produces for CORPUS and the chat-template output of `transformers`.
The BPE trainer breaks frequency ties in hash order, so a re-run may change the vocabularies
slightly; the Go tests read whatever is committed, and the live test checks against HF again.
"""

import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

LLAMA3_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]

# The Llama-3.1 Instruct chat template (tools in the first user message, date_string default).
LLAMA31_TEMPLATE = open(os.path.join(HERE, "llama31_chat_template.jinja")).read()

# A Llama-2 style template: exercises raise_exception, loop controls and string methods.
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

TRAINING_TEXT = """
The quick brown fox jumps over the lazy dog. It isn't the first time we've seen it; they'll see it again.
Fine-tuning large language models with LoRA adapters keeps the base weights frozen and trains two small matrices.
Quantized 4-bit weights are stored with scales and biases per group of 64 values.
def train(model, optimizer, batches):
    for step, batch in enumerate(batches):
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
    return model

func (t *Tokenizer) Encode(text string) []int32 {
	return t.encode(text)
}
Numbers: 1 12 123 1234 12345 3.14159 2024-07-26 100% $42.00 #1 @user
Le renard brun rapide saute par-dessus le chien paresseux. Ça va très bien, merci !
Der schnelle braune Fuchs springt über den faulen Hund. Größe, Straße, Übung.
El rápido zorro marrón salta sobre el perro perezoso. ¿Qué tal? ¡Muy bien!
Быстрая коричневая лиса прыгает через ленивую собаку.
素早い茶色の狐がのろまな犬を飛び越える。日本語のテキストです。
敏捷的棕色狐狸跳过了懒狗。这是中文文本。机器学习很有趣。
الثعلب البني السريع يقفز فوق الكلب الكسول. مرحبا بالعالم.
빠른 갈색 여우가 게으른 개를 뛰어넘습니다.
Emoji: 😀 😃 🚀 👍🏽 ❤️ 🇫🇷 👨‍👩‍👧
Whitespace   runs    and	tabs		and
newlines


and more.
"""

TRAINING_CORPUS = [line for line in TRAINING_TEXT.split("\n") if line] * 20 + [TRAINING_TEXT] * 20

# The corpus the Go tests encode. Each entry is one Encode call.
CORPUS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "Hello  world",
    "The quick brown fox jumps over the lazy dog.",
    "It's, I'M, they'll, we'Ve, you'd, she'S",
    "Numbers: 1 12 123 1234 12345 123456 3.14159 2024-07-26",
    "Emoji: 😀🚀 👍🏽 ❤️ 🇫🇷 👨‍👩‍👧 done",
    "素早い茶色の狐がのろまな犬を飛び越える。",
    "敏捷的棕色狐狸跳过了懒狗。",
    "الثعلب البني السريع يقفز فوق الكلب الكسول.",
    "빠른 갈색 여우",
    "Ça va très bien, merci ! Größe Übung ¿Qué?",
    "def f(x):\n    return x * 2\n\n\nprint(f(21))",
    "func main() {\n\tfmt.Println(\"hi\")\n}\n",
    "a  b   c    d     e",
    "trailing spaces   ",
    "   leading spaces",
    "tabs\t\tand\t\t\ttabs",
    "line1\nline2\r\nline3\rline4\n\n\n",
    " \n \n  \n",
    "<|begin_of_text|>Hello<|eot_id|>",
    "text with <|start_header_id|>user<|end_header_id|> inside",
    "<s>Hello</s> and <unk> tokens",
    "a<|eot_id|><|eot_id|>b",
    "Mixed: English, français, 中文, العربية, 😀, and code `x := 1`",
    "URL https://example.com/path?q=1&r=2#frag",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    "Unseen chars: ǅ ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∮ ⌘ ☃",
    "\u00a0non\u2003breaking\u3000spaces",
    "'s 're 've 'm 'll 'd 'x",
    "!!!???...,,,;;;",
    "1234567890",
    "x\u0301 composed é vs decomposed e\u0301",
]

MESSAGES_SIMPLE = [
    {"role": "user", "content": "What is LoRA?"},
    {"role": "assistant", "content": "A low-rank adapter.  "},
]
MESSAGES_SYSTEM = [
    {"role": "system", "content": "  You are terse.\n"},
    {"role": "user", "content": "Name a prime."},
    {"role": "assistant", "content": "7"},
    {"role": "user", "content": "Another one, in 中文?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7},
                    "ratio": {"type": "number", "default": 0.5},
                },
                "required": ["city"],
            },
        },
    }
]
MESSAGES_TOOLS = [
    {"role": "system", "content": "Use tools when helpful."},
    {"role": "user", "content": "Weather in Zürich?"},
    {
        "role": "assistant",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}}
        ],
    },
    {"role": "tool", "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
    {"role": "assistant", "content": "Sunny, 21.5°C."},
]

CHAT_CASES = [
    {"name": "simple", "messages": MESSAGES_SIMPLE, "tools": None},
    {"name": "system", "messages": MESSAGES_SYSTEM, "tools": None},
    {"name": "tools", "messages": MESSAGES_TOOLS, "tools": TOOLS},
    {"name": "prompt_only", "messages": MESSAGES_SIMPLE[:1], "tools": None},
    # Roles that do not alternate: the Llama-2 template raises, the Llama-3.1 one renders.
    {"name": "bad_roles", "messages": [MESSAGES_SIMPLE[0], MESSAGES_SIMPLE[0]], "tools": None},
]


def train_bpe(pre_tokenizer, vocab_size, special_tokens, initial_alphabet=None, limit_alphabet=None):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    kwargs = dict(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False, min_frequency=2)
    if initial_alphabet is not None:
        kwargs["initial_alphabet"] = initial_alphabet
    if limit_alphabet is not None:
        kwargs["limit_alphabet"] = limit_alphabet
    tok.train_from_iterator(TRAINING_CORPUS, trainers.BpeTrainer(**kwargs))
    return tok


def llama3_tokenizer():
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok = train_bpe(pre, 1500, LLAMA3_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))],
            ),
        ]
    )
    config = {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "chat_template": LLAMA31_TEMPLATE,
    }
    return tok, config


def gpt2_tokenizer():
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok = train_bpe(pre, 1200, ["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
    return tok, config


def with_byte_fallback(trained):
    """Rebuild a trained BPE as a SentencePiece-style model: <unk> <s> </s>, 256 byte tokens, then the rest."""
    model = json.loads(trained.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for token, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]):
        if token not in vocab:
            vocab[token] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    return tok


def spm_legacy_tokenizer():
    """Llama-2 style: Prepend + Replace normalizers, no pre-tokenizer, a decoder sequence."""
    trained = train_bpe(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True), 1200, [], limit_alphabet=120)
    tok = with_byte_fallback(trained)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "chat_template": LLAMA2_TEMPLATE}
    return tok, config


def metaspace_tokenizer():
    """Newer SentencePiece conversions: a Metaspace pre-tokenizer (prepend_scheme first), NFKC normalizer."""
    trained = train_bpe(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True), 1000, [], limit_alphabet=100)
    tok = with_byte_fallback(trained)
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True), decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    return tok, config


BUILDERS = {
    "llama3": llama3_tokenizer,
    "gpt2": gpt2_tokenizer,
    "spm": spm_legacy_tokenizer,
    "metaspace": metaspace_tokenizer,
}


def write_tokenizer(name, tok, config):
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"), pretty=True)
    full = {
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
    }
    full.update(config)
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(full, f, ensure_ascii=False, indent=2)
        f.write("\n")
    return out


def expected_for(directory, config):
    from transformers import AutoTokenizer

    tok = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    cases = []
    for text in CORPUS:
        with_special = tok.encode(text, add_special_tokens=True).ids
        cases.append(
            {
                "text": text,
                "ids": tok.encode(text, add_special_tokens=False).ids,
                "ids_special": with_special,
                "decoded": tok.decode(with_special, skip_special_tokens=False),
                "decoded_skip": tok.decode(with_special, skip_special_tokens=True),
            }
        )
    result = {"encode": cases, "chat": []}
    if "chat_template" in config:
        hf = AutoTokenizer.from_pretrained(directory)
        for case in CHAT_CASES:
            for gen in (False, True):
                try:
                    text = hf.apply_chat_template(
                        case["messages"], tools=case["tools"], add_generation_prompt=gen, tokenize=False
                    )
                    ids = hf.apply_chat_template(
                        case["messages"], tools=case["tools"], add_generation_prompt=gen, tokenize=True, return_dict=False
                    )
                    error = None
                except Exception as e:  # the template raised: record that it must fail
                    text, ids, error = None, None, str(e)
                result["chat"].append(
                    {
                        "name": case["name"],
                        "messages": case["messages"],
                        "tools": case["tools"],
                        "add_generation_prompt": gen,
                        "text": text,
                        "ids": ids,
                        "error": error,
                    }
                )
    return result


def main():
    for name, build in BUILDERS.items():
        tok, config = build()
        directory = write_tokenizer(name, tok, config)
        expected = expected_for(directory, config)
        with open(os.path.join(directory, "expected.json"), "w", encoding="utf-8") as f:
            json.dump(expected, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"{name}: vocab {tok.get_vocab_size()}", file=sys.stderr)
    with open(os.path.join(HERE, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump(CORPUS, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
