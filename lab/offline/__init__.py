"""Build everything a kind cluster needs from Debian, the Go module proxy and PyPI alone."""
