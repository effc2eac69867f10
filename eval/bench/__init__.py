"""`newsqa bench`: how fast newsqa ingests and answers, against the raw embedding model and the
LangChain tutorial, and how its latency, memory and disk grow with the index (see eval/README.md).

`runner` runs the parts and `report` writes them into BENCHMARKS.md; `ingestion` and `end_to_end`
time ingestion in process and from process start to exit (`tutorial_ingest` is the tutorial as a
program of its own), `scale` grows an index of synthetic chunks from `corpus`, `chat` times the chat
page's start; `compare_retrieval` scores each retrieval mode against the tutorial's.
"""
