"""Flows wire workers together: index (decode -> embed -> clip index), ask (probe -> coarse ->
select -> budget -> fine decode -> VLM), caption (Ray Data over many videos). Ray lives here and in
vidsift/workers/ only."""
