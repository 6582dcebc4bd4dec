"""Suite files: the model (apps, charts, checks), the loader that validates a file with
file/line/key errors, the app dependency graph, and the JSON Schema (``schema/``)."""
