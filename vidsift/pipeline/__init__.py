"""What vidsift does with the workers and the index, in three floors and the CLI on top:
plan/ (pure planning over arrays), flows/ (wire workers and stores), service/ (HTTP, jobs, the web
page, the OpenAI endpoint). A module imports only from its own floor or those below it:
core < workers, index < plan < flows < service < cli."""
