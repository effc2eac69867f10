"""Turning files, URLs and feeds into articles, chunks and index writes."""
