"""Talks to yai serve with the official openai client: for each model id given, a chat
completion and a completion, streamed and not, greedy. Prints one JSON object:
{"models": [...], "answers": {"MODEL chat|completion stream|plain": {"text", "finish_reason", "usage"}}}.

  openai_client.py BASE_URL API_KEY MAX_TOKENS USER_MESSAGE MODEL...
"""
import json
import sys

import openai


def main():
    base_url, api_key, max_tokens, user = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    models = sys.argv[5:]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)
    out = {"models": [m.id for m in client.models.list()], "answers": {}}
    for model in models:
        messages = [{"role": "user", "content": user}]
        r = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, temperature=0)
        out["answers"][f"{model} chat plain"] = {
            "text": r.choices[0].message.content, "finish_reason": r.choices[0].finish_reason,
            "usage": [r.usage.prompt_tokens, r.usage.completion_tokens]}
        text, finish, usage = "", None, None
        for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                                    temperature=0, stream=True,
                                                    stream_options={"include_usage": True}):
            if chunk.usage is not None:
                usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
        out["answers"][f"{model} chat stream"] = {"text": text, "finish_reason": finish, "usage": usage}

        r = client.completions.create(model=model, prompt=user, max_tokens=max_tokens, temperature=0)
        out["answers"][f"{model} completion plain"] = {
            "text": r.choices[0].text, "finish_reason": r.choices[0].finish_reason,
            "usage": [r.usage.prompt_tokens, r.usage.completion_tokens]}
        text, finish = "", None
        for chunk in client.completions.create(model=model, prompt=user, max_tokens=max_tokens,
                                               temperature=0, stream=True):
            for c in chunk.choices:
                text += c.text
                finish = c.finish_reason or finish
        out["answers"][f"{model} completion stream"] = {"text": text, "finish_reason": finish, "usage": None}
    # An unknown model is the client's NotFoundError, with the served models in its message.
    try:
        client.completions.create(model="eagle", prompt=user, max_tokens=2)
        out["unknown"] = "no error"
    except openai.NotFoundError as e:
        out["unknown"] = e.body.get("message") if isinstance(e.body, dict) else str(e)
    # A wrong key is the client's AuthenticationError.
    try:
        openai.OpenAI(base_url=base_url, api_key="wrong-" + api_key, max_retries=0).models.list()
        out["wrong_key"] = "no error"
    except openai.AuthenticationError as e:
        out["wrong_key"] = "AuthenticationError"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
