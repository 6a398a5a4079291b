"""vidsift: long-video understanding that spends a VLM's visual-token budget where the evidence is."""

__version__ = "0.1.0"
