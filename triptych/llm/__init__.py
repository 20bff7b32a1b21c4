"""Chat models behind OpenAI-compatible endpoints, and the embedded llama.cpp server."""
