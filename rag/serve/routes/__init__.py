"""The HTTP routes, one module-level router per resource; `rag.serve.app` includes them all."""
