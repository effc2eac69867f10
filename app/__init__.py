"""newsqa: questions answered from a folder of news articles, with citations."""

from app.settings import Settings  # noqa: F401  (sets the offline environment before anything loads)
