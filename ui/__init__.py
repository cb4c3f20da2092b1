"""The Gradio chat front end: `build_app(service)` and `serve(settings, host, port)` in ui.app."""
