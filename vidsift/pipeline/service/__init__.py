"""What serves people and programs: the HTTP service (http) over a persistent job store (jobs),
its security (API key, media roots), the web page (web/), caption jobs (caption_job) and the
in-process VLM as an OpenAI-compatible endpoint (openai_server)."""
