"""Pure planning over arrays: which frames and clips to show (selection), at what size under an
exact token budget (budget), clips of the coarse timeline (clips), and the whole evidence plan of
one or many videos (evidence). Imports core/ and numpy only: no Ray, no models, no files, so each
function is unit-tested in milliseconds."""
