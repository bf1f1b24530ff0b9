//! Model providers (Ollama, OpenAI-compatible, embedded GGUF, replay): arrives with the models issue.
