"""Flows wire workers and stores together: the ingest chain (probe -> shards -> decode + embed
pool -> memory), ask (memory -> plan -> fine decode -> VLM), index (clips into FAISS), caption
(Ray Data over many videos), speech (transcripts), conversations (their turns and history
tokens), the demo. Ray lives here and in vidsift/workers/ only."""
