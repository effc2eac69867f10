"""Prompts: the templates in prompts/, the blocks of data they are filled with, and fitting a
prompt into a model's context window.

The templates are plain text files shipped in the package (answer.txt, condense.txt, judge.txt): each
message opens with a `[system]`, `[user]` or `[assistant]` line, and `{name}` fills in a value.
- Passages are numbered [1]..[m] in rank order, each headed by title, date and source and each
  between <passage> and </passage>. The prompt says they are data, not instructions, and data that
  imitates a delimiter is defused (`neutralise`), so an article cannot end its block and speak as
  the user.
- The model answers only from the passages, cites them as [1], [2], and when they do not hold the
  answer replies with the exact refusal sentence, which app/answering.py recognises.
- The prompt gives the question's as-of date, so "yesterday" in the question is read from the same
  day retrieval used.
- Fitting (app/llm.py): when the passages do not fit the window, the lowest-ranked are dropped whole,
  never cut; when not even the best one fits, the LLM is not asked and the answer falls back; the
  condense prompt drops the oldest turns first. Tokens are counted with the model's own tokenizer
  for llamacpp:; servers do not expose theirs, so `estimate_tokens` overcounts safely (on news text,
  the real count of Llama 2 and 3, Mistral and GPT-4o tokenizers stays under 0.76 of it), at the
  price of some unused window."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate

from app.documents import Passage

# A template file is a list of messages, each opened by a line `[system]`, `[user]` or `[assistant]`;
# the text is a LangChain f-string template ({name} fills in a value, {{ and }} are literal braces).
_SECTION = re.compile(r"^\[(system|user|assistant)\][ \t]*$", re.MULTILINE)
# What data could use to pose as the prompt's own structure, wherever it appears inside the data:
# opening or closing delimiters of the data blocks, the template's role lines ([system]), and the
# <|...|> special tokens of chat templates.
_DELIMITER = re.compile(
    r"<(?=\s*/?\s*(?:passage|conversation)\b|\|)|\[(?=\s*(?:system|user|assistant)\s*\])", re.IGNORECASE
)
# Invisible characters that can split a delimiter so that it is missed here yet read by a model:
# soft hyphen, zero-width spaces and joiners, direction marks, word joiner and invisible operators,
# byte order mark, and the tag characters that spell hidden ASCII.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\U000e0000-\U000e007f]")

# What a chat template adds around each message (role markers, end of turn), and once (start of
# text, the reply's header, preambles such as Llama 3.1's dates in the system message); generous,
# as the exact figures depend on the model's template.
MESSAGE_OVERHEAD = 8
REPLY_OVERHEAD = 32


def parse_template(text: str, name: str = "prompt") -> ChatPromptTemplate:
    parts = _SECTION.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise ValueError(f"prompt {name}: every message must start with a [system], [user] or [assistant] line")
    messages = [(role, body.strip()) for role, body in zip(parts[1::2], parts[2::2])]
    return ChatPromptTemplate.from_messages(messages)


@cache
def load_template(name: str) -> ChatPromptTemplate:
    """The template prompts/NAME.txt, shipped inside the package."""
    text = resources.files("prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return parse_template(text, name)


def neutralise(text: str) -> str:
    """Data that imitates a delimiter (`</passage>`, `[system]`) cannot close its block early or open
    a message: its `<` or `[` becomes `‹`. Look-alikes are caught first by dropping invisible
    characters and folding compatibility forms (NFKC: full-width `＜` is `<`); the data is passed on
    in that form, the form the check has seen."""
    return _DELIMITER.sub("\u2039", unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)))


def passage_block(passages: Sequence[Passage]) -> str:
    """The passages numbered [1]..[m] in order, each headed by its title, date and source."""
    blocks = []
    for number, passage in enumerate(passages, 1):
        about = ", ".join(x for x in (passage.published and passage.published.isoformat(), passage.source) if x)
        heading = f"[{number}] {passage.title}" + (f" ({about})" if about else "")
        blocks.append(f"<passage>\n{neutralise(heading)}\n{neutralise(passage.text.strip())}\n</passage>")
    return "\n\n".join(blocks)


def conversation_block(history: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"User: {neutralise(q.strip())}\nAssistant: {neutralise(a.strip())}" for q, a in history)


def estimate_tokens(text: str) -> int:
    """A safe upper estimate when the model's tokenizer is out of reach: tokenizers of current
    models average 4 or more bytes of English a token; 3 leaves room for names and numbers."""
    return math.ceil(len(text.encode("utf-8")) / 3)


def count_message_tokens(messages: Sequence[BaseMessage], count_tokens: Callable[[str], int]) -> int:
    return sum(count_tokens(m.text) + MESSAGE_OVERHEAD for m in messages) + REPLY_OVERHEAD


def longest_fitting_prefix(count: int, fits: Callable[[int], bool]) -> int:
    """The largest n <= count with fits(n), given that fits holds for every n below one it holds
    for (a prompt with fewer passages is shorter); 0 when none fits. Binary search: each probe
    tokenizes a whole prompt."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low
