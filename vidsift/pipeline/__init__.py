"""The domain and the flows: types, probe, selection, budget, pruning, flows, jobs, CLI, HTTP.

Pure logic (selection, budget, pruning) imports no Ray, no models and does no I/O."""
