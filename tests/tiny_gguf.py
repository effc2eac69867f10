"""A tiny llama-architecture GGUF model with random weights, written for the tests.

It is a real model file that llama.cpp loads, tokenizes with, serves and samples from: its own
small SentencePiece-style vocabulary (control tokens, the 256 byte-fallback tokens, a few dozen
words and their prefixes) and a chat template in its metadata. Its output is gibberish made of
those words: the output rows of every token but the whole words are zero, so decoding never
picks an end-of-sequence, control, byte or prefix token and always produces readable words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WORDS = (
    "the news talks in Geneva with minister said on Monday report war peace trade vote city people "
    "government president election week year police court water price market storm school health "
    "army border deal officials agreed refused"
).split()

# Roles delimited by plain-text markers; llama.cpp's Jinja renderer fills in the messages.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

EMBEDDING = 64
HEADS = 4
LAYERS = 2
FEED_FORWARD = 128


def vocabulary() -> tuple[list[str], list[float], list[int], list[int]]:
    """Tokens, scores, types, and the ids of the whole words (the only tokens the model says).

    <unk>, <s>, </s>, the byte tokens, then every prefix of every word: SentencePiece merges
    adjacent pieces only when the joined text is a token, so "\u2581the" needs "\u2581t" and "\u2581th".
    """
    from gguf import TokenType

    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [TokenType.BYTE] * 256
    words = list(dict.fromkeys(f"\u2581{word}" for word in WORDS))
    pieces = list(dict.fromkeys(word[:end] for word in words for end in range(2, len(word) + 1)))
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    # Longer pieces score higher, so the tokenizer prefers whole words to their prefixes and bytes.
    scores = [0.0] * (len(tokens) - len(pieces)) + [float(len(piece)) for piece in pieces]
    word_ids = [tokens.index(word) for word in words]
    return tokens, scores, [int(t) for t in types], word_ids


def write_tiny_gguf(path: Path, context_length: int = 4096, seed: int = 0) -> Path:
    """Write the model to `path` (a few hundred KB) and return the path."""
    import gguf

    tokens, scores, types, word_ids = vocabulary()
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("newsqa-tiny-test")
    writer.add_context_length(context_length)
    writer.add_embedding_length(EMBEDDING)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBEDDING // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    # numpy shapes are GGML's dimensions reversed: (rows, columns) = (outputs, inputs).
    writer.add_tensor("token_embd.weight", weights(len(tokens), EMBEDDING))
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weights(EMBEDDING, EMBEDDING))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weights(FEED_FORWARD, EMBEDDING))
        writer.add_tensor(f"{block}.ffn_up.weight", weights(FEED_FORWARD, EMBEDDING))
        writer.add_tensor(f"{block}.ffn_down.weight", weights(EMBEDDING, FEED_FORWARD))
    writer.add_tensor("output_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
    # Large word rows: the best word's logit dwarfs the zeros, so even sampling at the server's
    # default temperature says words.
    output = np.zeros((len(tokens), EMBEDDING), dtype=np.float32)
    output[word_ids] = weights(len(word_ids), EMBEDDING) * 15
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
