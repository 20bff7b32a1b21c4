"""Company documents: validation before anything is parsed, loaders per format, and chunking."""
