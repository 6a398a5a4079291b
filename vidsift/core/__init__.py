"""The ground floor every package stands on: domain types, typed config, errors, the registry
lookup, probing, token arithmetic and small shared helpers. It imports nothing else of vidsift."""
