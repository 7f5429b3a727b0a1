"""Evaluation: zero-shot entity linking, downstream fine-tuning, reports."""
