"""Triptych: prompt engineering vs RAG vs fine-tuning, live and side by side."""

__version__ = "0.1.0"
