"""The LangGraph pipelines Triptych compares, their registry and the comparison runner."""
