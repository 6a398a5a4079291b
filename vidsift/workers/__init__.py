"""Ray actors and pools, and the model backends they host: decode, embed, vlm."""
