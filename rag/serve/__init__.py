"""The HTTP service: app factory, routes, middleware, model gate, streaming, metrics, uploads, web page."""
