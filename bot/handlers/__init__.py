"""aiogram Routers, one module per feature. Thin: parse, call a service, reply."""
