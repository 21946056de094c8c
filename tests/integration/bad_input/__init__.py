"""Bad input, measured: the HTTP APIs fuzzed from their own OpenAPI, and hostile
records on every topic the services consume (issue #9, item 4)."""
