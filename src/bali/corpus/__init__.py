"""Corpus stage: read documents, split sentences, link mentions to KG nodes."""
