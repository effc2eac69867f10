"""What Open WebUI asks of a chat model beyond the OpenAI API, and what it can take besides.

Tasks: Open WebUI asks the chat model, after a question, for a title, tags and follow-up suggestions
(prompts that open with "### Task:" and quote the <chat_history>; its query and autocomplete tasks
look alike). Answered from the articles, each would be a refusal, or a quoted sentence where JSON was
asked for: three wasted answers a turn, three generations with an LLM. So such a task goes to the
LLM as written, which can do it, and without one is answered with an empty JSON object, on which
Open WebUI keeps its own defaults (the question as the title, no tags, no suggestions).

Sources: a streamed chunk may carry an `event`, which Open WebUI hands to its own event handling; a
`source` event there becomes one of the message's sources, and the n-th source is what an [n] in
the text links to, as a citation chip that opens the passage. Other clients ignore the field.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from ingest.sources import is_url

if TYPE_CHECKING:
    from app.documents import Answer
    from app.engine import Engine

log = logging.getLogger(__name__)
_TASK = re.compile(r"\A\s*### Task:\s")
NOTHING = "{}"


def is_client_task(prompt: str) -> bool:
    return bool(_TASK.match(prompt))


def do_client_task(engine: Engine, llm: str | None, prompt: str) -> str:
    """The task done by the LLM `llm` names (None: the configured one), else NOTHING: with no LLM,
    or one that cannot do it now."""
    from langchain_core.messages import HumanMessage

    try:
        backend = engine.backend_for(llm)
        reply = backend.model.invoke([HumanMessage(prompt)]).text.strip() if backend else ""
    except Exception as error:  # any failure of the LLM or its client: a nicety lost, not an answer
        log.warning("the LLM could not do a chat client's task: %s", error)
        reply = ""
    return reply or NOTHING


def source_events(answer: Answer) -> list[dict]:
    """An Open WebUI `source` event for each citation, in [n] order: its article's title and link,
    and the passage that holds the sentence the answer rests on."""
    events = []
    for citation in answer.citations:
        # An id of each [n]'s own: Open WebUI merges the sources of one id, which would shift the numbers.
        ident, link = f"newsqa-{citation.number}", {"url": citation.url} if is_url(citation.url) else {}
        data = {
            "source": {"id": ident, "name": citation.title, **link},
            "document": [citation.passage],
            "metadata": [{"source": ident, "name": citation.title, **link}],
        }
        events.append({"type": "source", "data": data})
    return events
