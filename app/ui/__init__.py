"""The Gradio chat page: `build_page(engine)` makes it, `serve(...)` runs it (`newsqa chat`)."""
