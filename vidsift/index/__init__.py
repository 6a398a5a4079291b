"""The clip index: FAISS vectors, SQLite metadata, atomic persistence, factory choice, GPU."""
